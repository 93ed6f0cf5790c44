"""Saves that do not stop training: ``Saver.save_async`` against ``Saver.save``, and one checkpoint saved by
several processes (torch.distributed, gloo on loopback) against one process saving it all, in one run.

    python benches/async_saves.py                 # 1 GiB, 5 rounds, writes the "Async and multi-process saves"
                                                  # section of BENCHMARKS.md
    python benches/async_saves.py --size-gib 0.0625 --rounds 1 --out -    # a quick look, printed only
    sudo python benches/async_saves.py --keep-pages   # on a VM that hands freed memory back to its host (PagesKept)

Needs torch (for the multi-process saves) besides fastckpt. The values are --size-gib of float32 in 16 tensors
(1 GiB: 16 x 64 MiB), random, made in the process that saves them. Contenders, each run in a fresh process:

* ``save``, ``save_async`` (and both with ``durable=True``): one ``Saver(max_to_keep=2)`` saving the same values
  --steps times into a new directory, every save timed alone (the page cache written back with ``sync`` before
  each, outside the clock). For ``save``, the time the call blocks; for ``save_async``, the time until it returns
  (its values copied, on every core, into buffers it keeps) and the time from the call until ``result()`` of its
  Future returns (complete; durable with ``durable=True``). Three phases are reported apart: the 1st call (the
  first ``save_async`` copies into new memory, and pays a page fault for each page it touches), the 2nd (its
  buffers reused; nothing to delete yet) and the median of the later ones, each of which also deletes the
  checkpoint of two saves before (max_to_keep=2): inside ``save``, in the background for ``save_async``. RSS
  growth is VmRSS after the last save minus before the first (the buffers save_async keeps), peak the growth of
  VmHWM (reset before the first save).
* a training loop (``loop-*``): --loop-steps steps of "compute" (``np.negative`` of every array in place,
  repeated so that a step takes about --compute-seconds on this machine, calibrated once in a process of its
  own before the rounds) followed by ``save`` or ``save_async`` of the arrays; total wall time from the first
  step to the last save complete (``wait()``), against the loop without saves (``loop-compute``), and per step
  with the final wait for the last save left out (what a long run pays a step). The time in the compute steps
  is reported too: the background write shares the cores with it.
* the physical limits (``limits``): a memcpy of the same bytes (``np.copyto``, one thread) into memory already
  touched and into new memory, the copy ``save_async`` makes (fastckpt's ``copy_arrays``, every core) into
  touched and new memory, and a plain write of the same bytes to a file (``write`` of each tensor's buffer,
  unbuffered), then the same followed by ``fsync``, then ``os.remove`` of that file (what deleting an old
  checkpoint costs: the file system frees its blocks and the kernel its cached pages).
* ``group-N``: N processes (spawned, torch.distributed gloo on 127.0.0.1) each saving 1/N of the values, whole
  tensors under names of their own, into one checkpoint with ``Saver(process_group=WORLD)``; ``group-1`` is
  one process saving all of it with a plain ``Saver``. Start-up, ``init_process_group`` and making the values
  are not timed: each process syncs, meets the others at a barrier, and times its own ``save`` from the
  barrier to the call's return; reported is the largest over the ranks, in the same three phases.

Each round runs every contender once, in an order rotated from round to round; medians over --rounds are
reported, and the range (the fastest and slowest round relative to the median). Ratios "vs save" are of
medians; "worst round" is the largest ratio of the two measured in the same round. Before the clock starts each
process touches and frees three times its data (``back_memory`` in common.py), so that what it allocates is
memory the VM's host has backed. Benchmarks measure; no test asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime
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
from common import PagesKept, back_memory, replace_section, status_kib

GIB, MIB = 1 << 30, 1 << 20
HERE = Path(__file__).resolve().parent
SECTION = "## Async and multi-process saves"
TENSORS = 16
SINGLE = ["save", "save_async", "save-durable", "save_async-durable"]
LOOP = ["loop-compute", "loop-save", "loop-save_async", "loop-save-durable", "loop-save_async-durable"]
GROUPS = ["group-1", "group-2", "group-4"]
CONTENDERS = SINGLE + LOOP + ["limits"] + GROUPS
READING = "What these figures say"


# In the measured processes ------------------------------------------------------------------------------------


def make_values(total_bytes: int, count: int, prefix: str = "") -> dict:
    """``count`` float32 tensors of ``total_bytes`` in all, random (the bytes do not matter to a save)."""
    rng = np.random.default_rng(0)
    elements = total_bytes // count // 4
    shape = (elements // 1024, 1024) if elements % 1024 == 0 else (elements,)
    return {f"{prefix}layer_{i:02d}/kernel": rng.random(shape, dtype=np.float32) for i in range(count)}


def reset_peak() -> None:
    """Resets this process's peak resident size (VmHWM) to its current one."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def compute(values: dict, passes: int) -> None:
    """The stand-in for a training step: every array changed in place, ``passes`` times (memory-bound, one
    thread, as a numpy op is)."""
    for _ in range(passes):
        for array in values.values():
            np.negative(array, out=array)


