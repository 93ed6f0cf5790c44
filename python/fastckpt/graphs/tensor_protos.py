"""Tensors as ``TensorProto`` messages: made from arrays, and decoded by the core with TensorFlow's rule.

>>> proto = make_tensor_proto([[1.0, 2.0]])
>>> proto.tensor_shape.dim[1].size, tensor_proto_to_numpy(proto)
(2, array([[1., 2.]], dtype=float32))
"""

from __future__ import annotations

import numpy as np

from .. import _fastckpt, protos
from ..dtypes import as_dtype, dtype_of_enum

__all__ = ["make_tensor_proto", "tensor_proto_to_numpy"]


def make_tensor_proto(value) -> "protos.TensorProto":
    """A TensorProto of a numpy array (raw bytes in ``tensor_content``; strings in ``string_val``)."""
    from ..arrays import to_numpy

    array = to_numpy(value)
    dtype = as_dtype(array.dtype)
    proto = protos.TensorProto(dtype=dtype.as_datatype_enum)
    proto.tensor_shape.SetInParent()
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if dtype.is_string:
        proto.string_val.extend(array.reshape(-1).tolist())
    else:
        proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return proto


def tensor_proto_to_numpy(proto: "protos.TensorProto") -> np.ndarray:
    """The value of a TensorProto, decoded by the core with TensorFlow's rule: ``tensor_content`` holds the
    tensor's bytes; otherwise the typed values, the last one repeated over the elements left, and none at
    all meaning zeros (empty strings).

    Raises:
        fastckpt.errors.DataLossError: more values than elements, or content of the wrong length.
    """
    dtype_enum, shape, values = _fastckpt.decode_tensor_proto(proto.SerializeToString())
    dtype = dtype_of_enum(dtype_enum)
    if dtype.is_string:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    little_endian = dtype.numpy_dtype.newbyteorder("<")
    return values.view(little_endian).astype(dtype.numpy_dtype, copy=False).reshape(shape)
