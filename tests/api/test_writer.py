"""CheckpointWriter and merge_checkpoints, read back by fastckpt (TensorFlow's view is in the interop tests)."""

import os

import fastckpt
import ml_dtypes
import numpy as np
import pytest
from fastckpt import errors
from helpers.checkpoints import NUMPY_DTYPES, assert_same_value


def test_round_trip_every_dtype(tmp_path):
    rng = np.random.default_rng(0)
    values = {}
    for dtype in [ml_dtypes.bfloat16, *NUMPY_DTYPES, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]:
        values[f"{np.dtype(dtype).name}/matrix"] = (rng.standard_normal((3, 4)) * 10).astype(dtype)
        values[f"{np.dtype(dtype).name}/scalar"] = np.array(7, dtype=dtype)[()]
        values[f"{np.dtype(dtype).name}/empty"] = np.zeros((2, 0), dtype=dtype)
    values["strings"] = np.array([[b"", b"\x00\xff"], ["ünï".encode(), b"x" * 1000]], dtype=object)
    values["string/scalar"] = b"bytes\x00"
    prefix = str(tmp_path / "ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        for name, value in values.items():
            writer.add(name, value)
    reader = fastckpt.load_checkpoint(prefix)
    for name, value in values.items():
        assert_same_value(reader.get_tensor(name), value, name)


def test_python_values_follow_tf_constant(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add("float", [1.0, 2.0])
        writer.add("int", 3)
        writer.add("big", [2**40])
        writer.add("text", "hello")
        writer.add("texts", ["a", "b"])
        writer.add("non_native", np.arange(3, dtype=">f4"))
    dtypes = fastckpt.load_checkpoint(prefix).get_variable_to_dtype_map()
    assert {n: d.name for n, d in dtypes.items()} == {
        "float": "float32",
        "int": "int32",
        "big": "int64",
        "text": "string",
        "texts": "string",
        "non_native": "float32",
    }
    np.testing.assert_array_equal(fastckpt.load_variable(prefix, "non_native"), [0, 1, 2])


def test_slices_are_reassembled(tmp_path):
    full = np.arange(7 * 5, dtype=np.float32).reshape(7, 5)
    prefix = str(tmp_path / "ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add_slice("w", [7, 5], "0,3:-", full[:3])
        writer.add_slice("w", [7, 5], "3,4:0,2", full[3:, :2])
        writer.add_slice("w", [7, 5], "3,4:2,3", full[3:, 2:])
        writer.add_slice("whole", [2], "-", np.array([1, 2], dtype=np.int64))
    reader = fastckpt.load_checkpoint(prefix)
    assert reader.get_variable_to_shape_map() == {"w": [7, 5], "whole": [2]}
    np.testing.assert_array_equal(reader.get_tensor("w"), full)
    np.testing.assert_array_equal(reader.get_slice("w")[2:5, 1], full[2:5, 1])


def test_bad_additions_are_invalid_arguments(tmp_path):
    writer = fastckpt.CheckpointWriter(str(tmp_path / "ckpt"))
    writer.add("a", np.zeros(2))
    with pytest.raises(errors.InvalidArgumentError, match="twice"):
        writer.add("a", np.zeros(2))
    with pytest.raises(errors.InvalidArgumentError, match="slice spec"):
        writer.add_slice("b", [4], "0:2", np.zeros(2))
    with pytest.raises(errors.InvalidArgumentError):
        writer.add_slice("b", [4], "3,2", np.zeros(2))
    with pytest.raises(errors.InvalidArgumentError):
        writer.add("c", np.zeros(2, dtype=[("x", "i4")]))
    writer.abort()
    assert os.listdir(tmp_path) == []


def test_a_bad_batch_writes_nothing(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with fastckpt.CheckpointWriter(prefix, num_shards=2) as writer:
        writer.add_tensors([("a", np.ones(3, np.float32))])
        with pytest.raises(errors.InvalidArgumentError) as raised:
            writer.add_tensors({"big": np.ones(1 << 20, np.float32), "bad": np.zeros(2, dtype=[("x", "i4")])})
        assert raised.value.tensor_name == "bad"
        with pytest.raises(errors.InvalidArgumentError, match="twice") as raised:
            writer.add_tensors({"big": np.ones(1 << 20, np.float32), "a": np.ones(3, np.float32)})
        assert raised.value.tensor_name == "a"
    assert fastckpt.list_variables(prefix) == [("a", [3])]
    assert sum(os.path.getsize(f"{prefix}.data-0000{i}-of-00002") for i in range(2)) == 12
    with pytest.raises(errors.InvalidArgumentError, match="num_shards"):
        fastckpt.CheckpointWriter(str(tmp_path / "none"), num_shards=0)


def test_batches_and_single_additions_mix(tmp_path):
    prefix = str(tmp_path / "ckpt")
    values = {f"t{i}": np.full((i, 1000), i, np.int64) for i in range(1, 9)}
    with fastckpt.CheckpointWriter(prefix, num_shards=3) as writer:
        writer.add("first", 1.5)
        writer.add_tensors(values)
        writer.add_tensors([("s", ["x", "yz"])])
        writer.add("last", [1, 2])
    read = fastckpt.load_checkpoint(prefix).get_tensors()
    assert read.keys() == values.keys() | {"first", "s", "last"}
    for name, value in values.items():
        np.testing.assert_array_equal(read[name], value)
    assert read["s"].tolist() == [b"x", b"yz"] and read["first"] == np.float32(1.5)


def test_failure_inside_the_context_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with fastckpt.CheckpointWriter(str(tmp_path / "ckpt")) as writer:
            writer.add("a", np.zeros(1000))
            raise RuntimeError("training crashed")
    assert os.listdir(tmp_path) == []


def test_merge_checkpoints(tmp_path):
    full = np.arange(12, dtype=np.int32).reshape(4, 3)
    parts = [str(tmp_path / "part-0"), str(tmp_path / "part-1")]
    with fastckpt.CheckpointWriter(parts[0]) as writer:
        writer.add("a", np.ones(3))
        writer.add_slice("w", [4, 3], "0,2:-", full[:2])
    with fastckpt.CheckpointWriter(parts[1]) as writer:
        writer.add("b", "text")
        writer.add_slice("w", [4, 3], "2,2:-", full[2:])
    merged = fastckpt.merge_checkpoints(parts, str(tmp_path / "merged" / "model.ckpt"))
    reader = fastckpt.load_checkpoint(merged)
    assert sorted(os.listdir(tmp_path / "merged")) == [
        "model.ckpt.data-00000-of-00002",
        "model.ckpt.data-00001-of-00002",
        "model.ckpt.index",
    ]
    np.testing.assert_array_equal(reader.get_tensor("w"), full)
    assert reader.get_tensor("b") == b"text"
    assert not any(p.endswith(".index") for p in os.listdir(tmp_path))


def test_merge_refuses_duplicate_tensors(tmp_path):
    parts = [str(tmp_path / "p0"), str(tmp_path / "p1")]
    for part in parts:
        with fastckpt.CheckpointWriter(part) as writer:
            writer.add("a", np.ones(3))
    with pytest.raises(errors.InvalidArgumentError, match="two checkpoints"):
        fastckpt.merge_checkpoints(parts, str(tmp_path / "merged"))


def test_a_string_tensor_of_other_objects_is_an_invalid_type_naming_it(tmp_path):
    prefix = str(tmp_path / "ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        for value in ({"a": 1}, ["a", {"b": 2}], np.array([b"a", 1], dtype=object)):
            with pytest.raises(errors.InvalidTypeError, match="string tensor holds") as raised:
                writer.add("names", value)
            # Both a fastckpt error and the TypeError Python raises for a value of the wrong type.
            assert isinstance(raised.value, TypeError) and isinstance(raised.value, errors.InvalidArgumentError)
            assert (raised.value.tensor_name, raised.value.filename) == ("names", prefix)
        with pytest.raises(errors.InvalidTypeError):
            writer.add_tensors({"fine": ["a"], "names": [{"a": 1}]})
    assert fastckpt.list_variables(prefix) == []
