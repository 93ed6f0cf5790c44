"""The names TensorFlow's SavedModel code uses (``tf.saved_model.constants``, ``tag_constants``,
``signature_constants``): files and directories of a SavedModel, collections and signature keys a TF1 loader
reads, tags and signature method names.

>>> tag_constants.SERVING, signature_constants.PREDICT_METHOD_NAME
('serve', 'tensorflow/serving/predict')
"""

from types import SimpleNamespace

from ..reading.directories import (
    SAVED_MODEL_FILENAME_PB,
    SAVED_MODEL_FILENAME_PBTXT,
    VARIABLES_DIRECTORY,
    VARIABLES_FILENAME,
)

__all__ = [
    "ASSETS_DIRECTORY",
    "ASSETS_KEY",
    "EXTRA_ASSETS_DIRECTORY",
    "INIT_OP_SIGNATURE_KEY",
    "LEGACY_INIT_OP_KEY",
    "MAIN_OP_KEY",
    "SAVED_MODEL_FILENAME_PB",
    "SAVED_MODEL_FILENAME_PBTXT",
    "SAVED_MODEL_SCHEMA_VERSION",
    "TRAIN_OP_KEY",
    "TRAIN_OP_SIGNATURE_KEY",
    "VARIABLES_DIRECTORY",
    "VARIABLES_FILENAME",
    "signature_constants",
    "tag_constants",
]  # and the tag and signature constants, below

SAVED_MODEL_SCHEMA_VERSION = 1
ASSETS_DIRECTORY = "assets"
EXTRA_ASSETS_DIRECTORY = "assets.extra"

# Collections and signature keys a TF1 loader reads (tf.saved_model.constants).
ASSETS_KEY = "saved_model_assets"
MAIN_OP_KEY = "saved_model_main_op"
LEGACY_INIT_OP_KEY = "legacy_init_op"
TRAIN_OP_KEY = "saved_model_train_op"
INIT_OP_SIGNATURE_KEY = "__saved_model_init_op"
TRAIN_OP_SIGNATURE_KEY = "__saved_model_train_op"
# tf.compat.v1.GraphKeys.ASSET_FILEPATHS: a graph's asset tensors.
ASSET_FILEPATHS = "asset_filepaths"

# Tags of meta graphs (tf.saved_model.tag_constants).
SERVING = "serve"
TRAINING = "train"
EVAL = "eval"
GPU = "gpu"
TPU = "tpu"

# Signature keys and method names (tf.saved_model.signature_constants).
DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default"
DEFAULT_TRAIN_SIGNATURE_DEF_KEY = "train"
DEFAULT_EVAL_SIGNATURE_DEF_KEY = "eval"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
PREDICT_INPUTS = "inputs"
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
PREDICT_OUTPUTS = "outputs"
REGRESS_INPUTS = "inputs"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
REGRESS_OUTPUTS = "outputs"
SUPERVISED_TRAIN_METHOD_NAME = "tensorflow/supervised/training"
SUPERVISED_EVAL_METHOD_NAME = "tensorflow/supervised/eval"

_TAG_CONSTANTS = ("SERVING", "TRAINING", "EVAL", "GPU", "TPU")
_SIGNATURE_CONSTANTS = (
    "DEFAULT_SERVING_SIGNATURE_DEF_KEY",
    "DEFAULT_TRAIN_SIGNATURE_DEF_KEY",
    "DEFAULT_EVAL_SIGNATURE_DEF_KEY",
    "CLASSIFY_INPUTS",
    "CLASSIFY_METHOD_NAME",
    "CLASSIFY_OUTPUT_CLASSES",
    "CLASSIFY_OUTPUT_SCORES",
    "PREDICT_INPUTS",
    "PREDICT_METHOD_NAME",
    "PREDICT_OUTPUTS",
    "REGRESS_INPUTS",
    "REGRESS_METHOD_NAME",
    "REGRESS_OUTPUTS",
    "SUPERVISED_TRAIN_METHOD_NAME",
    "SUPERVISED_EVAL_METHOD_NAME",
)
# The same as namespaces, for code written against tf.compat.v1.saved_model.tag_constants.SERVING.
tag_constants = SimpleNamespace(**{name: globals()[name] for name in _TAG_CONSTANTS})
signature_constants = SimpleNamespace(**{name: globals()[name] for name in _SIGNATURE_CONSTANTS})
__all__ += _TAG_CONSTANTS + _SIGNATURE_CONSTANTS
