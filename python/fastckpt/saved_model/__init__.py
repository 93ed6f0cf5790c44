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

TensorFlow 1's ``loader.load(sess, tags, export_dir)`` is ``fastckpt.saved_model.loader.load(None, tags,
export_dir)``: it returns the same, whose fields are the MetaGraphDef's, as TensorFlow 1's are.

>>> sorted(fastckpt.saved_model.loader.load(None, ["serve"], export_dir).collection_def)
['trainable_variables', 'variables']
"""

from . import constants, loader
from .builder import Builder
from .constants import *  # noqa: F403 - tf.saved_model's names, listed in constants.__all__
from .loading import LoadedSavedModel, load, tag_sets
from .signatures import build_main_op, build_signature_def, build_tensor_info

__all__ = [
    "Builder",
    "LoadedSavedModel",
    "build_main_op",
    "build_signature_def",
    "build_tensor_info",
    "load",
    "loader",
    "tag_sets",
    *constants.__all__,
]
