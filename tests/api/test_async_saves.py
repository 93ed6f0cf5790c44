"""Saver.save_async: values captured when it returns, one save in flight, the state file naming only complete
checkpoints, errors on the Future and again on the next call, saves finished at exit, and kills that lose
nothing completed."""

import os
import random
import re
import signal
import subprocess
import threading

import fastckpt
import numpy as np
import pytest
from helpers.processes import python_command
from helpers.tensorflow_oracle import tensorflow_or_skip

LEFTOVER = re.compile(r"(\.tempstate\.|\.tmp\.)\d+")


def layers(step, count=4, shape=(1024, 1024)):
    return {f"layer{i}/w": np.full(shape, step, np.float32) for i in range(count)}


def test_the_future_resolves_to_the_path_save_returns(tmp_path):
    saver = fastckpt.Saver(max_to_keep=2)
    future = saver.save_async(layers(1), str(tmp_path / "model.ckpt"), global_step=1)
    assert future.result() == str(tmp_path / "model.ckpt-1")
    blocking = saver.save(layers(2), str(tmp_path / "model.ckpt"), global_step=2)
    assert blocking == str(tmp_path / "model.ckpt-2")
    assert saver.save_async(layers(3), str(tmp_path / "model.ckpt"), global_step=3).result() == str(
        tmp_path / "model.ckpt-3"
    )
    assert saver.last_checkpoints == [str(tmp_path / "model.ckpt-2"), str(tmp_path / "model.ckpt-3")]
    assert fastckpt.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-3")
    assert not os.path.exists(tmp_path / "model.ckpt-1.index")
    np.testing.assert_array_equal(saver.restore(str(tmp_path / "model.ckpt-3"))["layer2/w"], layers(3)["layer2/w"])
    assert os.path.exists(tmp_path / "model.ckpt-3.meta")


def test_arrays_changed_right_after_the_call_do_not_reach_the_file(tmp_path):
    values = layers(7, count=8)
    strings = np.array([b"before", b"after?"], dtype=object)
    saver = fastckpt.Saver()
    for step in range(3):  # the later saves copy into the buffers of the one before
        for value in values.values():
            value[...] = step
        future = saver.save_async({**values, "names": strings}, str(tmp_path / "model.ckpt"), global_step=step)
        for value in values.values():
            value += 100
        strings[0] = b"changed"
        reader = fastckpt.load_checkpoint(future.result())
        for name in values:
            np.testing.assert_array_equal(reader.get_tensor(name), np.full((1024, 1024), step, np.float32))
        assert list(reader.get_tensor("names")) == [b"before" if step == 0 else b"changed", b"after?"]


def test_views_and_non_contiguous_arrays_are_captured(tmp_path):
    base = np.arange(64, dtype=np.int64).reshape(8, 8)
    values = {"transposed": base.T, "every_other_row": base[::2], "view": base[2:4]}
    expected = {name: value.copy() for name, value in values.items()}
    future = fastckpt.Saver().save_async(values, str(tmp_path / "model.ckpt"))
    base[...] = -1
    reader = fastckpt.load_checkpoint(future.result())
    for name, value in expected.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value)


def test_torch_tensors_changed_in_place_after_the_call_do_not_reach_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    import fastckpt.torch

    weight = torch.ones(512, 512, dtype=torch.bfloat16)
    future = fastckpt.Saver().save_async({"w": weight}, str(tmp_path / "model.ckpt"))
    with torch.no_grad():
        weight.mul_(3)
    restored = fastckpt.torch.load(future.result())["w"]
    assert restored.dtype == torch.bfloat16
    assert torch.equal(restored, torch.ones(512, 512, dtype=torch.bfloat16))


def test_one_save_is_in_flight_at_a_time(tmp_path):
    saver = fastckpt.Saver(max_to_keep=5)
    futures = []
    for step in range(4):
        futures.append(saver.save_async(layers(step), str(tmp_path / "model.ckpt"), global_step=step))
        # A save_async returns only once the save before it has finished.
        assert all(future.done() for future in futures[:-1])
    saver.wait()
    assert all(future.done() for future in futures)
    assert [os.path.basename(p) for p in saver.last_checkpoints] == [f"model.ckpt-{s}" for s in range(4)]


