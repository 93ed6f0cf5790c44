"""fastckpt against TensorFlow, safetensors and the machine's limits, in one run.

    python benches/bench.py                      # 1 GiB checkpoints, 5 rounds, writes BENCHMARKS.md
    python benches/bench.py --size-gib 0.25 --rounds 1 --out -     # a quick look, printed only
    sudo python benches/bench.py --keep-pages    # on a VM that hands freed memory back to its host (see PagesKept)

Needs tensorflow-cpu and safetensors besides fastckpt. Scenarios (built once under --workdir):
transformer (large matrices and small vectors), small (10,000 small tensors), embedding (one table).
Every measurement runs in a fresh process (so peak memory is its own) on memory its host has backed, the
contenders alternate within each round on the same files, and reads run warm (page cache) and cold (pages
dropped with posix_fadvise DONTNEED). Benchmarks measure; no test asserts a timing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common
import numpy as np
from common import PagesKept, back_memory, drop_cache, status_kib

GIB = 1 << 30
HERE = Path(__file__).resolve().parent
# Free page reporting (virtio-balloon): free blocks of 2**order pages are handed back to the VM's host.


# Scenarios ---------------------------------------------------------------------------------------------------


def scenario_tensors(name: str, size_gib: float) -> dict:
    """The tensors of a scenario, the same on every call (generated from a seed)."""
    rng = np.random.default_rng(0)
    total = int(size_gib * GIB)
    tensors = {}
    if name == "transformer":
        hidden = 1024
        layer_bytes = 12 * hidden * hidden * 4
        for layer in range(max(1, total // layer_bytes)):
            scope = f"encoder/layer_{layer:03d}"
            for part in ("query", "key", "value", "output"):
                tensors[f"{scope}/attention/{part}/kernel"] = rng.standard_normal((hidden, hidden), dtype=np.float32)
                tensors[f"{scope}/attention/{part}/bias"] = rng.standard_normal(hidden, dtype=np.float32)
            tensors[f"{scope}/ffn/intermediate/kernel"] = rng.standard_normal((hidden, 4 * hidden), dtype=np.float32)
            tensors[f"{scope}/ffn/output/kernel"] = rng.standard_normal((4 * hidden, hidden), dtype=np.float32)
            for norm in ("attention_norm", "ffn_norm"):
                tensors[f"{scope}/{norm}/gamma"] = np.ones(hidden, np.float32)
                tensors[f"{scope}/{norm}/beta"] = np.zeros(hidden, np.float32)
    elif name == "small":
        for i in range(10_000):
            tensors[f"model/block_{i // 100:03d}/unit_{i % 100:02d}/weights"] = rng.standard_normal(
                64, dtype=np.float32
            )
    elif name == "embedding":
        dim = 1024
        tensors["embedding"] = rng.standard_normal((max(1, total // (dim * 4)), dim), dtype=np.float32)
    return tensors


def prepare(workdir: Path, name: str, size_gib: float) -> dict:
    """Writes the scenario's checkpoint and safetensors file once; returns their paths and sizes."""
    import fastckpt

    directory = workdir / f"{name}-{size_gib:g}"
    ckpt, safetensors_file = directory / "ckpt", directory / "model.safetensors"
    if not (directory / "done").exists():
        import safetensors.numpy

        directory.mkdir(parents=True, exist_ok=True)
        tensors = scenario_tensors(name, size_gib)
        with fastckpt.CheckpointWriter(str(ckpt)) as writer:
            for key, value in tensors.items():
                writer.add(key, value)
        safetensors.numpy.save_file(tensors, str(safetensors_file))
        (directory / "done").write_text("")
    data = str(ckpt) + ".data-00000-of-00001"
    return {"ckpt": str(ckpt), "safetensors": str(safetensors_file), "data": data, "bytes": os.path.getsize(data)}


# Workers: each measurement in its own process ---------------------------------------------------------------


def _files_of(paths: dict, contender: str):
    if contender.startswith("safetensors"):
        return [paths["safetensors"]]
    return [paths["ckpt"] + ".index", paths["data"]]


