"""Corrupt files: every flipped byte and every truncation gives a fastckpt error or the original values,
never a crash, a hang, a foreign exception or a silently wrong value."""

import glob
import os

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from helpers.checkpoints import assert_same_value

KINDS = ["all_dtypes", "partitioned_axis0", "v1_format"]


def read_everything(path):
    reader = fastckpt.NewCheckpointReader(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def checkpoint_files(expected):
    if os.path.isfile(expected.path):  # V1: one file
        return [expected.path]
    return sorted(glob.glob(expected.path + ".index") + glob.glob(expected.path + ".data-*"))


def assert_error_or_original(path, original, what):
    """Reading all of `path` either raises a fastckpt error naming a file, or gives the original values."""
    try:
        reader = fastckpt.NewCheckpointReader(path)
    except errors.DataLossError as err:
        assert err.filename, what
        return 1
    failures = 0
    for name in original:
        try:
            value = reader.get_tensor(name)
        except errors.DataLossError as err:
            assert err.filename and err.tensor_name == name, (what, name, err)
            failures += 1
            continue
        assert_same_value(value, original[name], f"{what}: {name}")
    return failures


def rewritten(path, variants):
    """Writes each variant of the file at `path` over it in turn, yielding its label; restores the file."""
    with open(path, "rb") as f:
        original = f.read()
    try:
        for label, content in variants(original):
            with open(path, "wb") as f:
                f.write(content)
            yield label
    finally:
        with open(path, "wb") as f:
            f.write(original)


def flipped(data):
    for offset in range(len(data)):
        corrupt = bytearray(data)
        corrupt[offset] ^= 0x20
        yield f"byte {offset} flipped", bytes(corrupt)


def truncated(data):
    for length in range(len(data)):
        yield f"truncated to {length} bytes", data[:length]


@pytest.mark.parametrize("kind", KINDS)
def test_every_byte_flip(kind, copy_fixture):
    expected = copy_fixture(kind)
    original = read_everything(expected.path)
    for path in checkpoint_files(expected):
        undetected = 0
        for label in rewritten(path, flipped):
            undetected += not assert_error_or_original(expected.path, original, f"{path}: {label}")
        # Only the bytes no reader needs may change without an error: the footer's padding and the empty
        # metaindex block of a table (64 bytes at most).
        assert undetected <= 64, (path, undetected)


@pytest.mark.parametrize("kind", KINDS)
def test_every_truncation(kind, copy_fixture):
    expected = copy_fixture(kind)
    original = read_everything(expected.path)
    for path in checkpoint_files(expected):
        for label in rewritten(path, truncated):
            assert assert_error_or_original(expected.path, original, f"{path}: {label}"), f"{path}: {label} unnoticed"


def test_checksum_mismatch_names_file_and_tensor(copy_fixture):
    expected = copy_fixture("tf1_saver_resource")
    data_file = glob.glob(expected.path + ".data-*")[0]
    data = bytearray(open(data_file, "rb").read())
    data[0] ^= 1
    open(data_file, "wb").write(data)
    reader = fastckpt.NewCheckpointReader(expected.path)
    broken = [name for name in expected.tensors if _raises_data_loss(reader, name)]
    assert len(broken) == 1
    with pytest.raises(errors.DataLossError, match="checksum") as info:
        reader.get_tensor(broken[0])
    assert info.value.filename == data_file
    assert broken[0] in str(info.value) and data_file in str(info.value)


def _raises_data_loss(reader, name):
    try:
        reader.get_tensor(name)
    except errors.DataLossError:
        return True
    return False


def test_missing_data_file_is_not_found(copy_fixture):
    expected = copy_fixture("tf1_saver_resource")
    for data_file in glob.glob(expected.path + ".data-*"):
        os.remove(data_file)
    reader = fastckpt.NewCheckpointReader(expected.path)
    with pytest.raises(errors.NotFoundError) as info:
        reader.get_tensor("v1")
    assert ".data-00000-of-00001" in info.value.filename


def test_a_data_file_shorter_than_its_index_needs_fails_the_open(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add_tensors({"a": np.zeros(100, np.float32), "b": np.ones(50, np.float32)})
    data_file = prefix + ".data-00000-of-00001"
    assert os.path.getsize(data_file) == 600
    with open(data_file, "r+b") as f:
        f.truncate(599)
    # Found at open, from the file's size, though listing the tensors reads no data.
    with pytest.raises(errors.DataLossError) as info:
        fastckpt.NewCheckpointReader(prefix)
    assert (info.value.filename, info.value.tensor_name) == (data_file, "b")
    assert "the data file holds 599 bytes, but the index needs 600" in str(info.value), str(info.value)
    assert "truncated" in str(info.value)


def test_garbage_index_is_data_loss(tmp_path):
    for content in [b"", b"\x00" * 47, b"\xff" * 48, os.urandom(4096)]:
        (tmp_path / "x.index").write_bytes(content)
        with pytest.raises(errors.DataLossError) as info:
            fastckpt.NewCheckpointReader(str(tmp_path / "x"))
        assert info.value.filename == str(tmp_path / "x.index")
