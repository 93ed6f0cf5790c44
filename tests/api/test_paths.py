"""Paths users pass by mistake: a checkpoint's own files open it; files of other kinds say what they are."""

import shutil
import zipfile

import fastckpt
import numpy as np
import pytest
from fastckpt import errors


@pytest.fixture
def model_dir(tmp_path):
    directory = tmp_path / "model"
    shutil.copytree(fastckpt.examples.model_dir(), directory)
    return directory


@pytest.mark.parametrize("name", ["model.ckpt.index", "model.ckpt.data-00000-of-00001"])
def test_a_bundle_file_opens_its_checkpoint(model_dir, name):
    reader = fastckpt.NewCheckpointReader(model_dir / name)
    assert reader.path == str(model_dir / "model.ckpt")
    assert reader.get_tensor("v1").tolist() == [1.0]
    assert fastckpt.load_variable(str(model_dir / name), "v2").tolist() == [2.0]
    assert fastckpt.checkpoint_exists(str(model_dir / name))


def _not_a_checkpoint(path) -> errors.NotACheckpointError:
    with pytest.raises(errors.NotACheckpointError) as raised:
        fastckpt.NewCheckpointReader(path)
    error = raised.value
    assert isinstance(error, errors.NotFoundError) and isinstance(error, ValueError)
    assert error.filename == str(path)
    assert "corrupt" not in str(error) and "truncated" not in str(error)
    return error


def test_meta_graph_names_the_checkpoint_beside_it(model_dir):
    error = _not_a_checkpoint(model_dir / "model.ckpt.meta")
    assert "MetaGraphDef" in str(error) and str(model_dir / "model.ckpt") in str(error)
    assert not fastckpt.checkpoint_exists(str(model_dir / "model.ckpt.meta"))


def test_state_file_says_to_pass_the_directory(model_dir):
    error = _not_a_checkpoint(model_dir / "checkpoint")
    assert "state file" in str(error) and str(model_dir) in str(error)


def _write_npz(path):
    np.savez(path, a=np.zeros(2))


def _write_keras(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")


def _write_safetensors(path):
    header = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")


@pytest.mark.parametrize(
    "name, write, words",
    [
        ("weights.h5", lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64), "HDF5"),
        ("model.keras", _write_keras, "Keras"),
        ("arrays.npz", _write_npz, "numpy.load"),
        ("model.safetensors", _write_safetensors, "safetensors"),
        ("frozen.pb", lambda p: p.write_bytes(b"\n\x05\n\x01a\x12\x00"), "read_graph"),
        ("saved_model.pb", lambda p: p.write_bytes(b"\x08\x01"), "SavedModel directory"),
    ],
)
def test_other_formats_say_what_they_are(tmp_path, name, write, words):
    path = tmp_path / name
    write(path)
    error = _not_a_checkpoint(path)
    assert words in str(error), str(error)


def test_a_corrupt_checkpoint_is_still_called_corrupt(tmp_path):
    # Binary, as a table begins: text is no checkpoint (see test_reader_api).
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"\x00\x05not a table at all, just some bytes")
    with pytest.raises(errors.DataLossError, match="truncated"):
        fastckpt.NewCheckpointReader(path)


def test_missing_checkpoint_names_the_ones_beside_it(tmp_path):
    saver = fastckpt.Saver()
    saver.save({"v": np.zeros(1, np.float32)}, str(tmp_path / "model.ckpt"), global_step=7)
    error = _not_a_checkpoint(tmp_path / "model.ckpt")
    assert "model.ckpt-7" in str(error)


def test_missing_tensor_uses_tensorflows_words(model_dir):
    reader = fastckpt.NewCheckpointReader(model_dir / "model.ckpt")
    # TensorFlow's own tests match "<name> not found in checkpoint".
    for read in (reader.get_tensor, reader.get_slice, reader.view, lambda name: reader.get_tensors([name])):
        with pytest.raises(errors.NotFoundError, match="v3 not found in checkpoint") as raised:
            read("v3")
        assert raised.value.tensor_name == "v3"
        assert raised.value.filename == str(model_dir / "model.ckpt.index")
