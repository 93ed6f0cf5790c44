"""fastckpt.torch: TensorFlow's checkpoints as torch tensors bit for bit (load), read into a module's own memory
(load_into, with the mapping rules), and torch tensors saved as checkpoints TensorFlow reads (save)."""

import subprocess
import sys
import warnings

import fastckpt
import ml_dtypes
import numpy as np
import pytest
from fastckpt.errors import InvalidArgumentError, NotFoundError
from helpers.checkpoints import FIXTURES, Expected, fixture_kinds
from helpers.docstrings import assert_docstring_examples_pass
from helpers.processes import python_command, run_python
from helpers.tensorflow_oracle import tf_save
from helpers.training_checkpoints import write_keras_checkpoint, write_tf1_training_checkpoint

torch = pytest.importorskip("torch")
import fastckpt.torch  # noqa: E402 - after torch is known to be there
import fastckpt.torch_arrays  # noqa: E402

# The TensorFlow dtypes torch has no type for (strings aside).
TORCH_LACKS = {"int4", "uint4", "float8_e4m3b11fnuz"}


def torch_bits(tensor):
    """The bytes of a tensor's elements, in order."""
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def numpy_bits(value):
    value = np.asarray(value)
    return np.ascontiguousarray(value).reshape(-1).view(np.uint8).tobytes()


def assert_same_bits(tensor, expected, name=""):
    expected = np.asarray(expected)
    assert tuple(tensor.shape) == expected.shape, name
    assert tensor.dtype == fastckpt.torch.torch_dtype(expected.dtype), (name, tensor.dtype, expected.dtype)
    assert torch_bits(tensor) == numpy_bits(expected), name


