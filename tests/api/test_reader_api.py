"""The reader's contract: path forms, errors, lazy slices, the state file, the command line."""

import shutil
import sys

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from helpers.checkpoints import Expected, assert_same_value
from helpers.processes import run_cli


def test_example_checkpoint_workflow():
    reader = fastckpt.NewCheckpointReader(fastckpt.examples.model_path())
    assert reader.get_variable_to_shape_map() == {"v1": [1], "v2": [1]}
    assert reader.get_variable_to_dtype_map()["v1"] == fastckpt.dtypes.float32
    np.testing.assert_array_equal(reader.get_tensor("v1") + reader.get_tensor("v2"), [3.0])
    assert reader.debug_string() == b"v1 (DT_FLOAT) [1]\nv2 (DT_FLOAT) [1]\n"
    assert reader.has_tensor("v1") and not reader.has_tensor("v3")


def test_names_that_are_not_utf8_round_trip(tmp_path):
    """Stored keys are bytes; those that are not UTF-8 come back as str with surrogates, as
    ``bytes.decode("utf-8", "surrogateescape")`` gives them, and work as names everywhere."""
    prefix = str(tmp_path / "ckpt")
    name = b"layer\xff/kernel".decode("utf-8", "surrogateescape")
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add(name, np.arange(3, dtype=np.float32))
        writer.add("plain", 1)
    reader = fastckpt.load_checkpoint(prefix)
    assert list(reader) == [name, "plain"] and len(reader) == 2
    assert name in reader and reader.has_tensor(name) and 3 not in reader
    assert reader.get_variable_to_shape_map() == {name: [3], "plain": []}
    assert reader.get_variable_to_dtype_map() == {name: fastckpt.dtypes.float32, "plain": fastckpt.dtypes.int32}
    np.testing.assert_array_equal(reader.get_tensors()[name], [0, 1, 2])
    assert reader.debug_string() == b"layer\xff/kernel (DT_FLOAT) [3]\nplain (DT_INT32) []\n"


def test_directory_resolves_through_state_file():
    reader = fastckpt.load_checkpoint(fastckpt.examples.model_dir())
    assert reader.path == fastckpt.examples.model_path()
    assert fastckpt.latest_checkpoint(fastckpt.examples.model_dir()) == fastckpt.examples.model_path()


def test_dtype_objects():
    bf16 = fastckpt.as_dtype("bfloat16")
    assert bf16.name == "bfloat16" and bf16.as_datatype_enum == 14
    assert np.dtype(bf16.as_numpy_dtype) == np.dtype("bfloat16")
    assert fastckpt.as_dtype(np.float32) == fastckpt.dtypes.float32 == "float32"
    assert fastckpt.as_dtype("DT_HALF").name == "float16"
    assert fastckpt.dtypes.string.as_numpy_dtype is np.object_
    assert fastckpt.as_dtype(np.uint16).name == "uint16" and fastckpt.as_dtype(np.int8).name == "int8"
    with pytest.raises(ValueError):
        fastckpt.as_dtype(99)


# Every dtype of the core's table but resources and variants, which are listed, never read.
READABLE_DTYPES = [d for d in fastckpt.dtypes._ALL if d.size or d.is_string]


@pytest.mark.parametrize("dtype", READABLE_DTYPES, ids=lambda d: d.name)
def test_every_dtype_reads_back_as_its_numpy_dtype(tmp_path, dtype):
    """A tensor of each dtype reads back with exactly the numpy dtype ``fastckpt.dtypes`` gives that dtype (the
    extension makes arrays of its own), by each read: the quantized types and ml_dtypes' types among them."""
    prefix = str(tmp_path / "ckpt")
    # The extension's writer, which takes any dtype number: numpy has no quantized types to write from.
    writer = fastckpt._fastckpt.BundleWriter(prefix, fastckpt._fastckpt.Stores())
    writer.add(
        b"t", dtype.as_datatype_enum, [2], [b"a", b"bc"] if dtype.is_string else np.zeros(2 * dtype.size, np.uint8)
    )
    writer.finish()
    reader = fastckpt.load_checkpoint(prefix)
    for value in [reader.get_tensor("t"), reader.get_tensors()["t"], reader.get_tensors(["t"])["t"]]:
        assert value.dtype == dtype.numpy_dtype and value.dtype.type is dtype.numpy_dtype.type, value.dtype


