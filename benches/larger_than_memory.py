"""A checkpoint larger than the machine's memory converted to .safetensors, against a plain copy of its data file.

    python benches/larger_than_memory.py                 # 32 GiB, writes the "Larger than memory" section
    python benches/larger_than_memory.py --size 2GiB --out -            # a quick try, printed only
    python benches/larger_than_memory.py --size 25GiB --max-shard-size 5GB   # also into a sharded directory

Issue 16 asks that a conversion stream tensor by tensor, a tensor larger than the budget
(``fastckpt.conversion.PART_BYTES``) in parts, writing the .safetensors file header first and the tensors' bytes
after it, so that a checkpoint larger than the machine's memory converts with a peak resident set under 1 GiB.

What it does, in a fresh directory under --workdir (removed at the end, also on failure, interrupt or SIGTERM),
every step in a process of its own, timed from outside (wall time; user and system CPU seconds and page faults
from ``os.wait4``; /proc/<pid>/status sampled every 20 ms for the peaks of VmHWM, RssAnon, its own memory, and
RssFile, mapped file pages; then the time of a ``sync``, its dirty pages written back):

1. Writes a TensorFlow checkpoint of --size bytes with ``fastckpt.CheckpointWriter``, one ``add`` at a time, each
   tensor made, hashed (SHA-1 of its bytes) and dropped before the next: tensors of about 1 GiB (float32, every
   fourth bfloat16) and one of 4 GiB (float32), which the conversion reads in parts of rows; one whose rows are
   larger than ``PART_BYTES`` (each read alone); 16 MiB ones (read whole, several at once) and a few small
   ones. The data are normal floats from a seeded block, rotated and with their low mantissa bits flipped
   differently in every block, so that no two blocks of a tensor are alike. The writer's resident set after
   every ``add``, and the bytes the data file holds by then, show that each tensor is written as it is added.
2. Drops the checkpoint's pages from the page cache (``drop_cache``: sync, posix_fadvise DONTNEED; what stays
   cached is measured with util-linux ``fincore``) and runs ``python -m fastckpt convert <prefix>
   <out>.safetensors``; optionally the same into a sharded directory (--max-shard-size). A process that only
   imports what ``fastckpt convert`` imports gives the interpreter's own share of the peak.
3. Checks each output: the header's names, dtypes and shapes, its offsets (contiguous, up to the end of the
   file; a sharded directory's index too), and every tensor read back with ``safetensors.safe_open(path,
   "np")`` one at a time, a large one in slices of rows, hashed and compared with the source's hash. A
   difference fails the run (exit status 1, after the report). The output is then deleted.
4. The physical limit: ``cp`` of the data file to a second file, its pages dropped first; the copy is deleted.

The run's own process holds no tensors: ``ru_maxrss`` counts the high-water mark of the process that spawned a
child (kept across exec), so it is reported beside the child's own VmHWM. The outputs and the copy are never on
disk together, so the run needs twice --size free and refuses to start unless --min-free (default 10 GB) would
be left; a child is killed if free space falls below half of that. GB/s are of the tensor bytes (10^9 bytes a
second) over time + sync. Benchmarks measure; no test asserts them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np
from common import PagesKept, drop_cache, replace_section, status_kib

GIB = 1 << 30
MIB = 1 << 20
HERE = Path(__file__).resolve().parent
SECTION = "## Larger than memory"
# Elements of the seeded block every tensor's data are made from.
BLOCK = 1 << 21
# Bytes read back at once when checking the output.
CHECK_BYTES = 64 * MIB
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS.update({"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40})


def parse_size(text: str) -> int:
    """Bytes of ``"32GiB"``, ``"500MB"`` or ``"1000000"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*", text.upper())
    if not match or match.group(2) not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (write e.g. 32GiB or 500MB)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


# The checkpoint -----------------------------------------------------------------------------------------------


