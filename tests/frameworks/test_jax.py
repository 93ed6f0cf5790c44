"""fastckpt.jax: TensorFlow's checkpoints as jax arrays bit for bit (load), and jax arrays saved as checkpoints
TensorFlow reads (save)."""

import warnings

import fastckpt
import ml_dtypes
import numpy as np
import pytest
from fastckpt.errors import InvalidArgumentError, NotFoundError
from helpers.checkpoints import FIXTURES, NUMPY_DTYPES, Expected, fixture_kinds
from helpers.docstrings import assert_docstring_examples_pass
from helpers.processes import run_python

jax = pytest.importorskip("jax")
import fastckpt.jax  # noqa: E402 - after jax is known to be there
import jax.numpy as jnp  # noqa: E402

X64 = {"int64", "uint64", "float64", "complex128"}
NARROWED = {"int64": "int32", "uint64": "uint32", "float64": "float32", "complex128": "complex64"}


@pytest.fixture
def x64():
    """jax with 64-bit types, for the test only."""
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture
def no_x64():
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", before)


def bits(value):
    return np.ascontiguousarray(np.asarray(value)).reshape(-1).view(np.uint8).tobytes()


def assert_same_bits(array, expected, name=""):
    expected = np.asarray(expected)
    assert isinstance(array, jax.Array), name
    assert array.shape == expected.shape, name
    assert array.dtype == expected.dtype, (name, array.dtype, expected.dtype)
    if expected.dtype.name in ("int4", "uint4"):
        # Sub-byte types: jax packs them, numpy gives them a byte each; the values are the same.
        assert np.asarray(array).astype(np.int8).tolist() == expected.astype(np.int8).tolist(), name
    else:
        assert bits(array) == bits(expected), name


