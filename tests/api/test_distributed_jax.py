"""One checkpoint saved by two processes of JAX's multi-process runtime (``jax.distributed.initialize`` on
loopback, CPU collectives over gloo), through the ``JaxCoordinator`` that fastckpt.distributed's docstring
documents: the test takes the class from the docstring and runs it as written, so the example stays true.
Each process saves its rows of a partitioned tensor and a tensor of its own; TensorFlow reads the latest
checkpoint whole; max_to_keep=1 keeps only it; no parts are left."""

import os
import re
import textwrap

import fastckpt
import fastckpt.distributed
import numpy as np
import pytest
from helpers.processes import run_worker_group
from helpers.tensorflow_oracle import tensorflow_or_skip

pytest.importorskip("jax")

WORLD = 2
ROWS_PER_RANK = 3
STEPS = (1, 2)
# The whole group, JAX's start-up included (about 3 s here); a hung group is killed, not waited out.
GROUP_TIMEOUT = 50

WORKER = r"""
import json, sys
import numpy as np
import jax

directory, rank, world, port, example = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
# gloo is the default from jax 0.4.3x on; said explicitly, for the versions where CPU collectives were off.
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}",
    num_processes=world,
    process_id=rank,
    initialization_timeout=30,
    heartbeat_timeout_seconds=20,
    shutdown_timeout_seconds=20,
)
import fastckpt
import fastckpt.distributed

namespace = {"fastckpt": fastckpt}
exec(example, namespace)  # the docstring's example, as written
assert isinstance(namespace["saver"], fastckpt.Saver)
coordinator = namespace["JaxCoordinator"]()
ROWS = 3
full_shape = [ROWS * world, 4]


def values(step):
    first = rank * ROWS
    mine = np.arange(first * 4, (first + ROWS) * 4, dtype=np.float32).reshape(ROWS, 4) + 1000 * step
    tensors = {"emb": fastckpt.Slice(mine, full_shape, [first, 0]), f"rank{rank}/bias": np.full(4, rank + step, np.float32)}
    if rank == 0:
        tensors["step"] = np.int64(step)
    return tensors


report = {
    "rank": coordinator.rank,
    "world_size": coordinator.world_size,
    "is_coordinator": isinstance(coordinator, fastckpt.distributed.Coordinator),
    # Values of different sizes (the padding of the example's all_gather), in rank order.
    "gathered": coordinator.all_gather({"rank": rank, "text": "x" * (100 * rank + 1)}),
}
saver = fastckpt.Saver(max_to_keep=1, process_group=coordinator)
report["paths"] = [saver.save(values(step), directory + "/model.ckpt", global_step=step) for step in (1, 2)]
report["last"] = saver.last_checkpoints
coordinator.barrier()
rows = fastckpt.Slice(np.zeros((ROWS, 4), np.float32), full_shape, [rank * ROWS, 0])
saver.restore(fastckpt.latest_checkpoint(directory), into={"emb": rows})
report["rows"] = rows.value.tolist()
print("REPORT " + json.dumps(report), flush=True)
"""


def jax_example() -> str:
    """The code block of fastckpt.distributed's docstring that follows its sentence on JAX, dedented."""
    doc = fastckpt.distributed.__doc__ or ""
    match = re.search(r"JAX's multi-process runtime.*?::\n\n((?:[ \t]+\S[^\n]*\n|[ \t]*\n)+)", doc, flags=re.S)
    assert match, "fastckpt.distributed's docstring no longer has the JAX example after its sentence on JAX"
    code = textwrap.dedent(match.group(1))
    assert "class JaxCoordinator" in code and "process_group=JaxCoordinator()" in code, code
    return code


def run_group(directory):
    """Runs the worker in WORLD processes; returns each one's (exit code, report, stderr)."""
    example = jax_example()
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["JAX_PLATFORMS"] = "cpu"  # no accelerator plugin probed, on any machine
    return run_worker_group(WORKER, directory, WORLD, example, GROUP_TIMEOUT, "the JAX group", env)


def expected_emb(step):
    return np.arange(ROWS_PER_RANK * WORLD * 4, dtype=np.float32).reshape(-1, 4) + 1000 * step


def test_the_docstrings_jax_coordinator_saves_one_checkpoint_that_tensorflow_reads_whole(tmp_path):
    tf = tensorflow_or_skip()
    latest_path = str(tmp_path / f"model.ckpt-{STEPS[-1]}")
    results = run_group(tmp_path)
    for rank, (code, report, err) in enumerate(results):
        assert code == 0 and report is not None, err
        assert (report["rank"], report["world_size"], report["is_coordinator"]) == (rank, WORLD, True)
        assert report["gathered"] == [{"rank": r, "text": "x" * (100 * r + 1)} for r in range(WORLD)]
        assert report["paths"] == [str(tmp_path / f"model.ckpt-{step}") for step in STEPS]
        assert report["last"] == [latest_path]  # every process knows the history process 0 keeps
        rows = expected_emb(STEPS[-1])[rank * ROWS_PER_RANK : (rank + 1) * ROWS_PER_RANK]
        np.testing.assert_array_equal(np.array(report["rows"], np.float32), rows)

    assert tf.train.latest_checkpoint(str(tmp_path)) == latest_path
    reader = tf.train.load_checkpoint(latest_path)
    np.testing.assert_array_equal(reader.get_tensor("emb"), expected_emb(STEPS[-1]))
    for rank in range(WORLD):
        np.testing.assert_array_equal(reader.get_tensor(f"rank{rank}/bias"), np.full(4, rank + STEPS[-1], np.float32))
    assert reader.get_tensor("step") == STEPS[-1]
    assert sorted(reader.get_variable_to_shape_map()) == sorted(
        ["emb", "step"] + [f"rank{r}/bias" for r in range(WORLD)]
    )

    # max_to_keep=1: the state file names the latest alone; the step before and every part are gone.
    state = fastckpt.get_checkpoint_state(str(tmp_path))
    assert state.model_checkpoint_path == latest_path
    assert list(state.all_model_checkpoint_paths) == [latest_path]
    names = sorted(os.listdir(tmp_path))
    assert not [name for name in names if "_temp" in name], names
    assert names == sorted(
        ["checkpoint", f"model.ckpt-{STEPS[-1]}.index", f"model.ckpt-{STEPS[-1]}.meta"]
        + [f"model.ckpt-{STEPS[-1]}.data-{shard:05d}-of-{WORLD:05d}" for shard in range(WORLD)]
    )
