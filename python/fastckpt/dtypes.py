"""Tensor element types, named as TensorFlow names them (``tf.DType.name``).

>>> import fastckpt
>>> fastckpt.dtypes.bfloat16.name
'bfloat16'
>>> fastckpt.dtypes.as_dtype("float32").as_numpy_dtype
<class 'numpy.float32'>

bfloat16, the float8 types, int4 and uint4 are ml_dtypes' types. ml_dtypes is imported the first time one of
them is needed (the ``numpy_dtype`` or ``as_numpy_dtype`` of such a DType, or ``as_dtype`` of a numpy dtype
this table does not otherwise hold), not with fastckpt: importing it takes longer than importing numpy.
"""

from __future__ import annotations

import builtins
import sys
from typing import Dict, Optional, Sequence, Union

import numpy as np

from . import _fastckpt, errors

__all__ = ["DType", "as_dtype"]


class DType:
    """A TensorFlow data type.

    Attributes:
        name: TensorFlow's name: ``"float32"``, ``"bfloat16"``, ``"string"``, ...
        as_datatype_enum: the ``DataType`` number stored in checkpoints.
        as_numpy_dtype: the numpy scalar type of the values (``object`` for strings, an ml_dtypes type for
            bfloat16 and the float8 types, the underlying integer type for quantized types, as TensorFlow's
            checkpoint reader returns them).
    """

    __slots__ = ("name", "as_datatype_enum", "is_floating", "_numpy_dtype", "_ml_dtypes_name", "_size")

    def __init__(self, name: str, enum: int, size: int, numpy_name: str, is_floating: bool):
        self.name = name
        self.as_datatype_enum = enum
        self.is_floating = is_floating
        self._size = size
        # The extension resolves numpy dtypes; ml_dtypes' on first use (_resolve_ml_dtypes).
        ml_dtypes_name = numpy_name[len("ml_dtypes.") :] if numpy_name.startswith("ml_dtypes.") else None
        self._ml_dtypes_name: Optional[str] = ml_dtypes_name
        self._numpy_dtype: Optional[np.dtype] = None if ml_dtypes_name else _fastckpt.numpy_dtype(enum)

    @property
    def numpy_dtype(self) -> np.dtype:
        """The ``numpy.dtype`` of arrays of this type."""
        if self._numpy_dtype is None:
            _resolve_ml_dtypes()
        return self._numpy_dtype

    @property
    def numpy_name(self) -> str:
        """The name of ``numpy_dtype`` (``"bfloat16"`` for ml_dtypes' bfloat16), known without importing ml_dtypes."""
        return self._ml_dtypes_name or self.numpy_dtype.name

    @property
    def as_numpy_dtype(self) -> type:
        return self.numpy_dtype.type

    @property
    def is_string(self) -> bool:
        return self.as_datatype_enum == STRING_ENUM

    @property
    def size(self) -> int:
        """Bytes per element in a checkpoint's data file (0 for variable-length types)."""
        return self._size

    def nbytes(self, shape: Sequence[int]) -> int:
        """Bytes of a tensor of this type and ``shape`` in a data file (0 for variable-length types).

        >>> float32.nbytes([2, 3])
        24
        """
        count = 1
        for dim in shape:
            count *= int(dim)
        return count * self._size

    def __repr__(self) -> str:
        return f"fastckpt.{self.name}"

    def __reduce__(self):
        return dtype_of_enum, (self.as_datatype_enum,)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DType):
            return self.as_datatype_enum == other.as_datatype_enum
        try:
            return self.as_datatype_enum == as_dtype(other).as_datatype_enum  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return NotImplemented

    def __hash__(self) -> int:
        return hash(self.as_datatype_enum)


# The core's dtype table (rust/fastckpt/src/dtype.rs), the one place each dtype's number, name, size and numpy
# type are written.
_ALL = [DType(*row) for row in _fastckpt.dtype_table()]
STRING_ENUM = next(d.as_datatype_enum for d in _ALL if d.name == "string")

_BY_ENUM: Dict[int, DType] = {d.as_datatype_enum: d for d in _ALL}
_BY_NAME: Dict[str, DType] = {d.name: d for d in _ALL}
_BY_NAME.update(half=_BY_NAME["float16"], float=_BY_NAME["float32"], double=_BY_NAME["float64"])
# Quantized types share their numpy dtype with plain integers, which win. The ml_dtypes types join when
# ml_dtypes is imported (_resolve_ml_dtypes).
_BY_NUMPY: Dict[np.dtype, DType] = {}
for _d in _ALL:
    if _d._numpy_dtype is not None and not _d.name.startswith("q"):
        _BY_NUMPY.setdefault(_d._numpy_dtype, _d)
_BY_NUMPY[np.dtype(object)] = _BY_NAME["string"]
_ML_DTYPES_RESOLVED = False  # whether the ml_dtypes types have their numpy dtypes (ml_dtypes imported)


def _resolve_ml_dtypes() -> None:
    """Fills in the numpy dtypes of the DTypes ml_dtypes defines (the extension imports ml_dtypes), once."""
    global _ML_DTYPES_RESOLVED
    if not _ML_DTYPES_RESOLVED:
        for d in _ALL:
            if d._ml_dtypes_name is not None:
                d._numpy_dtype = _fastckpt.numpy_dtype(d.as_datatype_enum)
                _BY_NUMPY.setdefault(d._numpy_dtype, d)
        _ML_DTYPES_RESOLVED = True


# Module attributes fastckpt.dtypes.float32, ...; `bool` among them shadows the builtin here, hence builtins.bool.
globals().update({d.name: d for d in _ALL})
__all__ += [d.name for d in _ALL]


def dtype_of_enum(value: int) -> DType:
    """The DType of a ``DataType`` number (a fast path of ``as_dtype``)."""
    try:
        return _BY_ENUM[value]
    except KeyError:
        raise errors.InvalidArgumentError(f"unknown DataType number {value}") from None


def as_dtype(value: Union[DType, int, str, np.dtype, type]) -> DType:
    """The DType of a DType, a ``DataType`` number, a name (``"float32"``, ``"DT_FLOAT"``) or a numpy dtype."""
    if isinstance(value, DType):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, builtins.bool):
        if int(value) in _BY_ENUM:
            return _BY_ENUM[int(value)]
        raise errors.InvalidArgumentError(f"unknown DataType number {value}")
    if isinstance(value, str):
        key = value.lower()
        if key.startswith("dt_"):
            key = {"dt_half": "float16", "dt_float": "float32", "dt_double": "float64"}.get(key, key[3:])
        if key in _BY_NAME:
            return _BY_NAME[key]
        raise errors.InvalidArgumentError(f"unknown dtype name {value!r}")
    try:
        numpy_dtype = np.dtype(value)
    except TypeError:
        raise errors.InvalidTypeError(f"cannot interpret {value!r} as a dtype") from None
    if numpy_dtype.kind in "SU":
        return _BY_NAME["string"]
    if numpy_dtype in _BY_NUMPY:
        return _BY_NUMPY[numpy_dtype]
    # A dtype of ml_dtypes means ml_dtypes is imported already: its types join the table, and are looked up.
    if not _ML_DTYPES_RESOLVED and "ml_dtypes" in sys.modules:
        _resolve_ml_dtypes()
        if numpy_dtype in _BY_NUMPY:
            return _BY_NUMPY[numpy_dtype]
    raise errors.InvalidArgumentError(f"no TensorFlow dtype for numpy dtype {numpy_dtype}")
