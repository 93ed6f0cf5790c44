"""What passes from a conversion's source to its destination: ``Tensor`` (a dtype and a shape), the arrays
tensors are read into (new, or from an ``Arena`` reused batch after batch), and the conventions of the files
both sides share."""

from __future__ import annotations

from typing import Callable, Dict, NamedTuple, Optional, Tuple

import numpy as np

from ..dtypes import DType
from ..reading.reader import CheckpointReader

__all__ = [
    "SAFETENSORS_INDEX_NAME",
    "SAFETENSORS_NAME",
    "STRING_METADATA_PREFIX",
    "Allocate",
    "Arena",
    "Tensor",
    "bytes_of",
    "empty",
    "tensor_sizes",
]

# Key prefix, in safetensors metadata, of string tensors (which safetensors cannot hold).
STRING_METADATA_PREFIX = "fastckpt.string:"
# The file names of Hugging Face's safetensors weights in a directory, sharded or not.
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"


def tensor_sizes(reader: CheckpointReader) -> Dict[str, int]:
    """``{name: bytes}`` of every tensor of a checkpoint (0 for strings, whose size the index does not give)."""
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    return {name: dtypes[name].nbytes(shape) for name, shape in shapes.items()}


class Tensor(NamedTuple):
    """A tensor of a source: its dtype and shape."""

    dtype: DType
    shape: Tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return self.dtype.nbytes(self.shape)

    def row_bytes(self) -> int:
        return self.dtype.nbytes(self.shape[1:])


def shape_of(tensor: Tensor, rows: Optional[int]) -> Tuple[int, ...]:
    return tensor.shape if rows is None else (rows, *tensor.shape[1:])


def empty(tensor: Tensor, rows: Optional[int] = None) -> np.ndarray:
    """A new array for ``tensor`` (or ``rows`` of its rows)."""
    return np.empty(shape_of(tensor, rows), tensor.dtype.numpy_dtype)


# How sources get the arrays they read into: empty, or an Arena's.
Allocate = Callable[[Tensor, Optional[int]], np.ndarray]


class Arena:
    """Memory reused from one batch to a later one: a new array costs the kernel's zeroing of every page it
    touches (a third of a large conversion's time), a reused one nothing."""

    ALIGN = 64

    def __init__(self) -> None:
        self._buffer = np.empty(0, np.uint8)
        self._used = 0

    @staticmethod
    def _nbytes(tensor: Tensor, rows: Optional[int]) -> int:
        return tensor.dtype.nbytes(shape_of(tensor, rows))

    @classmethod
    def size(cls, tensor: Tensor, rows: Optional[int] = None) -> int:
        """The bytes ``empty`` takes for it, aligned."""
        return -(-cls._nbytes(tensor, rows) // cls.ALIGN) * cls.ALIGN

    def reset(self, nbytes: int) -> None:
        """Takes back every array given out; the next ones may add up to ``nbytes``."""
        if self._buffer.nbytes < nbytes:
            self._buffer = np.empty(0, np.uint8)  # freed before the larger one is made
            self._buffer = np.empty(nbytes, np.uint8)
        self._used = 0

    def empty(self, tensor: Tensor, rows: Optional[int] = None) -> np.ndarray:
        start, nbytes = self._used, self._nbytes(tensor, rows)
        if nbytes == 0:  # numpy puts an empty slice at its base's start, where it would overlap another array
            return empty(tensor, rows)
        self._used += self.size(tensor, rows)
        return self._buffer[start : start + nbytes].view(tensor.dtype.numpy_dtype).reshape(shape_of(tensor, rows))


def bytes_of(array: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous array as a flat uint8 view."""
    return array.reshape(-1).view(np.uint8)