def test_the_state_file_never_names_an_incomplete_checkpoint(tmp_path):
    saver = fastckpt.Saver(max_to_keep=2)
    stop = threading.Event()
    seen = []
    failures = []

    def watch():
        while not stop.is_set():
            latest = fastckpt.latest_checkpoint(str(tmp_path))
            if latest is None:
                continue
            try:
                values = fastckpt.load_checkpoint(latest).get_tensors()
            except fastckpt.errors.NotACheckpointError:
                # Deleted (by max_to_keep) between reading the state file and opening it: only an old one.
                if fastckpt.latest_checkpoint(str(tmp_path)) == latest:
                    failures.append(latest)
                continue
            step = int(latest.rsplit("-", 1)[1])
            if any(not np.all(value == step) for value in values.values()):
                failures.append(latest)
            seen.append(step)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for step in range(1, 9):
            saver.save_async(layers(step), str(tmp_path / "model.ckpt"), global_step=step)
        saver.wait()
    finally:
        stop.set()
        watcher.join()
    assert failures == []
    assert seen and seen == sorted(seen)


def test_an_error_is_raised_by_the_future_then_by_the_next_call(tmp_path):
    (tmp_path / "not_a_directory").write_text("a file")
    saver = fastckpt.Saver()
    future = saver.save_async(layers(1, count=1), str(tmp_path / "not_a_directory" / "model.ckpt"))
    with pytest.raises(fastckpt.errors.OpError) as on_future:
        future.result()
    assert "not_a_directory" in str(on_future.value)
    with pytest.raises(fastckpt.errors.OpError) as on_next_save:
        saver.save(layers(2, count=1), str(tmp_path / "model.ckpt"))
    assert on_next_save.value is on_future.value
    assert not os.path.exists(tmp_path / "model.ckpt.index")  # the save that raised it saved nothing
    # Raised once: the saver then saves again.
    assert saver.save(layers(2, count=1), str(tmp_path / "model.ckpt")) == str(tmp_path / "model.ckpt")

    future = saver.save_async(layers(3, count=1), str(tmp_path / "not_a_directory" / "model.ckpt"))
    with pytest.raises(fastckpt.errors.OpError) as on_wait:
        saver.wait()
    assert on_wait.value is future.exception()
    saver.wait()  # nothing left to raise


def test_bad_arguments_are_raised_by_the_call_itself(tmp_path):
    saver = fastckpt.Saver()
    with pytest.raises(fastckpt.errors.NotFoundError):
        fastckpt.Saver(["missing"]).save_async({"w": np.ones(2)}, str(tmp_path / "model.ckpt"))
    with pytest.raises(fastckpt.errors.InvalidArgumentError):
        saver.save_async({"w": np.ones(2)}, str(tmp_path / "checkpoint"))
    with pytest.raises(fastckpt.errors.InvalidArgumentError, match="No variables to save"):
        saver.save_async({}, str(tmp_path / "model.ckpt")).result()
    assert fastckpt.Saver(allow_empty=True).save_async({}, str(tmp_path / "model.ckpt")).result() is None


def test_durable_async_saves(tmp_path):
    saver = fastckpt.Saver(durable=True, max_to_keep=1)
    for step in range(2):
        saver.save_async(layers(step, count=2), str(tmp_path / "model.ckpt"), global_step=step)
    saver.wait()
    assert fastckpt.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-1")
    assert not os.path.exists(tmp_path / "model.ckpt-0.index")


EXIT_WITHOUT_WAITING = """
import sys
import numpy as np
import fastckpt

saver = fastckpt.Saver()
values = {f"layer{i}/w": np.full((4096, 4096), 5, np.float32) for i in range(4)}
saver.save_async(values, sys.argv[1] + "/model.ckpt", global_step=5)
"""


def test_a_save_in_flight_finishes_at_exit(tmp_path):
    subprocess.run(python_command(EXIT_WITHOUT_WAITING, tmp_path), check=True, timeout=120)
    latest = fastckpt.latest_checkpoint(str(tmp_path))
    assert latest == str(tmp_path / "model.ckpt-5")
    values = fastckpt.load_checkpoint(latest).get_tensors()
    assert sorted(values) == [f"layer{i}/w" for i in range(4)]
    assert all(np.all(value == 5) for value in values.values())


