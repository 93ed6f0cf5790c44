"""Keras 2 files into Keras 3, without TensorFlow.

Keras 3 refuses what tf.keras 2 wrote: the TF-format weights of ``model.save_weights("w")`` and the SavedModels
of ``model.save("dir")``. fastckpt reads them and fills a Keras 3 model on any backend (jax, torch,
tensorflow):

- ``load_weights(model, path)``: a built Keras 3 model, filled in place from a Keras 2 weights checkpoint, a
  ``tf.train.Checkpoint(model=...)`` checkpoint or a Keras 2 SavedModel;
- ``load_model(path)``: a Keras 2 SavedModel as a Keras 3 model, its architecture from the Keras 2 config it
  holds;
- ``save_keras_file(saved_model_dir, "model.keras")`` (also ``fastckpt.convert`` and ``fastckpt convert`` to a
  ``.keras`` path): a ``.keras`` file Keras 3 opens itself.

Importing this module imports Keras, neither TensorFlow nor tf_keras.
"""

try:
    import keras as _keras
except ImportError as _err:
    raise ImportError(
        "fastckpt.keras fills Keras 3 models and needs Keras 3 with a backend (jax, torch or tensorflow): "
        "pip install 'fastckpt[keras]' jax"
    ) from _err
if int(_keras.__version__.split(".")[0]) < 3:
    raise ImportError(
        f"fastckpt.keras fills Keras 3 models, and Keras {_keras.__version__} is installed: pip install 'keras>=3' "
        "(tf.keras 2 reads its own files)"
    )

from .models import load_model, save_keras_file  # noqa: E402 - after the check that Keras 3 is there
from .weights import load_weights  # noqa: E402

__all__ = ["load_model", "load_weights", "save_keras_file"]