def test_missing_path_is_not_found(tmp_path):
    with pytest.raises(errors.NotFoundError) as info:
        fastckpt.NewCheckpointReader(str(tmp_path / "nothing" / "model.ckpt"))
    assert "model.ckpt" in str(info.value)
    with pytest.raises(errors.NotFoundError):
        fastckpt.load_checkpoint(str(tmp_path))


def test_a_directory_without_a_state_file_names_the_checkpoints_it_holds(tmp_path):
    fastckpt.Saver().save({"v": [1.0]}, str(tmp_path / "one" / "model.ckpt"))
    (tmp_path / "one" / "checkpoint").unlink()
    with pytest.raises(errors.NotACheckpointError) as info:
        fastckpt.load_checkpoint(str(tmp_path / "one"))
    assert str(info.value) == (
        f"no checkpoint in directory {tmp_path / 'one'}: it has no 'checkpoint' state file; it holds the "
        f"checkpoint model.ckpt: pass {tmp_path / 'one' / 'model.ckpt'}"
    )
    saver = fastckpt.Saver(max_to_keep=None)
    for step in (2, 10, 1, 3, 4, 5, 6):
        saver.save({"v": [1.0]}, str(tmp_path / "many" / "model.ckpt"), global_step=step)
    (tmp_path / "many" / "checkpoint").unlink()
    (tmp_path / "many" / "lost.data-00000-of-00001").write_bytes(b"")  # no index: no checkpoint
    with pytest.raises(errors.NotACheckpointError) as info:
        fastckpt.load_checkpoint(str(tmp_path / "many"))
    assert str(info.value).endswith(
        "it holds the checkpoints model.ckpt-1, model.ckpt-2, model.ckpt-3, model.ckpt-4, model.ckpt-5 and 2 more: "
        f"pass one of them, such as {tmp_path / 'many' / 'model.ckpt-10'}"
    ), str(info.value)
    # A state file naming a checkpoint that is gone: what is there is named too.
    fastckpt.update_checkpoint_state(str(tmp_path / "one"), "model.ckpt-7")
    with pytest.raises(
        errors.NotACheckpointError, match="names .*model.ckpt-7, where there is no checkpoint; it holds"
    ):
        fastckpt.load_checkpoint(str(tmp_path / "one"))


def test_a_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_text("hello world\n", encoding="utf-8")
    with pytest.raises(errors.NotACheckpointError) as info:
        fastckpt.NewCheckpointReader(path)
    assert str(info.value) == f'this is a text file, not a TensorFlow checkpoint (it begins "hello world") (in {path})'
    assert "truncated" not in str(info.value) and "corrupt" not in str(info.value)
    result = run_cli("inspect", path)
    assert result.returncode == 2 and result.stderr == f"fastckpt: error: {info.value}\n", result.stderr


def test_missing_tensor_names_file_and_tensor():
    reader = fastckpt.NewCheckpointReader(fastckpt.examples.model_path())
    with pytest.raises(errors.NotFoundError) as info:
        reader.get_tensor("no/such/var")
    assert info.value.tensor_name == "no/such/var"
    assert "model.ckpt" in str(info.value) and "no/such/var" in str(info.value)
    with pytest.raises(errors.NotFoundError):
        reader.get_slice("no/such/var")


