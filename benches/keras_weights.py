"""fastckpt.keras.load_weights of a large Keras 2 checkpoint into Keras 3, beside tf_keras's own load_weights of
the same checkpoint and Keras 3's load_weights of the .weights.h5 Keras 3 writes for the model, in one run.

    python benches/keras_weights.py                          # ResNet50, 5 rounds, writes the "Keras" section of BENCHMARKS.md
    python benches/keras_weights.py --model resnet152 --rounds 3 --out -    # a larger model, printed only

Needs tensorflow(-cpu), tf_keras, keras 3 and jax besides fastckpt. The model (``keras.applications``, random
weights, 224x224 inputs, 1000 classes) is saved once into a work directory (--workdir, kept for the next run):
by tf_keras with ``model.save_weights("tf/w")`` (the TF format: an object-based checkpoint), and by Keras 3 with
``model.save_weights("model.weights.h5")`` after fastckpt filled it from the former. Contenders, each timed in a
fresh process that has built the model already (building is not timed) and reads warm files:

* ``fastckpt.keras.load_weights(model, "tf/w")``, Keras 3 on jax;
* ``model.load_weights("model.weights.h5")``, Keras 3 on jax, on its own format;
* ``model.load_weights("tf/w")``, tf_keras 2 (TensorFlow restoring its own checkpoint);
* the limits: ``readinto`` of the checkpoint's data file into allocated memory (the bytes any load must copy out
  of the page cache), and fastckpt's ``get_tensors`` of the checkpoint (reading, without assigning).

Every contender runs once untimed, and the sum of every weight it loaded is checked against the others; then
--rounds rounds, the contenders alternating in an order rotated from round to round. Best and median are reported.
Benchmarks measure; no test asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import common
from common import replace_section

MODELS = {"resnet50": "ResNet50", "resnet152": "ResNet152", "efficientnet_b7": "EfficientNetB7"}

# Run in the child processes: build, then time one load. {app} is the keras.applications class.
_SETUP_KERAS2 = """
import sys, tf_keras as keras
model = keras.applications.{app}(weights=None)
model.save_weights(sys.argv[1] + "/tf/w")
"""
_SETUP_KERAS3 = """
import sys, keras, fastckpt.keras
model = keras.applications.{app}(weights=None)
fastckpt.keras.load_weights(model, sys.argv[1] + "/tf/w")
model.save_weights(sys.argv[1] + "/model.weights.h5")
"""
_PRELUDE = """
import json, sys, time
import numpy as np
work = sys.argv[1]
"""
_REPORT = """
total = float(sum(np.asarray(w, dtype=np.float64).sum() for w in weights))
print("REPORT " + json.dumps({{"seconds": seconds, "sum": total}}))
"""
CONTENDERS = {
    "fastckpt.keras.load_weights (Keras 3, jax)": (
        "jax",
        """
import keras, fastckpt.keras
model = keras.applications.{app}(weights=None)
start = time.perf_counter()
fastckpt.keras.load_weights(model, work + "/tf/w")
seconds = time.perf_counter() - start
weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
""",
    ),
    "Keras 3 load_weights of .weights.h5 (jax)": (
        "jax",
        """
import keras
model = keras.applications.{app}(weights=None)
start = time.perf_counter()
model.load_weights(work + "/model.weights.h5")
seconds = time.perf_counter() - start
weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
""",
    ),
    "tf_keras 2 load_weights of the TF checkpoint": (
        "legacy",
        """
import tf_keras as keras
model = keras.applications.{app}(weights=None)
start = time.perf_counter()
model.load_weights(work + "/tf/w")
seconds = time.perf_counter() - start
weights = [w.numpy() for w in model.weights]
""",
    ),
    "limit: fastckpt get_tensors (read, no assignment)": (
        "none",
        """
import fastckpt
start = time.perf_counter()
values = fastckpt.load_checkpoint(work + "/tf/w").get_tensors()
seconds = time.perf_counter() - start
weights = [v for k, v in values.items() if "VARIABLE_VALUE" in k]
""",
    ),
    "limit: readinto of the data file": (
        "none",
        """
import glob, os
path = glob.glob(work + "/tf/w.data-*")[0]
buffer = np.empty(os.path.getsize(path), np.uint8)
buffer[::4096] = 1
start = time.perf_counter()
with open(path, "rb", buffering=0) as f:
    f.readinto(memoryview(buffer))
seconds = time.perf_counter() - start
weights = []
""",
    ),
}


def _env(kind: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)
    if kind == "legacy":
        env["TF_USE_LEGACY_KERAS"] = "1"
    elif kind == "jax":
        env["KERAS_BACKEND"] = "jax"
    return env


def _run(code: str, kind: str, work: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", code, str(work)], capture_output=True, text=True, env=_env(kind))
    if done.returncode != 0:
        raise SystemExit(f"a benchmark process failed:\n{done.stderr[-4000:]}")
    for line in done.stdout.splitlines():
        if line.startswith("REPORT "):
            return json.loads(line[len("REPORT ") :])
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, help="where the model's files are kept (default: a temporary one)")
    parser.add_argument("--out", default=str(Path(__file__).parent.parent / "BENCHMARKS.md"), help="'-' prints only")
    args = parser.parse_args()

    app = MODELS[args.model]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fastckpt-keras-bench-"))
    work = work / args.model
    if not (work / "model.weights.h5").exists():
        work.mkdir(parents=True, exist_ok=True)
        _run(_SETUP_KERAS2.format(app=app), "legacy", work)
        _run(_SETUP_KERAS3.format(app=app), "jax", work)
    data = sum(p.stat().st_size for p in (work / "tf").glob("w.data-*"))

    sums = {}
    for name, (kind, body) in CONTENDERS.items():
        sums[name] = _run((_PRELUDE + body + _REPORT).format(app=app), kind, work)["sum"]
    loaded = [value for name, value in sums.items() if not name.startswith("limit: readinto")]
    if max(loaded) - min(loaded) > 1e-6 * max(abs(v) for v in loaded):
        raise SystemExit(f"the contenders loaded different weights: {sums}")

    times = {name: [] for name in CONTENDERS}
    names = list(CONTENDERS)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            kind, body = CONTENDERS[name]
            times[name].append(_run((_PRELUDE + body + _REPORT).format(app=app), kind, work)["seconds"])

    reference = statistics.median(times["fastckpt.keras.load_weights (Keras 3, jax)"])
    lines = [
        "## Keras",
        "",
        f"`python benches/keras_weights.py --model {args.model} --rounds {args.rounds}`: keras.applications.{app} "
        f"({data / (1 << 20):.0f} MiB of weights), each load timed in a fresh process that built the model "
        "first, warm files; seconds, best and median of the rounds; the ratio is the contender's median over "
        "fastckpt's.",
        "",
        common.machine(["fastckpt", "keras", "tf_keras", "tensorflow", "jax", "h5py", "numpy"], False),
        "",
        "| load | best | median | median / fastckpt's |",
        "|---|---|---|---|",
    ]
    for name, seconds in times.items():
        median = statistics.median(seconds)
        lines.append(f"| {name} | {min(seconds):.3f} | {median:.3f} | {median / reference:.2f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    if args.out != "-":
        replace_section(Path(args.out), "## Keras", section)


if __name__ == "__main__":
    main()