def saving_setup(args, contender: str):
    """What a contender that saves starts from: its values, their bytes, a new directory, the prefix there, and
    a ``Saver(max_to_keep=2)`` (durable for the ``-durable`` contenders)."""
    import fastckpt

    values = make_values(int(args.size_gib * GIB), TENSORS)
    directory = tempfile.mkdtemp(prefix=f"{contender}-", dir=args.workdir)
    saver = fastckpt.Saver(max_to_keep=2, durable=contender.endswith("-durable"))
    return values, sum(v.nbytes for v in values.values()), directory, os.path.join(directory, "model.ckpt"), saver


def single_worker(args, contender: str) -> dict:
    """--steps saves of the same values by one Saver, each timed alone."""
    values, size, directory, prefix, saver = saving_setup(args, contender)
    asynchronous = contender.startswith("save_async")
    os.sync()
    back_memory(3 * size)
    before = status_kib("VmRSS")
    reset_peak()
    steps = []
    try:
        for step in range(1, args.steps + 1):
            os.sync()  # the previous save's dirty pages written back outside the clock
            start = time.perf_counter()
            if asynchronous:
                future = saver.save_async(values, prefix, global_step=step)
                returned = time.perf_counter() - start
                future.result()
            else:
                saver.save(values, prefix, global_step=step)
                returned = None
            done = time.perf_counter() - start
            steps.append({"returned": returned, "done": done, "rss": (status_kib("VmRSS") - before) * 1024})
        peak = (status_kib("VmHWM") - before) * 1024
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"steps": steps, "peak": peak, "bytes": size}


def loop_worker(args, contender: str) -> dict:
    """A training loop: compute, then save (or save_async, or nothing), --loop-steps times."""
    values, size, directory, prefix, saver = saving_setup(args, contender)
    mode = contender.removeprefix("loop-").removesuffix("-durable")
    os.sync()
    back_memory(3 * size)
    before = status_kib("VmRSS")
    reset_peak()
    computing, saving = [], []
    try:
        start = time.perf_counter()
        for step in range(1, args.loop_steps + 1):
            began = time.perf_counter()
            compute(values, args.compute_passes)
            computed = time.perf_counter()
            if mode == "save":
                saver.save(values, prefix, global_step=step)
            elif mode == "save_async":
                saver.save_async(values, prefix, global_step=step)
            saved = time.perf_counter()
            computing.append(computed - began)
            saving.append(saved - computed)
        waited = time.perf_counter()
        saver.wait()
        total = time.perf_counter() - start
        tail = time.perf_counter() - waited
        peak = (status_kib("VmHWM") - before) * 1024
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"total": total, "compute": computing, "blocked": saving, "tail": tail, "peak": peak, "bytes": size}


def calibrate_worker(args) -> dict:
    """Seconds of one pass of ``compute`` over the values (median of three)."""
    values = make_values(int(args.size_gib * GIB), TENSORS)
    compute(values, 1)  # first touch
    times = []
    for _ in range(3):
        start = time.perf_counter()
        compute(values, 1)
        times.append(time.perf_counter() - start)
    return {"pass": statistics.median(times)}