def plan(total: int) -> list:
    """``[(name, dtype name, shape)]`` of about ``total`` bytes: small tensors, 16 MiB ones, one with rows larger
    than ``PART_BYTES``, one of 4 GiB (a quarter of the total below 16 GiB) and ~1 GiB ones (an eighth of the
    total below 8 GiB) for the rest, every fourth bfloat16."""
    from fastckpt.conversion import PART_BYTES

    tensors = [("global_step", "int64", ())]
    tensors += [(f"norm_{k}/gamma", "float32", (4096,)) for k in range(4)]
    tensors += [(f"dense_{k:02d}/kernel", "float32", (1024, 4096)) for k in range(8)]
    wide = 3 * PART_BYTES * 3 // 2  # 3 rows of 1.5 x PART_BYTES: each row read alone
    tensors.append(("wide_rows/kernel", "float32", (3, wide // 3 // 4)))
    cols = 16384
    huge_rows = min(4 * GIB, max(2 * PART_BYTES, total // 4)) // (cols * 4)
    tensors.append(("huge/embedding", "float32", (huge_rows, cols)))
    unit_rows = min(GIB, max(2 * PART_BYTES, total // 8)) // (cols * 4)
    used = sum(nbytes(dtype, shape) for _, dtype, shape in tensors)
    layer = 0
    while total - used >= PART_BYTES:
        dtype = "bfloat16" if layer % 4 == 1 else "float32"
        row_bytes = cols * (2 if dtype == "bfloat16" else 4)
        rows = min(unit_rows * 4 // (row_bytes // cols), (total - used) // row_bytes)
        tensors.append((f"layer_{layer:03d}/kernel", dtype, (rows, cols)))
        used += rows * row_bytes
        layer += 1
    return tensors


def nbytes(dtype: str, shape: tuple) -> int:
    return int(np.prod(shape, dtype=np.int64)) * (2 if dtype == "bfloat16" else 8 if dtype == "int64" else 4)


def numpy_dtype(dtype: str) -> np.dtype:
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def make_tensor(seed: int, dtype: str, shape: tuple) -> np.ndarray:
    """A tensor of normal floats (integers for int64) whose blocks all differ: block ``c`` is the seeded block
    rotated by ``c * 4099`` and its low mantissa bits flipped by a pattern of ``c``; the same on every call."""
    out = np.empty(shape, numpy_dtype(dtype))
    if dtype == "int64":
        out[...] = np.arange(out.size).reshape(shape) + seed
        return out
    rng = np.random.default_rng(seed)
    normal = rng.standard_normal(BLOCK, dtype=np.float32)
    if dtype == "bfloat16":
        base, bits, mask = normal.astype(numpy_dtype("bfloat16")).view(np.uint16), np.uint16, 0x7F
    else:
        base, bits, mask = normal.view(np.uint32), np.uint32, 0x7FFFFF
    flat = out.reshape(-1).view(bits)
    for c, start in enumerate(range(0, flat.size, BLOCK)):
        dst = flat[start : start + BLOCK]
        flip = bits(((c + 1) * 2654435761) & mask)
        shift = c * 4099 % BLOCK
        head = min(dst.size, BLOCK - shift)
        np.bitwise_xor(base[shift : shift + head], flip, out=dst[:head])
        if head < dst.size:
            np.bitwise_xor(base[: dst.size - head], flip, out=dst[head:])
    return out


def digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def write_checkpoint(prefix: str, tensors: list) -> dict:
    """Writes the checkpoint one ``add`` at a time; returns the tensors' hashes and what the writing showed."""
    import fastckpt

    data = prefix + ".data-00000-of-00001"
    digests, rss_after, on_disk = {}, [], []
    rss_before = status_kib("VmRSS") * 1024
    started = time.perf_counter()
    with fastckpt.CheckpointWriter(prefix) as writer:
        for seed, (name, dtype, shape) in enumerate(tensors):
            array = make_tensor(seed, dtype, shape)
            digests[name] = digest(array)
            writer.add(name, array)
            del array
            rss_after.append(status_kib("VmRSS") * 1024)
            # The data file is written under a temporary name beside its target until finish().
            on_disk.append(sum(p.stat().st_size for p in Path(data).parent.glob(Path(data).name + "*")))
            if len(rss_after) % 8 == 0 or nbytes(dtype, shape) >= GIB:
                print(
                    f"  added {name} ({nbytes(dtype, shape) / GIB:.2f} GiB): data file {on_disk[-1] / GIB:.2f} GiB, "
                    f"RSS {rss_after[-1] / MIB:.0f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
    seconds = time.perf_counter() - started
    total = sum(nbytes(dtype, shape) for _, dtype, shape in tensors)
    largest = max(nbytes(dtype, shape) for _, dtype, shape in tensors)
    # Bytes on disk after each add against the tensor bytes added so far: what the writer has not yet written.
    added = np.cumsum([nbytes(dtype, shape) for _, dtype, shape in tensors])
    return {
        "digests": digests,
        "seconds": seconds,
        "bytes": total,
        "largest": largest,
        "rss_before": rss_before,
        "rss_after_max": max(rss_after),
        "hwm": status_kib("VmHWM") * 1024,
        "unwritten_max": int(max(a - d for a, d in zip(added, on_disk))),
        "data_file": os.path.getsize(data),
    }


# Measuring a child process ------------------------------------------------------------------------------------

STATUS_FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")


def _status(pid: int) -> dict:
    try:
        with open(f"/proc/{pid}/status") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in STATUS_FIELDS:
            out[key] = int(value.split()[0]) * 1024
    return out


def run_child(command: list, watch_dir: str, min_free: int, quiet: bool = True) -> dict:
    """Runs ``command``; its wall time, CPU seconds, page faults, ``ru_maxrss`` and the peaks of its status
    fields sampled every 20 ms, then the time of a ``sync``. Its stderr is shown only if it fails, unless not
    ``quiet``. Killed, and an error raised, if free space under ``watch_dir`` falls below half of ``min_free``.

    ``ru_maxrss`` counts the memory of the process that spawned the command too (the forked copy's high-water
    mark is kept across exec), so the run's own process holds no tensors; VmHWM, the last sample of it, is the
    command's own."""
    peaks = dict.fromkeys(STATUS_FIELDS, 0)
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors if quiet else None)
        try:
            while True:
                for key, value in _status(child.pid).items():
                    peaks[key] = max(peaks[key], value)
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                if shutil.disk_usage(watch_dir).free < min_free // 2:
                    child.kill()
                    raise RuntimeError(f"{shlex.join(command)}: free disk space below {min_free / 2e9:.1f} GB")
                time.sleep(0.02)
        except BaseException:
            if child.returncode is None:
                child.kill()
                child.wait()
            raise
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{shlex.join(command)} exited with {child.returncode}:\n{message}")
    return {
        "seconds": seconds,
        "sync": timed_sync(),
        "user": usage.ru_utime,
        "system": usage.ru_stime,
        "cpu": usage.ru_utime + usage.ru_stime,
        "minor_faults": usage.ru_minflt,
        "major_faults": usage.ru_majflt,
        "maxrss": usage.ru_maxrss * 1024,
        **{"peak_" + key: value for key, value in peaks.items()},
    }


def timed_sync() -> float:
    started = time.perf_counter()
    os.sync()
    return time.perf_counter() - started


def cached_bytes(path: str) -> "int | None":
    """Bytes of ``path`` in the page cache (util-linux ``fincore``), or None where it cannot be told."""
    try:
        done = subprocess.run(["fincore", "-b", "-n", "-o", "RES", path], capture_output=True, text=True)
        return int(done.stdout.split()[0]) if done.returncode == 0 else None
    except (OSError, ValueError, IndexError):
        return None


def cold(paths: list) -> dict:
    """Syncs and drops ``paths`` from the page cache; the bytes of them still cached (None: unknown)."""
    drop_cache(paths)
    left = [cached_bytes(p) for p in paths]
    return {"cached_after_drop": None if None in left else sum(left)}


# Checking the output ------------------------------------------------------------------------------------------

SAFETENSORS_DTYPES = {"float32": "F32", "bfloat16": "BF16", "int64": "I64"}


def check_file(path: str, expected: dict, digests: dict) -> list:
    """Problems with the .safetensors file ``path`` against ``expected`` (``{name: (dtype, shape)}``, the tensors
    it should hold) and the source's hashes; an empty list if none."""
    import ml_dtypes  # noqa: F401 - safetensors' numpy arrays of bfloat16 need its dtype registered
    from safetensors import safe_open

    problems = []
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    if sorted(header) != sorted(expected):
        missing, extra = sorted(set(expected) - set(header)), sorted(set(header) - set(expected))
        problems.append(f"{path}: names differ (missing {missing[:5]}, unexpected {extra[:5]})")
    end = 0
    for name, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
        begin, stop = entry["data_offsets"]
        if begin != end:
            problems.append(f"{path}: {name} starts at {begin}, not {end} where the previous tensor ends")
        end = stop
        if name in expected:
            dtype, shape = expected[name]
            if entry["dtype"] != SAFETENSORS_DTYPES[dtype] or tuple(entry["shape"]) != tuple(shape):
                problems.append(f"{path}: {name} is {entry['dtype']} {entry['shape']}, not {dtype} {list(shape)}")
            if stop - begin != nbytes(dtype, shape):
                problems.append(f"{path}: {name} holds {stop - begin} bytes, not {nbytes(dtype, shape)}")
    if 8 + length + end != os.path.getsize(path):
        problems.append(f"{path}: the tensors end at {8 + length + end}, the file at {os.path.getsize(path)}")
    # Tensors in file order, one at a time, large ones in slices of rows.
    with safe_open(path, "np") as f:
        for name, _ in sorted(header.items(), key=lambda item: item[1]["data_offsets"]):
            if name not in expected:
                continue
            dtype, shape = expected[name]
            hasher, dtypes = hashlib.sha1(), set()
            if nbytes(dtype, shape) <= CHECK_BYTES or len(shape) == 0:
                parts = [f.get_tensor(name)]
            else:
                part = f.get_slice(name)
                rows = max(1, CHECK_BYTES // (nbytes(dtype, shape) // shape[0]))
                parts = (part[first : min(first + rows, shape[0])] for first in range(0, shape[0], rows))
            for value in parts:
                hasher.update(np.ascontiguousarray(value).reshape(-1).view(np.uint8))
                dtypes.add(value.dtype)
                del value
            if dtypes != {numpy_dtype(dtype)}:
                problems.append(f"{path}: {name} reads back as {sorted(map(str, dtypes))}, not {dtype}")
            if hasher.hexdigest() != digests[name]:
                problems.append(f"{path}: {name}'s bytes differ from the checkpoint's")
    return problems


def check_output(out: str, expected: dict, digests: dict) -> "tuple[list, int]":
    """Problems with a conversion's output (one .safetensors file, or a directory of shards with its index),
    and how many files it has."""
    if not os.path.isdir(out):
        return check_file(out, expected, digests), 1
    index_path = os.path.join(out, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        return check_file(os.path.join(out, "model.safetensors"), expected, digests), 1
    index = json.loads(Path(index_path).read_text())
    weight_map = index["weight_map"]
    problems = []
    if sorted(weight_map) != sorted(expected):
        problems.append(f"{index_path}: the weight map's names differ from the checkpoint's")
    total = sum(nbytes(*expected[name]) for name in weight_map if name in expected)
    if index["metadata"]["total_size"] != total:
        problems.append(f"{index_path}: total_size {index['metadata']['total_size']}, not {total}")
    shards = sorted(set(weight_map.values()))
    for shard in shards:
        held = {name: expected[name] for name, file in weight_map.items() if file == shard and name in expected}
        problems += check_file(os.path.join(out, shard), held, digests)
    return problems, len(shards)


# The run ------------------------------------------------------------------------------------------------------


def machine(args) -> str:
    device = subprocess.run(["df", "--output=source,fstype", str(args.workdir)], capture_output=True, text=True)
    disk = " ".join(device.stdout.split()[-2:]) if device.returncode == 0 else "unknown disk"
    swap = "" if Path("/proc/swaps").read_text().count("\n") > 1 else ", no swap"
    return common.machine(
        ["fastckpt", "numpy", "ml_dtypes", "safetensors"], args.keep_pages, f"{swap}; files on {disk}"
    )


def worker(args) -> None:
    """The steps that hold tensors, each in a process of its own: ``write`` the checkpoint, ``check`` an output;
    what they find goes to a JSON file in the run's directory."""
    directory = str(args.dir)
    if args.worker == "write":
        tensors = plan(args.size)
        written = write_checkpoint(os.path.join(directory, "model.ckpt"), tensors)
        Path(directory, "written.json").write_text(json.dumps({"tensors": tensors, **written}))
    else:
        written = json.loads(Path(directory, "written.json").read_text())
        expected = {name: (dtype, tuple(shape)) for name, dtype, shape in written["tensors"]}
        problems, files = check_output(str(args.target), expected, written["digests"])
        Path(directory, "check.json").write_text(json.dumps({"problems": problems, "files": files}))


def run(args, directory: str) -> dict:
    prefix = os.path.join(directory, "model.ckpt")
    data = prefix + ".data-00000-of-00001"
    this = [sys.executable, __file__, "--dir", directory, "--worker"]
    print(f"writing {len(plan(args.size))} tensors into {prefix}", file=sys.stderr, flush=True)
    write = run_child(this + ["write", "--size", str(args.size)], directory, args.min_free, quiet=False)
    written = json.loads(Path(directory, "written.json").read_text())
    results = {"written": written, "write": write, "tensors": written["tensors"], "problems": []}
    convert = [sys.executable, "-m", "fastckpt", "convert"]
    # What the interpreter and the imports of `fastckpt convert` hold before reading anything.
    results["baseline"] = run_child(
        [sys.executable, "-c", "import fastckpt.cli, fastckpt.conversion, ml_dtypes"], directory, args.min_free
    )

    conversions = [("safetensors", os.path.join(directory, "out.safetensors"), [])]
    if args.max_shard_size:
        conversions.append(
            ("sharded", os.path.join(directory, "out-sharded"), ["--max-shard-size", args.max_shard_size])
        )
    for label, out, options in conversions:
        results[label + "_cache"] = cold([prefix + ".index", data])
        print(f"converting to {out}", file=sys.stderr, flush=True)
        results[label] = run_child(convert + options + [prefix, out], directory, args.min_free)
        print(
            f"  {results[label]['seconds']:.1f} s, VmHWM {results[label]['peak_VmHWM'] / MIB:.0f} MiB; checking",
            file=sys.stderr,
            flush=True,
        )
        check = run_child(this + ["check", "--target", out], directory, args.min_free, quiet=False)
        found = json.loads(Path(directory, "check.json").read_text())
        results[label].update(check=check, files=found["files"], problems=len(found["problems"]))
        results["problems"] += found["problems"]
        shutil.rmtree(out) if os.path.isdir(out) else os.remove(out)

    copy = os.path.join(directory, "copy.data")
    results["cp_cache"] = cold([data])
    print(f"copying {data}", file=sys.stderr, flush=True)
    results["cp"] = run_child(["cp", data, copy], directory, args.min_free)
    if os.path.getsize(copy) != os.path.getsize(data):
        results["problems"].append(f"cp: {copy} has {os.path.getsize(copy)} bytes, not {os.path.getsize(data)}")
    os.remove(copy)
    results["parent_hwm"] = status_kib("VmHWM") * 1024
    return results


# The report ---------------------------------------------------------------------------------------------------


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def _mib(n: float) -> str:
    return f"{n / MIB:.0f} MiB"


def report(args, results: dict, command: str) -> str:
    from fastckpt.conversion import PART_BYTES

    written, tensors = results["written"], results["tensors"]
    total = written["bytes"]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    bf16 = sum(nbytes(d, s) for _, d, s in tensors if d == "bfloat16")
    in_parts = sum(1 for _, d, s in tensors if nbytes(d, s) > PART_BYTES)
    cached = [results[k]["cached_after_drop"] for k in results if k.endswith("_cache")]
    convert, cp = results["safetensors"], results["cp"]
    lines = [
        SECTION,
        "",
        f"Machine: {machine(args)}.",
        "",
        f"`{command}`: a checkpoint of {_gib(total)} of tensor data ({total / memory:.2f} times this machine's "
        f"memory; {len(tensors)} tensors, {bf16 / total:.0%} of the bytes bfloat16, the rest float32 but for an int64 "
        f"scalar; the largest {_gib(written['largest'])}; {in_parts} larger than `PART_BYTES` "
        f"({PART_BYTES // MIB} MiB), read in parts of rows, one of them with rows of "
        f"{1.5 * PART_BYTES / MIB:.0f} MiB, each read alone) written by `fastckpt.CheckpointWriter` one `add` at a "
        "time, then converted by `python -m fastckpt convert` in a child process, the checkpoint's pages dropped "
        "from the page cache first (posix_fadvise; "
        + (
            "how much stayed cached is unknown"
            if None in cached
            else f"at most {max(cached) / MIB:.0f} MiB stayed cached, by `fincore`"
        )
        + "). Each step is a process of its own, timed from outside: wall time, interpreter start and imports "
        "included; + sync is the `sync` after it (its dirty pages written back). Peak RSS is the process's VmHWM "
        "(/proc/<pid>/status, sampled every 20 ms; `ru_maxrss` from os.wait4 agrees where it exceeds the spawning "
        f"process's {_mib(results['parent_hwm'])}); RssAnon and RssFile are the peaks of the samples (its own "
        'memory, and mapped file pages). The output is read back (`safetensors.safe_open(path, "np")`, one '
        "tensor at a time, large ones in slices of rows) and every tensor's SHA-1 compared with the source's; "
        "`cp` of the data file, its pages dropped first, is the physical limit. GB/s are of the tensor bytes "
        "over time + sync.",
        "",
        "| target | aim | this run |",
        "|---|---:|---:|",
        f"| peak RSS of the conversion | < 1 GiB | {_mib(convert['peak_VmHWM'])} |",
        f"| conversion vs `cp` of the data file (time + sync) | >= 0.8 | "
        f"{(cp['seconds'] + cp['sync']) / (convert['seconds'] + convert['sync']):.2f} |",
        "| output identical to the checkpoint (names, dtypes, shapes, bytes) | yes | "
        + ("yes" if not results["problems"] else f"no: {len(results['problems'])} problems")
        + " |",
        "",
        "| step | time | + sync | GB/s | CPU s (user + system) | minor faults | peak RSS | RssAnon | RssFile | "
        "ru_maxrss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    steps = [("write", "write the checkpoint (`CheckpointWriter.add`; data made and hashed)")]
    steps.append(("safetensors", "`fastckpt convert` to one .safetensors"))
    if "sharded" in results:
        steps.append(
            (
                "sharded",
                f"`fastckpt convert --max-shard-size {args.max_shard_size}` ({results['sharded']['files']} files)",
            )
        )
    steps += [
        ("cp", "`cp` of the data file"),
        ("baseline", "the imports of `fastckpt convert` alone"),
    ]
    for key, label in steps:
        r = results[key]
        speed = "-" if key == "baseline" else f"{total / (r['seconds'] + r['sync']) / 1e9:.2f}"
        lines.append(
            f"| {label} | {r['seconds']:.1f} s | {r['sync']:.1f} s | {speed} | {r['cpu']:.1f} ({r['user']:.1f} + "
            f"{r['system']:.1f}) | {r['minor_faults']:,} | {_mib(r['peak_VmHWM'])} | {_mib(r['peak_RssAnon'])} | "
            f"{_mib(r['peak_RssFile'])} | {_mib(r['maxrss'])} |"
        )
    checks = [results[k]["check"] for k in ("safetensors", "sharded") if k in results]
    lines += [
        "",
        f"Writing: the writer's resident set after each `add` peaked at {_mib(written['rss_after_max'])} "
        f"({_mib(written['rss_before'])} before the first; its high-water mark {_mib(written['hwm'])}, about the "
        f"largest tensor, {_gib(written['largest'])}, made in memory before its `add`), and after every `add` the "
        f"data file held all but {_mib(written['unwritten_max'])} of the bytes added so far: each tensor is "
        "written as it is added. Reading the output back and hashing it took "
        + ", ".join(f"{c['seconds']:.0f} s (peak RSS {_mib(c['peak_VmHWM'])})" for c in checks)
        + ".",
    ]
    if results["problems"]:
        lines += ["", "Problems:", ""] + [f"- {p}" for p in results["problems"][:20]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, default=32 * GIB, help="bytes of tensor data (default 32GiB)")
    parser.add_argument("--max-shard-size", help="also convert into a directory of shards of this size (e.g. 5GB)")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()), help="where the files go (default: the temp dir)"
    )
    parser.add_argument(
        "--min-free", type=parse_size, default=10**10, help="disk space left free at the peak (default 10GB)"
    )
    parser.add_argument("--keep-pages", action="store_true", help="pause free page reporting (root; see PagesKept)")
    parser.add_argument(
        "--out", default=str(HERE.parent / "BENCHMARKS.md"), help="markdown file for the section, or - to print only"
    )
    parser.add_argument("--worker", choices=["write", "check"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    command = common.command_as_given(__file__, ("--out", "--workdir"))

    # The checkpoint, then the output or the copy beside it: twice the data, and the index and headers.
    free = shutil.disk_usage(args.workdir).free
    needed = 2 * args.size + 64 * MIB + args.min_free
    if free < needed:
        raise SystemExit(
            f"{args.workdir} has {free / 1e9:.1f} GB free; a {args.size / GIB:.1f} GiB run needs twice its size and "
            f"{args.min_free / 1e9:.0f} GB left free, {needed / 1e9:.1f} GB (try --size {(free - args.min_free) // 2 // GIB}GiB)"
        )
    # A SIGTERM ends the run as an interrupt does, so that its files are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    directory = tempfile.mkdtemp(prefix="fastckpt-larger-than-memory-", dir=args.workdir)
    try:
        with PagesKept(args.keep_pages):
            results = run(args, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    section = report(args, results, command)
    print(section)
    if args.out != "-":
        replace_section(Path(args.out), SECTION, section)
        print(f"wrote the {SECTION[3:]} section of {args.out}", file=sys.stderr)
    if results["problems"]:
        print("\n".join(results["problems"]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
