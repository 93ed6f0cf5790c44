"""The progress bar of the command line: bytes done, rate and time left, drawn on stderr when it is a
terminal."""

from __future__ import annotations

import os
import sys
import time
from typing import Optional

__all__ = ["Progress", "format_bytes", "is_terminal"]


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# Work that moves at least this many bytes shows a progress bar, when stderr is a terminal.
_PROGRESS_MIN_BYTES = 100 * 1024 * 1024


def format_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def io_counter(field: str) -> Optional[int]:
    """The process's ``rchar`` or ``wchar`` (bytes passed to read or write system calls, by every thread,
    the extension's included), or None where /proc/self/io is missing."""
    try:
        with open("/proc/self/io", "rb") as f:
            for line in f:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class Progress:
    """A progress bar on stderr for work that moves ``total`` bytes: bytes done, rate and time left.

    Drawn only when stderr is a terminal and ``total`` is at least _PROGRESS_MIN_BYTES; otherwise every
    method does nothing but ``print``. The caller counts bytes with ``advance`` as each piece is done; in
    between (one large tensor, one ``save_file`` call) the bar follows the process's I/O counter ``io``
    (``"rchar"`` or ``"wchar"``), redrawn by a thread while the extension works without the GIL. As a
    context manager it ends with the full bar, or on an error erases itself, so that the one-line error
    message stands alone."""

    INTERVAL = 0.1  # seconds between redraws

    def __init__(self, label: str, total: int, io: Optional[str] = None):
        self.label, self.total = label, max(int(total), 0)
        self.enabled = self.total >= _PROGRESS_MIN_BYTES and is_terminal(sys.stderr)
        self._done = 0
        self._drawn = False
        if not self.enabled:
            return
        import threading

        self._io = io
        self._io_start = io_counter(io) if io else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._tick, name="fastckpt-progress", daemon=True)
        self._thread.start()

    def advance(self, nbytes: int) -> None:
        self._done += nbytes

    def print(self, *values, **kwargs) -> None:
        """``print`` to stdout, with the bar moved out of the way (and redrawn below) when stdout is a
        terminal too."""
        if not self.enabled:
            print(*values, **kwargs)
            return
        with self._lock:
            if is_terminal(sys.stdout):
                self._erase()
            print(*values, **kwargs)
            sys.stdout.flush()

    def _done_now(self) -> int:
        done = self._done
        if self._io_start is not None:
            now = io_counter(self._io)
            if now is not None:
                done = max(done, now - self._io_start)
        return min(done, self.total)

    def _line(self, done: int, final: bool) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = done / elapsed
        if final:
            tail = f"{format_bytes(self.total)} in {elapsed:.1f} s, {format_bytes(rate)}/s"
        else:
            left = format_duration((self.total - done) / rate) + " left" if done and elapsed > 0.3 else ""
            tail = f"{format_bytes(done)} / {format_bytes(self.total)}  {format_bytes(rate)}/s  {left}".rstrip()
        try:
            columns = os.get_terminal_size(sys.stderr.fileno()).columns or 80
        except (OSError, ValueError):
            columns = 80
        # The bar keeps one width as the figures after it change: the room left by the longest of them.
        width = max(10, min(30, columns - 1 - len(self.label) - 4 - len(self._LONGEST_TAIL)))
        filled = width * done // self.total if self.total else width
        return f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {tail}"

    _LONGEST_TAIL = "1023.9 MiB / 1023.9 MiB  1023.9 MiB/s  1:00:00 left"

    def _draw(self, final: bool = False) -> None:
        line = self._line(self.total if final else self._done_now(), final)
        sys.stderr.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        sys.stderr.flush()
        self._drawn = not final

    def _erase(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn = False

    def _tick(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            with self._lock:
                self._draw()

    def close(self, completed: bool = True) -> None:
        if not self.enabled or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        with self._lock:
            if completed:
                self._draw(final=True)
            else:
                self._erase()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(completed=exc_type is None)


def is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# inspect ---------------------------------------------------------------------------------------------------
