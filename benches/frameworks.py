"""fastckpt for PyTorch users: loading into torch, filling a state dict and converting to .safetensors, beside
safetensors, TensorFlow's reader and plain copies of the same bytes, in one run.

    python benches/frameworks.py                  # 1 GiB, 5 rounds, writes the "Frameworks" section of BENCHMARKS.md
    python benches/frameworks.py --size-gib 0.25 --rounds 1 --out -     # a quick look, printed only
    python benches/frameworks.py --cold           # every file a contender reads dropped from the page cache first
    sudo python benches/frameworks.py --keep-pages   # on a VM that hands freed memory back to its host (PagesKept)

Needs torch, safetensors and tensorflow(-cpu) besides fastckpt. The model (float32 and bfloat16 tensors of a
BERT-like encoder: a bfloat16 word-embedding table, float32 attention and feed-forward kernels but for a bfloat16
attention output, biases and layer norms) is written once into a temporary directory (or --workdir, kept for the
next run) by ``fastckpt.CheckpointWriter``, and the same tensors as a .safetensors file by
``safetensors.numpy.save_file``. Contenders:

* load, into new torch tensors: ``fastckpt.torch.load`` (checksums verified); ``safetensors.torch.load_file``,
  which maps the file and reads nothing until a tensor is touched, so also ``load_file`` followed by a read of
  one byte in every page (what using the tensors first costs), and ``fastckpt.torch.load(mmap=True)`` (maps
  the data file in the same way; no checksums) with and without that read; and ``safetensors.torch.load`` of
  the file's bytes (the eager way, tensors in the process's own memory as fastckpt's are); TensorFlow's reader
  (``tf.train.load_checkpoint``, ``get_tensor`` of every tensor, ``torch.from_numpy``, bfloat16 through int16); and
  fastckpt's numpy ``get_tensors`` for reference;
* load into existing tensors: ``fastckpt.torch.load_into`` a state dict of tensors already allocated and written
  to, against ``torch.Tensor.copy_`` into the same kind of state dict from tensors already in memory (a memcpy,
  on torch's threads), and ``readinto`` of the data file into touched memory (the kernel's copy out of the page
  cache, which any read of the file pays: the ceiling of a load from the file);
* convert the checkpoint to .safetensors: ``fastckpt.convert``; TensorFlow's reader and
  ``safetensors.numpy.save_file``; ``shutil.copyfile`` of the checkpoint's index and data file (sendfile: the
  same bytes copied in the kernel, the ceiling). Nothing is synced to disk (as none of them does).

Every measurement runs in a fresh process: it imports what it needs, builds what is not measured (the source of
the copy, the state dicts), removes the previous round's output and syncs, touches and frees three times the
data (see ``back_memory`` in common.py: so that what it allocates is memory the VM's host has backed), then
times the operation alone and its CPU seconds (all threads), and reads the peak of its resident set (VmHWM in
/proc/self/status, reset just before with /proc/self/clear_refs). Reads are warm (the files are read once
before every round) unless --cold drops the pages of the files each contender reads (posix_fadvise DONTNEED).
Every contender runs once untimed, its result checked against the safetensors file; then --rounds rounds, the
contenders of each group alternating in an order rotated from round to round. Best and median are reported,
with ratios of best to best and median to median. Benchmarks measure; no test asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
import numpy as np
from common import PagesKept, back_memory, drop_cache, replace_section, status_kib

GIB = 1 << 30
MIB = 1 << 20
HERE = Path(__file__).resolve().parent
SECTION = "## Frameworks"
PAGE = os.sysconf("SC_PAGE_SIZE")

# (group, title, the contender the others are compared with, [(contender, label)]).
GROUPS = [
    (
        "load",
        "load into new torch tensors",
        "fastckpt-torch-load",
        [
            ("fastckpt-torch-load", "`fastckpt.torch.load`"),
            ("fastckpt-torch-load-mmap", "`fastckpt.torch.load(mmap=True)` (mapped, nothing read)"),
            ("fastckpt-torch-load-mmap-touched", "`fastckpt.torch.load(mmap=True)`, then a byte of every page read"),
            ("safetensors-load-file", "`safetensors.torch.load_file` (mapped, nothing read)"),
            ("safetensors-load-file-touched", "`safetensors.torch.load_file`, then a byte of every page read"),
            ("safetensors-load-bytes", "`safetensors.torch.load` of the file's bytes (`read()`)"),
            ("tensorflow-from-numpy", "`tf.train.load_checkpoint`, `get_tensor`, `torch.from_numpy`"),
            ("fastckpt-get-tensors", "`fastckpt.load_checkpoint(...).get_tensors()` (numpy arrays)"),
        ],
    ),
    (
        "load_into",
        "load into existing, touched torch tensors",
        "fastckpt-torch-load-into",
        [
            ("fastckpt-torch-load-into", "`fastckpt.torch.load_into` a state dict"),
            ("torch-copy", "`torch.Tensor.copy_` from tensors in memory"),
            ("read-file", "`readinto` of the data file into touched memory (one thread, nothing checked)"),
        ],
    ),
    (
        "convert",
        "convert the checkpoint to .safetensors",
        "fastckpt-convert",
        [
            ("fastckpt-convert", "`fastckpt.convert`"),
            ("tensorflow-save-file", "`tf.train.load_checkpoint`, `get_tensor`, `safetensors.numpy.save_file`"),
            ("copyfile", "`shutil.copyfile` of the index and data file"),
        ],
    ),
]
LABELS = {name: label for _, _, _, members in GROUPS for name, label in members}
# (label, ours, theirs, aim, aim as written): the ratio is theirs' time over ours.
TARGETS = [
    (
        "`fastckpt.torch.load` vs `safetensors.torch.load_file`",
        "fastckpt-torch-load",
        "safetensors-load-file",
        1,
        ">= 1x",
    ),
    (
        "`fastckpt.torch.load` vs `load_file` + every page read",
        "fastckpt-torch-load",
        "safetensors-load-file-touched",
        1,
        ">= 1x",
    ),
    (
        "`fastckpt.torch.load` vs `safetensors.torch.load` of the bytes",
        "fastckpt-torch-load",
        "safetensors-load-bytes",
        1,
        ">= 1x",
    ),
    ("`fastckpt.torch.load` vs TensorFlow's reader", "fastckpt-torch-load", "tensorflow-from-numpy", 3, ">= 3x"),
    (
        "`load(mmap=True)` vs `safetensors.torch.load_file`",
        "fastckpt-torch-load-mmap",
        "safetensors-load-file",
        1,
        ">= 1x",
    ),
    (
        "`load(mmap=True)` vs `load_file`, both + every page read",
        "fastckpt-torch-load-mmap-touched",
        "safetensors-load-file-touched",
        1,
        ">= 1x",
    ),
    ("`load_into` vs a `copy_` into the same memory", "fastckpt-torch-load-into", "torch-copy", 0.9, ">= 0.9"),
    ("`load_into` vs `readinto` of the data file", "fastckpt-torch-load-into", "read-file", 1, ">= 1x"),
    ("`convert` vs TensorFlow's reader + `save_file`", "fastckpt-convert", "tensorflow-save-file", 2, ">= 2x"),
    ("`convert` vs `shutil.copyfile`", "fastckpt-convert", "copyfile", 0.8, ">= 0.8"),
]


# The model ----------------------------------------------------------------------------------------------------


def model_tensors(size_gib: float) -> dict:
    """A BERT-like encoder of about ``size_gib`` GiB: float32, with bfloat16 word embeddings and attention output
    kernels; the same on every call (generated from a seed)."""
    import ml_dtypes

    rng = np.random.default_rng(0)
    total = int(size_gib * GIB)
    hidden, ffn, positions = 1024, 4096, 512

    def f32(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    def bf16(*shape):
        return f32(*shape).astype(ml_dtypes.bfloat16)

    layer_bytes = (3 * hidden * hidden + 2 * hidden * ffn) * 4 + hidden * hidden * 2 + (9 * hidden + ffn) * 4
    layers = max(1, int(total * 0.9) // layer_bytes)
    # The word-embedding table takes what the layers leave, in rows of 64.
    vocab = max(64, (total - layers * layer_bytes - positions * hidden * 4) // (hidden * 2) // 64 * 64)
    tensors = {
        "bert/embeddings/word_embeddings": bf16(vocab, hidden),
        "bert/embeddings/position_embeddings": f32(positions, hidden),
        "bert/embeddings/LayerNorm/gamma": np.ones(hidden, np.float32),
        "bert/embeddings/LayerNorm/beta": np.zeros(hidden, np.float32),
    }
    for layer in range(layers):
        scope = f"bert/encoder/layer_{layer}"
        for part in ("query", "key", "value"):
            tensors[f"{scope}/attention/self/{part}/kernel"] = f32(hidden, hidden)
            tensors[f"{scope}/attention/self/{part}/bias"] = f32(hidden)
        tensors[f"{scope}/attention/output/dense/kernel"] = bf16(hidden, hidden)
        tensors[f"{scope}/attention/output/dense/bias"] = f32(hidden)
        tensors[f"{scope}/attention/output/LayerNorm/gamma"] = np.ones(hidden, np.float32)
        tensors[f"{scope}/attention/output/LayerNorm/beta"] = np.zeros(hidden, np.float32)
        tensors[f"{scope}/intermediate/dense/kernel"] = f32(hidden, ffn)
        tensors[f"{scope}/intermediate/dense/bias"] = f32(ffn)
        tensors[f"{scope}/output/dense/kernel"] = f32(ffn, hidden)
        tensors[f"{scope}/output/dense/bias"] = f32(hidden)
        tensors[f"{scope}/output/LayerNorm/gamma"] = np.ones(hidden, np.float32)
        tensors[f"{scope}/output/LayerNorm/beta"] = np.zeros(hidden, np.float32)
    return tensors


def paths_in(workdir: Path) -> dict:
    ckpt = workdir / "model" / "model.ckpt"
    return {
        "ckpt": str(ckpt),
        "index": str(ckpt) + ".index",
        "data": str(ckpt) + ".data-00000-of-00001",
        "safetensors": str(workdir / "model" / "model.safetensors"),
        "out": str(workdir / "out"),
        "manifest": str(workdir / "model" / "manifest.json"),
    }


def prepare(workdir: Path, size_gib: float) -> dict:
    """Writes the checkpoint and the safetensors file once (again if --size-gib changed); returns the manifest:
    the tensors' count and bytes, and those in bfloat16."""
    import fastckpt
    import safetensors.numpy

    paths = paths_in(workdir)
    manifest = Path(paths["manifest"])
    if manifest.exists():
        known = json.loads(manifest.read_text())
        if known["size_gib"] == size_gib:
            return known
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.unlink(missing_ok=True)
    tensors = model_tensors(size_gib)
    with fastckpt.CheckpointWriter(paths["ckpt"]) as writer:
        writer.add_tensors(tensors)
    safetensors.numpy.save_file(tensors, paths["safetensors"])
    known = {
        "size_gib": size_gib,
        "tensors": len(tensors),
        "bytes": sum(v.nbytes for v in tensors.values()),
        "bfloat16_bytes": sum(v.nbytes for v in tensors.values() if v.dtype.name == "bfloat16"),
        "largest": max(v.nbytes for v in tensors.values()),
    }
    manifest.write_text(json.dumps(known))
    return known


