"""fastckpt.keras: what tf.keras 2 saved, in Keras 3.

tf_keras 2 (with TensorFlow) trains each architecture of tests/helpers/keras_models.py a few steps and saves it
three ways; Keras 3 builds it again in processes where TensorFlow cannot be imported (jax backend, and torch for
some), fastckpt fills it, and it must predict what tf_keras predicted. Keras 3's own checks (errors, object stores)
run in this process, on the backend Keras 3 has here.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from helpers.keras_models import ARCHITECTURES, SAVED, WEIGHTS_ONLY, inputs
from helpers.object_stores import upload
from helpers.paths import HELPERS, TF_TESTDATA
from helpers.processes import python_command, run_cli, run_helper
from helpers.tensorflow_oracle import tensorflow_or_skip

# Backends order float32 sums differently: predictions agree to this relative difference.
RTOL = 1e-4
BUILT = [(name, how) for name in ARCHITECTURES for how in SAVED]
WHOLE = [(name, how) for name in ARCHITECTURES if name not in WEIGHTS_ONLY for how in ("load_model", "keras_file")]
# On the torch backend: a recurrent, a convolutional and an attention model filled, a functional one loaded whole.
TORCH = [("text", "weights"), ("cnn", "checkpoint"), ("transformer", "saved_model"), ("residual", "load_model")]


def _required(module: str):
    """Imports ``module``; in CI (CI=true) it must be there, elsewhere the test skips without it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return __import__(module)
    return pytest.importorskip(module)


def _relative_difference(actual, expected) -> float:
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


@pytest.fixture(scope="module")
def keras2_files(tmp_path_factory):
    """The architectures as tf_keras 2 trained and saved them, and what they predicted."""
    tensorflow_or_skip()
    _required("tf_keras")
    out = tmp_path_factory.mktemp("keras2")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    run_helper("keras_models.py", "write", out, env=env, timeout=900)
    with np.load(out / "predictions.npz") as predictions:
        return out, {name: predictions[name] for name in predictions.files}


def _read(out: Path, backend: str, job) -> dict:
    """Runs keras_models.py's Keras 3 side on ``backend`` over ``job``; returns its predictions."""
    job_file = out / f"job-{backend}.json"
    job_file.write_text(json.dumps(job))
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.pop("TF_USE_LEGACY_KERAS", None)
    run_helper("keras_models.py", "read", out, job_file, env=env, timeout=900)
    with np.load(job_file.with_suffix(".npz")) as results:
        return {name: results[name] for name in results.files}


@pytest.fixture(scope="module")
def on_jax(keras2_files):
    _required("jax")
    out, _ = keras2_files
    return _read(out, "jax", BUILT + WHOLE)


@pytest.fixture(scope="module")
def on_torch(keras2_files):
    _required("torch")
    out, _ = keras2_files
    return _read(out, "torch", TORCH)


@pytest.mark.parametrize("name, how", BUILT, ids=[f"{n}-{h}" for n, h in BUILT])
def test_keras3_model_filled_on_jax_predicts_as_keras2(keras2_files, on_jax, name, how):
    _, expected = keras2_files
    assert _relative_difference(on_jax[f"{name}/{how}"], expected[name]) < RTOL
    # Before fastckpt filled it, the model (other initial weights) predicted something else: the check can fail.
    assert _relative_difference(on_jax[f"{name}/{how}/before"], expected[name]) > 1e-2


@pytest.mark.parametrize("name, how", WHOLE, ids=[f"{n}-{h}" for n, h in WHOLE])
def test_keras2_saved_model_loaded_whole_on_jax_predicts_as_keras2(keras2_files, on_jax, name, how):
    _, expected = keras2_files
    assert _relative_difference(on_jax[f"{name}/{how}"], expected[name]) < RTOL


@pytest.mark.parametrize("name, how", TORCH, ids=[f"{n}-{h}" for n, h in TORCH])
def test_on_torch_backend_too(keras2_files, on_torch, name, how):
    _, expected = keras2_files
    assert _relative_difference(on_torch[f"{name}/{how}"], expected[name]) < RTOL


def test_command_line_writes_a_keras_file_keras3_opens_on_torch(keras2_files):
    _required("torch")
    out, expected = keras2_files
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = run_cli("convert", out / "nested" / SAVED["saved_model"], out / "cli.keras", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    code = f"""
import sys, numpy as np
sys.path.insert(0, {str(HELPERS)!r})
from keras_models import block_tensorflow, inputs
block_tensorflow()
import keras
model = keras.saving.load_model({str(out / "cli.keras")!r})
np.save({str(out / "cli.npy")!r}, np.asarray(model.predict(inputs("nested", 4, seed=2)[0], verbose=0)))
"""
    done = subprocess.run(python_command(code), capture_output=True, text=True, env=dict(env, KERAS_BACKEND="torch"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert _relative_difference(np.load(out / "cli.npy"), expected["nested"]) < RTOL


# Keras 3 in this process ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras3():
    keras = _required("keras")
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"Keras {keras.__version__} is not Keras 3")
    import fastckpt.keras

    return keras, fastckpt.keras


def _value(variable) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(variable)


def _weights(model):
    return [_value(weight) for weight in model.weights]


def test_another_architectures_checkpoint_raises_and_assigns_nothing(keras2_files, keras3):
    keras, fk = keras3
    out, _ = keras2_files
    model = ARCHITECTURES["mlp"](keras)
    before = _weights(model)
    with pytest.raises(errors.InvalidArgumentError, match="does not fit model") as raised:
        fk.load_weights(model, out / "residual" / SAVED["weights"])
    # Both sides are named: the checkpoint's variable (object path and Keras 2 name) and the model's.
    message = str(raised.value)
    assert "checkpoint variable layer_with_weights-" in message and "model variable " in message
    assert raised.value.filename == str(out / "residual" / SAVED["weights"])
    assert all(np.array_equal(a, b) for a, b in zip(_weights(model), before))


def test_a_shape_mismatch_names_both_variables(keras2_files, keras3):
    keras, fk = keras3
    out, _ = keras2_files
    # mlp with a wider first layer: its kernel and bias, and the next kernel, no longer fit.
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(17), keras.layers.Dense(16), keras.layers.Dense(3)])
    with pytest.raises(errors.InvalidArgumentError) as raised:
        fk.load_weights(model, out / "mlp" / SAVED["checkpoint"])
    message = str(raised.value)
    assert "checkpoint variable model/layer_with_weights-0/kernel (dense/kernel) is float32 [8, 16]" in message
    assert f"model variable {model.layers[0].kernel.path} is float32 [8, 17]" in message


