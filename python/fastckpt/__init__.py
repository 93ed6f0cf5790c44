"""fastckpt: read TensorFlow checkpoints fast, from Python, without TensorFlow.

>>> import fastckpt
>>> reader = fastckpt.load_checkpoint(fastckpt.examples.model_path())
>>> sorted(reader.get_variable_to_shape_map())
['v1', 'v2']
>>> reader.get_tensor("v1") + reader.get_tensor("v2")
array([3.], dtype=float32)
>>> reader.get_variable_to_dtype_map()["v1"] == fastckpt.float32
True
"""

from . import conversion, distributed, dtypes, errors, examples, graphs, mapping, saved_model
from ._fastckpt import __version__
from .conversion import convert

# TensorFlow's dtype names, as tf.float32: fastckpt.float32 is what get_variable_to_dtype_map() returns.
from .dtypes import (  # noqa: A004 - `bool` shadows the builtin only in this namespace, as in tf
    DType,
    as_dtype,
    bfloat16,
    bool,
    complex64,
    complex128,
    float8_e4m3b11fnuz,
    float8_e4m3fn,
    float8_e4m3fnuz,
    float8_e5m2,
    float8_e5m2fnuz,
    float16,
    float32,
    float64,
    int4,
    int8,
    int16,
    int32,
    int64,
    qint8,
    qint16,
    qint32,
    quint8,
    quint16,
    resource,
    string,
    uint4,
    uint8,
    uint16,
    uint32,
    uint64,
    variant,
)
from .graphs import (
    convert_variables_to_constants,
    export_meta_graph,
    read_graph,
    read_meta_graph,
    write_graph,
)
from .reading.checkpoint_state import (
    checkpoint_exists,
    get_checkpoint_mtimes,
    get_checkpoint_state,
    latest_checkpoint,
    remove_checkpoint,
    update_checkpoint_state,
)
from .reading.reader import (
    CheckpointReader,
    LazyTensor,
    NewCheckpointReader,
    list_variables,
    load_checkpoint,
    load_variable,
)
from .saving.from_meta_graph import import_meta_graph
from .saving.moving_averages import ExponentialMovingAverage
from .saving.saver import Saver
from .saving.writer import CheckpointWriter, Slice, merge_checkpoints

__all__ = [
    "CheckpointReader",
    "CheckpointWriter",
    "DType",
    *(d for d in dtypes.__all__ if d not in ("DType", "as_dtype")),
    "ExponentialMovingAverage",
    "NewCheckpointReader",
    "convert",
    "convert_variables_to_constants",
    "export_meta_graph",
    "import_meta_graph",
    "read_graph",
    "read_meta_graph",
    "saved_model",
    "write_graph",
    "Saver",
    "Slice",
    "LazyTensor",
    "as_dtype",
    "checkpoint_exists",
    "distributed",
    "dtypes",
    "errors",
    "examples",
    "get_checkpoint_mtimes",
    "get_checkpoint_state",
    "graphs",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
    "mapping",
    "merge_checkpoints",
    "remove_checkpoint",
    "update_checkpoint_state",
]