# --- load ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("kind", fixture_kinds())
def test_load_every_fixture_as_tensorflows_reader_read_it(kind, mmap):
    """Read or mapped (mmap=True; what cannot be mapped as stored, such as V1 files and partitioned tensors, is
    read), the same bits."""
    expected = Expected(kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tensors = fastckpt.torch.load(expected.path, mmap=mmap)
    loadable = {
        name
        for name, info in expected.tensors.items()
        if info["dtype"] != "string" and info["dtype"] not in TORCH_LACKS
    }
    assert set(tensors) == loadable
    for name in loadable:
        assert_same_bits(tensors[name], expected.value(name), name)
    lacking = [name for name, info in expected.tensors.items() if info["dtype"] in TORCH_LACKS]
    assert bool(caught) == bool(lacking)
    for name in lacking:
        assert repr(name) in str(caught[0].message)


def test_load_every_dtype_bit_for_bit_against_tensorflow(tf):
    path = str(FIXTURES / "all_dtypes" / "ckpt")
    tf_reader = tf.train.load_checkpoint(path)
    with pytest.warns(UserWarning, match="float8_e4m3b11fnuz"):
        tensors = fastckpt.torch.load(path)
    expected_dtypes = {
        "float/bfloat16": torch.bfloat16,
        "float/float16": torch.float16,
        "float/float64": torch.float64,
        "float/float8_e4m3fn": torch.float8_e4m3fn,
        "float/float8_e5m2": torch.float8_e5m2,
        "float/float8_e4m3fnuz": torch.float8_e4m3fnuz,
        "float/float8_e5m2fnuz": torch.float8_e5m2fnuz,
        "int/uint16": torch.uint16,
        "int/uint32": torch.uint32,
        "int/uint64": torch.uint64,
        "other/complex128": torch.complex128,
        "other/bool": torch.bool,
        "quantized/qint8": torch.int8,
        "quantized/quint16": torch.uint16,
        "scalar/bfloat16": torch.bfloat16,
    }
    for name, dtype in expected_dtypes.items():
        assert tensors[name].dtype == dtype, name
    assert tensors["scalar/bfloat16"].shape == ()
    for name, tensor in tensors.items():
        value = np.asarray(tf_reader.get_tensor(name))
        assert tuple(tensor.shape) == value.shape, name
        assert torch_bits(tensor) == numpy_bits(value), name
    # NaN payloads and -0.0 survive: the bits of bfloat16 are never widened through float32.
    bf16 = tensors["float/bfloat16"].view(torch.int16).numpy()
    assert (bf16 == np.asarray(tf_reader.get_tensor("float/bfloat16")).view(np.int16)).all()


@pytest.fixture
def reads_into(monkeypatch):
    """The reads fastckpt.torch asks of the reader (CheckpointReader.read_bytes_into), each as
    ``{name: address of the array read into}``."""
    calls = []
    original = fastckpt.CheckpointReader.read_bytes_into

    def recording(self, targets):
        calls.append({name: out.__array_interface__["data"][0] for name, out in targets.items()})
        return original(self, targets)

    monkeypatch.setattr(fastckpt.CheckpointReader, "read_bytes_into", recording)
    return calls


def test_load_reads_into_the_returned_tensors(reads_into):
    """No second copy: the reader is given the returned tensors' own memory, once, for all of them."""
    calls = reads_into
    with pytest.warns(UserWarning):
        tensors = fastckpt.torch.load(FIXTURES / "all_dtypes" / "ckpt")
    assert len(calls) == 1 and set(calls[0]) == {name for name, tensor in tensors.items() if tensor.numel()}
    for name, tensor in tensors.items():
        if tensor.numel():
            assert calls[0][name] == tensor.data_ptr(), name
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size(), name


def test_load_mmap_maps_without_reading_and_copies_on_write(tmp_path, reads_into):
    prefix = str(tmp_path / "model.ckpt")
    fastckpt.torch.save({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(3)}, prefix)
    data = tmp_path / "model.ckpt.data-00000-of-00001"
    stored = data.read_bytes()
    tensors = fastckpt.torch.load(prefix, mmap=True)
    assert reads_into == []  # nothing read: every tensor is a view of the map
    assert tensors["w"].tolist() == [[0, 1, 2], [3, 4, 5]] and tensors["b"].tolist() == [1, 1, 1]
    tensors["w"] += 10  # the process's own copy of the page, not the file
    assert tensors["w"].tolist() == [[10, 11, 12], [13, 14, 15]]
    assert data.read_bytes() == stored
    assert fastckpt.torch.load(prefix)["w"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_load_mmap_reads_tensors_whose_offset_is_not_aligned_to_their_dtype(tmp_path):
    """A data file holds tensors back to back: a float32 tensor after 3 bytes of int8 cannot be viewed in
    place (torch wants its elements aligned), so it is read."""
    prefix = str(tmp_path / "model.ckpt")
    fastckpt.torch.save({"a": torch.tensor([1, 2, 3], dtype=torch.int8), "b": torch.tensor([1.5, 2.5])}, prefix)
    assert fastckpt.load_checkpoint(prefix).stored_range("b")[1] % 4 != 0
    tensors = fastckpt.torch.load(prefix, mmap=True)
    assert tensors["a"].tolist() == [1, 2, 3] and tensors["b"].tolist() == [1.5, 2.5]


def test_load_mmap_refuses_a_data_file_replaced_since_the_checkpoint_was_opened(tmp_path, monkeypatch):
    prefix = str(tmp_path / "model.ckpt")
    fastckpt.torch.save({"w": torch.ones(4)}, prefix)
    original = fastckpt.CheckpointReader.stored_range

    def replaced(self, name):  # what the reader recorded at open: another size than the file has now
        path, offset, length, size = original(self, name)
        return path, offset, length, size + 8

    monkeypatch.setattr(fastckpt.CheckpointReader, "stored_range", replaced)
    with pytest.raises(fastckpt.errors.AbortedError, match="changed while") as raised:
        fastckpt.torch.load(prefix, mmap=True)
    assert raised.value.filename.endswith(".data-00000-of-00001") and raised.value.tensor_name == "w"


BFLOAT16_WITHOUT_ML_DTYPES = """
import sys
import fastckpt.torch, torch

tensors = fastckpt.torch.load(sys.argv[1])
assert tensors["w"].dtype == torch.bfloat16 and tensors["w"].view(torch.int16).tolist() == [16256, -16512], tensors
into = {"w": torch.zeros(2, dtype=torch.bfloat16)}
fastckpt.torch.load_into(into, sys.argv[1])
assert torch.equal(into["w"], tensors["w"])
assert "ml_dtypes" not in sys.modules, "loading bfloat16 into torch imported ml_dtypes"
"""


def test_bfloat16_loads_without_importing_ml_dtypes(tmp_path):
    """torch has its own bfloat16: loading one needs no numpy type for it (ml_dtypes takes most of a second
    to import)."""
    prefix = str(tmp_path / "bf16")
    fastckpt.torch.save({"w": torch.tensor([1.0, -1.0], dtype=torch.bfloat16)}, prefix)
    subprocess.run(python_command(BFLOAT16_WITHOUT_ML_DTYPES, prefix), check=True, timeout=120)


def test_load_names():
    path = FIXTURES / "tf2_keras" / "ckpt"
    reader = fastckpt.NewCheckpointReader(path)
    by_key = fastckpt.torch.load(path)
    assert set(by_key) == set(reader) - {"_CHECKPOINTABLE_OBJECT_GRAPH"}
    assert set(fastckpt.torch.load(path, names="key")) == set(by_key)
    full = fastckpt.torch.load(path, names="full")
    key = "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"
    assert torch.equal(full["sequential/dense/kernel"], by_key[key])
    assert set(full) == {reader.full_names().get(k, k) for k in by_key}
    objects = fastckpt.torch.load(path, names="object")
    assert torch.equal(objects["optimizer/_trainable_variables/0"], by_key[key])
    some = fastckpt.torch.load(path, names=[key])
    assert list(some) == [key] and torch.equal(some[key], by_key[key])
    assert fastckpt.torch.load(path, names=[]) == {}


def test_load_names_errors():
    path = FIXTURES / "all_dtypes" / "ckpt"
    with pytest.raises(NotFoundError) as err:
        fastckpt.torch.load(path, names=["int/int8", "no/such"])
    assert err.value.tensor_name == "no/such"
    with pytest.raises(InvalidArgumentError, match="torch has no strings") as err:
        fastckpt.torch.load(path, names=["other/string"])
    assert err.value.tensor_name == "other/string"
    with pytest.raises(InvalidArgumentError, match="torch has no int4"):
        fastckpt.torch.load(path, names=["int/int4"])
    with pytest.raises(InvalidArgumentError, match="names must be None"):
        fastckpt.torch.load(path, names="int/int8")


def test_load_to_another_device():
    path = Expected("tf1_saver_ref").path
    on_cpu = fastckpt.torch.load(path, device=torch.device("cpu"))
    for mmap in (False, True):
        meta = fastckpt.torch.load(path, device="meta", mmap=mmap)
        assert set(meta) == set(on_cpu)
        for name, tensor in meta.items():
            assert tensor.device.type == "meta" and tensor.shape == on_cpu[name].shape
            assert tensor.dtype == on_cpu[name].dtype


# --- load_into -----------------------------------------------------------------------------------------------------


class Tied(torch.nn.Module):
    """An embedding whose table is also the output layer's weight, a dense layer, and buffers."""

    def __init__(self, dense_out=4):
        super().__init__()
        self.emb = torch.nn.Embedding(5, 3)
        self.proj = torch.nn.Linear(3, dense_out)
        self.head = torch.nn.Linear(3, 5, bias=False)
        self.head.weight = self.emb.weight
        self.register_buffer("scale", torch.zeros(4, dtype=torch.float64))
        self.register_buffer("scratch", torch.full((2,), 7.0), persistent=False)


EMB = np.arange(15, dtype=np.float32).reshape(5, 3) / 7
KERNEL = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
BIAS = np.array([0.25, -1.0, 2.0, 0.0], np.float32)
SCALE = np.array([1.0, 2.0, 3.0, 1e-300], np.float64)
TIED_RULES = dict(
    rename=[(r"^emb/embeddings$", "emb.weight"), (r"/kernel$", ".weight"), (r"/bias$", ".bias")],
    transpose=[r"^proj\.weight$"],
)


@pytest.fixture(scope="module")
def tied_ckpt(tf, tmp_path_factory):
    return tf_save(
        tf,
        tmp_path_factory.mktemp("tied") / "ckpt",
        {"emb/embeddings": EMB, "proj/kernel": KERNEL, "proj/bias": BIAS, "scale": SCALE},
    )


def snapshot(module):
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def assert_unchanged(module, before):
    after = module.state_dict()
    assert set(after) == set(before)
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), name


def test_load_into_a_module_with_tied_weights_and_buffers(tied_ckpt):
    module = Tied()
    pointers = {name: t.data_ptr() for name, t in module.state_dict().items()}
    result = fastckpt.torch.load_into(module, tied_ckpt, **TIED_RULES)
    assert result == fastckpt.torch.IncompatibleKeys(missing_keys=[], unexpected_keys=[])
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert np.array_equal(module.emb.weight.detach().numpy(), EMB)
    assert module.head.weight is module.emb.weight
    assert np.array_equal(module.proj.weight.detach().numpy(), KERNEL.T)
    assert np.array_equal(module.proj.bias.detach().numpy(), BIAS)
    assert np.array_equal(module.scale.numpy(), SCALE)
    assert torch.equal(module.scratch, torch.full((2,), 7.0))  # not persistent: not in the state dict
    # In place: the same memory, still parameters that train.
    assert {name: t.data_ptr() for name, t in module.state_dict().items()} == pointers
    assert module.proj.weight.requires_grad and isinstance(module.proj.weight, torch.nn.Parameter)


def test_a_tied_weight_filled_by_its_other_name(tf, tmp_path):
    prefix = tf_save(tf, tmp_path / "ckpt", {"head.weight": EMB})
    module = Tied()
    result = fastckpt.torch.load_into(module, prefix, strict=False)
    assert "emb.weight" not in result.missing_keys and "head.weight" not in result.missing_keys
    assert sorted(result.missing_keys) == ["proj.bias", "proj.weight", "scale"]
    assert np.array_equal(module.emb.weight.detach().numpy(), EMB)


def test_load_into_reads_straight_into_the_parameters(tied_ckpt, reads_into):
    calls = reads_into
    module = Tied()
    fastckpt.torch.load_into(module, tied_ckpt, **TIED_RULES)
    # The untransposed tensors went straight into the module's memory; the transposed one through a temporary.
    direct = calls[0]
    assert direct == {
        "emb/embeddings": module.emb.weight.data_ptr(),
        "proj/bias": module.proj.bias.data_ptr(),
        "scale": module.scale.data_ptr(),
    }
    assert list(calls[1]) == ["proj/kernel"] and calls[1]["proj/kernel"] != module.proj.weight.data_ptr()


def test_missing_and_unexpected(tied_ckpt):
    module = Tied()
    before = snapshot(module)
    rules = dict(rename=[(r"/kernel$", ".weight"), (r"/bias$", ".bias")], transpose=[r"^proj\.weight$"])
    with pytest.raises(InvalidArgumentError) as err:
        fastckpt.torch.load_into(module, tied_ckpt, **rules)
    message = str(err.value)
    assert 'Missing key(s) in the Tied: "emb.weight", "head.weight".' in message
    assert 'Unexpected key(s) in the checkpoint: "emb/embeddings".' in message
    assert err.value.filename == tied_ckpt
    assert_unchanged(module, before)  # nothing was written
    result = fastckpt.torch.load_into(module, tied_ckpt, strict=False, **rules)
    assert result == (["emb.weight", "head.weight"], ["emb/embeddings"])
    assert np.array_equal(module.proj.weight.detach().numpy(), KERNEL.T)
    assert torch.equal(module.emb.weight, before["emb.weight"])


def test_unexpected_names_give_their_checkpoint_keys(tied_ckpt):
    with pytest.raises(InvalidArgumentError) as err:
        fastckpt.torch.load_into({}, tied_ckpt, rename=[("^scale$", "the.scale")])
    assert "\"the.scale\" (checkpoint key 'scale')" in str(err.value)


def test_shape_mismatch_names_both_sides(tied_ckpt):
    module = Tied(dense_out=5)
    before = snapshot(module)
    with pytest.raises(InvalidArgumentError) as err:
        fastckpt.torch.load_into(module, tied_ckpt, **TIED_RULES)
    message = str(err.value)
    assert "'proj/kernel' (float32 [3, 4], transposed to [4, 3])" in message
    assert "'proj.weight' of the Tied (float32 [5, 3])" in message
    assert "'proj/bias' (float32 [4])" in message and "'proj.bias' of the Tied (float32 [5])" in message
    assert err.value.tensor_name == "proj/bias"  # the first, in the checkpoint's order
    assert_unchanged(module, before)  # not even the tensors that fit


def test_dtype_mismatch_names_both_sides(tied_ckpt):
    module = Tied()
    module.scale = torch.zeros(4, dtype=torch.float32)
    before = snapshot(module)
    with pytest.raises(InvalidArgumentError) as err:
        fastckpt.torch.load_into(module, tied_ckpt, **TIED_RULES)
    assert "'scale' (float64 [4]) does not fit 'scale' of the Tied (float32 [4])" in str(err.value)
    assert_unchanged(module, before)


def test_transpose_of_a_tensor_that_is_not_2d(tied_ckpt):
    module = Tied()
    before = snapshot(module)
    with pytest.raises(InvalidArgumentError, match=r"'proj\.bias' \(checkpoint key 'proj/bias'\), which is 1-D"):
        fastckpt.torch.load_into(module, tied_ckpt, rename=TIED_RULES["rename"], transpose=[r"^proj\."])
    assert_unchanged(module, before)


def test_load_into_a_state_dict_of_non_contiguous_and_bfloat16_tensors(tf, tmp_path):
    bf16 = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5).astype(ml_dtypes.bfloat16)
    prefix = tf_save(tf, tmp_path / "ckpt", {"w": KERNEL, "bf": bf16, "bf_t": bf16, "grad": BIAS})
    transposed = torch.zeros(4, 3).t()  # a non-contiguous view of [4, 3]
    grad = torch.nn.Parameter(torch.zeros(4))
    state = {
        "w": transposed,
        "bf": torch.zeros(2, 3, dtype=torch.bfloat16),
        "bf_t": torch.zeros(3, 2, dtype=torch.bfloat16),
        "grad": grad,
    }
    assert fastckpt.torch.load_into(state, prefix, transpose="bf_t") == ([], [])
    assert not transposed.is_contiguous() and np.array_equal(transposed.numpy(), KERNEL)
    assert state["bf"].view(torch.int16).numpy().tobytes() == bf16.tobytes()
    assert state["bf_t"].view(torch.int16).numpy().tobytes() == np.ascontiguousarray(bf16.T).tobytes()
    assert grad.requires_grad and np.array_equal(grad.detach().numpy(), BIAS)


