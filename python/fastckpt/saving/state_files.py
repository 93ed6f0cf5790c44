"""The ``checkpoint`` state files a Saver writes: replaced atomically, and in an object store only if still the
one the Saver last wrote (or first found), so that a second writer saving into the directory is reported, not
silently overwritten."""

from __future__ import annotations

import os
from typing import Any, Dict

from .. import _fastckpt, errors
from ..reading.checkpoint_state import atomic_write, parse_checkpoint_state

__all__ = ["StateFiles"]

# A state file that did not exist when a saver first wrote it.
_ABSENT = object()


class StateFiles:
    """The state files of one Saver, with the version of each as last read or written (object stores)."""

    def __init__(self, durable: bool, stores: "_fastckpt.Stores"):
        self._durable = durable
        self._stores = stores
        self._versions: Dict[str, Any] = {}

    def write(self, filename: str, contents: str) -> None:
        """Replaces the state file. In an object store, only if it is still the one this saver last wrote
        (or, on its first write, found): a second writer saving into the directory is reported, not
        silently overwritten. Local files, which keep no versions, are replaced unconditionally."""
        if not _fastckpt.is_url(filename):
            atomic_write(filename, contents, self._durable, storage_options=self._stores)
            return
        if filename not in self._versions:
            self.read(filename, os.path.dirname(filename))
        expected = self._versions[filename]
        if expected is None:  # a store that gives no versions
            atomic_write(filename, contents, self._durable, storage_options=self._stores)
            return
        try:
            self._versions[filename] = self._stores.write_file_if(
                filename, contents.encode("utf-8"), None if expected is _ABSENT else expected, self._durable
            )
        except errors.AbortedError:
            del self._versions[filename]
            raise errors.AbortedError(
                f"another writer replaced the state file {filename} since this saver last wrote it: two savers "
                "are saving into one directory",
                filename,
            ) from None

    def read(self, filename: str, save_dir: str):
        """The directory's state as the state file ``filename`` holds it (None if there is none, or if it is
        damaged: a save replaces it), read once: its version is what ``write`` expects to replace."""
        try:
            contents, self._versions[filename] = self._stores.read_file_versioned(filename)
        except errors.NotFoundError:
            self._versions[filename] = _ABSENT
            return None
        try:
            return parse_checkpoint_state(contents, filename, save_dir, self._stores)
        except errors.DataLossError:
            return None
