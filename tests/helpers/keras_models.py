"""The architectures of tests/frameworks/test_keras.py, each written once for both Keras APIs: tf_keras 2 trains
and saves it, Keras 3 builds it again and fastckpt.keras fills it.

Run as a script it is one side of the test, in a process of its own:

- ``python keras_models.py write OUT_DIR``, under tf_keras (TF_USE_LEGACY_KERAS=1): each model trained a few steps
  and saved the three ways Keras 2 saves (``save_weights`` in the TF format, ``tf.train.Checkpoint(model=...,
  optimizer=...)``, ``model.save`` as a SavedModel), with its predictions on fixed inputs in ``predictions.npz``;
- ``python keras_models.py read OUT_DIR JOB``, under Keras 3 in a process where TensorFlow and tf_keras cannot be
  imported (as if not installed): the models of ``JOB`` (a JSON list of ``[architecture, how]``) built again, or
  loaded whole, filled by fastckpt.keras and their predictions written to ``JOB``'s result file.
"""

import importlib.machinery
import json
import sys
from pathlib import Path

import numpy as np

SEED = 7


def mlp(keras):
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(16, activation="tanh"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3),
        ]
    )


def residual(keras):
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dense(16)(x)
    x = keras.layers.BatchNormalization()(x)
    shortcut = keras.layers.Dense(16)(inputs)
    x = keras.layers.Add()([x, shortcut])
    x = keras.layers.Activation("relu")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def cnn(keras):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(16, 3)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def mobilenet_v2(keras):
    return keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=5, classifier_activation=None)


def resnet50(keras):
    return keras.applications.ResNet50(input_shape=(32, 32, 3), weights=None, classes=5, classifier_activation=None)


def text(keras):
    tokens = keras.Input((12,), dtype="int32")
    x = keras.layers.Embedding(50, 16)(tokens)
    x = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True))(x)
    x = keras.layers.GRU(8)(x)
    return keras.Model(tokens, keras.layers.Dense(2)(x))


def transformer(keras):
    inputs = keras.Input((10, 16))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(inputs, inputs)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([inputs, attention]))
    feed_forward = keras.layers.Dense(32, activation="relu")(x)
    feed_forward = keras.layers.Dense(16)(feed_forward)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, feed_forward]))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def nested(keras):
    inner = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.BatchNormalization()]
    )
    inputs = keras.Input((6,))
    x = inner(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8, activation="relu")(x)))


def normalized(keras):
    normalization = keras.layers.Normalization()
    if keras.__version__.startswith("2."):
        # tf_keras adapts it; Keras 3 (whose adapt needs TensorFlow) keeps a mean of 0 and a variance of 1
        # until fastckpt loads the adapted ones.
        normalization.adapt(inputs("normalized", 64, seed=3)[0])
    return keras.Sequential(
        [keras.Input((8,)), normalization, keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)]
    )


def subclassed(keras):
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.encoder = keras.layers.Dense(12, activation="relu")
            self.blocks = [keras.layers.Dense(12, activation="relu"), keras.layers.Dense(12, activation="relu")]
            self.norm = keras.layers.LayerNormalization()
            self.head = keras.layers.Dense(3)

        def call(self, inputs):
            x = self.encoder(inputs)
            for block in self.blocks:
                x = x + block(x)
            return self.head(self.norm(x))

    model = Classifier()
    model(np.zeros((1, 5), np.float32))
    return model


ARCHITECTURES = {
    "mlp": mlp,
    "residual": residual,
    "cnn": cnn,
    "mobilenet_v2": mobilenet_v2,
    "resnet50": resnet50,
    "text": text,
    "transformer": transformer,
    "nested": nested,
    "normalized": normalized,
    "subclassed": subclassed,
}
# Keras 2 saves subclassed models as SavedModels without a config Keras can rebuild them from.
WEIGHTS_ONLY = {"subclassed"}
# The three ways Keras 2 saves, as paths under an architecture's directory.
SAVED = {"weights": "weights/w", "checkpoint": "checkpoint", "saved_model": "saved_model"}


