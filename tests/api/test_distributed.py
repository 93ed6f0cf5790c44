"""One checkpoint saved by several processes through torch.distributed (gloo on loopback, processes spawned
here): each writes its part, one merges, TensorFlow reads the partitioned tensors whole; max_to_keep across
steps; restores of each process's own rows; a process killed in the middle of a save."""

import os
import re

import fastckpt
import numpy as np
import pytest
from helpers.processes import run_worker_group
from helpers.tensorflow_oracle import tensorflow_or_skip

pytest.importorskip("torch")

ROWS_PER_RANK = 3

WORKER = r"""
import datetime, json, os, signal, sys, threading, time
import numpy as np
import torch.distributed as dist
import fastckpt

directory, rank, world, port, scenario = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
dist.init_process_group(
    "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60)
)
ROWS = 3
full_shape = [ROWS * world, 4]


def values(step, rows=ROWS):
    first = rank * rows
    mine = (np.arange(first * 4, (first + rows) * 4, dtype=np.float32).reshape(rows, 4) + 1000 * step)
    return {
        "emb": fastckpt.Slice(mine, [rows * world, 4], [first, 0]),
        f"rank{rank}/bias": np.full(4, rank + step, np.float32),
        "step": np.int64(step),
    } if rank == 0 else {
        "emb": fastckpt.Slice(mine, [rows * world, 4], [first, 0]),
        f"rank{rank}/bias": np.full(4, rank + step, np.float32),
    }


saver = fastckpt.Saver(max_to_keep=2, process_group=dist.group.WORLD)
report = {}
if scenario == "steps":
    report["paths"] = [saver.save(values(step), directory + "/model.ckpt", global_step=step) for step in (1, 2, 3)]
    report["last"] = saver.last_checkpoints
elif scenario == "async":
    group = dist.new_group(backend="gloo")  # the background thread's collectives have a group of their own
    saver = fastckpt.Saver(max_to_keep=2, process_group=group)
    futures = [saver.save_async(values(step), directory + "/model.ckpt", global_step=step) for step in (1, 2)]
    report["paths"] = [future.result() for future in futures]
elif scenario == "restore":
    latest = fastckpt.latest_checkpoint(directory)
    rows = fastckpt.Slice(np.zeros((ROWS, 4), np.float32), full_shape, [rank * ROWS, 0])
    saver.restore(latest, into={"emb": rows})
    sliced = fastckpt.load_checkpoint(latest).get_slice("emb")[rank * ROWS : (rank + 1) * ROWS]
    report["rows"] = rows.value.tolist()
    report["sliced"] = sliced.tolist()
elif scenario == "duplicate":
    try:
        saver.save({"shared": np.ones(2, np.float32)}, directory + "/model.ckpt", global_step=1)
    except fastckpt.errors.InvalidArgumentError as error:
        report["error"] = str(error)
elif scenario == "die":
    saver.save(values(1), directory + "/model.ckpt", global_step=1)
    big = {f"rank{rank}/big{i}": np.full((1024, 1024), i, np.float32) for i in range(64)}
    if rank == world - 1:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()
    started = time.monotonic()
    try:
        saver.save({**values(2), **big}, directory + "/model.ckpt", global_step=2)
        report["saved"] = True
    except fastckpt.errors.AbortedError as error:
        report["error"] = str(error)
    report["seconds"] = time.monotonic() - started
print("REPORT " + json.dumps(report), flush=True)
# Out without tearing the group down: gloo's teardown races the other processes' (a process can abort in it,
# "terminate called without an active exception"), which is torch's business, not what is tested here.
os._exit(0)
"""


def run_group(directory, world, scenario, timeout=180):
    """Runs the worker in ``world`` processes; returns each one's (exit code, report, stderr)."""
    return run_worker_group(WORKER, directory, world, scenario, timeout, f"the group of {world} in {scenario}")


def expected_emb(world, step):
    return np.arange(ROWS_PER_RANK * world * 4, dtype=np.float32).reshape(-1, 4) + 1000 * step


def files_of(directory):
    return sorted(os.listdir(directory))


