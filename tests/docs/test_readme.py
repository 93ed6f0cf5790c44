"""Every Python code block of README.md runs as written, in order, in a fresh directory holding the inputs the
README assumes; every `fastckpt` command of its command-line block runs there too. The README stays true by
construction."""

import ast
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tokenize
from pathlib import Path

import fastckpt
import numpy as np
import pytest
from helpers.paths import ROOT
from helpers.processes import python_command, run_cli, run_python

README = ROOT / "README.md"


def _blocks(language: str):
    """``(line number, code)`` of each fenced block of ``language`` in the README."""
    text = README.read_text(encoding="utf-8")
    for match in re.finditer(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M):
        yield text.count("\n", 0, match.start()) + 2, match.group(1)


# A BERT of one layer as Hugging Face's BertConfig gives it, for the checkpoint below.
BERT_CONFIG = dict(
    vocab_size=2000,
    hidden_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=16,
    type_vocab_size=2,
)


def _bert_shapes():
    """The tensors of that BERT in the names of Google's TensorFlow BERT (google-research/bert), and shapes."""
    hidden, intermediate = BERT_CONFIG["hidden_size"], BERT_CONFIG["intermediate_size"]
    shapes = {
        "bert/embeddings/word_embeddings": (BERT_CONFIG["vocab_size"], hidden),
        "bert/embeddings/position_embeddings": (BERT_CONFIG["max_position_embeddings"], hidden),
        "bert/embeddings/token_type_embeddings": (BERT_CONFIG["type_vocab_size"], hidden),
        "bert/pooler/dense/kernel": (hidden, hidden),
        "bert/pooler/dense/bias": (hidden,),
    }
    layer = "bert/encoder/layer_0/"
    for dense in ("attention/self/query", "attention/self/key", "attention/self/value", "attention/output/dense"):
        shapes[f"{layer}{dense}/kernel"], shapes[f"{layer}{dense}/bias"] = (hidden, hidden), (hidden,)
    shapes[f"{layer}intermediate/dense/kernel"] = (hidden, intermediate)
    shapes[f"{layer}intermediate/dense/bias"] = (intermediate,)
    shapes[f"{layer}output/dense/kernel"], shapes[f"{layer}output/dense/bias"] = (intermediate, hidden), (hidden,)
    for norm in ("bert/embeddings/LayerNorm", f"{layer}attention/output/LayerNorm", f"{layer}output/LayerNorm"):
        shapes[f"{norm}/gamma"] = shapes[f"{norm}/beta"] = (hidden,)
    return shapes


def _write_bert(prefix: Path) -> None:
    """That BERT as its pre-training saves it: random weights (the word embeddings 0, 1, 2, ...), each with
    Adam's adam_m and adam_v, and global_step."""
    rng = np.random.default_rng(0)
    values = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in _bert_shapes().items()}
    values["bert/embeddings/word_embeddings"] = np.arange(2000 * 8, dtype=np.float32).reshape(2000, 8)
    slots = {f"{name}/{slot}": np.zeros_like(value) for name, value in values.items() for slot in ("adam_m", "adam_v")}
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add_tensors({**values, **slots, "global_step": np.int64(1000)})


def _make_inputs(directory: Path) -> None:
    """What the README's examples open: the tutorial's checkpoint, a small BERT, a training directory, a
    vocabulary file, two runs to compare, and a model tf.keras 2 saved."""
    shutil.copytree(fastckpt.examples.model_dir(), directory / "model")
    _write_bert(directory / "bert" / "bert_model.ckpt")
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


def _commented_values(code: str):
    """``(expression, comment)`` of each line of ``code`` that is an expression followed by a comment, which
    the README means as the value it shows."""
    comments = {
        token.start[0]: token.string[1:].strip()
        for token in tokenize.generate_tokens(io.StringIO(code).readline)
        if token.type == tokenize.COMMENT
    }
    for statement in ast.parse(code).body:
        if isinstance(statement, ast.Expr) and statement.end_lineno in comments:
            yield ast.get_source_segment(code, statement), comments[statement.end_lineno]


def test_the_first_block_runs_anywhere_and_shows_its_values(tmp_path):
    # A reader who copies the first block has nothing but fastckpt: it runs in an empty directory, in a fresh
    # interpreter, and each value its comments show is the value it gives.
    _, code = next(_blocks("python"))
    shown = list(_commented_values(code))
    assert len(shown) >= 3, code
    program = code + "".join(f"\nprint(repr({expression}))" for expression, _ in shown)
    done = subprocess.run(python_command(program), capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [comment for _, comment in shown]
    assert list(tmp_path.iterdir()) == []


# Loads the converted BERT into transformers' BertModel, in a process of its own: BertModel loads an LLVM that
# aborts a process holding TensorFlow's (see helpers/migration_models.py).
_LOAD_INTO_BERT_MODEL = """
import json, sys
from safetensors.torch import load_file
from transformers import BertConfig, BertModel
model = BertModel(BertConfig(**json.loads(sys.argv[2])))
model.load_state_dict(load_file(sys.argv[1]), strict=True)
print(json.dumps(sorted(model.state_dict())))
"""


def test_the_bert_conversion_gives_what_bert_model_loads_with_kernels_transposed(readme_run):
    pytest.importorskip("transformers")
    from safetensors.numpy import load_file

    directory, failure = readme_run
    assert failure is None, failure
    original = fastckpt.load_checkpoint(str(directory / "bert" / "bert_model.ckpt")).get_tensors()
    converted = load_file(str(directory / "bert.safetensors"))
    # Every name and shape is BertModel's own, none missing or left over (the optimizer's state left out).
    loaded = run_python(_LOAD_INTO_BERT_MODEL, directory / "bert.safetensors", json.dumps(BERT_CONFIG))
    assert loaded == sorted(converted)
    # Each kernel (TensorFlow's [in, out]) is there transposed, as a Linear's [out, in] weight, and not as stored.
    stored = [value.tobytes() for value in converted.values()]
    kernels = [name for name in _bert_shapes() if name.endswith("/kernel")]
    assert len(kernels) == 7
    for name in kernels:
        assert np.ascontiguousarray(original[name].T).tobytes() in stored, name
        assert original[name].tobytes() not in stored, name
    np.testing.assert_array_equal(
        converted["encoder.layer.0.intermediate.dense.weight"],
        original["bert/encoder/layer_0/intermediate/dense/kernel"].T,
    )
    # Embedding tables are [vocabulary, hidden] in both: as stored.
    np.testing.assert_array_equal(
        converted["embeddings.word_embeddings.weight"], original["bert/embeddings/word_embeddings"]
    )


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