def worker(scenario: str, contender: str, cold: bool, size_gib: float, workdir: Path) -> dict:
    """Runs one measurement; returns its seconds and peak memory."""
    paths = prepare(workdir, scenario, size_gib)
    state = {}

    # Everything that is not the operation measured happens before the clock starts.
    if contender in ("tensorflow", "tf-savev2", "tf-checkpoint-write", "tensorflow-row", "tensorflow-open"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        state["tf"] = tf
    if contender in WRITE or contender == "numpy-copy":
        state["tensors"] = scenario_tensors(scenario, size_gib)
    if contender == "tf-savev2":
        tf = state["tf"]
        state["tf_tensors"] = [tf.constant(v) for v in state["tensors"].values()]
    if contender == "tf-checkpoint-write":
        tf = state["tf"]
        variables = {k.replace("/", "_"): tf.Variable(v) for k, v in state["tensors"].items()}
        state["checkpoint"] = tf.train.Checkpoint(**variables)
    import fastckpt
    import safetensors.numpy
    from safetensors import safe_open

    out_dir = workdir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = str(out_dir / f"{scenario}-{contender}")
    # The previous round's output is removed, and dirty pages flushed, before the clock starts: freeing or
    # writing back a gigabyte of page cache would otherwise land inside this measurement.
    for previous in glob.glob(glob.escape(out) + "*"):
        os.remove(previous)
    os.sync()
    if cold:
        drop_cache(_files_of(paths, contender))
    if not contender.endswith(("-row", "-open")):  # freeing gigabytes just before would disturb them
        back_memory(3 * paths["bytes"])

    def run():
        if contender == "fastckpt":
            return fastckpt.load_checkpoint(paths["ckpt"]).get_tensors()
        if contender == "fastckpt-views":
            return fastckpt.load_checkpoint(paths["ckpt"]).views()
        if contender == "fastckpt-open":
            return fastckpt.load_checkpoint(paths["ckpt"]).get_variable_to_shape_map()
        if contender == "fastckpt-row":
            return fastckpt.load_checkpoint(paths["ckpt"]).get_slice("embedding")[12345 % 1000]
        if contender == "tensorflow":
            reader = state["tf"].train.load_checkpoint(paths["ckpt"])
            return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
        if contender == "tensorflow-open":
            return state["tf"].train.load_checkpoint(paths["ckpt"]).get_variable_to_shape_map()
        if contender == "tensorflow-row":
            return state["tf"].train.load_checkpoint(paths["ckpt"]).get_tensor("embedding")[12345 % 1000]
        if contender == "safetensors":
            return safetensors.numpy.load_file(paths["safetensors"])
        if contender == "safetensors-row":
            with safe_open(paths["safetensors"], "np") as f:
                return f.get_slice("embedding")[12345 % 1000]
        if contender == "numpy-copy":
            return [a.copy() for a in state["tensors"].values()]
        if contender == "plain-read":
            buffer = np.empty(paths["bytes"], np.uint8)
            with open(paths["data"], "rb", buffering=0) as f:
                f.readinto(buffer)
            return buffer
        if contender.startswith("fastckpt-write"):
            # One data file (SaveV2's bytes), or one per core written in parallel.
            num_shards = os.cpu_count() if contender.endswith("files") else 1
            with fastckpt.CheckpointWriter(out, durable="durable" in contender, num_shards=num_shards) as writer:
                writer.add_tensors(state["tensors"])
            return None
        if contender == "tf-savev2":
            names = list(state["tensors"])
            state["tf"].raw_ops.SaveV2(
                prefix=out, tensor_names=names, shape_and_slices=[""] * len(names), tensors=state["tf_tensors"]
            )
            return None
        if contender == "tf-checkpoint-write":
            return state["checkpoint"].write(out)
        if contender == "safetensors-write":
            return safetensors.numpy.save_file(state["tensors"], out + ".safetensors")
        if contender in ("plain-write", "plain-write-fsync"):
            with open(out + ".bin", "wb", buffering=0) as f:
                for value in state["tensors"].values():
                    f.write(memoryview(np.ascontiguousarray(value)).cast("B"))
                if contender.endswith("fsync"):
                    os.fsync(f.fileno())
            return None
        raise ValueError(f"unknown contender {contender}")

    with open("/proc/self/clear_refs", "w") as f:  # resets the peak resident size (VmHWM)
        f.write("5")
    before = status_kib("VmRSS")
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM") - before
    del result
    return {"seconds": seconds, "peak_bytes": peak * 1024, "bytes": paths["bytes"]}


# The run ------------------------------------------------------------------------------------------------------

READ = ["fastckpt", "fastckpt-views", "tensorflow", "safetensors", "numpy-copy", "plain-read"]
WRITE = [
    "fastckpt-write",
    f"fastckpt-write-{os.cpu_count()}-files",
    "fastckpt-write-durable",
    f"fastckpt-write-durable-{os.cpu_count()}-files",
    "tf-savev2",
    "tf-checkpoint-write",
    "safetensors-write",
    "plain-write",
    "plain-write-fsync",
]
PLANS = {
    "transformer": [("read", READ, (False, True)), ("write", WRITE, (False,))],
    "small": [
        ("open", ["fastckpt-open", "tensorflow-open"], (False,)),
        ("read", ["fastckpt", "tensorflow", "safetensors"], (False,)),
    ],
    "embedding": [("one row, open included", ["fastckpt-row", "tensorflow-row", "safetensors-row"], (False, True))],
}


def measure(args, scenario, contender, cold) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        scenario,
        contender,
        str(int(cold)),
        "--size-gib",
        str(args.size_gib),
        "--workdir",
        str(args.workdir),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario}/{contender} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine(pages_kept: bool) -> str:
    return common.machine(["fastckpt", "numpy", ("tensorflow", "tensorflow-cpu"), "safetensors"], pages_kept)


