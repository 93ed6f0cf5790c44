"""SavedModels as data: load one's graph, signatures and variables without TensorFlow, or build one that
TensorFlow's loader loads.

>>> import os, tempfile, numpy as np, fastckpt
>>> export_dir = os.path.join(tempfile.mkdtemp(), "model")
>>> builder = fastckpt.saved_model.Builder(export_dir)
>>> builder.add_meta_graph_and_variables({"w": np.ones((2, 2), np.float32)}, tags=["serve"])
>>> path = builder.save()
>>> model = fastckpt.saved_model.load(export_dir, tags=["serve"])
>>> model.variables["w"]
array([[1., 1.],
       [1., 1.]], dtype=float32)
"""

from . import constants
from .builder import Builder
from .constants import *  # noqa: F403 - tf.saved_model's names, listed in constants.__all__
from .loader import LoadedSavedModel, load, tag_sets
from .signatures import build_main_op, build_signature_def, build_tensor_info

__all__ = [
    "Builder",
    "LoadedSavedModel",
    "build_main_op",
    "build_signature_def",
    "build_tensor_info",
    "load",
    "tag_sets",
    *constants.__all__,
]