def test_skip_mismatch_loads_the_rest_and_warns(keras2_files, keras3):
    keras, fk = keras3
    out, _ = keras2_files
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(17), keras.layers.Dense(16), keras.layers.Dense(3)])
    with pytest.warns(UserWarning, match="mismatches") as warned:
        fk.load_weights(model, out / "mlp" / SAVED["weights"], skip_mismatch=True)
    assert "layer_with_weights-0/kernel" in str(warned[0].message)
    stored = fastckpt.load_checkpoint(out / "mlp" / SAVED["weights"])
    # The last layer fits, and is filled.
    assert np.array_equal(
        _value(model.layers[2].kernel), stored.get_tensor("layer_with_weights-2/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    )


def test_an_unbuilt_model_and_a_name_based_checkpoint_are_refused(keras3, tmp_path):
    keras, fk = keras3
    with pytest.raises(errors.InvalidArgumentError, match="build it first"):
        fk.load_weights(keras.Sequential([keras.layers.Dense(2)]), fastckpt.examples.model_path())
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    with pytest.raises(errors.InvalidArgumentError, match="no object graph"):
        fk.load_weights(model, fastckpt.examples.model_path())


def test_load_model_of_a_saved_model_without_keras_config_says_to_use_load_weights(keras2_files, keras3, tmp_path):
    _, fk = keras3
    out, _ = keras2_files
    builder = fastckpt.saved_model.Builder(tmp_path / "module")
    builder.add_meta_graph_and_variables({"w": np.ones([2], np.float32)}, ["serve"])
    builder.save()
    with pytest.raises(errors.InvalidArgumentError, match="load_weights"):
        fk.load_model(tmp_path / "module")
    # A subclassed model's SavedModel has no config Keras could build it from.
    with pytest.raises(errors.InvalidArgumentError, match="load_weights"):
        fk.load_model(out / "subclassed" / SAVED["saved_model"])


def test_keras2_files_of_tensorflow_2_2(keras3):
    """TensorFlow's own test data (a Sequential of one Dense, trained with a mixed-precision loss-scale
    optimizer by TensorFlow 2.2): the kernel TensorFlow's test expects, through the checkpoint and through the
    SavedModel, whose Keras config TensorFlow 2.2 kept in saved_model.pb."""
    keras, fk = keras3
    data = TF_TESTDATA
    if not (data / "keras_lso_ckpt_tf2.2").is_dir():
        pytest.skip("../shared/tf-testdata is not beside the checkout")
    expected_kernel = np.array([[9.229685, 10.901115], [10.370763, 9.757362]], np.float32)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    fk.load_weights(model, data / "keras_lso_ckpt_tf2.2")
    np.testing.assert_allclose(_value(model.layers[0].kernel), expected_kernel, rtol=1e-6)
    loaded = fk.load_model(data / "keras_lso_savedmodel_tf2.2")
    np.testing.assert_allclose(_value(loaded.layers[0].kernel), expected_kernel, rtol=1e-6)


def test_from_an_object_store(keras2_files, keras3, s3_server, s3_bucket):
    keras, fk = keras3
    out, expected = keras2_files
    upload(s3_server.client(), s3_bucket, out / "residual", "residual")
    model = ARCHITECTURES["residual"](keras)
    # A directory URL: its checkpoint state file names the weights.
    fk.load_weights(model, f"s3://{s3_bucket}/residual/weights")
    x = inputs("residual", 4, seed=2)[0]
    assert _relative_difference(model.predict(x, verbose=0), expected["residual"]) < RTOL
    loaded = fk.load_model(f"s3://{s3_bucket}/residual/{SAVED['saved_model']}")
    assert _relative_difference(loaded.predict(x, verbose=0), expected["residual"]) < RTOL


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"\xff" * 64, id="garbage"),
        pytest.param(lambda data: data.replace(b'{"', b'["', 1), id="json-damaged"),
    ],
)
def test_damaged_keras_metadata_is_data_loss_naming_the_file(keras2_files, keras3, tmp_path, damage):
    _, fk = keras3
    out, _ = keras2_files
    copy = tmp_path / "saved_model"
    shutil.copytree(out / "mlp" / SAVED["saved_model"], copy)
    metadata = copy / "keras_metadata.pb"
    metadata.write_bytes(damage(metadata.read_bytes()))
    with pytest.raises(errors.DataLossError) as raised:
        fk.load_model(copy)
    assert raised.value.filename == str(metadata)


def test_convert_to_keras_takes_no_tensor_rules(keras2_files, keras3, tmp_path):
    out, _ = keras2_files
    with pytest.raises(errors.InvalidArgumentError, match="do not apply"):
        fastckpt.convert(out / "mlp" / SAVED["saved_model"], tmp_path / "model.keras", skip_optimizer=True)
    assert not (tmp_path / "model.keras").exists()