def test_load_into_needs_a_module_or_tensors(tied_ckpt):
    with pytest.raises(InvalidArgumentError, match="not a list"):
        fastckpt.torch.load_into([], tied_ckpt)
    with pytest.raises(InvalidArgumentError, match="'w' is a ndarray, not a torch.Tensor"):
        fastckpt.torch.load_into({"w": np.zeros(3)}, tied_ckpt)
    module = Tied().to("meta")  # (not torch.device("meta") as a context: that imports torch._dynamo, which
    # cannot load beside TensorFlow in one process: both bring LLVM)
    with pytest.raises(InvalidArgumentError, match="meta device"):
        fastckpt.torch.load_into(module, tied_ckpt, **TIED_RULES)


def test_skip_optimizer_of_a_tf1_training_checkpoint(tf, tmp_path):
    written = write_tf1_training_checkpoint(tf, tmp_path)
    state = {name: torch.zeros(shape) for name, shape in fastckpt.list_variables(written["prefix"])}
    state = {name: state[name] for name in written["weights"]}
    with pytest.raises(InvalidArgumentError, match="skip_optimizer=True leaves out the optimizer's state") as err:
        fastckpt.torch.load_into(state, written["prefix"])
    assert '"dense/kernel/Adam_1"' in str(err.value) and '"global_step"' in str(err.value)
    assert fastckpt.torch.load_into(state, written["prefix"], skip_optimizer=True) == ([], [])
    reader = fastckpt.NewCheckpointReader(written["prefix"])
    for name, tensor in state.items():
        assert np.array_equal(tensor.numpy(), reader.get_tensor(name)), name
        assert tensor.abs().sum() > 0, name


