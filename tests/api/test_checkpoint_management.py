"""The cases of TensorFlow's own tests of checkpoint_management and the Saver (checkpoint_management_test.py,
saver_test.py), asked of fastckpt: state files with absolute and relative paths, names that collide with
the state file, restores from relative training directories, checkpoint_exists, and the errors TensorFlow's
tests expect."""

import os

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from fastckpt.protos import CheckpointState
from google.protobuf import text_format


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_save_path_named_like_the_state_file_collides(in_tmp):
    os.mkdir("train")
    values = {"a": np.float32(0.0)}
    with pytest.raises(ValueError, match="collides with"):
        fastckpt.Saver().save(values, os.path.join("train", "checkpoint"))
    # With a step, or sharded with a step, the files are named checkpoint-<step>: no collision.
    fastckpt.Saver().save(values, os.path.join("train", "checkpoint"), global_step=1)
    assert fastckpt.latest_checkpoint("train") is not None
    fastckpt.Saver(sharded=True).save(values, os.path.join("train", "checkpoint"), global_step=2)
    assert fastckpt.latest_checkpoint("train") == os.path.join("train", "checkpoint-2")
    # Sharded without a step too, as TensorFlow allows: a V2 checkpoint's files are checkpoint.index and .data-*.
    fastckpt.Saver(sharded=True).save(values, os.path.join("train", "checkpoint"))
    assert fastckpt.latest_checkpoint("train") == os.path.join("train", "checkpoint")
    assert fastckpt.load_variable("train", "a") == 0.0
    # By hand, a checkpoint named like the state file is still refused: it may be a V1 one, that very file.
    with pytest.raises(ValueError, match="collides with the state file"):
        fastckpt.update_checkpoint_state("train", os.path.join("train", "checkpoint"))


def test_restore_from_a_relative_training_directory(in_tmp):
    os.mkdir("train")
    saver = fastckpt.Saver({"v0": "v0"})
    for step in range(3):
        saver.save({"v0": np.float32(step)}, os.path.join("train", "snapshot"), global_step=step)
    name = fastckpt.latest_checkpoint("train")
    assert name == os.path.join("train", "snapshot-2")
    assert fastckpt.Saver({"v0": "v0"}).restore(name)["v0"] == 2.0


def test_state_with_absolute_and_relative_paths(in_tmp):
    os.mkdir("train")
    abs_path = os.path.join(str(in_tmp), "model-0")
    rel_path = os.path.join("train", "model-2")
    fastckpt.update_checkpoint_state("train", rel_path, all_model_checkpoint_paths=[abs_path, rel_path])
    state = fastckpt.get_checkpoint_state("train")
    assert state.model_checkpoint_path == rel_path
    assert list(state.all_model_checkpoint_paths) == [abs_path, rel_path]
    # A path-like directory, as TensorFlow's testFSPath.
    assert fastckpt.get_checkpoint_state(in_tmp / "train").model_checkpoint_path == str(in_tmp / "train" / "model-2")


def test_save_relative_paths_writes_relative_and_reads_absolute(in_tmp):
    save_dir = str(in_tmp)
    fastckpt.update_checkpoint_state(
        save_dir,
        os.path.join(save_dir, "model-2"),
        all_model_checkpoint_paths=["model-0", os.path.join(save_dir, "model-2")],
        save_relative_paths=True,
    )
    written = text_format.Parse((in_tmp / "checkpoint").read_text(), CheckpointState())
    assert written.model_checkpoint_path == "model-2"
    assert list(written.all_model_checkpoint_paths) == ["model-0", "model-2"]
    state = fastckpt.get_checkpoint_state(save_dir)
    assert state.model_checkpoint_path == os.path.join(save_dir, "model-2")
    assert list(state.all_model_checkpoint_paths) == [
        os.path.join(save_dir, "model-0"),
        os.path.join(save_dir, "model-2"),
    ]


def test_an_empty_state_file_is_a_value_error(in_tmp):
    (in_tmp / "checkpoint").write_text("")
    with pytest.raises(ValueError):
        fastckpt.get_checkpoint_state(str(in_tmp))
    with pytest.raises(errors.InvalidCheckpointStateError):
        fastckpt.latest_checkpoint(str(in_tmp))


def test_dot_relative_paths_are_completed(in_tmp):
    (in_tmp / "checkpoint").write_text(
        'model_checkpoint_path: "./model.ckpt-687529"\n'
        'all_model_checkpoint_paths: "./model.ckpt-687500"\n'
        'all_model_checkpoint_paths: "./model.ckpt-687529"\n'
    )
    state = fastckpt.get_checkpoint_state(str(in_tmp))
    assert state.model_checkpoint_path == os.path.join(str(in_tmp), "./model.ckpt-687529")
    assert list(state.all_model_checkpoint_paths) == [
        os.path.join(str(in_tmp), "./model.ckpt-687500"),
        os.path.join(str(in_tmp), "./model.ckpt-687529"),
    ]


@pytest.mark.parametrize("sharded", [False, True])
def test_checkpoint_exists_once_saved(in_tmp, sharded):
    path = str(in_tmp / f"sharded-{sharded}")
    assert not fastckpt.checkpoint_exists(path)
    prefix = fastckpt.Saver(sharded=sharded).save({"v": np.float32(1.0)}, path)
    assert fastckpt.checkpoint_exists(prefix)
    assert fastckpt.checkpoint_exists(fastckpt.latest_checkpoint(str(in_tmp)))


def test_max_to_keep_deletes_the_oldest_and_the_state_follows(in_tmp):
    saver = fastckpt.Saver(max_to_keep=2)
    paths = [saver.save({"v": np.float32(i)}, str(in_tmp / "model"), global_step=i) for i in range(3)]
    assert saver.last_checkpoints == paths[1:]
    assert not fastckpt.checkpoint_exists(paths[0]) and not os.path.exists(paths[0] + ".meta")
    assert all(fastckpt.checkpoint_exists(p) for p in paths[1:])
    state = fastckpt.get_checkpoint_state(str(in_tmp))
    assert state.model_checkpoint_path == paths[2] and list(state.all_model_checkpoint_paths) == paths[1:]
    # max_to_keep=None keeps every checkpoint; the state file then names the newest alone, as TensorFlow's.
    keep_all = fastckpt.Saver(max_to_keep=None)
    kept = [keep_all.save({"v": np.float32(i)}, str(in_tmp / "all"), global_step=i) for i in range(3)]
    assert all(fastckpt.checkpoint_exists(p) for p in kept + paths[1:])
    state = fastckpt.get_checkpoint_state(str(in_tmp))
    assert state.model_checkpoint_path == kept[2] and list(state.all_model_checkpoint_paths) == [kept[2]]


def test_restore_of_a_wrong_shape_fails_unless_reshape(in_tmp):
    prefix = fastckpt.Saver().save({"var0": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(in_tmp / "model"))
    target = np.zeros((3, 2), np.float32)
    with pytest.raises(errors.InvalidArgumentError):
        fastckpt.Saver().restore(prefix, into={"var0": target})
    fastckpt.Saver(reshape=True).restore(prefix, into={"var0": target})
    assert target.tolist() == [[0, 1], [2, 3], [4, 5]]
