"""What TensorFlow 1.x tutorials do first, done as they say: saving into folders that do not exist yet,
restoring into arrays, reshaping, empty savers, moving averages, TensorFlow's dtype names and error types."""

import fastckpt
import numpy as np
import pytest
from fastckpt import errors


def test_save_creates_missing_folders(tmp_path):
    save_path = tmp_path / "runs" / "Saved_model" / "model.ckpt"
    prefix = fastckpt.Saver().save({"v1": [1.0], "v2": [2.0]}, str(save_path))
    assert prefix == str(save_path)
    assert sorted(p.name for p in save_path.parent.iterdir()) == [
        "checkpoint",
        "model.ckpt.data-00000-of-00001",
        "model.ckpt.index",
        "model.ckpt.meta",
    ]
    assert fastckpt.latest_checkpoint(str(save_path.parent)) == str(save_path)


def test_every_writer_creates_missing_folders(tmp_path):
    with fastckpt.CheckpointWriter(tmp_path / "a" / "b" / "part") as writer:
        writer.add("v", [1.0])
    merged = fastckpt.merge_checkpoints([str(tmp_path / "a" / "b" / "part")], str(tmp_path / "c" / "d" / "merged"))
    assert fastckpt.load_variable(merged, "v").tolist() == [1.0]
    fastckpt.update_checkpoint_state(str(tmp_path / "e" / "f"), "model.ckpt-1")
    assert (tmp_path / "e" / "f" / "checkpoint").is_file()
    meta = fastckpt.read_meta_graph(fastckpt.examples.model_path() + ".meta")
    fastckpt.export_meta_graph(str(tmp_path / "g" / "h" / "model.meta"), meta)
    assert fastckpt.read_meta_graph(str(tmp_path / "g" / "h" / "model.meta")) == meta
    builder = fastckpt.saved_model.Builder(tmp_path / "i" / "j" / "export")
    builder.add_meta_graph_and_variables({"w": np.ones(2, np.float32)}, ["serve"])
    builder.save()
    assert fastckpt.saved_model.load(tmp_path / "i" / "j" / "export").variables["w"].tolist() == [1.0, 1.0]


def test_restore_into_alone_says_what_to_restore(tmp_path):
    fastckpt.Saver().save({"v1": [1.0], "v2": [2.0]}, str(tmp_path / "train" / "model.ckpt"))
    my_array = np.zeros(1, np.float32)
    restored = fastckpt.Saver().restore(str(tmp_path / "train"), into={"v1": my_array})
    assert my_array.tolist() == [1.0] and list(restored) == ["v1"]
    with pytest.raises(errors.NotFoundError, match="v3 not found in checkpoint"):
        fastckpt.Saver().restore(str(tmp_path / "train"), into={"v3": my_array})


def test_reshape_restores_into_another_shape_of_as_many_elements(tmp_path):
    prefix = fastckpt.Saver().save({"w": np.arange(6, dtype=np.float32)}, str(tmp_path / "model.ckpt"))
    target = np.zeros((2, 3), np.float32)
    with pytest.raises(errors.InvalidArgumentError, match="reshape=True"):
        fastckpt.Saver().restore(prefix, into={"w": target})
    fastckpt.Saver(reshape=True).restore(prefix, into={"w": target})
    np.testing.assert_array_equal(target, np.arange(6).reshape(2, 3))
    # A target that is not contiguous is filled through a copy, still in row-major order.
    wide = np.zeros((3, 4), np.float32)
    fastckpt.Saver(reshape=True).restore(prefix, into={"w": wide[:, :2]})
    np.testing.assert_array_equal(wide[:, :2], np.arange(6).reshape(3, 2))
    with pytest.raises(errors.InvalidArgumentError):
        fastckpt.Saver(reshape=True).restore(prefix, into={"w": np.zeros(5, np.float32)})