FAIL_WITHOUT_WAITING = """
import sys
import numpy as np
import fastckpt

fastckpt.Saver().save_async({"w": np.ones(4)}, sys.argv[1] + "/not_a_directory/model.ckpt")
"""


def test_a_failed_save_nobody_waited_for_is_reported_at_exit(tmp_path):
    (tmp_path / "not_a_directory").write_text("a file")
    result = subprocess.run(python_command(FAIL_WITHOUT_WAITING, tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "a save in the background failed, and nothing waited for it" in result.stderr
    assert "not_a_directory" in result.stderr


KILL_AFTER_SAVE_ASYNC = """
import os, signal, sys, time
import numpy as np
import fastckpt

directory, delay = sys.argv[1], float(sys.argv[2])
saver = fastckpt.Saver(max_to_keep=2)
step = (int(fastckpt.latest_checkpoint(directory).rsplit("-", 1)[1]) + 1) if fastckpt.latest_checkpoint(directory) else 0
values = {f"layer{i}/w": np.full((1024, 1024), step, np.float32) for i in range(16)}
saver.save(values, directory + "/model.ckpt", global_step=step)
values = {name: np.full_like(value, step + 1) for name, value in values.items()}
saver.save_async(values, directory + "/model.ckpt", global_step=step + 1)
time.sleep(delay)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_kill_right_after_save_async_returns_loses_no_completed_checkpoint(tmp_path):
    rng = random.Random(0)
    completed = []
    for _ in range(6):
        result = subprocess.run(python_command(KILL_AFTER_SAVE_ASYNC, tmp_path, rng.uniform(0.0, 0.05)), timeout=120)
        assert result.returncode == -signal.SIGKILL
        latest = fastckpt.latest_checkpoint(str(tmp_path))
        assert latest is not None
        step = int(latest.rsplit("-", 1)[1])
        completed.append(step)
        values = fastckpt.load_checkpoint(latest).get_tensors()
        assert len(values) == 16 and all(np.all(value == step) for value in values.values()), latest
    assert completed == sorted(completed)
    # The next save tidies what the kills left: temporary files, and files of checkpoints without an index.
    saver = fastckpt.Saver(max_to_keep=2)
    saver.save_async(layers(100), str(tmp_path / "model.ckpt"), global_step=100).result()
    assert [name for name in os.listdir(tmp_path) if LEFTOVER.search(name)] == []
    state = fastckpt.get_checkpoint_state(str(tmp_path))
    kept = {os.path.basename(path) for path in state.all_model_checkpoint_paths}
    prefixes = {re.sub(r"\.(index|meta|data-\d{5}-of-\d{5})$", "", name) for name in os.listdir(tmp_path)}
    assert prefixes - {"checkpoint"} == kept and len(kept) == 2


def test_parts_saved_in_the_background_merge_into_a_tensor_tensorflow_reads_whole(tmp_path):
    tf = tensorflow_or_skip()
    full = np.arange(40, dtype=np.float32).reshape(10, 4)
    saver = fastckpt.Saver()
    parts = []
    for index, (start, stop) in enumerate([(0, 6), (6, 10)]):
        part = full[start:stop].copy()
        values = {"emb": fastckpt.Slice(part, [10, 4], [start, 0]), f"bias{index}": np.full(4, index, np.float32)}
        parts.append(saver.save_async(values, str(tmp_path / f"part{index}"), write_state=False))
        part[...] = -1  # captured already
    merged = fastckpt.merge_checkpoints([future.result() for future in parts], str(tmp_path / "model.ckpt"))
    reader = tf.train.load_checkpoint(merged)
    assert reader.get_variable_to_shape_map()["emb"] == [10, 4]
    np.testing.assert_array_equal(reader.get_tensor("emb"), full)
    np.testing.assert_array_equal(reader.get_tensor("bias1"), np.ones(4, np.float32))
    rows = fastckpt.Slice(np.zeros((3, 2), np.float32), [10, 4], [5, 1])
    saver.restore(merged, into={"emb": rows})
    np.testing.assert_array_equal(rows.value, full[5:8, 1:3])