# Workers: each measurement in its own process -----------------------------------------------------------------


def files_read(paths: dict, contender: str) -> list:
    """The files a contender reads during its operation (none for the copy, whose source is in memory)."""
    if contender == "torch-copy":
        return []
    if contender == "read-file":
        return [paths["data"]]
    if contender.startswith("safetensors"):
        return [paths["safetensors"]]
    return [paths["index"], paths["data"]]


def worker(contender: str, workdir: Path, cold: bool, check: bool) -> dict:
    """Runs one measurement; returns its seconds, CPU seconds, peak memory and the seconds its imports took."""
    paths = paths_in(workdir)
    manifest = json.loads(Path(paths["manifest"]).read_text())
    # What the operation needs is imported first and timed (shown apart): fastckpt's numpy arrays of bfloat16
    # are ml_dtypes' type, which it imports on first use (TensorFlow imports it itself; fastckpt.torch needs
    # none).
    started = time.perf_counter()
    tf = None
    if contender.startswith("tensorflow"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf
    if contender.startswith("fastckpt"):
        import fastckpt
        import fastckpt.torch
    if contender in ("fastckpt-get-tensors", "fastckpt-convert"):  # numpy arrays of bfloat16
        import ml_dtypes  # noqa: F401
    if contender not in ("copyfile", "read-file"):
        import torch
    if contender.startswith("safetensors"):
        import safetensors.torch
    if contender == "tensorflow-save-file":
        import safetensors.numpy
    imports = time.perf_counter() - started
    # What the setup and the check need besides.
    import fastckpt
    import fastckpt.torch
    import safetensors.numpy
    import safetensors.torch
    import torch

    reader = fastckpt.load_checkpoint(paths["ckpt"])
    dtypes = {k: fastckpt.torch.torch_dtype(d) for k, d in reader.get_variable_to_dtype_map().items()}
    shapes = reader.get_variable_to_shape_map()
    del reader
    out = os.path.join(paths["out"], contender)
    os.makedirs(paths["out"], exist_ok=True)
    # The previous round's output is removed, and dirty pages flushed, before the clock starts.
    for previous in Path(paths["out"]).glob(contender + ".*"):
        previous.unlink()
    os.sync()
    if cold:
        drop_cache(files_read(paths, contender))
    back_memory(3 * manifest["bytes"])

    # What is not measured: the state dicts to fill, and the copy's source, allocated and written to.
    state = source = None
    if contender == "torch-copy":
        source = fastckpt.torch.load(paths["ckpt"])
    if contender in ("torch-copy", "fastckpt-torch-load-into"):
        state = {key: torch.empty(tuple(shapes[key]), dtype=dtypes[key]).fill_(0) for key in sorted(shapes)}
    if contender == "read-file":
        state = np.ones(os.path.getsize(paths["data"]), np.uint8)

    def touch(tensors):
        for tensor in tensors.values():  # one byte of every page of every tensor
            int(tensor.reshape(-1).view(torch.uint8)[::PAGE].max())
        return tensors

    def run():
        if contender == "fastckpt-torch-load":
            return fastckpt.torch.load(paths["ckpt"])
        if contender == "fastckpt-torch-load-mmap":
            return fastckpt.torch.load(paths["ckpt"], mmap=True)
        if contender == "fastckpt-torch-load-mmap-touched":
            return touch(fastckpt.torch.load(paths["ckpt"], mmap=True))
        if contender == "fastckpt-get-tensors":
            return fastckpt.load_checkpoint(paths["ckpt"]).get_tensors()
        if contender == "safetensors-load-file":
            return safetensors.torch.load_file(paths["safetensors"])
        if contender == "safetensors-load-file-touched":
            return touch(safetensors.torch.load_file(paths["safetensors"]))
        if contender == "safetensors-load-bytes":
            with open(paths["safetensors"], "rb") as f:
                return safetensors.torch.load(f.read())
        if contender == "tensorflow-from-numpy":
            tf_reader = tf.train.load_checkpoint(paths["ckpt"])
            return {
                name: _to_torch(tf_reader.get_tensor(name), torch) for name in tf_reader.get_variable_to_shape_map()
            }
        if contender == "fastckpt-torch-load-into":
            fastckpt.torch.load_into(state, paths["ckpt"])
            return state
        if contender == "torch-copy":
            for name, tensor in state.items():
                tensor.copy_(source[name])
            return state
        if contender == "read-file":
            with open(paths["data"], "rb", buffering=0) as f:
                f.readinto(memoryview(state))
            return state
        if contender == "fastckpt-convert":
            fastckpt.convert(paths["ckpt"], out + ".safetensors")
            return out + ".safetensors"
        if contender == "tensorflow-save-file":
            tf_reader = tf.train.load_checkpoint(paths["ckpt"])
            arrays = {name: tf_reader.get_tensor(name) for name in tf_reader.get_variable_to_shape_map()}
            safetensors.numpy.save_file(arrays, out + ".safetensors")
            return out + ".safetensors"
        if contender == "copyfile":
            shutil.copyfile(paths["index"], out + ".index")
            shutil.copyfile(paths["data"], out + ".data-00000-of-00001")
            return out
        raise ValueError(f"unknown contender {contender}")

    with open("/proc/self/clear_refs", "w") as f:  # resets the peak resident size (VmHWM) to the current one
        f.write("5")
    before = status_kib("VmRSS")
    cpu = time.process_time()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = status_kib("VmHWM")
    if check:
        _check(contender, result, paths, torch, safetensors.torch)
    del result
    return {
        "seconds": seconds,
        "cpu": cpu,
        "rss_before": before * 1024,
        "peak": peak * 1024,
        "growth": (peak - before) * 1024,
        "imports": imports,
    }


def _check(contender: str, result, paths: dict, torch, safetensors_torch) -> None:
    """Raises unless the contender produced the model's tensors (bit for bit) or the checkpoint's bytes."""
    import filecmp

    if contender == "read-file":
        with open(paths["data"], "rb") as f:
            if f.read() != result.tobytes():
                raise AssertionError(f"{contender}: the bytes read differ from {paths['data']}")
        return
    if contender == "copyfile":
        for suffix, original in ((".index", paths["index"]), (".data-00000-of-00001", paths["data"])):
            if not filecmp.cmp(result + suffix, original, shallow=False):
                raise AssertionError(f"{contender}: {result + suffix} differs from {original}")
        return
    expected = safetensors_torch.load_file(paths["safetensors"])
    got = safetensors_torch.load_file(result) if isinstance(result, str) else result
    if sorted(got) != sorted(expected):
        raise AssertionError(f"{contender}: names differ from the safetensors file's")
    for name, want in expected.items():
        value = got[name] if isinstance(got[name], torch.Tensor) else _to_torch(got[name], torch)
        if value.dtype != want.dtype or value.shape != want.shape or not torch.equal(value, want):
            raise AssertionError(f"{contender}: tensor {name!r} differs from the safetensors file's")


def _to_torch(array: np.ndarray, torch):
    """``torch.from_numpy``, bfloat16 (which it does not know) through its bits."""
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


# The run ------------------------------------------------------------------------------------------------------


def measure(args, contender: str, check: bool = False) -> dict:
    command = [sys.executable, __file__, "--worker", contender, "--workdir", str(args.workdir)]
    command += ["--cold"] * args.cold + ["--check"] * check
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm(paths: dict) -> None:
    """Reads the model's files once, so that they are in the page cache."""
    buffer = bytearray(16 * MIB)
    for path in (paths["index"], paths["data"], paths["safetensors"]):
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def run(args, paths: dict) -> tuple:
    """{contender: [figures, ...]} over the rounds, and the 1-minute load average before each measurement."""
    results = {name: [] for name in LABELS}
    loads = []
    if not args.cold:
        warm(paths)
    for name in LABELS:  # untimed: files cached, results checked
        measure(args, name, check=not args.no_check)
        print(f"  checked {name}", file=sys.stderr, flush=True)
    for r in range(args.rounds):
        if not args.cold:
            warm(paths)
        for _, _, _, members in GROUPS:
            names = [name for name, _ in members]
            for name in names[r % len(names) :] + names[: r % len(names)]:
                loads.append(os.getloadavg()[0])
                figures = measure(args, name)
                results[name].append(figures)
                print(
                    f"  round {r + 1}: {name}: {figures['seconds']:.3f} s, load {loads[-1]:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
    return results, loads


# The report ---------------------------------------------------------------------------------------------------


def machine(args) -> str:
    packages = ["fastckpt", "numpy", "torch", "safetensors", ("tensorflow", "tensorflow-cpu", "tensorflow")]
    return common.machine(packages, args.keep_pages)


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.3f} s"


def _ratio(results, ours: str, theirs: str, pick) -> float:
    return pick(r["seconds"] for r in results[theirs]) / pick(r["seconds"] for r in results[ours])


def report(args, manifest: dict, results: dict, loads: list, command: str) -> str:
    nbytes = manifest["bytes"]
    # How noisy: the slowest round over the fastest, of the contenders that take long enough to mean something.
    spreads = {
        name: max(r["seconds"] for r in rs) / min(r["seconds"] for r in rs)
        for name, rs in results.items()
        if statistics.median(r["seconds"] for r in rs) >= 0.05
    }
    noisiest = max(spreads, key=spreads.get)
    lines = [
        SECTION,
        "",
        f"Machine: {machine(args)}.",
        "",
        f"`{command}`: a checkpoint of {nbytes / GIB:.2f} GiB of tensor data ({manifest['tensors']} tensors of a "
        f"BERT-like encoder, {manifest['bfloat16_bytes'] / nbytes:.0%} of the bytes bfloat16, the rest float32, the "
        f"largest {manifest['largest'] / MIB:.0f} MiB) written by `fastckpt.CheckpointWriter`, and the same tensors "
        "as a .safetensors file written by `safetensors.numpy.save_file`; "
        + ("cold: each contender's files dropped from the page cache first" if args.cold else "warm page cache")
        + f". Every contender once untimed (its result checked), then {args.rounds} round"
        + "s" * (args.rounds != 1)
        + " in which the contenders of each group alternate, each measurement a fresh process that times the "
        "operation alone (the state dicts or sources it needs are made first) after touching and freeing three times the data, so that what it allocates is memory the VM's "
        "host has backed. Ratios are the other contender's time over fastckpt's, best over best and median over "
        "median (above 1: fastckpt is faster). CPU seconds are the process's, all threads, during the operation "
        f"({os.cpu_count()} cores). Peak RSS is the process's high-water mark (VmHWM) during the operation, "
        "including what it held before; growth is that peak less the resident set before the operation, over "
        "the bytes of tensor data (the largest of the rounds). Imports is the time, in the same fresh process, "
        "of importing what the operation needs (fastckpt's contenders: fastckpt.torch, hence torch, and "
        "for numpy's bfloat16 arrays (get_tensors, convert) ml_dtypes, which fastckpt imports on its first one; TensorFlow's: tensorflow, which imports "
        "ml_dtypes itself; safetensors': torch and safetensors.torch), not in the operation's time.",
        "",
        f"Noise: 1-minute load average {min(loads):.2f}–{max(loads):.2f} (median {statistics.median(loads):.2f}) "
        f"at the start of the measurements; the slowest round of a contender taking 50 ms or more took up to "
        f"{spreads[noisiest]:.2f}x its fastest ({LABELS[noisiest]}), {statistics.median(spreads.values()):.2f}x "
        "for the median such contender. Range is a contender's fastest and slowest round over its median.",
        "",
        "| target | aim | best | median | met |",
        "|---|---:|---:|---:|---|",
    ]
    for label, ours, theirs, aim, written in TARGETS:
        best, median = _ratio(results, ours, theirs, min), _ratio(results, ours, theirs, statistics.median)
        met = "yes" if median >= aim else ("best round only" if best >= aim else "no")
        lines.append(f"| {label} | {written} | {best:.2f} | {median:.2f} | {met} |")
    for _, title, base, members in GROUPS:
        base_best = min(r["seconds"] for r in results[base])
        base_median = statistics.median(r["seconds"] for r in results[base])
        lines += [
            "",
            f"| {title} | best | median | range | GB/s (median) | time vs fastckpt's: best | median | CPU s | "
            "peak RSS | growth / data | imports |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, label in members:
            runs = results[name]
            times = [r["seconds"] for r in runs]
            best, median = min(times), statistics.median(times)
            lines.append(
                f"| {label} | {_time(best)} | {_time(median)} | {best / median:.2f}–{max(times) / median:.2f} | "
                f"{nbytes / median / 1e9:.2f} | "
                f"{best / base_best:.2f} | {median / base_median:.2f} | "
                f"{statistics.median(r['cpu'] for r in runs):.2f} | {max(r['peak'] for r in runs) / GIB:.2f} GiB | "
                f"{max(r['growth'] for r in runs) / nbytes:.2f} | {statistics.median(r['imports'] for r in runs):.2f} s |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the model (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of alternating contenders (default 5)")
    parser.add_argument("--cold", action="store_true", help="drop each contender's files from the page cache first")
    parser.add_argument(
        "--workdir", type=Path, help="where the model is written and kept (default: a temporary directory, removed)"
    )
    parser.add_argument("--keep-pages", action="store_true", help="pause free page reporting (root; see PagesKept)")
    parser.add_argument("--no-check", action="store_true", help="skip checking the untimed runs' results")
    parser.add_argument(
        "--out", default=str(HERE.parent / "BENCHMARKS.md"), help="markdown file for the section, or - to print only"
    )
    parser.add_argument("--worker", metavar="CONTENDER", help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.workdir, args.cold, args.check)))
        return
    # The command as given, but for where the model and the report go.
    command = common.command_as_given(__file__, ("--out", "--workdir"))

    temporary = args.workdir is None
    if temporary:
        args.workdir = Path(tempfile.mkdtemp(prefix="fastckpt-frameworks-"))
    try:
        manifest = prepare(args.workdir, args.size_gib)
        with PagesKept(args.keep_pages):
            results, loads = run(args, paths_in(args.workdir))
    finally:
        if temporary:
            shutil.rmtree(args.workdir, ignore_errors=True)
        else:
            shutil.rmtree(paths_in(args.workdir)["out"], ignore_errors=True)
    section = report(args, manifest, results, loads, command)
    print(section)
    if args.out != "-":
        replace_section(Path(args.out), SECTION, section)
        print(f"wrote the {SECTION[3:]} section of {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
