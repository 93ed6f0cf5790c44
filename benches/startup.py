"""Start-up time: how long a process takes that imports fastckpt or runs its command line, beside numpy.

    python benches/startup.py                  # 20 rounds, writes the "Start-up" section of BENCHMARKS.md
    python benches/startup.py --rounds 5 --out -   # a quick look, printed only

Each contender is a whole process (interpreter start included), timed from outside; in each round the
contenders run one after the other, in turn, so that a machine whose speed drifts slows them alike. The
figures are medians over the rounds, with the fastest and slowest round relative to the median. Module
bytecode is cached, as for an installed package (pip compiles it at install): every process runs with
PYTHONPYCACHEPREFIX set to one fresh directory, filled by a warm-up run of each contender. The import
breakdown comes from ``python -X importtime`` (self time of each module, median of the runs).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import replace_section

HERE = Path(__file__).resolve().parent
SECTION = "## Start-up"


def contenders() -> dict:
    """{name: argv}; the command line as users run it (the console script beside this Python) where it exists."""
    python = sys.executable
    script = Path(python).with_name("fastckpt")
    command = [str(script)] if script.exists() else [python, "-m", "fastckpt"]
    example = "import fastckpt; fastckpt.load_checkpoint(fastckpt.examples.model_path()).get_tensors()"
    return {
        "python -c pass": [python, "-c", "pass"],
        "import numpy": [python, "-c", "import numpy"],
        "import ml_dtypes": [python, "-c", "import ml_dtypes"],
        "import fastckpt": [python, "-c", "import fastckpt"],
        "import fastckpt, read a checkpoint": [python, "-c", example],
        "fastckpt --help": command + ["--help"],
        "fastckpt --version": command + ["--version"],
    }


def environment(cache: str) -> dict:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(argv, env) -> tuple:
    """Wall and CPU seconds (user + system) of one run of ``argv``."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{error[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def import_breakdown(env, runs: int) -> list:
    """What ``import fastckpt`` adds to ``import numpy``: self time of the modules it loads that numpy did
    not, by group, median over ``runs``; [(group, ms)] largest first."""
    totals = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import numpy; import fastckpt"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        lines = [
            line for line in done.stderr.splitlines() if line.startswith("import time:") and "self [us]" not in line
        ]
        # numpy's tree comes first and ends with the top-level line "numpy"; what follows is fastckpt's.
        numpy_end = next(i for i, line in enumerate(lines) if line.rstrip().endswith("| numpy"))
        groups = {}
        for line in lines[numpy_end + 1 :]:
            self_us, _, name = line[len("import time:") :].split("|")
            name = name.strip()
            if name == "fastckpt._fastckpt":
                group = "fastckpt._fastckpt (the extension)"
            elif name.startswith("fastckpt"):
                group = "fastckpt's Python modules"
            elif name.startswith(("google.protobuf", "google._upb", "google")):
                group = "protobuf"
            else:
                group = "standard library modules numpy does not import"
            groups[group] = groups.get(group, 0) + int(self_us)
        for group, us in groups.items():
            totals.setdefault(group, []).append(us / 1e3)
    return sorted(((g, statistics.median(v + [0.0] * (runs - len(v)))) for g, v in totals.items()), key=lambda x: -x[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="rounds of alternating contenders (median reported)")
    parser.add_argument(
        "--out",
        default=str(HERE.parent / "BENCHMARKS.md"),
        help="the markdown report whose Start-up section is replaced, or - for stdout only",
    )
    args = parser.parse_args()

    commands = contenders()
    cache = tempfile.mkdtemp(prefix="fastckpt-startup-pycache-")
    try:
        env = environment(cache)
        for argv in commands.values():  # warm-up: bytecode written, files in the page cache
            run_once(argv, env)
        walls = {name: [] for name in commands}
        cpus = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                wall, cpu = run_once(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        breakdown = import_breakdown(env, min(args.rounds, 9))
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    wall = {name: statistics.median(times) for name, times in walls.items()}
    cpu = {name: statistics.median(times) for name, times in cpus.items()}
    numpy_wall = wall["import numpy"]
    # Pair by pair: each round's fastckpt import against the numpy import of the same round.
    pairs = statistics.median(f / n for f, n in zip(walls["import fastckpt"], walls["import numpy"]))
    model = (
        next(
            (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
            platform.processor() or "unknown CPU",
        )
        if os.path.exists("/proc/cpuinfo")
        else platform.processor()
    )
    lines = [
        SECTION,
        "",
        f"`python benches/startup.py --rounds {args.rounds}`: whole processes (interpreter start included) timed "
        f"from outside, median of {args.rounds} rounds in which the contenders run in turn; range is the fastest "
        "and slowest round relative to the median; bytecode cached as for an installed package. Machine: "
        f"{model}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; Python "
        f"{platform.python_version()}; {common.versions(['fastckpt', 'numpy', 'ml_dtypes', 'protobuf'])}.",
        "",
        "| target | aim | this run |",
        "|---|---:|---:|",
        f"| import fastckpt vs import numpy (wall, medians) | <= 1.3x | {wall['import fastckpt'] / numpy_wall:.2f}x |",
        f"| import fastckpt vs import numpy (wall, round by round) | <= 1.3x | {pairs:.2f}x |",
        f"| fastckpt --help | < 0.3 s | {wall['fastckpt --help']:.3f} s |",
        "",
        f"`fastckpt --help` is `import fastckpt` and argparse: {(wall['fastckpt --help'] - numpy_wall) * 1e3:.0f} ms "
        f"more than `import numpy`, which takes {numpy_wall * 1e3:.0f} ms here (the interpreter alone "
        f"{wall['python -c pass'] * 1e3:.0f} ms); `import ml_dtypes`, no longer part of `import fastckpt`, is shown "
        "for what a bfloat16 or float8 tensor adds on first use.",
        "",
        "| process | wall | range | CPU | wall vs import numpy |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, times in walls.items():
        spread = f"{min(times) / wall[name]:.2f}–{max(times) / wall[name]:.2f}"
        lines.append(
            f"| `{name}` | {wall[name] * 1e3:.0f} ms | {spread} | {cpu[name] * 1e3:.0f} ms | "
            f"{wall[name] / numpy_wall:.2f}x |"
        )
    lines += [
        "",
        'What `import fastckpt` adds to `import numpy` (`python -X importtime -c "import numpy; import fastckpt"`, '
        "self time of the modules numpy had not loaded, median of the runs; importtime's own bookkeeping makes "
        "these larger than the difference of whole-process times):",
        "",
        "| modules | ms |",
        "|---|---:|",
    ]
    lines += [f"| {group} | {ms:.1f} |" for group, ms in breakdown]
    lines.append(f"| total | {sum(ms for _, ms in breakdown):.1f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.out == "-":
        return
    path = Path(args.out)
    replace_section(path, SECTION, section)
    print(f"wrote the {SECTION[3:]} section of {path}")


if __name__ == "__main__":
    main()
