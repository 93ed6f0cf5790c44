"""torch tensors as numpy arrays and numpy arrays as torch tensors, for every part of fastckpt that meets them (``fastckpt.torch``, the
writers, ``convert``): the one correspondence of torch's dtypes to TensorFlow's, bfloat16 and the float8 types
included. Imported only where a torch tensor is at hand: ``import fastckpt`` does not import torch.

>>> import torch
>>> array = tensor_to_numpy(torch.ones(2, dtype=torch.bfloat16))
>>> array.dtype.name, array.tolist()
('bfloat16', [1.0, 1.0])
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from . import _optional, errors

torch = _optional.require("torch", "fastckpt.torch")

__all__ = ["bytes_of", "numpy_to_tensor", "numpy_view", "tensor_to_numpy", "torch_dtype"]

# numpy dtype name (as the reader gives tensors: quantized types as their integers, as TensorFlow's reader
# returns them) -> torch dtype, for the types the installed torch has.
_TORCH_DTYPES: Dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in (
        "float16",
        "float32",
        "float64",
        "bfloat16",
        "float8_e4m3fn",
        "float8_e4m3fnuz",
        "float8_e5m2",
        "float8_e5m2fnuz",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
        "complex64",
        "complex128",
    )
    if isinstance(getattr(torch, name, None), torch.dtype)
}
_TORCH_DTYPES["bool_"] = torch.bool
# torch dtypes whose tensors .numpy() converts; the others are viewed as the integers of their size.
_NUMPY_NATIVE = {
    torch.float16,
    torch.float32,
    torch.float64,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
    torch.complex64,
    torch.complex128,
}
_CARRIERS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def torch_dtype(dtype) -> Optional[torch.dtype]:
    """The torch dtype of tensors of a ``fastckpt.DType`` (or anything ``fastckpt.as_dtype`` takes), or None when
    the installed torch has none (strings, int4, float8_e4m3b11fnuz, ...). Quantized types are their integers
    (``qint8`` is ``torch.int8``), as TensorFlow's reader returns them.

    >>> import fastckpt
    >>> torch_dtype(fastckpt.bfloat16), torch_dtype(fastckpt.string)
    (torch.bfloat16, None)
    """
    from .dtypes import as_dtype

    dtype = as_dtype(dtype)
    if dtype.is_string or dtype.name in ("resource", "variant"):
        return None
    return _TORCH_DTYPES.get(dtype.numpy_name)


def bytes_of(tensor: torch.Tensor) -> np.ndarray:
    """The memory of the contiguous CPU tensor ``tensor`` as a flat uint8 numpy array: no copy, and no numpy type
    for its dtype needed (torch's bfloat16 and float8 need no ml_dtypes)."""
    return tensor.reshape(-1).view(torch.uint8).numpy()


def numpy_view(tensor: torch.Tensor, numpy_dtype: np.dtype) -> np.ndarray:
    """The memory of the CPU tensor ``tensor`` as a numpy array of ``numpy_dtype`` (bfloat16 and float8 as
    ml_dtypes' types, through integers of their size): no copy."""
    if tensor.dtype in _NUMPY_NATIVE:
        return tensor.numpy()
    return tensor.view(_CARRIERS[tensor.element_size()]).numpy().view(numpy_dtype)


# torch dtypes a checkpoint has no type for, and what to do instead.
_UNSAVEABLE_HINTS = {
    "quint8": "dequantize() it, or save int_repr()",
    "qint8": "dequantize() it, or save int_repr()",
    "qint32": "dequantize() it, or save int_repr()",
    "quint4x2": "dequantize() it, or save int_repr()",
    "quint2x4": "dequantize() it, or save int_repr()",
}


def numpy_to_tensor(array: np.ndarray) -> Optional[torch.Tensor]:
    """A numpy array as a CPU torch tensor over its memory (over a C-contiguous copy where it is not contiguous),
    bfloat16 and the float8 types of ml_dtypes included; None where torch has no type for its dtype.

    >>> import ml_dtypes
    >>> numpy_to_tensor(np.ones(2, ml_dtypes.bfloat16))
    tensor([1., 1.], dtype=torch.bfloat16)
    """
    from .dtypes import as_dtype

    try:
        dtype = torch_dtype(as_dtype(array.dtype))
    except (TypeError, ValueError):  # a numpy dtype TensorFlow has no type for
        return None
    if dtype is None:
        return None
    array = np.require(array, requirements="C")
    if dtype in _NUMPY_NATIVE:
        return torch.from_numpy(array)
    size = array.dtype.itemsize
    return torch.from_numpy(array.view(np.uint8 if size == 1 else np.dtype(f"<i{size}"))).view(dtype)


def tensor_to_numpy(value: torch.Tensor, name: Optional[str] = None, path: Optional[str] = None) -> np.ndarray:
    """A torch tensor as the numpy array of its values and dtype (bfloat16 and float8 as ml_dtypes' types),
    without a copy when it is a contiguous CPU tensor: how every writer of fastckpt takes torch tensors
    (``CheckpointWriter``, ``Saver``, ``fastckpt.torch.save``, ``convert``). ``name`` and ``path`` name the
    tensor and file in errors.

    Raises:
        fastckpt.errors.InvalidArgumentError: a dtype checkpoints lack, a sparse tensor, the meta device.
    """
    from .dtypes import as_dtype

    what = f"{name!r}" if name is not None else "a tensor"
    where = f"cannot save {what}{f' to {path}' if path else ''}"
    tensor = value.detach()
    if tensor.layout != torch.strided:
        raise errors.InvalidArgumentError(f"{where}: it is a {tensor.layout} tensor; save to_dense() of it", path, name)
    if tensor.device.type == "meta":
        raise errors.InvalidArgumentError(f"{where}: it is on the meta device, with no data", path, name)
    dtype_name = str(tensor.dtype).replace("torch.", "")
    numpy_dtype = None
    if dtype_name in _TORCH_DTYPES and _TORCH_DTYPES[dtype_name] == tensor.dtype:
        try:
            numpy_dtype = as_dtype(dtype_name).numpy_dtype
        except ValueError:
            numpy_dtype = None
    if numpy_dtype is None:
        hint = _UNSAVEABLE_HINTS.get(dtype_name, "convert it to a dtype TensorFlow has")
        raise errors.InvalidArgumentError(f"{where}: TensorFlow checkpoints have no {dtype_name} ({hint})", path, name)
    tensor = tensor.to("cpu").resolve_conj().resolve_neg().contiguous()
    return numpy_view(tensor, numpy_dtype)