def limits_worker(args) -> dict:
    """The copies and writes a save cannot beat, of the same bytes."""
    from fastckpt import _fastckpt

    values = list(make_values(int(args.size_gib * GIB), TENSORS).values())
    size = sum(v.nbytes for v in values)
    sources = [v.reshape(-1).view(np.uint8) for v in values]
    os.sync()
    back_memory(3 * size)
    out = {}

    def timed(name, run):
        os.sync()
        start = time.perf_counter()
        run()
        out[name] = time.perf_counter() - start

    touched = [np.empty_like(s) for s in sources]
    for source, destination in zip(sources, touched):
        np.copyto(destination, source)
    timed("memcpy-touched", lambda: [np.copyto(d, s) for s, d in zip(sources, touched)])
    timed("memcpy-new", lambda: [np.copyto(np.empty_like(s), s) for s in sources])
    timed("copy_arrays-touched", lambda: _fastckpt.copy_arrays(sources, touched))
    timed("copy_arrays-new", lambda: _fastckpt.copy_arrays(sources, [np.empty_like(s) for s in sources]))
    touched.clear()

    path = os.path.join(args.workdir, f"plain-write-{os.getpid()}.bin")

    def write(fsync: bool):
        with open(path, "wb", buffering=0) as f:
            for source in sources:
                f.write(memoryview(source))
            if fsync:
                os.fsync(f.fileno())

    try:
        timed("write", lambda: write(False))
        os.remove(path)
        timed("write-fsync", lambda: write(True))
        timed("remove", lambda: os.remove(path))  # what deleting an old checkpoint's data file costs
    finally:
        if os.path.exists(path):
            os.remove(path)
    return {"seconds": out, "bytes": size}


