"""The Saver workflows users bring from tf.compat.v1.train.Saver, checked with fastckpt alone."""

import os

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from helpers.checkpoints import FIXTURES


def test_save_two_variables_and_restore(tmp_path):
    saver = fastckpt.Saver()
    os.makedirs(tmp_path / "model")
    prefix = saver.save({"v1": [1.0], "v2": [2.0]}, str(tmp_path / "model" / "model.ckpt"))
    assert prefix == str(tmp_path / "model" / "model.ckpt")
    assert sorted(os.listdir(tmp_path / "model")) == [
        "checkpoint",
        "model.ckpt.data-00000-of-00001",
        "model.ckpt.index",
        "model.ckpt.meta",
    ]
    restored = fastckpt.Saver().restore(prefix)
    np.testing.assert_array_equal(restored["v1"] + restored["v2"], np.array([3.0], dtype=np.float32))
    assert fastckpt.latest_checkpoint(str(tmp_path / "model")) == prefix


def test_restore_under_other_names_and_partial_var_lists(tmp_path):
    prefix = fastckpt.Saver().save({"v1": [1.0], "v2": [2.0]}, str(tmp_path / "model.ckpt"))
    renamed = fastckpt.Saver({"v1": "other-v1", "v2": "other-v2"}).restore(prefix)
    assert sorted(renamed) == ["other-v1", "other-v2"]
    assert fastckpt.Saver(["v1"]).restore(prefix).keys() == {"v1"}
    only_v1 = fastckpt.Saver(["v1"]).save({"v1": [1.0], "v2": [2.0]}, str(tmp_path / "only.ckpt"))
    assert list(fastckpt.load_checkpoint(only_v1).get_variable_to_shape_map()) == ["v1"]
    with pytest.raises(errors.NotFoundError):
        fastckpt.Saver(["v3"]).restore(prefix)
    with pytest.raises(errors.NotFoundError):
        fastckpt.Saver(["v3"]).save({"v1": [1.0]}, str(tmp_path / "x.ckpt"))


def test_restore_into_existing_arrays(tmp_path):
    prefix = fastckpt.Saver().save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "m.ckpt"))
    target = np.zeros((2, 3), dtype=np.float32)
    fastckpt.Saver().restore(prefix, into={"w": target})
    np.testing.assert_array_equal(target, np.arange(6).reshape(2, 3))
    with pytest.raises(errors.InvalidArgumentError):
        fastckpt.Saver().restore(prefix, into={"w": np.zeros((3, 2), dtype=np.float32)})
    with pytest.raises(errors.InvalidArgumentError):
        fastckpt.Saver().restore(prefix, into={"w": np.zeros((2, 3), dtype=np.float64)})


def test_exponential_moving_average_restored_into_the_variable(tmp_path):
    ema = fastckpt.ExponentialMovingAverage(0.99)
    ema.apply({"v": np.float32(0.0)})
    ema.apply({"v": np.float32(10.0)})
    values = {"v": np.float32(10.0), **ema.averages()}
    prefix = fastckpt.Saver().save(values, str(tmp_path / "model.ckpt"))
    assert fastckpt.load_variable(prefix, "v/ExponentialMovingAverage") == np.float32(0.099999905)
    restored = fastckpt.Saver(ema.variables_to_restore(["v"])).restore(prefix)
    assert restored == {"v": np.float32(0.099999905)}


def test_ema_num_updates():
    ema = fastckpt.ExponentialMovingAverage(0.999, num_updates=0)  # decay becomes min(0.999, 1/10)
    ema.apply({"x": np.array([0.0], np.float32)})
    ema.apply({"x": np.array([1.0], np.float32)})
    np.testing.assert_allclose(ema.average("x"), [0.9], rtol=1e-6)


def save_steps(saver, directory, steps, **kwargs):
    return [saver.save({"v": [float(s)]}, str(directory / "model.ckpt"), global_step=s, **kwargs) for s in steps]