def test_slice_indexing_errors_and_forms():
    expected = Expected("all_dtypes")
    reader = fastckpt.load_checkpoint(expected.path)
    name = next(
        n
        for n, t in expected.tensors.items()
        if len(t["shape"]) == 3 and min(t["shape"]) > 1 and t["dtype"] != "string"
    )
    full = expected.value(name)
    view = reader.get_slice(name)
    for index in [0, -1, (0, 1), (..., 1), (None, 0), (slice(None), None, 0), (0, ..., None), np.int64(1)]:
        assert_same_value(view[index], full[index], repr(index))
    with pytest.raises(IndexError):
        view[full.shape[0]]
    with pytest.raises(IndexError):
        view[0, 0, 0, 0]
    with pytest.raises(IndexError):
        view[[0, 1]]
    with pytest.raises(IndexError):
        view[..., ...]
    assert len(view) == full.shape[0]
    assert_same_value(np.asarray(view), full)


def test_state_file_with_foreign_absolute_paths_still_resolves(tmp_path):
    shutil.copytree(fastckpt.examples.model_dir(), tmp_path / "moved")
    (tmp_path / "moved" / "checkpoint").write_text(
        'model_checkpoint_path: "/old/machine/train/model.ckpt"\n'
        'all_model_checkpoint_paths: "/old/machine/train/model.ckpt"\n'
    )
    state = fastckpt.get_checkpoint_state(str(tmp_path / "moved"))
    assert state.model_checkpoint_path == str(tmp_path / "moved" / "model.ckpt")
    assert list(state.all_model_checkpoint_paths) == [str(tmp_path / "moved" / "model.ckpt")]
    reader = fastckpt.load_checkpoint(str(tmp_path / "moved"))
    np.testing.assert_array_equal(reader.get_tensor("v2"), [2.0])


def test_corrupt_state_file_is_data_loss(tmp_path):
    (tmp_path / "checkpoint").write_text("this is { not a checkpoint state")
    with pytest.raises(errors.DataLossError) as info:
        fastckpt.get_checkpoint_state(str(tmp_path))
    assert str(tmp_path / "checkpoint") in str(info.value)
    assert fastckpt.get_checkpoint_state(str(tmp_path / "empty")) is None


def test_checkpoint_exists():
    assert fastckpt.checkpoint_exists(fastckpt.examples.model_path())
    assert not fastckpt.checkpoint_exists(fastckpt.examples.model_path() + "-missing")


def test_cli_inspect_example():
    result = run_cli("inspect", "--example", "--tensor", "v1")
    assert result.returncode == 0, result.stderr
    assert "v1" in result.stdout and "float32" in result.stdout and "[1.]" in result.stdout