def targets(medians: dict) -> list:
    """The ratios the project aims at, computed from this run's medians (rows whose contenders did not run
    are left out)."""
    files = f"{os.cpu_count()}-files"
    warm, cold = ("transformer", "read", False), ("transformer", "read", True)
    write, small = ("transformer", "write", False), ("small", "open", False)
    row = ("embedding", "one row, open included", False)
    rows = [
        ("read, warm: vs TensorFlow's reader", ">= 3x", warm + ("tensorflow",), warm + ("fastckpt",)),
        ("read, warm: vs safetensors load_file", ">= 1x", warm + ("safetensors",), warm + ("fastckpt",)),
        ("read, warm: share of a numpy copy's bandwidth", ">= 0.7", warm + ("numpy-copy",), warm + ("fastckpt",)),
        ("read, cold: share of a plain read's bandwidth", ">= 0.9", cold + ("plain-read",), cold + ("fastckpt",)),
        ("write: vs SaveV2", ">= 2x", write + ("tf-savev2",), write + ("fastckpt-write",)),
        ("write: vs safetensors save_file", ">= 2x", write + ("safetensors-write",), write + ("fastckpt-write",)),
        (
            f"write, {files}: vs safetensors save_file",
            ">= 2x",
            write + ("safetensors-write",),
            write + (f"fastckpt-write-{files}",),
        ),
        (
            "durable write: share of a plain write + fsync",
            ">= 0.8",
            write + ("plain-write-fsync",),
            write + ("fastckpt-write-durable",),
        ),
        ("open 10,000 tensors: vs TensorFlow", "> 1x", small + ("tensorflow-open",), small + ("fastckpt-open",)),
    ]
    out = ["## Targets", "", "| target | aim | this run |", "|---|---:|---:|"]
    for label, aim, other, ours in rows:
        if other in medians and ours in medians:
            out.append(f"| {label} | {aim} | {medians[other][0] / medians[ours][0]:.2f} |")
    if row + ("fastckpt-row",) in medians:
        out.append(
            f"| one row of the embedding, open included | <= 1 ms | {medians[row + ('fastckpt-row',)][0] * 1e3:.2f} ms |"
        )
    if warm + ("fastckpt",) in medians:
        out.append(f"| peak memory reading everything / data | <= 1.1 | {medians[warm + ('fastckpt',)][1]:.2f} |")
    return out + [""]