def test_reshape_into_torch_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    prefix = fastckpt.Saver().save({"w": np.arange(6, dtype=np.float32)}, str(tmp_path / "model.ckpt"))
    target = torch.zeros(3, 2)
    fastckpt.Saver(reshape=True).restore(prefix, into={"w": target})
    assert target.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_allow_empty(tmp_path):
    with pytest.raises(errors.InvalidArgumentError, match="No variables to save") as raised:
        fastckpt.Saver([])
    assert isinstance(raised.value, ValueError)  # TensorFlow raises ValueError here
    with pytest.raises(ValueError, match="No variables to save"):
        fastckpt.Saver().save({}, str(tmp_path / "model.ckpt"))
    saver = fastckpt.Saver([], allow_empty=True)
    assert saver.save({"v": [1.0]}, str(tmp_path / "model.ckpt")) is None
    assert fastckpt.Saver(allow_empty=True).save({}, str(tmp_path / "model.ckpt")) is None
    assert list(tmp_path.iterdir()) == []
    assert saver.restore(str(tmp_path / "model.ckpt")) == {}


def test_restore_of_no_checkpoint_is_a_value_error_as_in_tensorflow(tmp_path):
    with pytest.raises(ValueError, match="The passed save_path is not a valid checkpoint") as raised:
        fastckpt.Saver().restore(str(tmp_path / "nothing" / "model.ckpt"))
    assert isinstance(raised.value, errors.NotFoundError)
    (tmp_path / "model.ckpt.meta").write_bytes(b"\n\x00")
    with pytest.raises(errors.NotACheckpointError, match="MetaGraphDef"):
        fastckpt.Saver().restore(str(tmp_path / "model.ckpt.meta"))


def test_a_missing_path_is_refused_in_tensorflows_words(tf, tmp_path):
    path = str(tmp_path / "nothing" / "model.ckpt")
    with pytest.raises(tf.errors.NotFoundError) as tensorflows:
        tf.compat.v1.train.NewCheckpointReader(path)
    # "Unsuccessful TensorSliceReader constructor: Failed to find any matching files for <path>", which
    # TensorFlow's tests match; then what fastckpt adds.
    for open_path in (fastckpt.NewCheckpointReader, fastckpt.load_checkpoint, fastckpt.list_variables):
        with pytest.raises(errors.NotFoundError) as ours:
            open_path(path)
        assert str(ours.value).startswith(tensorflows.value.message + ": no checkpoint there"), str(ours.value)
    # TensorFlow's class, NotFoundError; also a ValueError (NotACheckpointError), as TensorFlow raises for a
    # directory without a checkpoint.
    assert isinstance(ours.value, errors.NotACheckpointError) and isinstance(ours.value, ValueError)


def test_moving_averages_restore_every_averaged_variable(tmp_path):
    ema = fastckpt.ExponentialMovingAverage(decay=0.99)
    ema.apply({"v": np.float32(10.0), "w": np.zeros(2, np.float32)})
    ema.apply({"v": np.float32(0.0), "w": np.ones(2, np.float32)})
    assert ema.variables_to_restore() == {
        "v/ExponentialMovingAverage": "v",
        "w/ExponentialMovingAverage": "w",
    }
    prefix = fastckpt.Saver().save(
        {"v": np.float32(0.0), "w": np.ones(2, np.float32), **ema.averages()}, str(tmp_path / "m")
    )
    restored = fastckpt.Saver(ema.variables_to_restore()).restore(prefix)
    assert restored["v"] == ema.average("v")
    np.testing.assert_array_equal(restored["w"], ema.average("w"))


def test_tensorflow_dtype_names_at_top_level():
    reader = fastckpt.NewCheckpointReader(fastckpt.examples.model_path())
    assert reader.get_variable_to_dtype_map() == {"v1": fastckpt.float32, "v2": fastckpt.float32}
    assert repr(fastckpt.float32) == "fastckpt.float32"
    for name in ("bfloat16", "float16", "float64", "int8", "int32", "int64", "uint8", "bool", "string", "complex64"):
        assert getattr(fastckpt, name) is fastckpt.as_dtype(name)
        assert getattr(fastckpt, name).name == name


def test_dtype_names_match_tensorflow():
    from helpers.tensorflow_oracle import tensorflow_or_skip

    tf = tensorflow_or_skip()
    for dtype in fastckpt.dtypes.__all__:
        value = getattr(fastckpt, dtype)
        if isinstance(value, fastckpt.DType) and hasattr(tf, dtype):
            assert getattr(tf, dtype).as_datatype_enum == value.as_datatype_enum, dtype
            assert getattr(tf, dtype).name == value.name, dtype
