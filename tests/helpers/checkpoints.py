"""The committed TensorFlow fixtures and how TensorFlow read them, and how a value is compared with what
TensorFlow returned.

Each directory under tests/fixtures/ holds files written by TensorFlow (tests/fixtures/generate.py) with
expected.json (names, dtypes, shapes) and expected.npz (the values TensorFlow's own reader returned).
"""

import json
from pathlib import Path

import fastckpt
import numpy as np

from helpers.paths import FIXTURES

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
