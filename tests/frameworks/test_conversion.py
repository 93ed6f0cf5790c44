"""fastckpt.convert and ``fastckpt convert``, checked against the formats' own readers: TensorFlow reads the
checkpoints (the sources TensorFlow wrote, and the checkpoints converted back), the ``safetensors`` package the
.safetensors files (one file, or Hugging Face's shards and their index), torch the .pt files and numpy the
.npz archives, bit for bit.

Covered: every dtype of a TF checkpoint into .safetensors (bfloat16 kept as BF16); shards and their index, back
into a checkpoint, and loaded by huggingface_hub and transformers; .npz and .pt both ways; the rules
(skip_optimizer on a TF1 Saver checkpoint trained by Adam, renames in order, transposes, dtype casts as ml_dtypes
and torch cast, names of a TF2 checkpoint); tensors larger than PART_BYTES in parts of rows, and a corrupt one
refused with nothing left at the destination; the memory a 2.6 GiB conversion takes; object stores; the
command line."""

import base64
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import fastckpt
import ml_dtypes
import numpy as np
import pytest
from fastckpt import conversion, errors
from helpers.checkpoints import Expected, assert_same_value
from helpers.processes import python_command, run_cli
from helpers.tensorflow_oracle import tf_save
from helpers.training_checkpoints import write_tf2_module_checkpoint

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
safetensors_torch = pytest.importorskip("safetensors.torch")
from safetensors import safe_open  # noqa: E402

# The dtypes safetensors has no name for: converting skips them with a warning.
NOT_IN_SAFETENSORS = {"int4", "uint4", "float8_e4m3b11fnuz", "float8_e4m3fnuz", "float8_e5m2fnuz", "complex128"}
# safetensors' dtype names (the header's) of numpy's.
SAFETENSORS_DTYPE = {
    "bool": "BOOL",
    "int8": "I8",
    "uint8": "U8",
    "int16": "I16",
    "uint16": "U16",
    "int32": "I32",
    "uint32": "U32",
    "int64": "I64",
    "uint64": "U64",
    "float16": "F16",
    "bfloat16": "BF16",
    "float32": "F32",
    "float64": "F64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "complex64": "C64",
}
# What safetensors.numpy loads (numpy has no bfloat16 or float8 of its own).
NUMPY_LOADS = {"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"} | {
    "float16",
    "float32",
    "float64",
    "complex64",
}
ATTRIBUTES = "/.ATTRIBUTES/VARIABLE_VALUE"


# --- helpers ----------------------------------------------------------------------------------------------------


def as_array(value):
    """A value TensorFlow's reader returned as an array; a string scalar (bytes) a 0-d object array."""
    if isinstance(value, bytes):
        array = np.empty((), dtype=object)
        array[()] = value
        return array
    return np.asarray(value)


def tf_read(tf, prefix):
    """``{name: array}`` of a checkpoint as TensorFlow's reader returns it."""
    reader = tf.train.load_checkpoint(str(prefix))
    return {name: as_array(reader.get_tensor(name)) for name in reader.get_variable_to_shape_map()}


def header(path):
    """The JSON header of a safetensors file, read by hand: {name: {dtype, shape, data_offsets}}."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(size))


def torch_as_numpy(tensor):
    """A torch tensor as numpy, bfloat16 and float8 as ml_dtypes' types (through their bits)."""
    name = str(tensor.dtype).removeprefix("torch.")
    if name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        carrier = torch.int16 if name == "bfloat16" else torch.uint8
        return tensor.contiguous().view(carrier).numpy().view(getattr(ml_dtypes, name))
    return tensor.numpy()


def assert_torch_equal(tensor, expected, name=""):
    """A torch tensor holds ``expected``: its dtype (by name), shape and bits."""
    expected = np.asarray(expected)
    assert str(tensor.dtype).removeprefix("torch.") == expected.dtype.name, (name, tensor.dtype, expected.dtype)
    assert_same_value(torch_as_numpy(tensor), expected, name)


def assert_safetensors_file(path, expected, strings=None):
    """The safetensors file at ``path`` holds exactly ``expected`` ({name: array}), as the safetensors package
    reads it (through numpy where numpy has the dtype, through torch always), and the header names the dtypes;
    ``strings`` ({name: object array}) ride in its metadata."""
    head = header(path)
    metadata = head.pop("__metadata__", {})
    assert sorted(head) == sorted(expected), path
    for name, value in expected.items():
        assert head[name]["dtype"] == SAFETENSORS_DTYPE[value.dtype.name], name
        assert head[name]["shape"] == list(value.shape), name
    by_numpy = safetensors_numpy.load_file(path) if all(v.dtype.name in NUMPY_LOADS for v in expected.values()) else {}
    if not by_numpy:  # safetensors.numpy refuses a whole file with one bfloat16 or float8 tensor
        with safe_open(path, framework="np") as f:
            by_numpy = {n: f.get_tensor(n) for n in f.keys() if expected[n].dtype.name in NUMPY_LOADS}
    for name, value in by_numpy.items():
        assert_same_value(value, expected[name], name)
    by_torch = safetensors_torch.load_file(path)
    assert sorted(by_torch) == sorted(expected)
    for name, value in by_torch.items():
        assert_torch_equal(value, expected[name], name)
    for name, value in (strings or {}).items():
        stored = json.loads(metadata[conversion.STRING_METADATA_PREFIX + name])
        assert stored["shape"] == list(value.shape), name
        assert [base64.b64decode(s) for s in stored["values"]] == list(value.reshape(-1)), name


def assert_same_tensors(actual, expected):
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert_same_value(actual[name], value, name)


def files_under(directory):
    return sorted(os.path.relpath(os.path.join(root, f), directory) for root, _, fs in os.walk(directory) for f in fs)