@pytest.mark.parametrize("world", [2, 4])
def test_the_processes_save_one_checkpoint_that_tensorflow_reads_whole(tmp_path, world):
    tf = tensorflow_or_skip()
    results = run_group(tmp_path, world, "steps")
    for code, report, err in results:
        assert code == 0, err
        assert report["paths"] == [str(tmp_path / f"model.ckpt-{step}") for step in (1, 2, 3)]
        # Every process knows the history process 0 keeps.
        assert report["last"] == [str(tmp_path / "model.ckpt-2"), str(tmp_path / "model.ckpt-3")]
    latest = tf.train.latest_checkpoint(str(tmp_path))
    assert latest == str(tmp_path / "model.ckpt-3")
    reader = tf.train.load_checkpoint(latest)
    np.testing.assert_array_equal(reader.get_tensor("emb"), expected_emb(world, 3))
    for rank in range(world):
        np.testing.assert_array_equal(reader.get_tensor(f"rank{rank}/bias"), np.full(4, rank + 3, np.float32))
    assert reader.get_tensor("step") == 3
    # max_to_keep=2 across steps; one index, the parts' data files renamed into the checkpoint, no parts left.
    assert files_of(tmp_path) == sorted(
        ["checkpoint"]
        + [f"model.ckpt-{step}.index" for step in (2, 3)]
        + [f"model.ckpt-{step}.meta" for step in (2, 3)]
        + [f"model.ckpt-{step}.data-{shard:05d}-of-{world:05d}" for step in (2, 3) for shard in range(world)]
    )
    state = fastckpt.get_checkpoint_state(str(tmp_path))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["model.ckpt-2", "model.ckpt-3"]
    # The meta graph holds the variables of every process, partitioned ones at their full shape.
    saver = fastckpt.import_meta_graph(latest + ".meta")
    restored = saver.restore(latest)
    np.testing.assert_array_equal(restored["emb"], expected_emb(world, 3))
    assert sorted(restored) == sorted(["emb", "step"] + [f"rank{rank}/bias" for rank in range(world)])

    # Each process restores its own rows only.
    for rank, (code, report, err) in enumerate(run_group(tmp_path, world, "restore")):
        assert code == 0, err
        rows = expected_emb(world, 3)[rank * ROWS_PER_RANK : (rank + 1) * ROWS_PER_RANK]
        np.testing.assert_array_equal(np.array(report["rows"], np.float32), rows)
        np.testing.assert_array_equal(np.array(report["sliced"], np.float32), rows)


def test_async_saves_of_a_group(tmp_path):
    tf = tensorflow_or_skip()
    for code, report, err in run_group(tmp_path, 2, "async"):
        assert code == 0, err
        assert report["paths"] == [str(tmp_path / "model.ckpt-1"), str(tmp_path / "model.ckpt-2")]
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-2"))
    np.testing.assert_array_equal(reader.get_tensor("emb"), expected_emb(2, 2))


def test_a_tensor_saved_whole_by_two_processes_is_an_error_in_each(tmp_path):
    for code, report, err in run_group(tmp_path, 2, "duplicate"):
        assert code == 0, err
        assert "tensor 'shared' is saved by rank 0 and by rank 1" in report["error"]
    assert fastckpt.latest_checkpoint(str(tmp_path)) is None
    assert not any(name.endswith(".index") for name in os.listdir(tmp_path))


def test_a_process_killed_in_a_save_aborts_it_everywhere_and_the_next_save_clears_it(tmp_path):
    results = run_group(tmp_path, 2, "die")
    assert results[1][0] == -9
    code, report, err = results[0]
    assert code == 0, err
    assert "saved" not in report, "the save of the killed process's group completed"
    assert "the save of" in report["error"] and "model.ckpt-2" in report["error"]
    assert report["seconds"] < 60  # detected, not waited out
    # No index for the step; the previous checkpoint stays the latest.
    assert not os.path.exists(tmp_path / "model.ckpt-2.index")
    assert fastckpt.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-1")
    np.testing.assert_array_equal(fastckpt.load_variable(str(tmp_path / "model.ckpt-1"), "emb"), expected_emb(2, 1))
    # The next save (of a group started again) removes what the dead one left.
    for code, _, err in run_group(tmp_path, 2, "steps"):
        assert code == 0, err
    leftovers = [name for name in os.listdir(tmp_path) if re.search(r"_temp|\.tmp\.|model\.ckpt-1\.", name)]
    assert leftovers == []


def test_a_group_saves_into_an_object_store(s3_bucket):
    url = f"s3://{s3_bucket}/run"
    for code, report, err in run_group(url, 2, "steps"):
        assert code == 0, err
        assert report["paths"][-1] == f"{url}/model.ckpt-3"
    assert fastckpt.latest_checkpoint(url) == f"{url}/model.ckpt-3"
    reader = fastckpt.load_checkpoint(f"{url}/model.ckpt-3")
    np.testing.assert_array_equal(reader.get_tensor("emb"), expected_emb(2, 3))
    names = fastckpt._fastckpt.Stores().list_directory(url)
    assert not [name for name in names if "_temp" in name]
    assert sorted(name for name in names if name.endswith(".index")) == ["model.ckpt-2.index", "model.ckpt-3.index"]
