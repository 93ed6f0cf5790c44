"""Training jobs get killed: SIGKILL in the middle of Saver.save, over and over, never loses the last
completed checkpoint, never tears the state file, and leaves no pile of temporary files."""

import os
import random
import re
import subprocess
import time

import fastckpt
import numpy as np
import pytest
from helpers.processes import python_command
from helpers.tensorflow_oracle import tensorflow_or_skip

SAVE_FOREVER = """
import sys
import numpy as np
import fastckpt

directory, step = sys.argv[1], int(sys.argv[2])
saver = fastckpt.Saver(max_to_keep=3, sharded=step % 2 == 1)
print("ready", flush=True)
while True:
    values = {f"layer{i}/w": np.full((512, 1024), step, np.float32) for i in range(4)}
    values["step"] = np.int64(step)
    saver.save(values, directory + "/model.ckpt", global_step=step)
    step += 1
"""

LEFTOVER = re.compile(r"(\.tempstate\.|\.tmp\.)\d+")


def kill_saves(directory, rounds, seed=0):
    """Starts a saving loop and kills it at a random moment, `rounds` times, each restart continuing from the
    last checkpoint; checks after each kill that the latest checkpoint is whole. Returns the steps seen."""
    rng = random.Random(seed)
    steps = []
    next_step = 0
    for _ in range(rounds):
        process = subprocess.Popen(
            python_command(SAVE_FOREVER, directory, next_step), stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 1.0))
        process.kill()
        process.stdout.close()
        process.wait()
        latest = fastckpt.latest_checkpoint(str(directory))
        if latest is None:
            continue
        values = fastckpt.load_checkpoint(latest).get_tensors()
        step = int(values["step"])
        for name, value in values.items():
            assert np.all(value == step), (latest, name)
        assert latest.endswith(f"model.ckpt-{step}")
        saved = step >= next_step
        steps.append(step)
        next_step = step + 1
        if saved:
            # The process saved at least once, taking up the history (and what earlier kills left out of it):
            # max_to_keep=3, plus one a kill may leave between a save's state update and its deletion, or
            # between its index and its state update.
            indexes = [f for f in os.listdir(directory) if f.endswith(".index")]
            assert len(indexes) <= 4, sorted(indexes)
    return steps


def test_sigkill_during_saves_loses_nothing(tmp_path):
    steps = kill_saves(tmp_path, rounds=25)
    assert len(steps) >= 12 and steps == sorted(steps)
    # A save that completes clears the temporary files killed saves left behind.
    subprocess.run(
        python_command(
            "import sys, fastckpt; fastckpt.Saver(max_to_keep=3).save({'step': 0}, sys.argv[1] + '/model.ckpt', global_step=10**6)",
            tmp_path,
        ),
        check=True,
    )
    assert [f for f in os.listdir(tmp_path) if LEFTOVER.search(f)] == []
    state = fastckpt.get_checkpoint_state(str(tmp_path))
    assert len(state.all_model_checkpoint_paths) == 3
    # Exactly the complete checkpoints max_to_keep allows: no meta graph or data file of a checkpoint whose
    # index a kill deleted (or never wrote) is left.
    kept = {os.path.basename(path) for path in state.all_model_checkpoint_paths}
    files = set(os.listdir(tmp_path)) - {"checkpoint"}
    prefixes = {re.sub(r"\.(index|meta|data-\d{5}-of-\d{5})$", "", name) for name in files}
    assert prefixes == kept, sorted(files)
    for prefix in kept:
        assert f"{prefix}.index" in files
        assert fastckpt.load_checkpoint(str(tmp_path / prefix)).get_tensors()


def test_tensorflow_reads_the_last_checkpoint_after_kills(tmp_path):
    tf = tensorflow_or_skip()
    kill_saves(tmp_path, rounds=4, seed=1)
    latest = tf.train.latest_checkpoint(str(tmp_path))
    if latest is None:
        pytest.fail("no checkpoint was completed")
    reader = tf.train.load_checkpoint(latest)
    step = reader.get_tensor("step")
    np.testing.assert_array_equal(reader.get_tensor("layer0/w"), np.full((512, 1024), step, np.float32))
