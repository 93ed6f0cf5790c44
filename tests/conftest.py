"""Shared helpers: the committed TensorFlow fixtures and how TensorFlow read them.

Each directory under tests/fixtures/ holds files written by TensorFlow (tests/fixtures/generate.py) with
expected.json (names, dtypes, shapes) and expected.npz (the values TensorFlow's own reader returned).
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import fastckpt
import numpy as np
import pytest

# The object-store test servers' fixtures (s3_server, s3_bucket, s3_proxy, make_proxy).
pytest_plugins = ["object_stores"]

FIXTURES = Path(__file__).parent / "fixtures"
# The numpy dtypes a checkpoint stores as they are (ml_dtypes' bfloat16 and float8 types aside).
NUMPY_DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
]


def fixture_kinds():
    return sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())


class Expected:
    """What TensorFlow's reader returned for one fixture."""

    def __init__(self, kind: str, root: Path = FIXTURES):
        self.dir = root / kind
        meta = json.loads((self.dir / "expected.json").read_text(encoding="utf-8"))
        self.path = str(self.dir / meta["path"])
        self.tensors = meta["tensors"]
        with np.load(self.dir / "expected.npz", allow_pickle=True) as values:
            self._values = {key: values[key] for key in values.files}

    def value(self, name: str) -> np.ndarray:
        info = self.tensors[name]
        value = self._values[info["key"]]
        if info.get("stored_as"):
            # npz cannot hold ml_dtypes types: bfloat16 and float8 are stored as their bits, int4 widened.
            dtype = fastckpt.as_dtype(info["dtype"]).numpy_dtype
            if "int4" in info["dtype"]:
                value = value.astype(dtype)
            else:
                value = value.view(dtype)
        return value


def _as_array(value):
    if isinstance(value, bytes):  # a string scalar; np.asarray would make it |S and strip trailing NULs
        array = np.empty((), dtype=object)
        array[()] = value
        return array
    return np.asarray(value)


def assert_same_value(actual, expected, name=""):
    """Equal as TensorFlow returned it: same dtype and shape, bit for bit (so NaN and -0.0 count)."""
    expected = _as_array(expected)
    actual_array = _as_array(actual)
    assert actual_array.shape == expected.shape, (name, actual_array.shape, expected.shape)
    if expected.dtype == object:
        assert actual_array.dtype == object, name
        assert actual_array.tolist() == expected.tolist(), name
        return
    assert actual_array.dtype == expected.dtype, (name, actual_array.dtype, expected.dtype)
    assert actual_array.tobytes() == expected.tobytes(), name


def check_against_expected(expected: Expected) -> None:
    """fastckpt reads the fixture exactly as TensorFlow's reader did."""
    reader = fastckpt.NewCheckpointReader(expected.path)
    assert reader.get_variable_to_shape_map() == {n: t["shape"] for n, t in expected.tensors.items()}
    dtypes = {n: d.name for n, d in reader.get_variable_to_dtype_map().items()}
    assert dtypes == {n: t["dtype"] for n, t in expected.tensors.items()}
    all_at_once = reader.get_tensors()
    assert sorted(all_at_once) == sorted(expected.tensors)
    for name in expected.tensors:
        assert_same_value(reader.get_tensor(name), expected.value(name), name)
        assert_same_value(all_at_once[name], expected.value(name), name)


@pytest.fixture
def copy_fixture(tmp_path):
    """Copies a fixture directory to a temporary place (to corrupt or move it) and returns its Expected."""

    def copy(kind: str) -> Expected:
        shutil.copytree(FIXTURES / kind, tmp_path / kind)
        return Expected(kind, tmp_path)

    return copy


def tensorflow_or_skip():
    """Imports TensorFlow. In CI (CI=true) a missing TensorFlow fails the test instead of skipping it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("tensorflow is not installed: interop tests need it (pip install tensorflow-cpu)")
    return tf


def tf_save(tf, prefix, tensors):
    """A checkpoint written by TensorFlow's SaveV2 of ``{name: array}``; returns the prefix."""
    names = list(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    return str(prefix)


def run_processes(commands, timeout, what, env=None):
    """Runs ``commands`` (argument lists: processes that work together, as the ranks of a group) at once and
    returns each one's ``(exit code, report, stderr)``, the report being the JSON of its ``REPORT `` line (None
    without one). If they are not all done within ``timeout`` seconds, all are killed and the test fails with
    their stderr: a hung group never hangs the tests."""
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for command in commands
    ]
    results = []
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            try:
                out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                for other in processes:
                    other.kill()
                errors = [other.communicate()[1][-3000:] for other in processes]
                pytest.fail(f"{what} hung for {timeout} s; stderr of each process:\n" + "\n---\n".join(errors))
            report = [json.loads(line[len("REPORT ") :]) for line in out.splitlines() if line.startswith("REPORT ")]
            results.append((process.returncode, report[0] if report else None, err[-5000:]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results
