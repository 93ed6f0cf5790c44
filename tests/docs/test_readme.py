"""Every Python code block of README.md runs as written, in order, in a fresh directory holding the inputs the
README assumes; every `fastckpt` command of its command-line block runs there too. The README stays true by
construction."""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import fastckpt
import numpy as np
import pytest
from helpers.paths import ROOT
from helpers.processes import python_command, run_cli

README = ROOT / "README.md"


def _blocks(language: str):
    """``(line number, code)`` of each fenced block of ``language`` in the README."""
    text = README.read_text(encoding="utf-8")
    for match in re.finditer(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M):
        yield text.count("\n", 0, match.start()) + 2, match.group(1)


def _make_inputs(directory: Path) -> None:
    """What the README's examples open: the tutorial's checkpoint, a BERT-like embedding, a training
    directory, a vocabulary file, two runs to compare, and a model tf.keras 2 saved."""
    shutil.copytree(fastckpt.examples.model_dir(), directory / "model")
    with fastckpt.CheckpointWriter(directory / "bert" / "bert_model.ckpt") as writer:
        writer.add("bert/embeddings/word_embeddings", np.arange(2000 * 8, dtype=np.float32).reshape(2000, 8))
    saver = fastckpt.Saver()
    for step in (1000, 2000):
        values = {"v1": np.array([1.0], np.float32), "v2": np.array([2.0], np.float32), "global_step": np.int64(step)}
        saver.save(values, str(directory / "train_dir" / "model.ckpt"), global_step=step)
    (directory / "vocab.txt").write_text("the\nof\nand\n", encoding="utf-8")
    for run, v1 in (("run1", 1.0), ("run2", 1.0 + 1e-7)):
        fastckpt.Saver().save({"v1": np.array([v1], np.float32)}, str(directory / run / "model.ckpt"))
    _write_keras2_model(directory / "keras2")


# The model of the README's Keras section, as tf.keras 2 saves it (run apart: tf_keras takes the name keras).
_KERAS2_MODEL = """
import sys
import tf_keras as keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
model.save_weights(sys.argv[1] + "/weights/w")
model.save(sys.argv[1] + "/saved_model")
"""


def _write_keras2_model(directory: Path) -> None:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(python_command(_KERAS2_MODEL, directory), capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


def _run_python_blocks(directory: Path):
    """Runs the README's Python blocks in order in ``directory``; returns the first failure's description."""
    namespace = {"__name__": "__readme__"}
    previous = Path.cwd()
    os.chdir(directory)
    try:
        for line, code in _blocks("python"):
            try:
                exec(compile(code, f"README.md, block at line {line}", "exec"), namespace)
            except Exception as error:  # noqa: BLE001 - any failure of the README is reported with its block
                return f"README.md block at line {line} fails: {type(error).__name__}: {error}"
    finally:
        os.chdir(previous)
    return None


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("readme")
    _make_inputs(directory)
    return directory, _run_python_blocks(directory)


def test_python_blocks_run_as_written(readme_run):
    directory, failure = readme_run
    assert len(list(_blocks("python"))) >= 5
    assert failure is None, failure
    # What the examples say they leave behind.
    assert fastckpt.latest_checkpoint(str(directory / "train")) == str(directory / "train" / "model.ckpt-6002")
    assert (directory / "serving" / "frozen.pb").is_file()


def _commands():
    for _, block in _blocks("sh"):
        for line in block.splitlines():
            if line.startswith("fastckpt "):
                yield line.split("#")[0].strip()


@pytest.mark.parametrize("command", list(_commands()))
def test_command_line_examples_run(readme_run, command):
    # The commands use what the Python examples wrote (train/, serving/) beside the inputs.
    directory, _ = readme_run
    argv = shlex.split(command)
    result = run_cli(*argv[1:], cwd=directory)
    allowed = (0, 1) if argv[1] == "diff" else (0,)  # diff exits with 1 when the checkpoints differ
    assert result.returncode in allowed, (command, result.stdout, result.stderr)


def test_what_the_examples_wrote_loads_in_tensorflow(readme_run):
    from helpers.tensorflow_oracle import tensorflow_or_skip

    tf = tensorflow_or_skip()
    directory, failure = readme_run
    assert failure is None, failure
    graph_def = tf.compat.v1.GraphDef.FromString((directory / "serving" / "frozen.pb").read_bytes())
    with tf.Graph().as_default() as graph:
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as sess:
            assert sess.run("add:0").tolist() == [3.0]
    with tf.Graph().as_default() as graph:
        with tf.compat.v1.Session(graph=graph) as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(directory / "export_dir"))
            output = meta.signature_def["serving_default"].outputs["w"].name
            assert sess.run(output).tolist() == [[1.0, 1.0], [1.0, 1.0]]