def random_bits(rng, dtype, shape):
    """An array of random bits of ``dtype`` (NaNs, infinities, subnormals and -0.0 among floats)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    return rng.integers(0, 256, count * dtype.itemsize, dtype=np.uint8).view(dtype).reshape(shape)


def mixed_tensors(rng):
    """Tensors of the common dtypes, a few with special float values."""
    floats = np.array([0.0, -0.0, 1.5, np.inf, -np.inf, np.nan, 1e-45, 3.4e38], np.float32)
    return {
        "embed/table": rng.standard_normal((200, 64), dtype=np.float32),
        "layer_0/kernel": rng.standard_normal((64, 96), dtype=np.float32),
        "layer_0/bias": floats,
        "layer_1/kernel": rng.standard_normal((96, 64)).astype(ml_dtypes.bfloat16),
        "layer_1/bias": np.arange(64, dtype=np.float16),
        "scale": np.float64(-2.5),
        "step": np.int64(7),
        "mask": rng.integers(0, 2, (33,)).astype(bool),
        "ids": rng.integers(-(2**31), 2**31, (50,), dtype=np.int32),
    }


@pytest.fixture(scope="module")
def tf_checkpoint(tf, tmp_path_factory):
    """A checkpoint TensorFlow wrote (SaveV2) of mixed_tensors, with a string tensor; (prefix, TF's values)."""
    tensors = mixed_tensors(np.random.default_rng(1))
    tensors["vocab"] = np.array([b"a", b"\xff\x00b", b""], dtype=object)
    prefix = tf_save(tf, tmp_path_factory.mktemp("mixed") / "model.ckpt", tensors)
    return prefix, tf_read(tf, prefix)


def numeric(values):
    return {name: v for name, v in values.items() if v.dtype != object}


# --- 1. TensorFlow checkpoints into .safetensors ----------------------------------------------------------------


def test_every_dtype_into_safetensors_as_tensorflow_read_it(tmp_path):
    expected = Expected("all_dtypes")  # TensorFlow wrote it; expected.value is what TensorFlow's reader returned
    out = tmp_path / "model.safetensors"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        count = fastckpt.convert(expected.path, out)
    skipped = sorted(re.search(r"skipping '([^']+)'", str(w.message))[1] for w in caught)
    assert skipped == sorted(n for n, t in expected.tensors.items() if t["dtype"] in NOT_IN_SAFETENSORS)
    kept = {n: t for n, t in expected.tensors.items() if t["dtype"] not in NOT_IN_SAFETENSORS}
    assert count == len(kept)
    tensors = {n: np.asarray(expected.value(n)) for n, t in kept.items() if t["dtype"] != "string"}
    strings = {n: as_array(expected.value(n)) for n, t in kept.items() if t["dtype"] == "string"}
    assert tensors["float/bfloat16"].dtype == ml_dtypes.bfloat16 and header(out)["float/bfloat16"]["dtype"] == "BF16"
    assert_safetensors_file(str(out), tensors, strings)
    assert files_under(tmp_path) == ["model.safetensors"]


def test_tf_train_checkpoint_into_safetensors(tf, tmp_path):
    """Variables saved by tf.train.Checkpoint (bfloat16 among them) under their checkpoint keys."""
    rng = np.random.default_rng(2)
    variables = {
        "w": tf.Variable(rng.standard_normal((5, 7), dtype=np.float32)),
        "b16": tf.Variable(tf.constant(random_bits(rng, np.uint16, (4, 3)).view(ml_dtypes.bfloat16))),
        "count": tf.Variable(np.int64(-3)),
        "half": tf.Variable(random_bits(rng, np.float16, (6,))),
    }
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt" / "model"))
    values = tf_read(tf, prefix)
    del values["_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert values["b16" + ATTRIBUTES].dtype == ml_dtypes.bfloat16
    out = tmp_path / "model.safetensors"
    fastckpt.convert(prefix, out, skip=[r"^_CHECKPOINTABLE_OBJECT_GRAPH$"])
    assert header(out)["b16" + ATTRIBUTES]["dtype"] == "BF16"
    assert_safetensors_file(str(out), values)


# --- 2. Hugging Face shards -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sharded_source(tf, tmp_path_factory):
    """A TF-written checkpoint of an MLP under torch's names (layers.N.weight/bias, a bfloat16 embedding, an int64
    buffer), about 600 KB; (prefix, TF's values)."""
    rng = np.random.default_rng(3)
    tensors = {"embed.weight": rng.standard_normal((100, 64)).astype(ml_dtypes.bfloat16)}
    for i in range(4):
        tensors[f"layers.{i}.weight"] = rng.standard_normal((64, 64), dtype=np.float32)
        tensors[f"layers.{i}.bias"] = rng.standard_normal(64, dtype=np.float32)
    tensors["head.weight"] = rng.standard_normal((1000, 64), dtype=np.float32)  # alone larger than a shard
    tensors["steps"] = np.int64(12345)
    prefix = tf_save(tf, tmp_path_factory.mktemp("sharded") / "model.ckpt", tensors)
    return prefix, tf_read(tf, prefix)


class Net(torch.nn.Module):
    """The torch module whose state dict sharded_source holds."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(100, 64, dtype=torch.bfloat16)
        self.layers = torch.nn.ModuleList(torch.nn.Linear(64, 64) for _ in range(4))
        self.head = torch.nn.Linear(64, 1000, bias=False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))


SHARD = 40_000  # bytes: the layers two by two, the embedding and the head alone


def test_shards_as_hugging_face_writes_them(tf, sharded_source, tmp_path):
    prefix, values = sharded_source
    out = tmp_path / "hf"
    assert fastckpt.convert(prefix, out, max_shard_size=SHARD) == len(values)
    files = files_under(out)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    count = len(shards)
    assert count >= 3
    assert shards == [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]
    assert files == sorted([*shards, "model.safetensors.index.json"])  # no leftovers
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in values.values())
    assert sorted(index["weight_map"]) == sorted(values)
    for shard in shards:
        held = {n: values[n] for n, f in index["weight_map"].items() if f == shard}
        # Each shard holds exactly the tensors the index puts in it, within max_shard_size unless one alone.
        assert len(held) == 1 or sum(v.nbytes for v in held.values()) <= SHARD, (shard, sorted(held))
        assert_safetensors_file(str(out / shard), held)

    # Back into a checkpoint, from the directory and from its index: TensorFlow reads the original.
    for source in (out, out / "model.safetensors.index.json"):
        back = tmp_path / "back" / source.name / "model.ckpt"
        assert fastckpt.convert(source, back) == len(values)
        assert_same_tensors(tf_read(tf, back), values)

    # huggingface_hub's loader of sharded directories fills the module the tensors came from, strictly.
    load_torch_model = pytest.importorskip("huggingface_hub").load_torch_model
    net = Net()
    load_torch_model(net, str(out), strict=True)
    for name, tensor in net.state_dict().items():
        assert_torch_equal(tensor, values[name], name)


def test_one_shard_is_model_safetensors_alone(tf, sharded_source, tmp_path):
    prefix, values = sharded_source
    out = tmp_path / "hf"
    fastckpt.convert(prefix, out, max_shard_size="5GB")
    assert files_under(out) == ["model.safetensors"]
    assert_safetensors_file(str(out / "model.safetensors"), values)
    back = tmp_path / "back"
    fastckpt.convert(out, back)
    assert_same_tensors(tf_read(tf, back), values)


def test_strings_ride_in_the_first_shards_metadata(tf, tf_checkpoint, tmp_path):
    prefix, values = tf_checkpoint
    out = tmp_path / "hf"
    fastckpt.convert(prefix, out, max_shard_size=20_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert "vocab" not in index["weight_map"]
    first = header(out / sorted(set(index["weight_map"].values()))[0])["__metadata__"]
    assert json.loads(first[conversion.STRING_METADATA_PREFIX + "vocab"])["shape"] == [3]
    fastckpt.convert(out, tmp_path / "back")
    assert_same_tensors(tf_read(tf, tmp_path / "back"), values)


def test_sizes_as_hugging_face_parses_them():
    assert conversion.parse_size("5GB") == 5 * 10**9
    assert conversion.parse_size("500MiB") == 500 << 20
    assert conversion.parse_size("1.5 kb") == 1500
    assert conversion.parse_size(123) == 123
    with pytest.raises(errors.InvalidArgumentError, match="not a size"):
        conversion.parse_size("5 parsecs")


TRANSFORMERS_CHILD = r"""
import json, os, shutil, sys
import numpy as np, torch
import fastckpt
from transformers import BertConfig, BertModel

root = sys.argv[1]
torch.manual_seed(0)
config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=37, max_position_embeddings=64)
model = BertModel(config)
model.save_pretrained(os.path.join(root, "saved"), max_shard_size="20KB")
# transformers' shards -> a checkpoint -> our shards, which transformers loads.
fastckpt.convert(os.path.join(root, "saved"), os.path.join(root, "ckpt", "model.ckpt"))
fastckpt.convert(os.path.join(root, "ckpt", "model.ckpt"), os.path.join(root, "ours"), max_shard_size="20KB")
shutil.copy(os.path.join(root, "saved", "config.json"), os.path.join(root, "ours", "config.json"))
loaded, info = BertModel.from_pretrained(os.path.join(root, "ours"), output_loading_info=True)
expected, got = model.state_dict(), loaded.state_dict()
report = {
    "info": {k: sorted(map(str, v)) for k, v in info.items()},
    "shards": sorted(os.listdir(os.path.join(root, "ours"))),
    "differ": [n for n in expected if n not in got or not torch.equal(expected[n], got[n])],
    "tensorflow_imported": "tensorflow" in sys.modules,
}
np.savez(os.path.join(root, "state.npz"), **{n: t.numpy() for n, t in expected.items()})
with open(os.path.join(root, "report.json"), "w") as f:
    json.dump(report, f)
"""


def test_transformers_shards_both_ways(tf, tmp_path):
    """transformers' save_pretrained shards convert into a checkpoint TensorFlow reads, and shards converted
    from that checkpoint load into BertModel.from_pretrained with every weight the same. In a child process:
    transformers brings an LLVM that aborts a process holding TensorFlow's."""
    pytest.importorskip("transformers")
    script = tmp_path / "child.py"
    script.write_text(TRANSFORMERS_CHILD)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    child = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert child.returncode == 0, child.stderr[-5000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["tensorflow_imported"] is False
    assert report["info"] == {"error_msgs": [], "missing_keys": [], "mismatched_keys": [], "unexpected_keys": []}
    assert report["differ"] == []
    assert len([f for f in report["shards"] if re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", f)]) >= 3
    with np.load(tmp_path / "state.npz") as state:
        expected = {name: state[name] for name in state.files}
    assert len(expected) >= 30
    assert_same_tensors(tf_read(tf, tmp_path / "ckpt" / "model.ckpt"), expected)


# --- 3. .npz and .pt ---------------------------------------------------------------------------------------------


def test_npz_both_ways(tf, tf_checkpoint, tmp_path):
    prefix, values = tf_checkpoint
    out = tmp_path / "model.npz"
    with pytest.warns(UserWarning, match="'layer_1/kernel': .npz cannot hold bfloat16; stored exactly as float32"):
        assert fastckpt.convert(prefix, out) == len(values)
    with np.load(out, allow_pickle=False) as archive:
        loaded = {name: archive[name] for name in archive.files}
    expected = dict(values)
    expected["layer_1/kernel"] = values["layer_1/kernel"].astype(np.float32)  # exactly: bfloat16 widened
    expected["vocab"] = values["vocab"].astype(bytes)
    assert_same_tensors(loaded, expected)
    back = tmp_path / "back" / "model.ckpt"
    fastckpt.convert(out, back)
    expected["vocab"] = values["vocab"]
    assert_same_tensors(tf_read(tf, back), expected)


def test_an_npz_numpy_wrote_into_safetensors_and_a_checkpoint(tf, tmp_path):
    rng = np.random.default_rng(4)
    arrays = {"a": rng.standard_normal((3, 4)), "b": np.arange(10, dtype=np.uint16), "c": np.float32(1.25)}
    np.savez(tmp_path / "numpy.npz", **arrays)
    np.savez_compressed(tmp_path / "compressed.npz", **arrays)
    for name in ("numpy.npz", "compressed.npz"):
        fastckpt.convert(tmp_path / name, tmp_path / f"{name}.safetensors")
        assert_safetensors_file(str(tmp_path / f"{name}.safetensors"), {k: np.asarray(v) for k, v in arrays.items()})
        fastckpt.convert(tmp_path / name, tmp_path / f"{name}.ckpt")
        assert_same_tensors(tf_read(tf, tmp_path / f"{name}.ckpt"), {k: np.asarray(v) for k, v in arrays.items()})


@pytest.mark.parametrize("suffix", [".pt", ".bin"])
def test_into_torch_files(tf_checkpoint, tmp_path, suffix):
    prefix, values = tf_checkpoint
    out = tmp_path / f"model{suffix}"
    with pytest.warns(UserWarning, match="skipping 'vocab': torch has no string tensors"):
        assert fastckpt.convert(prefix, out) == len(values) - 1
    state = torch.load(out, weights_only=True)
    expected = numeric(values)
    assert sorted(state) == sorted(expected)
    assert state["layer_1/kernel"].dtype == torch.bfloat16
    for name, tensor in state.items():
        assert_torch_equal(tensor, expected[name], name)


@pytest.mark.parametrize("suffix", [".pt", ".bin"])
def test_torch_files_back_into_a_checkpoint(tf, tf_checkpoint, tmp_path, suffix):
    prefix, values = tf_checkpoint
    out = tmp_path / f"model{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the string tensor skipped
        fastckpt.convert(prefix, out)
    back = tmp_path / "back"
    assert fastckpt.convert(out, back) == len(values) - 1
    assert_same_tensors(tf_read(tf, back), numeric(values))


def test_every_dtype_into_a_torch_file_as_tensorflow_read_it(tmp_path):
    expected = Expected("all_dtypes")
    out = tmp_path / "model.pt"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fastckpt.convert(expected.path, out)
    skipped = sorted(re.search(r"skipping '([^']+)'", str(w.message))[1] for w in caught)
    no_torch = {"string", "int4", "uint4"} | {n for n in ("float8_e4m3b11fnuz",) if not hasattr(torch, n)}
    assert skipped == sorted(n for n, t in expected.tensors.items() if t["dtype"] in no_torch)
    state = torch.load(out, weights_only=True)
    assert sorted(state) == sorted(n for n in expected.tensors if n not in skipped)
    assert state["float/bfloat16"].dtype == torch.bfloat16 and state["scalar/bfloat16"].dtype == torch.bfloat16
    for name, tensor in state.items():
        value = np.asarray(expected.value(name))
        assert str(tensor.dtype).removeprefix("torch.") == value.dtype.name, name
        assert tuple(tensor.shape) == value.shape, name
        assert tensor.reshape(-1).view(torch.uint8).numpy().tobytes() == value.tobytes(), name


def test_a_state_dict_torch_saved_into_a_checkpoint(tf, tmp_path):
    generator = torch.Generator().manual_seed(5)
    state = {
        "w": torch.randn(4, 6, generator=generator),
        "half": torch.randn(5, generator=generator).to(torch.bfloat16),
        "t": torch.randn(3, 2, generator=generator).t(),  # not contiguous
        "i": torch.arange(7, dtype=torch.int16),
        "flag": torch.tensor(True),
    }
    torch.save(state, tmp_path / "state.pt")
    assert fastckpt.convert(tmp_path / "state.pt", tmp_path / "ckpt") == len(state)
    read = tf_read(tf, tmp_path / "ckpt")
    assert sorted(read) == sorted(state)
    for name, tensor in state.items():
        assert_torch_equal(tensor.contiguous(), read[name], name)
    fastckpt.convert(tmp_path / "state.pt", tmp_path / "state.safetensors")
    loaded = safetensors_torch.load_file(tmp_path / "state.safetensors")
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name


# --- 4. rules ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tf1(tf, tmp_path_factory):
    """A TF1 Saver checkpoint of an embedding and two dense layers trained two steps by Adam with a global step
    (about 2.4 MB of weights); the prefix, the trainable variables' names and all values, as TensorFlow gives
    them."""
    directory = tmp_path_factory.mktemp("tf1")
    rng = np.random.default_rng(6)
    graph = tf.Graph()
    with graph.as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        variables = {}
        for name, shape in [
            ("embed/table", (1000, 256)),
            ("dense/kernel", (256, 512)),
            ("dense/bias", (512,)),
            ("head/kernel", (512, 256)),
            ("head/bias", (256,)),
        ]:
            scope, leaf = name.split("/")
            with tf.compat.v1.variable_scope(scope):
                initial = rng.standard_normal(shape, dtype=np.float32) * 0.05
                variables[name] = tf.compat.v1.get_variable(leaf, initializer=initial)
        hidden = tf.tanh(tf.matmul(tf.ones((2, 1000)), variables["embed/table"]))
        hidden = tf.tanh(tf.matmul(hidden, variables["dense/kernel"]) + variables["dense/bias"])
        loss = tf.reduce_sum(tf.matmul(hidden, variables["head/kernel"]) + variables["head/bias"])
        step = tf.compat.v1.train.AdamOptimizer(0.01).minimize(loss, global_step=global_step)
        trainable = [v.op.name for v in tf.compat.v1.trainable_variables()]
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for _ in range(2):
                session.run(step)
            prefix = saver.save(session, str(directory / "model.ckpt"), global_step=global_step)
    values = tf_read(tf, prefix)
    assert {"dense/kernel/Adam", "dense/kernel/Adam_1", "beta1_power", "beta2_power", "global_step"} <= set(values)
    return {"prefix": prefix, "trainable": trainable, "values": values}


def test_skip_optimizer_leaves_exactly_the_model_variables(tf1, tmp_path):
    out = tmp_path / "model.safetensors"
    assert fastckpt.convert(tf1["prefix"], out, skip_optimizer=True) == 5
    assert (
        sorted(set(header(out)) - {"__metadata__"})
        == sorted(tf1["trainable"])
        == sorted(["embed/table", "dense/kernel", "dense/bias", "head/kernel", "head/bias"])
    )
    assert_safetensors_file(str(out), {n: tf1["values"][n] for n in tf1["trainable"]})
    everything = tmp_path / "all.safetensors"
    assert fastckpt.convert(tf1["prefix"], everything) == len(tf1["values"])
    assert_safetensors_file(str(everything), tf1["values"])


def test_renames_apply_in_order(tf1, tmp_path):
    values = tf1["values"]
    rules = [(r"/kernel$", "/weight"), (r"weight$", "w"), (r"/", ".")]
    out = tmp_path / "model.npz"
    fastckpt.convert(tf1["prefix"], out, skip_optimizer=True, rename=rules)
    with np.load(out) as archive:
        loaded = {name: archive[name] for name in archive.files}
    assert sorted(loaded) == ["dense.bias", "dense.w", "embed.table", "head.bias", "head.w"]
    assert_same_value(loaded["dense.w"], values["dense/kernel"])
    assert_same_value(loaded["head.bias"], values["head/bias"])
    # In the other order the later rules see what the first made: no "/" is left for the kernel rules.
    fastckpt.convert(tf1["prefix"], out, skip_optimizer=True, rename=dict(reversed(rules)))
    with np.load(out) as archive:
        assert sorted(archive.files) == ["dense.bias", "dense.kernel", "embed.table", "head.bias", "head.kernel"]
    with pytest.raises(errors.InvalidArgumentError, match="both named"):
        fastckpt.convert(tf1["prefix"], tmp_path / "clash.npz", rename=[(r"/.*", "")])
    assert not (tmp_path / "clash.npz").exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt", ""])
def test_transpose_of_2d_kernels(tf, tf1, tmp_path, suffix):
    values = tf1["values"]
    out = tmp_path / f"model{suffix}"
    fastckpt.convert(
        tf1["prefix"], out, skip_optimizer=True, rename=[(r"/kernel$", ".weight")], transpose=[r"\.weight$"]
    )
    expected = {n.replace("/kernel", ".weight"): values[n] for n in tf1["trainable"]}
    for name in ("dense.weight", "head.weight"):
        expected[name] = np.ascontiguousarray(expected[name].T)
    assert expected["dense.weight"].shape == (512, 256)
    if suffix == ".safetensors":
        assert_safetensors_file(str(out), expected)
    elif suffix == ".npz":
        with np.load(out) as archive:
            assert_same_tensors({n: archive[n] for n in archive.files}, expected)
    elif suffix == ".pt":
        state = torch.load(out, weights_only=True)
        assert sorted(state) == sorted(expected)
        for name, tensor in state.items():
            assert_torch_equal(tensor, expected[name], name)
    else:
        assert_same_tensors(tf_read(tf, out), expected)


def test_a_transpose_rule_on_a_1d_tensor_is_refused(tf1, tmp_path):
    out = tmp_path / "out" / "model.safetensors"
    with pytest.raises(errors.InvalidArgumentError, match=r"'dense/bias'.*1-D \[512\]"):
        fastckpt.convert(tf1["prefix"], out, skip_optimizer=True, transpose=[r"^dense/"])
    assert not out.parent.exists() or files_under(out.parent) == []


def bfloat16_cases():
    """float32 values where rounding to bfloat16 is delicate: ties to even, subnormals, the largest finite
    values, infinities, NaNs of both signs, and random bits."""
    special = np.array(
        [0x3F808000, 0x3F818000, 0x3F80FFFF, 0x3F807FFF, 0x00000001, 0x00008000, 0x007FFFFF, 0x7F7FFFFF]
        + [0x7F7F8000, 0xFF7F8000, 0x7F800000, 0xFF800000, 0x7FC00001, 0xFFFFFFFF, 0x80000000, 0x00018000],
        np.uint32,
    ).view(np.float32)
    rng = np.random.default_rng(7)
    return np.concatenate([special, random_bits(rng, np.float32, (4096,))]).reshape(16, -1)


def assert_bfloat16_as_torch_casts(actual, source32):
    """``actual`` (bfloat16) is torch's .to(torch.bfloat16) of the float32 ``source32``, NaNs as NaNs (torch
    makes every NaN its canonical one)."""
    theirs = torch_as_numpy(torch.from_numpy(source32).to(torch.bfloat16))
    nan = np.isnan(source32)
    assert np.array_equal(np.isnan(actual.astype(np.float32)), nan)
    assert np.array_equal(actual.view(np.uint16)[~nan], theirs.view(np.uint16)[~nan])


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")  # NaNs cast
@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ""])
def test_dtype_casts_floats_as_ml_dtypes_and_torch_do(tf, tmp_path, suffix):
    cases = bfloat16_cases()
    tensors = {
        "f32": cases,
        "f64": np.concatenate([cases.astype(np.float64).ravel(), [1 + 2.0**-8 + 2.0**-40, 2.0**-140]]),
        "f16": random_bits(np.random.default_rng(8), np.float16, (100,)),
        "b16": random_bits(np.random.default_rng(9), np.uint16, (10,)).view(ml_dtypes.bfloat16),
        "i32": np.arange(-5, 5, dtype=np.int32),
        "i64": np.int64(2**40),
        "u8": np.arange(256, dtype=np.uint8),
        "mask": np.array([True, False]),
    }
    prefix = tf_save(tf, tmp_path / "src" / "model.ckpt", tensors)
    values = tf_read(tf, prefix)
    out = tmp_path / f"model{suffix}"
    fastckpt.convert(prefix, out, dtype="bfloat16")
    if suffix == ".safetensors":
        converted = {n: torch_as_numpy(t) for n, t in safetensors_torch.load_file(out).items()}
        assert {n: v["dtype"] for n, v in header(out).items() if n != "__metadata__"} == {
            "f32": "BF16",
            "f64": "BF16",
            "f16": "BF16",
            "b16": "BF16",
            "i32": "I32",
            "i64": "I64",
            "u8": "U8",
            "mask": "BOOL",
        }
    elif suffix == ".pt":
        state = torch.load(out, weights_only=True)
        assert all(state[n].dtype == torch.bfloat16 for n in ("f32", "f64", "f16", "b16"))
        converted = {n: torch_as_numpy(t) for n, t in state.items()}
    else:
        converted = tf_read(tf, out)
    for name in ("f32", "f64", "f16", "b16"):
        assert_same_value(converted[name], values[name].astype(ml_dtypes.bfloat16), name)
    assert_bfloat16_as_torch_casts(converted["f32"], values["f32"])
    for name in ("i32", "i64", "u8", "mask"):  # untouched
        assert_same_value(converted[name], values[name], name)
    with pytest.raises(errors.InvalidArgumentError, match="floating dtype, not int32"):
        fastckpt.convert(prefix, tmp_path / "int.safetensors", dtype="int32")
    assert not (tmp_path / "int.safetensors").exists()


def test_names_of_a_tf2_checkpoint(tf, tmp_path):
    """A tf.Module trained by tf.compat.v1's Adam and saved by tf.train.Checkpoint: by full names its variables
    are the names TensorFlow gave them (slots too), by object paths the paths of its checkpoint keys."""

    written = write_tf2_module_checkpoint(tf, tmp_path)
    prefix, module, optimizer = written["prefix"], written["module"], written["optimizer"]
    values = tf_read(tf, prefix)
    weights = {"dense/kernel": module.kernel.numpy(), "dense/bias": module.bias.numpy()}

    out = tmp_path / "full.safetensors"
    fastckpt.convert(prefix, out, names="full", skip_optimizer=True)
    assert_safetensors_file(str(out), weights)
    fastckpt.convert(prefix, out, names="full")
    slots = {
        optimizer.get_slot(variable, slot).name.removesuffix(":0"): optimizer.get_slot(variable, slot).numpy()
        for variable in (module.kernel, module.bias)
        for slot in optimizer.get_slot_names()
    }
    assert {"dense/kernel/Adam", "dense/kernel/Adam_1"} <= set(slots)
    assert set(weights) | set(slots) <= set(header(out))
    assert "dense/kernel/Adam" in header(out) and "dense/kernel" in header(out)
    for name, value in {**weights, **slots}.items():
        assert_torch_equal(safetensors_torch.load_file(out)[name], value, name)

    out = tmp_path / "object.npz"
    fastckpt.convert(prefix, out, names="object", skip_optimizer=True)
    keys = [key for key, _ in tf.train.list_variables(prefix) if key.startswith("model/") and "OPTIMIZER" not in key]
    with np.load(out) as archive:
        assert (
            sorted(archive.files)
            == sorted(key.removesuffix(ATTRIBUTES) for key in keys)
            == ["model/bias", "model/kernel"]
        )
        for key in keys:
            assert_same_value(archive[key.removesuffix(ATTRIBUTES)], values[key], key)
    with pytest.raises(errors.InvalidArgumentError, match="names must be one of"):
        fastckpt.convert(prefix, tmp_path / "x.npz", names="nope")


# --- 5. large tensors in parts -----------------------------------------------------------------------------------

PART = 1 << 20


@pytest.fixture(scope="module")
def large(tf, tmp_path_factory):
    """A TF-written checkpoint with tensors larger than PART: a 10 MiB matrix, a 1-D vector, one whose rows are
    each larger than PART, a bfloat16 one, and small ones; (prefix, TF's values)."""
    rng = np.random.default_rng(10)
    tensors = {
        "big": rng.standard_normal((2560, 1024), dtype=np.float32),
        "vector": rng.standard_normal(786_433, dtype=np.float32),
        "wide": rng.standard_normal((3, 300_001)),
        "b16": random_bits(rng, np.uint16, (1500, 700)).view(ml_dtypes.bfloat16),
        "small": np.arange(10, dtype=np.int32),
        "scalar": np.float32(4.5),
    }
    prefix = tf_save(tf, tmp_path_factory.mktemp("large") / "model.ckpt", tensors)
    return prefix, tf_read(tf, prefix)


@pytest.fixture
def parts(monkeypatch):
    """PART_BYTES set to PART; returns {source class name: [(key, first, count)]} of the parts read."""
    monkeypatch.setattr(conversion.pipeline, "PART_BYTES", PART)
    calls = {}
    for cls in (
        conversion.sources.CheckpointSource,
        conversion.sources.SafetensorsSource,
        conversion.sources.NpzSource,
    ):
        original = cls.read_rows

        def read_rows(self, key, first, count, checksum, empty, original=original, name=cls.__name__):
            calls.setdefault(name, []).append((key, first, count))
            return original(self, key, first, count, checksum, empty)

        monkeypatch.setattr(cls, "read_rows", read_rows)
    return calls


def assert_read_in_parts(calls, values):
    """Each tensor larger than PART was read in consecutive parts of at most PART (or one row) covering it."""
    for name, value in values.items():
        got = [(first, count) for key, first, count in calls if key == name]
        if value.nbytes <= PART:
            assert got == [], name
            continue
        row = value.nbytes // value.shape[0]
        rows = max(1, PART // row)  # rows in a part
        assert len(got) == -(-value.shape[0] // rows), (name, got)
        assert [first for first, _ in got] == list(np.cumsum([0] + [c for _, c in got])[:-1]), name
        assert sum(c for _, c in got) == value.shape[0], name
        assert all(c <= rows for _, c in got), name


def test_large_tensors_in_parts(large, parts, tmp_path):
    prefix, values = large
    out = tmp_path / "model.safetensors"
    fastckpt.convert(prefix, out)
    assert_read_in_parts(parts.pop("CheckpointSource"), values)
    assert_safetensors_file(str(out), values)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bfloat16 widened to float32
        fastckpt.convert(prefix, tmp_path / "model.npz")
    assert_read_in_parts(parts.pop("CheckpointSource"), values)
    widened = {n: v.astype(np.float32) if v.dtype == ml_dtypes.bfloat16 else v for n, v in values.items()}
    with np.load(tmp_path / "model.npz") as archive:
        assert_same_tensors({n: archive[n] for n in archive.files}, widened)

    # From safetensors and .npz sources in parts too.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bfloat16 widened to float32
        fastckpt.convert(out, tmp_path / "from_safetensors.npz")
    assert_read_in_parts(parts.pop("SafetensorsSource"), values)
    with np.load(tmp_path / "from_safetensors.npz") as archive:
        assert_same_tensors({n: archive[n] for n in archive.files}, widened)
    fastckpt.convert(tmp_path / "model.npz", tmp_path / "from_npz.safetensors")
    assert_read_in_parts(parts.pop("NpzSource"), widened)
    assert_safetensors_file(str(tmp_path / "from_npz.safetensors"), widened)
    # And into shards, a tensor in parts going into its own shard.
    fastckpt.convert(prefix, tmp_path / "shards", max_shard_size="4MiB")
    assert_read_in_parts(parts.pop("CheckpointSource"), values)
    index = json.loads((tmp_path / "shards" / "model.safetensors.index.json").read_text())
    for shard in sorted(set(index["weight_map"].values())):
        held = {n: values[n] for n, f in index["weight_map"].items() if f == shard}
        assert_safetensors_file(str(tmp_path / "shards" / shard), held)


def test_large_tensors_cast_in_parts(large, parts, tmp_path):
    prefix, values = large
    out = tmp_path / "model.safetensors"
    fastckpt.convert(prefix, out, dtype="bfloat16")
    assert_read_in_parts(parts.pop("CheckpointSource"), values)
    expected = {n: v.astype(ml_dtypes.bfloat16) if v.dtype.kind == "f" or n == "b16" else v for n, v in values.items()}
    assert_safetensors_file(str(out), expected)


def corrupt(prefix, value):
    """Flips one byte three quarters into ``value``'s data in the checkpoint's data file."""
    data_file = Path(f"{prefix}.data-00000-of-00001")
    data = bytearray(data_file.read_bytes())
    start = data.find(value.tobytes()[:64])
    assert start >= 0 and data.find(value.tobytes()[:64], start + 1) < 0
    data[start + value.nbytes * 3 // 4] ^= 0x10
    data_file.write_bytes(bytes(data))


@pytest.mark.parametrize("destination", ["model.safetensors", "model.npz", "shards", "model.pt", "model.ckpt"])
def test_a_corrupt_tensor_is_data_loss_and_leaves_nothing(large, parts, tmp_path, destination):
    prefix, values = large
    copy = tmp_path / "src" / "model.ckpt"
    copy.parent.mkdir()
    for file in Path(prefix).parent.iterdir():
        shutil.copy(file, copy.parent / file.name.replace(Path(prefix).name, "model.ckpt"))
    corrupt(copy, values["big"])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / destination
    with pytest.raises(errors.DataLossError, match='"big"') as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fastckpt.convert(copy, dst, max_shard_size=PART * 4 if destination == "shards" else None)
    assert "big" in str(err.value)
    assert files_under(out_dir) == [], files_under(out_dir)
    if destination in ("model.safetensors", "model.npz", "shards"):
        assert parts.get("CheckpointSource"), "the corrupt tensor was to be read in parts"


def small_corrupt_checkpoint(directory):
    """A 4 MiB checkpoint with one flipped byte in its tensor "big"; the prefix."""
    prefix = str(directory / "corrupt.ckpt")
    big = np.random.default_rng(11).standard_normal((1024, 1024), dtype=np.float32)
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add("big", big)
        writer.add("small", np.arange(3, dtype=np.int32))
    corrupt(prefix, big)
    return prefix


@pytest.mark.parametrize("part_bytes", [conversion.PART_BYTES, PART])
def test_an_aborted_npz_conversion_prints_nothing_after_its_error(tmp_path, monkeypatch, part_bytes):
    prefix = small_corrupt_checkpoint(tmp_path)
    monkeypatch.setattr(conversion.pipeline, "PART_BYTES", part_bytes)  # the tensor whole, then in parts
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(f"{u.exc_value!r} in {u.object!r}"))
    with pytest.raises(errors.DataLossError, match='"big"'):
        fastckpt.convert(prefix, tmp_path / "out.npz")
    gc.collect()
    assert not (tmp_path / "out.npz").exists()
    assert unraisable == []
    result = run_cli("convert", prefix, tmp_path / "out.npz")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


# --- 6. memory ---------------------------------------------------------------------------------------------------

MEMORY_CHILD = r"""
import json, sys
import fastckpt
from fastckpt import conversion


def high_water_mark():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) << 10


src, dst = sys.argv[1:3]
conversion.open_source(src).close()
before = high_water_mark()
count = fastckpt.convert(src, dst)
print(json.dumps({"count": count, "before": before, "after": high_water_mark()}))
"""
MEMORY_LIMIT = 256 << 20


@pytest.fixture
def scratch(tmp_path):
    """tmp_path, emptied afterwards (pytest keeps the last runs' directories: not 5 GiB of them)."""
    yield tmp_path
    for path in tmp_path.iterdir():
        path.unlink()


def test_converting_2_6_gib_grows_the_peak_resident_set_by_little(scratch):
    """16 tensors of 128 MiB and one of 600 MiB into .safetensors, in a child process whose peak resident set
    (VmHWM) may grow by MEMORY_LIMIT while converting (it grows by about 2 x PART_BYTES; reading each batch
    whole would take 1.1 GiB)."""
    tmp_path = scratch
    if shutil.disk_usage(tmp_path).free < 8 << 30:
        pytest.skip("needs 8 GiB of free disk")
    prefix = str(tmp_path / "model.ckpt")
    rows = 128 << 20 >> 12  # of 1024 float32
    with fastckpt.CheckpointWriter(prefix) as writer:
        for i in range(16):
            value = np.empty((rows, 1024), np.float32)
            value[:] = np.arange(1024, dtype=np.float32) + i
            value[:, 0] = np.arange(rows, dtype=np.float32)
            writer.add(f"layer_{i:02d}/kernel", value)
            del value
        big = np.empty((600 << 20 >> 2,), np.float32)
        big[:] = 0.5
        big[-1] = 7.0
        writer.add("embedding", big)
        del big
    out = tmp_path / "model.safetensors"
    child = subprocess.run(python_command(MEMORY_CHILD, prefix, out), capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-5000:]
    measured = json.loads(child.stdout)
    growth = measured["after"] - measured["before"]
    print(f"peak resident set grew by {growth / (1 << 20):.1f} MiB converting 2648 MiB")
    assert measured["count"] == 17
    assert growth <= MEMORY_LIMIT, f"{growth / (1 << 20):.1f} MiB"
    # The file, as safetensors maps it: shapes and dtypes, and values at both ends of each tensor.
    with safe_open(str(out), framework="np") as f:
        assert sorted(f.keys()) == ["embedding", *[f"layer_{i:02d}/kernel" for i in range(16)]]
        for i in range(16):
            kernel = f.get_slice(f"layer_{i:02d}/kernel")
            assert kernel.get_shape() == [rows, 1024] and kernel.get_dtype() == "F32"
            for r in (0, rows - 1):
                expected = np.arange(1024, dtype=np.float32) + i
                expected[0] = r
                assert np.array_equal(kernel[r : r + 1], expected[None]), (i, r)
        embedding = f.get_slice("embedding")
        assert embedding.get_shape() == [600 << 20 >> 2]
        end = embedding.get_shape()[0]
        assert embedding[end - 2 : end].tolist() == [0.5, 7.0] and embedding[:2].tolist() == [0.5, 0.5]
    assert os.path.getsize(out) > 2648 << 20


# --- 7. object stores --------------------------------------------------------------------------------------------


def test_object_stores_both_ways(tf, sharded_source, s3_server, s3_bucket, monkeypatch, tmp_path):
    prefix, values = sharded_source
    monkeypatch.setattr(conversion.pipeline, "PART_BYTES", 64 << 10)  # the head (256 KB) in parts, as it uploads
    client = s3_server.client()
    url = f"s3://{s3_bucket}/one/model.safetensors"
    fastckpt.convert(prefix, url)
    client.download_file(s3_bucket, "one/model.safetensors", str(tmp_path / "one.safetensors"))
    assert_safetensors_file(str(tmp_path / "one.safetensors"), values)
    fastckpt.convert(url, tmp_path / "from_one" / "model.ckpt")
    assert_same_tensors(tf_read(tf, tmp_path / "from_one" / "model.ckpt"), values)

    directory = f"s3://{s3_bucket}/sharded"
    fastckpt.convert(prefix, directory, max_shard_size=SHARD)
    listed = sorted(item["Key"] for item in client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    shards = [key for key in listed if key.startswith("sharded/")]
    assert len(shards) >= 4 and "sharded/model.safetensors.index.json" in shards
    (tmp_path / "sharded").mkdir()
    for key in shards:
        client.download_file(s3_bucket, key, str(tmp_path / key))
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert sorted(f"sharded/{f}" for f in set(index["weight_map"].values())) == sorted(
        k for k in shards if not k.endswith(".json")
    )
    for shard in set(index["weight_map"].values()):
        held = {n: values[n] for n, f in index["weight_map"].items() if f == shard}
        assert_safetensors_file(str(tmp_path / "sharded" / shard), held)
    for source in (directory, f"{directory}/model.safetensors.index.json"):
        back = tmp_path / "back" / source.rsplit("/", 1)[-1] / "model.ckpt"
        fastckpt.convert(source, back)
        assert_same_tensors(tf_read(tf, back), values)


@pytest.mark.parametrize("name", ["model.npz", "model.pt", "model.ckpt"])
def test_npz_pt_and_checkpoints_in_a_bucket(sharded_source, s3_server, s3_bucket, tmp_path, name):
    prefix, values = sharded_source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .npz widens bfloat16
        fastckpt.convert(prefix, f"s3://{s3_bucket}/{name}")
    fastckpt.convert(f"s3://{s3_bucket}/{name}", f"s3://{s3_bucket}/{name}.safetensors")
    s3_server.client().download_file(s3_bucket, f"{name}.safetensors", str(tmp_path / "model.safetensors"))
    expected = dict(values)
    if name == "model.npz":
        expected["embed.weight"] = values["embed.weight"].astype(np.float32)
    assert_safetensors_file(str(tmp_path / "model.safetensors"), expected)


def test_an_aborted_conversion_leaves_nothing_in_the_bucket(
    sharded_source, s3_server, s3_bucket, tmp_path, monkeypatch
):
    prefix, values = sharded_source
    copy = tmp_path / "model.ckpt"
    for file in Path(prefix).parent.iterdir():
        shutil.copy(file, tmp_path / file.name)
    corrupt(copy, values["head.weight"])
    monkeypatch.setattr(conversion.pipeline, "PART_BYTES", 64 << 10)
    client = s3_server.client()
    for name, shard_size in [("model.safetensors", None), ("sharded", SHARD), ("model.ckpt", None)]:
        with pytest.raises(errors.DataLossError, match="head.weight"):
            fastckpt.convert(copy, f"s3://{s3_bucket}/{name}", max_shard_size=shard_size)
        assert client.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == [], name
        assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == [], name


# --- 8. the command line -----------------------------------------------------------------------------------------


def test_command_line_converts_as_the_api_does(tf1, tmp_path):
    rules = [(r"/kernel$", ".weight"), (r"/", ".")]
    result = run_cli(
        "convert",
        tf1["prefix"],
        tmp_path / "cli",
        "--skip-optimizer",
        *[arg for pattern, replacement in rules for arg in ("--rename", f"{pattern}={replacement}")],
        "--transpose",
        r"\.weight$",
        "--dtype",
        "bfloat16",
        "--max-shard-size",
        "1MB",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote 5 tensors to {tmp_path / 'cli'}\n"
    fastckpt.convert(
        tf1["prefix"],
        tmp_path / "api",
        skip_optimizer=True,
        rename=rules,
        transpose=[r"\.weight$"],
        dtype="bfloat16",
        max_shard_size="1MB",
    )
    files = files_under(tmp_path / "api")
    assert files_under(tmp_path / "cli") == files and len(files) == 3  # two shards and the index
    for name in files:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes(), name
    # What both wrote: TensorFlow's values renamed, transposed and cast.
    values = tf1["values"]
    expected = {
        "embed.table": values["embed/table"],
        "dense.weight": values["dense/kernel"].T,
        "dense.bias": values["dense/bias"],
        "head.weight": values["head/kernel"].T,
        "head.bias": values["head/bias"],
    }
    expected = {n: np.ascontiguousarray(v).astype(ml_dtypes.bfloat16) for n, v in expected.items()}
    index = json.loads((tmp_path / "cli" / "model.safetensors.index.json").read_text())
    assert sorted(index["weight_map"]) == sorted(expected)
    assert index["metadata"]["total_size"] == sum(v.nbytes for v in expected.values())
    loaded = {}
    for shard in set(index["weight_map"].values()):
        loaded.update(safetensors_torch.load_file(tmp_path / "cli" / shard))
    assert sorted(loaded) == sorted(expected)
    for name, tensor in loaded.items():
        assert_torch_equal(tensor, expected[name], name)


def test_command_line_usage_errors(tf1, tmp_path):
    out = tmp_path / "out.safetensors"
    result = run_cli("convert", tf1["prefix"], out, "--rename", "no-equals-sign")
    assert result.returncode == 2 and "--rename takes PATTERN=REPLACEMENT" in result.stderr, result
    assert "Traceback" not in result.stderr
    result = run_cli("convert", tf1["prefix"], out, "--transpose", "bias$")
    assert result.returncode == 2 and "only 2-D tensors are transposed" in result.stderr, result
    assert "Traceback" not in result.stderr
    result = run_cli("convert", tf1["prefix"], out, "--max-shard-size", "lots")
    assert result.returncode == 2 and "not a size" in result.stderr, result
    assert files_under(tmp_path) == []