def test_cli_bad_input_is_one_line(tmp_path):
    result = run_cli("inspect", str(tmp_path / "missing.ckpt"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    (tmp_path / "bad.ckpt.index").write_bytes(b"\x00" * 100)
    result = run_cli("inspect", str(tmp_path / "bad.ckpt"))
    assert result.returncode == 2 and "bad.ckpt.index" in result.stderr and "Traceback" not in result.stderr


def test_read_tensors_into_fills_the_callers_arrays_in_one_pass(tmp_path):
    prefix = str(tmp_path / "ckpt")
    rng = np.random.default_rng(0)
    values = {
        "big": rng.standard_normal((1100, 1024)).astype(np.float32),  # more than one 4 MiB piece
        "small": np.arange(5, dtype=np.int64),
        "scalar": np.float64(2.5),
    }
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add_tensors(values)
        writer.add_slice("part", [4, 3], "0,2:-", np.ones((2, 3), np.float32))
        writer.add_slice("part", [4, 3], "2,2:-", np.zeros((2, 3), np.float32))
    reader = fastckpt.load_checkpoint(prefix)
    targets = {name: np.empty(np.shape(value), np.asarray(value).dtype) for name, value in values.items()}
    targets["part"] = np.full((4, 3), 7, np.float32)
    reader.read_tensors_into(targets)
    for name, target in targets.items():
        np.testing.assert_array_equal(target, reader.get_tensor(name), err_msg=name)

    # Every target is checked before anything is read.
    untouched = np.zeros(5, np.int64)
    with pytest.raises(errors.InvalidArgumentError, match="big"):
        reader.read_tensors_into({"small": untouched, "big": np.empty((1024, 1100), np.float32)})
    with pytest.raises(errors.InvalidArgumentError):
        reader.read_tensors_into({"small": np.empty(10, np.int64)[::2]})
    assert not untouched.any()
    with pytest.raises(errors.NotFoundError):
        reader.read_tensors_into({"missing": untouched})

    data = prefix + ".data-00000-of-00001"
    damaged = bytearray(open(data, "rb").read())
    damaged[(4 << 20) + 100] ^= 0xFF
    open(data, "wb").write(bytes(damaged))
    with pytest.raises(errors.DataLossError) as caught:
        fastckpt.load_checkpoint(prefix).read_tensors_into({"big": np.empty((1100, 1024), np.float32)})
    assert caught.value.tensor_name == "big" and caught.value.filename == data


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="huge-page alignment is done on Linux only")
def test_large_tensors_are_read_into_huge_page_aligned_memory(tmp_path):
    """A tensor of 4 MiB and more starts on a 2 MiB boundary, where the kernel can back it with transparent
    huge pages instead of faulting it 4 KiB at a time; smaller ones are plain numpy allocations."""
    prefix = str(tmp_path / "ckpt")
    values = {
        "large": np.arange(1 << 20, dtype=np.float32).reshape(1024, 1024),
        "small": np.arange(1000, dtype=np.float32).reshape(10, 100),
    }
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add_tensors(values)
    reader = fastckpt.load_checkpoint(prefix)
    for read in (reader.get_tensors(), {name: reader.get_tensor(name) for name in values}):
        np.testing.assert_array_equal(read["large"], values["large"])
        np.testing.assert_array_equal(read["small"], values["small"])
        assert read["large"].ctypes.data % (2 << 20) == 0
        for value in read.values():
            assert value.flags.writeable and value.flags.c_contiguous and value.flags.aligned


def test_get_arrays_gives_every_value_as_an_array_where_get_tensors_gives_scalars(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add("step", np.int64(7))
        writer.add("tag", b"run\0")  # a string scalar ending in NUL, which a numpy bytes array would drop
        writer.add("w", np.arange(4, dtype=np.float32))
    reader = fastckpt.NewCheckpointReader(prefix)
    arrays, tensors = reader.get_arrays(), reader.get_tensors()
    assert arrays["step"].shape == () and arrays["step"].dtype == np.int64 and arrays["step"][()] == 7
    assert arrays["tag"].dtype == object and arrays["tag"][()] == b"run\0"
    assert tensors["step"] == 7 and not isinstance(tensors["step"], np.ndarray) and tensors["tag"] == b"run\0"
    np.testing.assert_array_equal(arrays["w"], tensors["w"])
    assert reader.get_arrays(["tag"])["tag"][()] == b"run\0"


class _CountingCalls:
    """Stands in for the reader's extension object, recording each method called through it."""

    def __init__(self, inner, calls):
        self._inner, self._calls = inner, calls

    def __getattr__(self, name):
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            self._calls.append(name)
            return attribute(*args, **kwargs)

        return call


def test_get_tensor_crosses_into_the_extension_once(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add("w", np.arange(6, dtype=np.float32).reshape(2, 3))
        writer.add("names", ["a", "b"])
    reader = fastckpt.NewCheckpointReader(prefix)
    calls = []
    reader._checkpoint = _CountingCalls(reader._checkpoint, calls)
    np.testing.assert_array_equal(reader.get_tensor("w"), np.arange(6, dtype=np.float32).reshape(2, 3))
    assert calls == ["get"]
    calls.clear()
    assert list(reader.get_tensor("names")) == [b"a", b"b"]
    assert calls == ["get"]
