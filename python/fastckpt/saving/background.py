"""Saves in the background (``Saver.save_async``): the values copied before the call returns, one save in
flight per Saver, its failure raised by its Future and again by the next call, and at exit a warning for a save
that was lost."""

from __future__ import annotations

import atexit
import concurrent.futures
import threading
import warnings
import weakref
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from .. import _fastckpt
from .writer import Slice

__all__ = ["BackgroundSaves"]


class BackgroundSaves:
    """The background saves of one Saver: one in flight at a time, in a thread of its own.

    ``lock`` is held by the caller from ``wait()`` to ``submit``, so that two ``save_async`` calls from two
    threads queue their saves one after the other.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._in_flight: Optional[Tuple[concurrent.futures.Future, str]] = None
        self._error: Optional[BaseException] = None
        self._buffers: Dict[str, np.ndarray] = {}

    def snapshot(self, tensors: Dict[str, Any]) -> Dict[str, Any]:
        """The values of ``tensors`` (arrays and Slices) copied, on every core with the GIL released, into
        buffers of their own (those of the save before when the sizes agree: memory already touched). String
        tensors are already new arrays of immutable bytes."""
        buffers: Dict[str, np.ndarray] = {}
        sources, destinations = [], []
        snapshot: Dict[str, Any] = {}
        for name, value in tensors.items():
            array = value.value if isinstance(value, Slice) else value
            if array.dtype.kind == "O":
                copy = array
            elif not array.flags.c_contiguous:
                copy = np.ascontiguousarray(array)  # a copy already
            else:
                buffer = self._buffers.get(name)
                if buffer is None or buffer.nbytes != array.nbytes:
                    buffer = np.empty(array.nbytes, np.uint8)
                buffers[name] = buffer
                sources.append(array.reshape(-1).view(np.uint8))
                destinations.append(buffer)
                copy = buffer.view(array.dtype).reshape(array.shape)
            snapshot[name] = value._replace(value=copy) if isinstance(value, Slice) else copy
        _fastckpt.copy_arrays(sources, destinations)
        self._buffers = buffers
        return snapshot

    def submit(self, save: Callable[[], Optional[str]], checkpoint_file: str) -> "concurrent.futures.Future":
        """Runs ``save`` in the background; ``checkpoint_file`` names it in the warning of a save lost at exit."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fastckpt-save")
            _ALL.add(self)
        future = self._executor.submit(self._run, save)
        self._in_flight = (future, checkpoint_file)
        return future

    def wait(self) -> None:
        """Blocks until the save in flight has finished; raises its error if it failed (once: the error is then
        cleared)."""
        in_flight = self._in_flight
        if in_flight is not None:
            concurrent.futures.wait([in_flight[0]])
            self._in_flight = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self, save: Callable[[], Optional[str]]) -> Optional[str]:
        try:
            return save()
        except BaseException as error:
            self._error = error
            raise

    def _report_lost(self) -> None:
        if self._in_flight is not None and not self._in_flight[0].done():
            warnings.warn(
                f"fastckpt: the save of {self._in_flight[1]} was abandoned at exit; the previous checkpoint "
                "stays the latest",
                RuntimeWarning,
                stacklevel=1,
            )
        elif self._error is not None:
            warnings.warn(
                f"fastckpt: a save in the background failed, and nothing waited for it: {self._error}",
                RuntimeWarning,
                stacklevel=1,
            )


# Every BackgroundSaves that has saved, told about at exit if a save of theirs was lost.
_ALL: "weakref.WeakSet[BackgroundSaves]" = weakref.WeakSet()


@atexit.register
def _report_lost_saves() -> None:
    """At exit (after the saves in flight have finished: the interpreter waits for them first), warns of one
    that did not finish or failed unseen: otherwise a lost checkpoint would pass in silence."""
    for saves in list(_ALL):
        saves._report_lost()