def run_plans(args, lines: list) -> dict:
    """Runs every scenario's plan, appending its tables to `lines`; returns the medians."""
    medians = {}  # (scenario, operation, cold, contender) -> (seconds, peak memory / data)
    for scenario in args.scenarios.split(","):
        paths = prepare(args.workdir, scenario, args.size_gib)
        count = len(scenario_tensors(scenario, 0.001)) if scenario == "small" else None
        for operation, contenders, modes in PLANS[scenario]:
            for cold in modes:
                results = {c: [] for c in contenders}
                for _ in range(args.rounds):
                    for contender in contenders:
                        results[contender].append(measure(args, scenario, contender, cold))
                size = (
                    f"{paths['bytes'] / GIB:.2f} GiB"
                    if paths["bytes"] >= GIB / 10
                    else f"{paths['bytes'] / (1 << 20):.1f} MiB"
                )
                title = (
                    f"{scenario} ({size} of tensor data" + (f", {count} tensors" if count else "") + f"): {operation}"
                )
                title += ", cold cache" if cold else (", warm cache" if operation == "read" else "")
                lines += [
                    f"## {title}",
                    "",
                    "| contender | time | range | GB/s | vs fastckpt | peak memory / data |",
                    "|---|---:|---:|---:|---:|---:|",
                ]
                baseline = statistics.median(r["seconds"] for r in results[contenders[0]])
                for contender in contenders:
                    seconds = statistics.median(r["seconds"] for r in results[contender])
                    peak = max(r["peak_bytes"] for r in results[contender]) / paths["bytes"]
                    medians[scenario, operation, cold, contender] = (seconds, peak)
                    # A throughput only means something where all the data is moved.
                    rate = f"{paths['bytes'] / seconds / 1e9:.2f}" if operation in ("read", "write") else "-"
                    times = [r["seconds"] for r in results[contender]]
                    spread = f"{min(times) / seconds:.2f}–{max(times) / seconds:.2f}"
                    shown = f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"
                    lines.append(
                        f"| {contender} | {shown} | {spread} | {rate} | {seconds / baseline:.2f}x | {peak:.2f} |"
                    )
                lines.append("")
                print("\n".join(lines[-len(contenders) - 4 :]), flush=True)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="size of the transformer and embedding checkpoints")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of alternating contenders (median reported)")
    parser.add_argument("--scenarios", default="transformer,small,embedding")
    parser.add_argument("--workdir", type=Path, default=HERE / "data", help="where checkpoints are built and kept")
    parser.add_argument(
        "--out", default=str(HERE.parent / "BENCHMARKS.md"), help="markdown report, or - for stdout only"
    )
    parser.add_argument(
        "--keep-pages",
        action="store_true",
        help="pause the VM's free page reporting during the run (root; see PagesKept)",
    )
    parser.add_argument("--worker", nargs=3, metavar=("SCENARIO", "CONTENDER", "COLD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        scenario, contender, cold = args.worker
        print(json.dumps(worker(scenario, contender, cold == "1", args.size_gib, args.workdir)))
        return

    lines = [
        "# Benchmarks",
        "",
        f"Machine: {machine(args.keep_pages)}.",
        "",
        f"`python benches/bench.py --size-gib {args.size_gib:g} --rounds {args.rounds}"
        + (" --keep-pages" if args.keep_pages else "")
        + f"`: median of {args.rounds} rounds, contenders "
        "alternating in each round, each in a fresh process that first touches and frees three times the data "
        "unless it only opens or reads one row, so that what it allocates is memory the VM's host has backed "
        "(a VM's balloon may hand free memory back to its host; touching it again then costs ~3 us a page). "
        "Range is the fastest and slowest round relative to the median. Peak memory is the growth of the "
        "resident set during the operation, relative to the bytes of tensor data.",
        "",
    ]
    with PagesKept(args.keep_pages):
        medians = run_plans(args, lines)
    lines[6:6] = targets(medians)
    report = "\n".join(lines) + "\n"
    if args.out == "-":
        print(report)
    else:
        out = Path(args.out)
        # The sections of the other benchmarks (startup.py, s3.py, frameworks.py, ...) are kept as they were:
        # every section of the previous file under a heading this report does not have.
        previous = out.read_text() if out.exists() else ""
        ours = {line for line in lines if line.startswith("## ")}
        for section in re.split(r"\n(?=## )", previous)[1:]:
            if section.splitlines()[0] not in ours:
                report += "\n" + section.rstrip("\n") + "\n"
        out.write_text(report)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