def test_a_keras_model_into_its_torch_twin(tf, tmp_path):
    """A Keras 3 model trained by TensorFlow, loaded by its variables' full names into the same model in torch,
    computes what Keras computes."""
    written = write_keras_checkpoint(tf, tmp_path)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4, eps=1e-3), torch.nn.Linear(4, 2))
    rules = dict(
        names="full",
        skip_optimizer=True,
        rename=[
            (r"^sequential/", ""),
            (r"^dense/", "0."),
            (r"^batch_normalization/", "1."),
            (r"^dense_1/", "2."),
            (r"kernel$", "weight"),
            (r"gamma$", "weight"),
            (r"beta$", "bias"),
            (r"moving_mean$", "running_mean"),
            (r"moving_variance$", "running_var"),
        ],
        transpose=[r"^[02]\.weight$"],
    )
    # Strict: the batch norm's num_batches_tracked, which Keras lacks, stays as torch's load_state_dict keeps it.
    assert fastckpt.torch.load_into(net, written["prefix"], **rules) == ([], [])
    net.eval()
    with torch.no_grad():
        ours = net(torch.from_numpy(written["x"].numpy())).numpy()
    theirs = written["model"](written["x"], training=False).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    # Without skip_optimizer, Keras 3's optimizer state is what is unexpected, and the error says how to drop it.
    rules["skip_optimizer"] = False
    with pytest.raises(InvalidArgumentError, match="skip_optimizer=True") as err:
        fastckpt.torch.load_into(net, written["prefix"], **rules)
    assert '"adam/iteration"' in str(err.value) and '"save_counter"' in str(err.value)