@pytest.mark.parametrize("kind", fixture_kinds())
def test_load_every_fixture_as_tensorflows_reader_read_it(kind, x64):
    expected = Expected(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # with x64 on, nothing to warn about
        arrays = fastckpt.jax.load(expected.path)
    numeric = {name for name, info in expected.tensors.items() if info["dtype"] != "string"}
    assert set(arrays) == numeric
    for name in numeric:
        assert_same_bits(arrays[name], expected.value(name), name)


def test_load_every_dtype_bit_for_bit_against_tensorflow(tf, x64):
    path = str(FIXTURES / "all_dtypes" / "ckpt")
    tf_reader = tf.train.load_checkpoint(path)
    arrays = fastckpt.jax.load(path)
    for name in ("float/bfloat16", "float/float8_e4m3b11fnuz", "int/int4", "int/uint64", "other/complex128"):
        assert arrays[name].dtype.name == name.split("/")[1], name
    assert arrays["float/bfloat16"].dtype == jnp.bfloat16 and arrays["scalar/bfloat16"].shape == ()
    for name, array in arrays.items():
        assert_same_bits(array, tf_reader.get_tensor(name), name)


def test_without_x64_the_narrowed_tensors_are_named(no_x64):
    path = FIXTURES / "all_dtypes" / "ckpt"
    wide = [name for name, info in Expected("all_dtypes").tensors.items() if info["dtype"] in X64]
    with pytest.warns(UserWarning, match=r'jax\.config\.update\("jax_enable_x64", True\)') as caught:
        arrays = fastckpt.jax.load(path)
    message = str(caught[0].message)
    for name in wide:
        assert repr(name) in message, name
    assert f"{len(wide)} 64-bit tensor(s)" in message
    # They were narrowed, as the warning says; the others are exact.
    assert arrays["int/int64"].dtype == jnp.int32 and arrays["float/float64"].dtype == jnp.float32
    expected = Expected("all_dtypes")
    for name in set(arrays) - set(wide):
        assert_same_bits(arrays[name], expected.value(name), name)
    # No 64-bit tensor among those asked: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fastckpt.jax.load(path, names=["float/float32", "int/int32"])


def test_load_names(x64):
    path = FIXTURES / "tf2_keras" / "ckpt"
    by_key = fastckpt.jax.load(path)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in by_key
    full = fastckpt.jax.load(path, names="full")
    key = "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"
    assert np.array_equal(full["sequential/dense/kernel"], by_key[key])
    assert "adam/iteration" in full and full["adam/iteration"].dtype == jnp.int64
    assert list(fastckpt.jax.load(path, names=[key])) == [key]
    objects = fastckpt.jax.load(path, names="object")
    assert np.array_equal(objects["optimizer/_trainable_variables/0"], by_key[key])
    with pytest.raises(NotFoundError):
        fastckpt.jax.load(path, names=["sequential/dense/kernel"])
    with pytest.raises(InvalidArgumentError, match="jax has no strings"):
        fastckpt.jax.load(path, names=["_CHECKPOINTABLE_OBJECT_GRAPH"])
    with pytest.raises(InvalidArgumentError, match="names must be None"):
        fastckpt.jax.load(path, names="all")


def test_load_onto_a_device():
    device = jax.devices("cpu")[0]
    arrays = fastckpt.jax.load(fastckpt.examples.model_path(), device=device)
    assert all(array.devices() == {device} for array in arrays.values())


def test_tensorflow_reads_what_save_wrote_bit_for_bit(tf, tmp_path, x64):
    rng = np.random.default_rng(16)

    def random(dtype, shape):
        dtype = np.dtype(dtype)
        if dtype == np.bool_:
            return rng.integers(0, 2, shape).astype(bool)
        return rng.integers(0, 256, int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8).view(dtype).reshape(shape)

    dtypes = [
        *NUMPY_DTYPES,
        ml_dtypes.bfloat16,
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2fnuz,
        ml_dtypes.float8_e4m3b11fnuz,
    ]
    arrays = {f"t/{np.dtype(d).name}": jnp.asarray(random(d, (3, 4))) for d in dtypes}
    arrays["t/int4"] = jnp.asarray(np.array([-8, -1, 0, 7], ml_dtypes.int4))
    arrays["scalar/bfloat16"] = jnp.asarray(random(ml_dtypes.bfloat16, ()))
    arrays["view/transposed"] = jnp.asarray(random(np.float32, (4, 6))).T
    arrays["numpy"] = np.arange(3, dtype=np.uint16)
    for name, array in arrays.items():
        assert array.dtype == np.asarray(array).dtype, name  # x64 kept every dtype
    prefix = fastckpt.jax.save(arrays, tmp_path / "model.ckpt")
    assert prefix == str(tmp_path / "model.ckpt")
    tf_reader = tf.train.load_checkpoint(prefix)
    tf_dtypes = tf_reader.get_variable_to_dtype_map()
    assert set(tf_dtypes) == set(arrays)
    for name, array in arrays.items():
        expected = np.asarray(array)
        assert tf_dtypes[name].name == expected.dtype.name, name
        value = np.asarray(tf_reader.get_tensor(name))
        assert value.shape == expected.shape, name
        if expected.dtype.name == "int4":
            assert value.astype(np.int8).tolist() == expected.astype(np.int8).tolist()
        else:
            assert bits(value) == bits(expected), name
    # And back.
    for name, array in fastckpt.jax.load(prefix).items():
        assert_same_bits(array, np.asarray(arrays[name]), name)


def test_save_refuses_what_checkpoints_cannot_hold(tmp_path):
    with pytest.raises(InvalidArgumentError, match="'f' to .*: TensorFlow checkpoints have no float8_e8m0fnu") as err:
        fastckpt.jax.save({"ok": jnp.zeros(2), "f": jnp.zeros(2, jnp.float8_e8m0fnu)}, tmp_path / "a")
    assert err.value.tensor_name == "f" and err.value.filename == str(tmp_path / "a")
    assert not list(tmp_path.iterdir())


def test_docstring_examples():
    assert_docstring_examples_pass(fastckpt.jax)


def test_importing_fastckpt_jax_imports_jax_not_torch():
    code = (
        "import json, sys, fastckpt\n"
        "before = 'jax' in sys.modules\n"
        "import fastckpt.jax\n"
        "print(json.dumps([before, 'jax' in sys.modules, 'torch' in sys.modules]))\n"
    )
    assert run_python(code) == [False, True, False]