def inputs(name: str, n: int, seed: int):
    """Inputs of ``n`` examples for architecture ``name``, and regression or class targets."""
    rng = np.random.default_rng(seed)
    shapes = {
        "mlp": (8,),
        "residual": (8,),
        "cnn": (16, 16, 3),
        "mobilenet_v2": (32, 32, 3),
        "resnet50": (32, 32, 3),
        "transformer": (10, 16),
        "nested": (6,),
        "normalized": (8,),
        "subclassed": (5,),
    }
    if name == "text":
        x = rng.integers(0, 50, (n, 12)).astype(np.int32)
    else:
        # Offset and scaled, so that BatchNormalization's moving statistics move visibly from 0 and 1.
        x = (rng.standard_normal((n, *shapes[name])) * 2.0 + 0.5).astype(np.float32)
    return x, rng.integers(0, 2, (n,)).astype(np.int32)


def write(out: Path) -> None:
    """Under tf_keras: trains, saves and predicts every architecture."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(SEED)
    predictions = {}
    for name, build in ARCHITECTURES.items():
        model = build(keras)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x, y = inputs(name, 32, seed=1)
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        directory = out / name
        model.save_weights(str(directory / SAVED["weights"]))
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).save(str(directory / SAVED["checkpoint"] / "ckpt"))
        model.save(str(directory / SAVED["saved_model"]))
        predictions[name] = model.predict(inputs(name, 4, seed=2)[0], verbose=0)
    np.savez(out / "predictions.npz", **predictions)


class _PathFinderWithoutTensorFlow(importlib.machinery.PathFinder):
    """Python's finder of modules on sys.path, blind to TensorFlow and tf_keras."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.split(".")[0] in ("tensorflow", "tf_keras"):
            return None
        return super().find_spec(fullname, path, target)


def block_tensorflow() -> None:
    """Makes this process see no TensorFlow and no tf_keras, as where they are not installed: importing them
    raises ModuleNotFoundError, ``importlib.util.find_spec`` finds nothing, and they are not in sys.modules."""
    assert "tensorflow" not in sys.modules and "tf_keras" not in sys.modules
    sys.meta_path[:] = [
        _PathFinderWithoutTensorFlow if finder is importlib.machinery.PathFinder else finder for finder in sys.meta_path
    ]


def read(out: Path, job: Path) -> None:
    """Under Keras 3, without TensorFlow: fills or loads each ``[architecture, how]`` of ``job`` and predicts;
    ``how`` is one of SAVED's keys (the model built, then ``load_weights``: its predictions before are kept
    too, under ``.../before``), ``"load_model"`` (the SavedModel loaded whole) or ``"keras_file"`` (the
    SavedModel converted by ``fastckpt.convert`` to a ``.keras`` file, opened by Keras itself)."""
    block_tensorflow()
    import fastckpt.keras
    import keras

    results = {}
    for name, how in json.loads(job.read_text()):
        directory = out / name
        x = inputs(name, 4, seed=2)[0]
        if how == "load_model":
            model = fastckpt.keras.load_model(directory / SAVED["saved_model"])
        elif how == "keras_file":
            path = directory / f"{keras.backend.backend()}.keras"
            fastckpt.convert(directory / SAVED["saved_model"], path)
            model = keras.saving.load_model(path)
        else:
            keras.utils.set_random_seed(SEED + 1)  # other initial weights than tf_keras had
            model = ARCHITECTURES[name](keras)
            results[f"{name}/{how}/before"] = np.asarray(model.predict(x, verbose=0))
            fastckpt.keras.load_weights(model, directory / SAVED[how])
        results[f"{name}/{how}"] = np.asarray(model.predict(x, verbose=0))
    assert "tensorflow" not in sys.modules and "tf_keras" not in sys.modules
    np.savez(job.with_suffix(".npz"), **results)


if __name__ == "__main__":
    command, out = sys.argv[1], Path(sys.argv[2])
    if command == "write":
        write(out)
    else:
        read(out, Path(sys.argv[3]))