def test_keep_the_last_n(tmp_path):
    saver = fastckpt.Saver(max_to_keep=2)
    save_steps(saver, tmp_path, [1000, 2000, 3000])
    assert sorted(os.listdir(tmp_path)) == ["checkpoint"] + [
        f"model.ckpt-{s}{suffix}" for s in (2000, 3000) for suffix in (".data-00000-of-00001", ".index", ".meta")
    ]
    state = fastckpt.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == str(tmp_path / "model.ckpt-3000")
    assert list(state.all_model_checkpoint_paths) == [str(tmp_path / f"model.ckpt-{s}") for s in (2000, 3000)]
    assert len(state.all_model_checkpoint_timestamps) == 2
    assert fastckpt.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-3000")


def test_max_to_keep_holds_across_restarts(tmp_path):
    save_steps(fastckpt.Saver(max_to_keep=2), tmp_path, [1, 2])
    restarted = fastckpt.Saver(max_to_keep=2)
    save_steps(restarted, tmp_path, [3])
    assert restarted.last_checkpoints == [str(tmp_path / "model.ckpt-2"), str(tmp_path / "model.ckpt-3")]
    assert not os.path.exists(tmp_path / "model.ckpt-1.index")


def test_checkpoints_left_out_of_the_state_are_taken_up(tmp_path):
    """A saver killed between writing the state file and deleting the oldest checkpoint leaves that
    checkpoint out of the state; the next saver in the directory deletes it in turn."""
    save_steps(fastckpt.Saver(max_to_keep=2), tmp_path, [1, 2])
    fastckpt.update_checkpoint_state(str(tmp_path), str(tmp_path / "model.ckpt-2"), [str(tmp_path / "model.ckpt-2")])
    fastckpt.Saver(max_to_keep=10).save(
        {"v": [0.0]}, str(tmp_path / "other"), write_meta_graph=False, write_state=False
    )
    save_steps(fastckpt.Saver(max_to_keep=2), tmp_path, [3])
    indexes = sorted(f for f in os.listdir(tmp_path) if f.endswith(".index"))
    assert indexes == ["model.ckpt-2.index", "model.ckpt-3.index", "other.index"]