def group_worker(args, rank: int, world: int, port: int, directory: str) -> dict:
    """One of ``world`` processes saving their parts of one checkpoint; world 1 is a plain Saver."""
    import fastckpt

    if world > 1:
        import torch.distributed as dist

        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=600),
        )
        saver = fastckpt.Saver(max_to_keep=2, process_group=dist.group.WORLD)
        barrier = dist.barrier
    else:
        saver, barrier = fastckpt.Saver(max_to_keep=2), (lambda: None)
    values = make_values(int(args.size_gib * GIB) // world, TENSORS // world, prefix=f"rank{rank}/")
    size = sum(v.nbytes for v in values.values())
    back_memory(3 * size)
    before = status_kib("VmRSS")
    reset_peak()
    steps = []
    for step in range(1, args.steps + 1):
        os.sync()
        barrier()
        start = time.perf_counter()
        saver.save(values, os.path.join(directory, "model.ckpt"), global_step=step)
        steps.append(time.perf_counter() - start)
    peak = (status_kib("VmHWM") - before) * 1024
    if world > 1:
        barrier()
        dist.destroy_process_group()
    return {"steps": steps, "peak": peak, "bytes": size}


# The run ------------------------------------------------------------------------------------------------------


def common_arguments(args) -> list:
    return [
        "--size-gib",
        str(args.size_gib),
        "--steps",
        str(args.steps),
        "--loop-steps",
        str(args.loop_steps),
        "--compute-passes",
        str(args.compute_passes),
        "--workdir",
        str(args.workdir),
    ]


def run_worker(args, *worker: str) -> dict:
    command = [sys.executable, __file__, "--worker", *worker, *common_arguments(args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(worker)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_group(args, world: int) -> dict:
    """Spawns the ``world`` processes of one group save; returns each step's largest time over the ranks."""
    directory = tempfile.mkdtemp(prefix=f"group-{world}-", dir=args.workdir)
    port = str(common.free_port())
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", "group", str(rank), str(world), port, directory]
            + common_arguments(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world)
    ]
    try:
        reports = []
        for rank, process in enumerate(processes):
            out, err = process.communicate(timeout=1200)
            if process.returncode != 0:
                raise RuntimeError(f"group of {world}, rank {rank} failed:\n{err[-3000:]}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        shutil.rmtree(directory, ignore_errors=True)
    return {
        "steps": [max(report["steps"][i] for report in reports) for i in range(args.steps)],
        "peak": max(report["peak"] for report in reports),
        "bytes": sum(report["bytes"] for report in reports),
    }


def measure(args, contender: str) -> dict:
    if contender.startswith("group-"):
        return run_group(args, int(contender.split("-")[1]))
    return run_worker(args, contender)


def seconds(value: float) -> str:
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + seconds(abs(value))


def mib(value: float) -> str:
    return f"{value / MIB:.0f} MiB"


def spread(values: list) -> str:
    median = statistics.median(values)
    return f"{min(values) / median:.2f}–{max(values) / median:.2f}" if median > 0 else "-"


PHASES = ("first", "second", "later")
PHASE_LABELS = {
    "first": "1st call",
    "second": "2nd call (nothing to delete)",
    "later": "later calls (each deletes an old checkpoint)",
}


def phases(steps: list, key=None) -> dict:
    """A process's saves in three phases: the first (new buffers, new directory), the second (buffers reused,
    nothing to delete yet), and the median of the later ones (each deleting the checkpoint of two saves before,
    max_to_keep=2); a phase with no save takes the one before's figure."""
    figures = [step if key is None else step[key] for step in steps]
    first = figures[0]
    second = figures[1] if len(figures) > 1 else first
    return {"first": first, "second": second, "later": statistics.median(figures[2:]) if figures[2:] else second}


def machine(args) -> str:
    return common.machine(["fastckpt", "numpy", "torch"], args.keep_pages)


def report(args, results: dict) -> list:
    """The section's lines: targets, then a table per kind of measurement."""
    lines = []
    data = next(iter(results.values()))[0]["bytes"]
    size = f"{data / GIB:.2f} GiB" if data >= GIB / 10 else f"{data / MIB:.0f} MiB"
    single = {}  # (contender, "returned" or "done", phase) -> per-round seconds
    for contender in SINGLE:
        for run in results.get(contender, []):
            keys = ("done", "returned") if contender.startswith("save_async") else ("done",)
            for key in keys:
                for phase, figure in phases(run["steps"], key).items():
                    single.setdefault((contender, key, phase), []).append(figure)

    def ratio(ours, theirs):
        """Ratio of the medians, and the largest ratio of the two measured in one round."""
        worst = max(a / b for a, b in zip(single[ours], single[theirs]))
        return statistics.median(single[ours]) / statistics.median(single[theirs]), worst

    if ("save_async", "returned", "first") in single and ("save", "done", "first") in single:
        lines += ["| target | aim | this run |", "|---|---:|---:|"]
        for phase in PHASES:
            median, worst = ratio(("save_async", "returned", phase), ("save", "done", phase))
            lines.append(
                f"| save_async blocking time vs save ({size}, side by side), {PHASE_LABELS[phase]} | <= 0.33x | "
                f"{median:.2f}x (worst round {worst:.2f}x) |"
            )
        lines.append("")

    if single:
        lines += [
            f"### One process, {size} in {TENSORS} tensors: save and save_async (`Saver(max_to_keep=2)`)",
            "",
            "| measurement | "
            + " | ".join(PHASE_LABELS[p] + " (range)" for p in PHASES)
            + " | vs save: 1st / 2nd / later | worst round | RSS growth after | peak RSS growth |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for durable in ("", "-durable"):
            blocking, asynchronous = "save" + durable, "save_async" + durable
            kind = " durable" if durable else ""
            rows = [
                (f"`save`{kind}: blocks", blocking, "done"),
                (f"`save_async`{kind}: returns", asynchronous, "returned"),
                (
                    f"`save_async`{kind}: call to `result()` " + ("(durable)" if durable else "(complete)"),
                    asynchronous,
                    "done",
                ),
            ]
            for label, contender, key in rows:
                if (contender, key, "first") not in single:
                    continue
                cells = [
                    f"{seconds(statistics.median(single[contender, key, p]))} ({spread(single[contender, key, p])})"
                    for p in PHASES
                ]
                if (blocking, "done", "first") in single:
                    pairs = [ratio((contender, key, p), (blocking, "done", p)) for p in PHASES]
                    versus = " / ".join(f"{m:.2f}x" for m, _ in pairs)
                    worst = " / ".join(f"{w:.2f}x" for _, w in pairs)
                else:
                    versus = worst = "-"
                runs = results[contender]
                rss = statistics.median(run["steps"][-1]["rss"] for run in runs)
                peak = max(run["peak"] for run in runs)
                lines.append(
                    f"| {label} | " + " | ".join(cells) + f" | {versus} | {worst} | {mib(rss)} | {mib(peak)} |"
                )
        lines.append("")

    if any(c in results for c in LOOP):
        base = results.get("loop-compute")
        base_total = statistics.median(r["total"] for r in base) if base else None
        lines += [
            f"### Training loop: {args.loop_steps} steps of ~{args.compute_seconds:g} s of compute "
            f"({args.compute_passes} in-place pass(es) over the {size}), each followed by a save",
            "",
            "| loop | total | range | vs compute alone | per step, the final wait left out | compute per step "
            "(median) | blocked in the save call per step (first / later) | final wait | peak RSS growth |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for contender in LOOP:
            if contender not in results:
                continue
            runs = results[contender]
            totals = [r["total"] for r in runs]
            total = statistics.median(totals)
            tail = statistics.median(r["tail"] for r in runs)
            if base_total is not None and contender != "loop-compute":
                over = signed(total - base_total)
                per_step = signed((total - tail - base_total) / args.loop_steps)
            else:
                over = per_step = "-"
            step_compute = statistics.median(c for r in runs for c in r["compute"])
            first = statistics.median(r["blocked"][0] for r in runs)
            later = statistics.median(b for r in runs for b in r["blocked"][1:]) if args.loop_steps > 1 else first
            blocked = "-" if contender == "loop-compute" else f"{seconds(first)} / {seconds(later)}"
            lines.append(
                f"| {contender.removeprefix('loop-')} | {seconds(total)} | {spread(totals)} | {over} | {per_step} "
                f"| {seconds(step_compute)} | {blocked} | {seconds(tail)} | {mib(max(r['peak'] for r in runs))} |"
            )
        lines.append("")

    if "limits" in results:
        labels = {
            "memcpy-touched": "memcpy into touched memory (`np.copyto`, one thread)",
            "memcpy-new": "memcpy into new memory (`np.copyto` into `np.empty`, one thread)",
            "copy_arrays-touched": "save_async's copy into touched memory (`copy_arrays`, every core)",
            "copy_arrays-new": "save_async's copy into new memory (`copy_arrays`, every core)",
            "write": "plain write to a file (unbuffered `write` of each tensor's bytes)",
            "write-fsync": "plain write + fsync",
            "remove": "`os.remove` of that file (written back, its pages cached): deleting an old checkpoint",
        }
        lines += [
            f"### The physical limits, {size}",
            "",
            "| operation | time | range | GB/s |",
            "|---|---:|---:|---:|",
        ]
        for name, label in labels.items():
            times = [r["seconds"][name] for r in results["limits"]]
            median = statistics.median(times)
            rate = f"{data / median / 1e9:.2f}" if name != "remove" else "-"
            lines.append(f"| {label} | {seconds(median)} | {spread(times)} | {rate} |")
        lines.append("")

    if any(c in results for c in GROUPS):
        lines += [
            f"### One checkpoint of {size} from N processes (`Saver(process_group=...)`, gloo on loopback)",
            "",
            "| processes | "
            + " | ".join(PHASE_LABELS[p] + " (range)" for p in PHASES)
            + " | vs 1 process: 1st / 2nd / later | peak RSS growth (largest rank) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        figures = {c: [phases(r["steps"]) for r in results[c]] for c in GROUPS if c in results}
        one = {p: statistics.median(f[p] for f in figures["group-1"]) for p in PHASES} if "group-1" in figures else None
        for contender, runs in figures.items():
            world = int(contender.split("-")[1])
            medians = {p: statistics.median(f[p] for f in runs) for p in PHASES}
            cells = [f"{seconds(medians[p])} ({spread([f[p] for f in runs])})" for p in PHASES]
            versus = " / ".join(f"{medians[p] / one[p]:.2f}x" for p in PHASES) if one else "-"
            label = (
                f"1 x {mib(data)} (plain `Saver`)"
                if world == 1
                else f"{world} x {mib(data / world)} (`Saver(process_group=WORLD)`)"
            )
            peak = max(r["peak"] for r in results[contender])
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {versus} | {mib(peak)} |")
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="bytes of values saved (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of alternating contenders (default 5)")
    parser.add_argument("--steps", type=int, default=5, help="saves per process (default 5: 1st, 2nd, later)")
    parser.add_argument("--loop-steps", type=int, default=6, help="steps of the training loop (default 6)")
    parser.add_argument("--compute-seconds", type=float, default=0.5, help="compute per loop step (default 0.5)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset to run")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where checkpoints are written (default: a temp dir)"
    )
    parser.add_argument(
        "--out", default=str(HERE.parent / "BENCHMARKS.md"), help="markdown report, or - for stdout only"
    )
    parser.add_argument("--keep-pages", action="store_true", help="pause free page reporting (root; see PagesKept)")
    parser.add_argument("--compute-passes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind = args.worker[0]
        if kind in SINGLE:
            result = single_worker(args, kind)
        elif kind in LOOP:
            result = loop_worker(args, kind)
        elif kind == "limits":
            result = limits_worker(args)
        elif kind == "calibrate":
            result = calibrate_worker(args)
        elif kind == "group":
            rank, world, port = (int(x) for x in args.worker[1:4])
            result = group_worker(args, rank, world, port, args.worker[4])
        else:
            raise SystemExit(f"unknown worker {kind}")
        print(json.dumps(result))
        return

    contenders = [c for c in args.contenders.split(",") if c]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        raise SystemExit(f"unknown contenders: {', '.join(sorted(unknown))} (known: {', '.join(CONTENDERS)})")
    temporary = None
    if args.workdir is None:
        temporary = tempfile.mkdtemp(prefix="fastckpt-async-saves-")
        args.workdir = Path(temporary)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    try:
        with PagesKept(args.keep_pages):
            if any(c in LOOP for c in contenders):
                one_pass = run_worker(args, "calibrate")["pass"]
                args.compute_passes = max(1, round(args.compute_seconds / one_pass))
                print(f"compute: {one_pass * 1e3:.0f} ms a pass, {args.compute_passes} pass(es) a step", flush=True)
            for round_number in range(args.rounds):
                shift = round_number % len(contenders)
                for contender in contenders[shift:] + contenders[:shift]:
                    started = time.perf_counter()
                    results.setdefault(contender, []).append(measure(args, contender))
                    print(
                        f"round {round_number + 1}/{args.rounds} {contender}: {time.perf_counter() - started:.1f} s",
                        flush=True,
                    )
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)

    command = "python benches/async_saves.py" + "".join(
        f" --{name.replace('_', '-')} {value:g}"
        for name, value, default in (
            ("size_gib", args.size_gib, 1.0),
            ("rounds", args.rounds, 5),
            ("steps", args.steps, 5),
            ("loop_steps", args.loop_steps, 6),
            ("compute_seconds", args.compute_seconds, 0.5),
        )
        if value != default
    )
    command += " --keep-pages" if args.keep_pages else ""
    command += f" --contenders {args.contenders}" if contenders != CONTENDERS else ""
    section = [
        SECTION,
        "",
        f"Machine: {machine(args)}.",
        "",
        f"`{command}`: median of {args.rounds} rounds, contenders alternating in each round (order rotated from "
        f"round to round), each in a fresh process; {args.steps} saves per process with `max_to_keep=2`: the "
        "1st (save_async's buffers new), the 2nd (buffers reused, nothing to delete yet) and the median of the "
        "later ones (each also deleting the checkpoint of two saves before) reported apart; range is the "
        "fastest and slowest round relative to the median. See the docstring of benches/async_saves.py for what "
        "each figure is.",
        "",
        *report(args, results),
    ]
    text = "\n".join(section) + "\n"
    print(text)
    if args.out != "-":
        out = Path(args.out)
        previous = out.read_text() if out.exists() else ""
        # A reading written under the tables by hand is kept (to be rewritten with new figures).
        start = previous.find(f"\n{SECTION}\n")
        if start >= 0:
            end = previous.find("\n## ", start + 1)
            old = previous[start : end if end >= 0 else len(previous)]
            kept = old.find(f"\n{READING}")
            if kept >= 0:
                text += old[kept:].rstrip("\n") + "\n"
        replace_section(out, SECTION, text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