def test_names_key_suggests_full_names(tf, tmp_path):
    written = write_keras_checkpoint(tf, tmp_path)
    with pytest.raises(InvalidArgumentError, match='names="full"'):
        fastckpt.torch.load_into({"0.weight": torch.zeros(4, 3)}, written["prefix"], skip_optimizer=True)


# --- save -----------------------------------------------------------------------------------------------------------

# torch dtype -> the name TensorFlow gives the same type.
SAVEABLE = {
    torch.float16: "float16",
    torch.float32: "float32",
    torch.float64: "float64",
    torch.bfloat16: "bfloat16",
    torch.float8_e4m3fn: "float8_e4m3fn",
    torch.float8_e5m2: "float8_e5m2",
    torch.float8_e4m3fnuz: "float8_e4m3fnuz",
    torch.float8_e5m2fnuz: "float8_e5m2fnuz",
    torch.int8: "int8",
    torch.int16: "int16",
    torch.int32: "int32",
    torch.int64: "int64",
    torch.uint8: "uint8",
    torch.uint16: "uint16",
    torch.uint32: "uint32",
    torch.uint64: "uint64",
    torch.bool: "bool",
    torch.complex64: "complex64",
    torch.complex128: "complex128",
}


def random_tensor(dtype, shape, generator):
    """A tensor of random bits (NaNs, infinities and -0.0 among the floats)."""
    count = int(np.prod(shape, dtype=np.int64))
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    size = torch.empty((), dtype=dtype).element_size()
    bits = torch.randint(0, 256, (count * size,), dtype=torch.uint8, generator=generator)
    return bits.view(dtype).reshape(shape)


