"""The values users give (numpy, torch and jax arrays, Python lists and scalars, strings) as the numpy arrays
fastckpt writes: ``to_numpy``, the one conversion every writer, the Saver and the graph builders use.

>>> to_numpy([1.5, 2.0]).dtype, to_numpy(3).dtype, to_numpy(["a", b"b"])
(dtype('float32'), dtype('int32'), array([b'a', b'b'], dtype=object))
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import errors

__all__ = ["to_numpy"]


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _strings(array: np.ndarray, name: Optional[str], path: Optional[str]) -> np.ndarray:
    out = np.empty(array.shape, dtype=object)
    for index, item in np.ndenumerate(array):
        if isinstance(item, bytes):
            out[index] = item
        elif isinstance(item, str):
            out[index] = item.encode("utf-8")
        elif isinstance(item, np.bytes_):
            out[index] = bytes(item)
        else:
            tensor = f"tensor {name!r}" if name is not None else "a tensor"
            raise errors.InvalidTypeError(
                f"cannot write {tensor}{f' to {path}' if path else ''}: a string tensor holds "
                f"{type(item).__name__} {item!r}, where str or bytes are expected",
                path,
                name,
            )
    return out


def to_numpy(value: Any, name: Optional[str] = None, path: Optional[str] = None) -> np.ndarray:
    """An array-like as the numpy array fastckpt writes; ``name`` and ``path``, where given, name the tensor and
    the file in errors.

    numpy, torch and jax arrays keep their dtype (torch tensors through ``fastckpt.torch_arrays.tensor_to_numpy``,
    the one conversion of torch's dtypes). Python values follow ``tf.constant``: floats become float32, ints int32
    (int64 when they do not fit), and ``str``/``bytes`` string tensors (an object array of bytes).

    Raises:
        fastckpt.errors.InvalidTypeError: a string tensor holds something else than ``str`` or ``bytes``.
        fastckpt.errors.InvalidArgumentError: a torch tensor of a dtype checkpoints lack, sparse or on the meta
            device.
    """
    if _is_torch_tensor(value):
        from .torch_arrays import tensor_to_numpy  # torch is imported: the value is one of its tensors

        return tensor_to_numpy(value, name, path)
    if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__array__"):
        array = np.asarray(value)
    elif isinstance(value, (str, bytes)):
        return _strings(np.array(value, dtype=object), name, path)
    else:
        # Strings go through an object array: a numpy bytes array would drop trailing NUL bytes.
        objects = np.array(value, dtype=object)
        if objects.size and all(isinstance(item, (str, bytes)) for item in objects.flat):
            return _strings(objects, name, path)
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype.kind == "i":
            in_int32 = array.size == 0 or (array.min() >= -(2**31) and array.max() < 2**31)
            array = array.astype(np.int32 if in_int32 else np.int64)
    if array.dtype.kind in "SUO":
        return _strings(array, name, path)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array
