"""fastckpt: read TensorFlow checkpoints fast, from Python, without TensorFlow.

>>> import fastckpt
>>> reader = fastckpt.load_checkpoint(fastckpt.examples.model_path())
>>> sorted(reader.get_variable_to_shape_map())
['v1', 'v2']
>>> reader.get_tensor("v1") + reader.get_tensor("v2")
array([3.], dtype=float32)
"""
from . import dtypes, errors, examples, graphs, saved_model
from .checkpoint_state import checkpoint_exists, get_checkpoint_state, latest_checkpoint, update_checkpoint_state
from .dtypes import DType, as_dtype
from .moving_averages import ExponentialMovingAverage
from .reader import (
    CheckpointReader,
    NewCheckpointReader,
    LazyTensor,
    list_variables,
    load_checkpoint,
    load_variable,
)
from .graphs import (
    convert_variables_to_constants,
    export_meta_graph,
    import_meta_graph,
    read_graph,
    read_meta_graph,
    write_graph,
)
from .saver import Saver
from .writer import CheckpointWriter, merge_checkpoints

__all__ = [
    "CheckpointReader",
    "CheckpointWriter",
    "DType",
    "ExponentialMovingAverage",
    "NewCheckpointReader",
    "convert_variables_to_constants",
    "export_meta_graph",
    "import_meta_graph",
    "read_graph",
    "read_meta_graph",
    "saved_model",
    "write_graph",
    "Saver",
    "LazyTensor",
    "as_dtype",
    "checkpoint_exists",
    "dtypes",
    "errors",
    "examples",
    "get_checkpoint_state",
    "graphs",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
    "merge_checkpoints",
    "update_checkpoint_state",
]

try:
    from importlib.metadata import version as _version

    __version__ = _version("fastckpt")
except Exception:  # pragma: no cover - running from a source tree without installing
    __version__ = "0+unknown"