def test_keep_checkpoint_every_n_hours(tmp_path, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr("fastckpt.saving.retention.time.time", lambda: clock[0])
    saver = fastckpt.Saver(max_to_keep=1, keep_checkpoint_every_n_hours=1.0)
    for step in range(6):  # one save every 40 minutes
        clock[0] += 40 * 60
        saver.save({"v": [float(step)]}, str(tmp_path / "m"), global_step=step, write_meta_graph=False)
    kept = sorted(int(f.split("-")[1].split(".")[0]) for f in os.listdir(tmp_path) if f.endswith(".index"))
    # TensorFlow's rule: a checkpoint leaving the last max_to_keep is spared if it is newer than the next
    # keep time, which then moves on an hour. Saver made at 0 min, next keep time 60 min: step 0 (40 min)
    # goes; step 1 (80) is spared, next 120; step 2 (120) goes; step 3 (160) spared, next 180; step 4 (200)
    # spared, next 240; step 5 (240) is the newest.
    assert kept == [1, 3, 4, 5]


def test_pad_step_number_and_relative_paths(tmp_path):
    saver = fastckpt.Saver(pad_step_number=True, save_relative_paths=True)
    prefix = saver.save({"v": [1.0]}, str(tmp_path / "m"), global_step=42)
    assert prefix.endswith("m-00000042")
    text = (tmp_path / "checkpoint").read_text()
    assert 'model_checkpoint_path: "m-00000042"' in text and str(tmp_path) not in text


def test_failed_save_keeps_the_previous_checkpoint(tmp_path):
    saver = fastckpt.Saver(max_to_keep=1)
    save_steps(saver, tmp_path, [1])
    before = sorted(os.listdir(tmp_path))
    state_before = (tmp_path / "checkpoint").read_text()

    class Unconvertible:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("device lost")

    with pytest.raises(RuntimeError):
        saver.save({"a": np.ones(1000), "v": Unconvertible()}, str(tmp_path / "model.ckpt"), global_step=2)
    with pytest.raises(errors.InvalidArgumentError):
        saver.save({"v": np.zeros(2, dtype=[("x", "i4")])}, str(tmp_path / "model.ckpt"), global_step=3)
    assert sorted(os.listdir(tmp_path)) == before
    assert (tmp_path / "checkpoint").read_text() == state_before
    np.testing.assert_array_equal(fastckpt.load_variable(str(tmp_path), "v"), [1.0])


def test_sharded_save(tmp_path):
    values = {f"layer{i}": np.full((100, 10), i, dtype=np.float32) for i in range(5)}
    prefix = fastckpt.Saver(sharded=True, num_shards=3).save(values, str(tmp_path / "model.ckpt"))
    data_files = sorted(f for f in os.listdir(tmp_path) if ".data-" in f)
    assert data_files == [f"model.ckpt.data-0000{i}-of-00003" for i in range(3)]
    assert not any(".tempstate." in f for f in os.listdir(tmp_path))
    restored = fastckpt.Saver().restore(prefix)
    for name, value in values.items():
        np.testing.assert_array_equal(restored[name], value)


def test_deletion_stays_in_the_directory(tmp_path):
    """A state file naming checkpoints elsewhere never makes the Saver delete them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    fastckpt.Saver().save({"v": [1.0]}, str(outside / "precious"), write_state=False)
    train = tmp_path / "train"
    train.mkdir()
    fastckpt.update_checkpoint_state(str(train), str(outside / "precious"), [str(outside / "precious")])
    saver = fastckpt.Saver(max_to_keep=1)
    save_steps(saver, train, [1, 2])
    assert (outside / "precious.index").exists()


def test_max_to_keep_deletes_v1_shard_sets_and_sharded_v2_checkpoints_whole(tmp_path):
    """Which files are a checkpoint's is the core's to say: a V1 checkpoint of shards that the state file names
    (TensorFlow 0.x's sharded saves) and a sharded V2 checkpoint, deleted by max_to_keep, leave no file."""
    directory = tmp_path / "train"
    directory.mkdir()
    v1 = (FIXTURES / "v1_format" / "model.ckpt").read_bytes()
    for shard in range(2):
        (directory / f"model.ckpt-1-{shard:05d}-of-00002").write_bytes(v1)
    fastckpt.update_checkpoint_state(str(directory), str(directory / "model.ckpt-1-?????-of-00002"))
    assert fastckpt.checkpoint_exists(str(directory / "model.ckpt-1-?????-of-00002"))
    saver = fastckpt.Saver(sharded=True, num_shards=3, max_to_keep=1)
    values = {"w": np.ones(6, np.float32), "b": np.zeros(2, np.float32), "c": np.ones(1, np.float32)}
    for step in (2, 3):
        saver.save(values, str(directory / "model.ckpt"), global_step=step)
    names = sorted(os.listdir(directory))
    assert [name for name in names if not name.startswith("model.ckpt-3")] == ["checkpoint"], names
    assert fastckpt.latest_checkpoint(str(directory)) == str(directory / "model.ckpt-3")


def test_a_save_removes_the_files_of_its_checkpoints_that_have_no_index(tmp_path):
    """What a kill between a checkpoint's data files and its index leaves (data files of any shard count, the
    meta graph) goes at the next save into the directory; files of other names stay."""
    directory = tmp_path / "train"
    directory.mkdir()
    left = ["model.ckpt-3.data-00000-of-00001", "model.ckpt-3.data-00001-of-00002", "model.ckpt-3.meta"]
    others = ["other.ckpt-3.data-00000-of-00001", "model.ckpt-x.data-00000-of-00001", "model.ckpt-3.data-1"]
    for name in left + others:
        (directory / name).write_bytes(b"")
    fastckpt.Saver().save({"v": np.ones(1, np.float32)}, str(directory / "model.ckpt"), global_step=4)
    assert sorted(os.listdir(directory)) == sorted(
        ["checkpoint", "model.ckpt-4.index", "model.ckpt-4.data-00000-of-00001", "model.ckpt-4.meta", *others]
    )
