"""What the benchmarks share: pausing a VM's free page reporting for a run (``--keep-pages``), backing memory
and dropping cached files before a measurement, reading a process's memory figures, the machine line of a
report (CPU, memory, versions), the command a report shows, and replacing one benchmark's section of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Sequence, Tuple, Union

import numpy as np

PAGE_REPORTING_ORDER = Path("/sys/module/page_reporting/parameters/page_reporting_order")


def page_reporting() -> "str | None":
    """The order of the free blocks this VM reports to its host, or None where there is no such reporting."""
    try:
        return PAGE_REPORTING_ORDER.read_text().strip()
    except OSError:
        return None


class PagesKept:
    """Pauses free page reporting for a run, so that every contender allocates memory the host has backed.

    Memory freed in a VM with free page reporting is handed back to the host within moments; touching it again
    faults on the host (~3 us a page). Dropping a file's pages for a cold read frees them, so a cold read then
    either gets backed pages or not, depending on the race with the reporting: on the machine of BENCHMARKS.md
    this alone swung a plain 1 GiB read between 0.42 and 2.4 s. An order above the largest free block reports
    nothing; the previous order is restored on exit."""

    def __init__(self, enabled: bool):
        self.enabled, self.previous = enabled, None

    def __enter__(self):
        if self.enabled:
            self.previous = page_reporting()
            if self.previous is None:
                raise SystemExit("--keep-pages: this machine has no free page reporting to pause")
            try:
                PAGE_REPORTING_ORDER.write_text("11")  # above MAX_PAGE_ORDER (10): no block is large enough
            except OSError as e:
                raise SystemExit(f"--keep-pages: cannot pause free page reporting ({e}); run as root") from e
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            PAGE_REPORTING_ORDER.write_text(self.previous)


def cpu_model() -> str:
    """The CPU's model name, for the machine line of a report."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def versions(packages: Sequence[Union[str, Tuple[str, ...]]]) -> str:
    """``"name version, ..."`` of the installed packages among ``packages``; one given as ``(label, distribution,
    other distribution, ...)`` is shown as ``label``, in the version of the first of them installed."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in packages:
        label, *distributions = (package, package) if isinstance(package, str) else package
        for distribution in distributions:
            try:
                out.append(f"{label} {version(distribution)}")
                break
            except PackageNotFoundError:
                pass
    return ", ".join(out)


def machine(packages: Sequence[Union[str, Tuple[str, ...]]], keep_pages: bool, memory_notes: str = "") -> str:
    """The machine line of a report: CPU, cores, memory (then ``memory_notes``), system, Python, the versions of
    ``packages``, the time, and the VM's free page reporting (paused by ``--keep-pages``) where it has one."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    order = page_reporting()
    reporting = (
        ""
        if order is None
        else "; free page reporting to the host "
        + ("paused for this run (--keep-pages)" if keep_pages else f"on (blocks of order {order})")
    )
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {memory:.0f} GiB memory{memory_notes}; {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; {versions(packages)}; "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}{reporting}"
    )


def replace_section(path: Path, heading: str, section: str) -> None:
    """Replaces the section under ``heading`` (up to the next ``## `` heading, or the end) of the markdown file
    ``path`` with ``section``, or appends it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def command_as_given(script: str, dropped: Sequence[str] = ("--out",)) -> str:
    """The command this benchmark was run with, as its report shows it: ``python benches/<script's name>`` and its
    arguments but for the options ``dropped`` (where the report and the data go) and their values."""
    argv, given = [], iter(sys.argv[1:])
    for arg in given:
        if arg in dropped:
            next(given, None)
        elif not arg.startswith(tuple(option + "=" for option in dropped)):
            argv.append(arg)
    return shlex.join(["python", f"benches/{Path(script).name}", *argv])


def free_port() -> int:
    """A TCP port free on loopback, for a server a benchmark starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kib(field: str) -> int:
    """A figure of this process's /proc/self/status in KiB (``VmRSS``, ``VmHWM``); 0 where it has none."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def drop_cache(paths) -> None:
    """Drops the page cache of ``paths``, so that they are read cold."""
    os.sync()
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def back_memory(size: int) -> None:
    """Touches and frees `size` bytes, so that the operation timed next finds free memory its host has backed.

    On a virtual machine whose balloon reports free memory to the host (this one's does, about two seconds
    after it is freed), touching such memory again faults on the host, ~3 us a page: the first contender to
    allocate after a pause (page cache for a write, arrays for a read) would run several times slower than the
    rest. The pages freed here are the first the kernel hands out again."""
    buffer = np.empty(size, np.uint8)
    buffer[:: os.sysconf("SC_PAGE_SIZE")] = 1
    del buffer