def test_tensorflow_reads_what_save_wrote_bit_for_bit(tf, tmp_path):
    generator = torch.Generator().manual_seed(16)
    tensors = {f"t/{SAVEABLE[dtype]}": random_tensor(dtype, (3, 5), generator) for dtype in SAVEABLE}
    tensors["scalar/bfloat16"] = random_tensor(torch.bfloat16, (), generator)
    tensors["empty/float32"] = torch.zeros(0, 4)
    tensors["view/transposed"] = random_tensor(torch.float32, (4, 6), generator).t()
    tensors["view/strided_bf16"] = random_tensor(torch.bfloat16, (8, 8), generator)[::2, 1::3]
    tensors["view/conj"] = torch.randn(3, dtype=torch.complex64, generator=generator).conj()
    tensors["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=generator))
    assert fastckpt.torch.save(tensors, tmp_path / "model.ckpt") == str(tmp_path / "model.ckpt")
    tf_reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt"))
    tf_dtypes = tf_reader.get_variable_to_dtype_map()
    assert set(tf_dtypes) == set(tensors)
    for name, tensor in tensors.items():
        value = np.asarray(tf_reader.get_tensor(name))
        assert tf_dtypes[name].name == SAVEABLE[tensor.dtype], name
        assert value.shape == tuple(tensor.shape), name
        expected = tensor.detach().resolve_conj()
        assert numpy_bits(value) == torch_bits(expected), name
    # And back, bit for bit.
    for name, tensor in fastckpt.torch.load(tmp_path / "model.ckpt").items():
        assert torch_bits(tensor) == torch_bits(tensors[name].detach().resolve_conj()), name


def test_save_refuses_what_checkpoints_cannot_hold(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated
        quantized = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)
    with pytest.raises(InvalidArgumentError, match="'q'.*quint8.*dequantize") as err:
        fastckpt.torch.save({"ok": torch.ones(2), "q": quantized}, tmp_path / "a")
    assert err.value.tensor_name == "q" and err.value.filename == str(tmp_path / "a")
    with pytest.raises(InvalidArgumentError, match="'s'.*sparse"):
        fastckpt.torch.save({"s": torch.eye(2).to_sparse()}, tmp_path / "b")
    with pytest.raises(InvalidArgumentError, match="'m'.*meta"):
        fastckpt.torch.save({"m": torch.empty(2, device="meta")}, tmp_path / "c")
    assert not list(tmp_path.iterdir())


def test_save_then_load_into_a_module(tmp_path):
    source = Tied()
    prefix = fastckpt.torch.save(source.state_dict(), tmp_path / "ckpt")
    # The tied weight is saved under both names, the same values.
    assert sorted(fastckpt.NewCheckpointReader(prefix)) == [
        "emb.weight",
        "head.weight",
        "proj.bias",
        "proj.weight",
        "scale",
    ]
    target = Tied()
    assert fastckpt.torch.load_into(target, prefix) == ([], [])
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name


def test_batch_norm_counters_are_not_missing_as_torch_load_state_dict_keeps_them(tmp_path):
    # TensorFlow's batch norms have no num_batches_tracked: torch's own strict load_state_dict keeps the
    # module's counter when a state dict lacks it, and load_into does the same.
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    state = {name: t.clone() for name, t in model.state_dict().items() if not name.endswith("num_batches_tracked")}
    model.load_state_dict(state, strict=True)
    prefix = fastckpt.torch.save({name: t + 1 for name, t in state.items()}, tmp_path / "ckpt")
    model[1].num_batches_tracked.fill_(7)
    assert fastckpt.torch.load_into(model, prefix) == ([], [])
    assert int(model[1].num_batches_tracked) == 7
    assert torch.equal(model[1].running_var, state["1.running_var"] + 1)
    # A state dict names what it holds: there, the counter is missing.
    target = dict(model.state_dict())
    assert fastckpt.torch.load_into(target, prefix, strict=False).missing_keys == ["1.num_batches_tracked"]


# --- the module ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["fastckpt.torch", "fastckpt.torch_arrays"])
def test_docstring_examples(module):
    assert_docstring_examples_pass(sys.modules[module])


def test_importing_fastckpt_torch_imports_torch_not_jax():
    code = (
        "import json, sys, fastckpt\n"
        "before = 'torch' in sys.modules\n"
        "import fastckpt.torch\n"
        "print(json.dumps([before, 'torch' in sys.modules, 'jax' in sys.modules]))\n"
    )
    assert run_python(code) == [False, True, False]


def test_every_writer_takes_torch_tensors_as_fastckpt_torch_save_does(tmp_path):
    """One conversion of torch tensors: CheckpointWriter, Saver and fastckpt.torch.save write float8 and
    bfloat16 as they are, and refuse a sparse tensor naming it."""
    generator = torch.Generator().manual_seed(3)
    tensors = {name: random_tensor(dtype, (2, 3), generator) for dtype, name in SAVEABLE.items()}
    with fastckpt.CheckpointWriter(str(tmp_path / "writer")) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    fastckpt.Saver().save(tensors, str(tmp_path / "saver"))
    fastckpt.torch.save(tensors, str(tmp_path / "save"))
    for prefix in ("writer", "saver", "save"):
        reader = fastckpt.load_checkpoint(str(tmp_path / prefix))
        for name, value in tensors.items():
            stored = reader.get_tensor(name)
            assert stored.dtype.name == name
            assert bytes(stored.view(np.uint8).reshape(-1)) == bytes(value.reshape(-1).view(torch.uint8).numpy())
    with pytest.raises(InvalidArgumentError, match="to_dense") as raised:
        with fastckpt.CheckpointWriter(str(tmp_path / "sparse")) as writer:
            writer.add("s", torch.eye(2).to_sparse())
    assert (raised.value.tensor_name, raised.value.filename) == ("s", str(tmp_path / "sparse"))


def test_saver_restores_into_torch_tensors_of_every_dtype(tmp_path):
    """The reverse conversion, numpy to torch, is one too: Saver.restore(into=) fills torch tensors of every dtype
    a checkpoint and torch share (bfloat16 and float8 among them), bit for bit."""
    generator = torch.Generator().manual_seed(5)
    tensors = {name: random_tensor(dtype, (2, 3), generator) for dtype, name in SAVEABLE.items()}
    prefix = fastckpt.Saver().save(tensors, str(tmp_path / "ckpt"))
    targets = {name: torch.zeros(2, 3, dtype=value.dtype) for name, value in tensors.items()}
    fastckpt.Saver().restore(prefix, into=targets)
    for name, value in tensors.items():
        assert bytes(targets[name].view(torch.uint8).numpy()) == bytes(value.view(torch.uint8).numpy()), name
    with pytest.raises(InvalidArgumentError, match="into torch"):
        fastckpt.Saver().restore(prefix, into={"float32": torch.zeros(2, 3, dtype=torch.float64)})
