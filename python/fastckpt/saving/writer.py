"""Writing checkpoints that TensorFlow reads: ``CheckpointWriter``, TensorFlow's BundleWriter.

>>> import numpy as np, tempfile, os, fastckpt
>>> prefix = os.path.join(tempfile.mkdtemp(), "model.ckpt")
>>> with fastckpt.CheckpointWriter(prefix) as writer:
...     writer.add("v1", np.array([1.0], dtype=np.float32))
...     writer.add("names", ["a", "b"])
>>> fastckpt.load_checkpoint(prefix).get_tensor("names")
array([b'a', b'b'], dtype=object)

The same tensors added in the same order give the same bytes as ``tf.raw_ops.SaveV2``.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from .. import _fastckpt, _paths, errors
from ..arrays import to_numpy
from ..dtypes import DType, as_dtype
from ..reading.reader import tensor_key

__all__ = ["CheckpointWriter", "Slice", "dtype_and_shape", "merge_checkpoints"]


class Slice(NamedTuple):
    """One part of a partitioned tensor: ``value`` is the block of the tensor of shape ``full_shape`` that starts
    at ``offset`` (one start per dimension), as TensorFlow's partitioned variables save their parts.

    Given to ``Saver.save`` in place of a value, it saves that part (each process of a ``process_group`` saves
    its own, and TensorFlow reads the tensor whole); given to ``Saver.restore(into=...)`` it reads that part
    into ``value``.

    >>> import numpy as np, tempfile, os, fastckpt
    >>> prefix = os.path.join(tempfile.mkdtemp(), "model.ckpt")
    >>> saver = fastckpt.Saver()
    >>> _ = saver.save({"emb": fastckpt.Slice(np.ones((2, 3), np.float32), [4, 3], [2, 0])}, prefix)
    >>> rows = fastckpt.Slice(np.zeros((2, 3), np.float32), [4, 3], [2, 0])
    >>> saver.restore(prefix, into={"emb": rows})["emb"].value
    array([[1., 1., 1.],
           [1., 1., 1.]], dtype=float32)
    """

    value: Any
    full_shape: Sequence[int]
    offset: Sequence[int]

    @property
    def extents(self) -> Tuple[Tuple[int, int], ...]:
        """``(start, length)`` of the part in each dimension; raises unless value, full shape and offset have
        one entry per dimension each."""
        shape = tuple(getattr(self.value, "shape", np.shape(self.value)))
        full_shape, offset = tuple(int(d) for d in self.full_shape), tuple(int(o) for o in self.offset)
        if not (len(shape) == len(full_shape) == len(offset)):
            raise errors.InvalidArgumentError(
                f"a slice of shape {list(shape)} at offset {list(offset)} of a tensor of shape {list(full_shape)}: "
                "each needs one entry per dimension"
            )
        return tuple(zip(offset, shape))

    @property
    def spec(self) -> str:
        """The part as TensorFlow's slice spec: ``start,length`` per dimension, joined by ``:``."""
        return ":".join(f"{start},{length}" for start, length in self.extents)


def dtype_and_shape(value: Any) -> Tuple[DType, Tuple[int, ...]]:
    """The dtype and shape of the variable a value (an array, or a ``Slice`` of one) is saved for."""
    if isinstance(value, Slice):
        return as_dtype(value.value.dtype), tuple(int(d) for d in value.full_shape)
    return as_dtype(value.dtype), tuple(value.shape)


def _payload(name: str, array: np.ndarray) -> Tuple[DType, Any]:
    try:
        dtype = as_dtype(array.dtype)
    except (TypeError, ValueError) as err:
        raise errors.InvalidArgumentError(f"cannot write tensor {name!r}: {err}", None, name) from None
    if dtype.is_string:
        return dtype, list(array.reshape(-1))
    return dtype, np.ascontiguousarray(array).reshape(-1).view(np.uint8)


class CheckpointWriter:
    """Writes one V2 checkpoint (``prefix.index`` and ``prefix.data-00000-of-00001``).

    Data goes to temporary files that are renamed into place by ``finish()``: until then no checkpoint
    exists at ``prefix``, and as a context manager the writer finishes on success and removes its files on
    failure. ``durable=True`` also fsyncs the files and their directory.

    ``num_shards=N`` spreads the tensors over N data files (``prefix.data-0000i-of-0000N``, the layout of
    TensorFlow's sharded saves, which TensorFlow reads), and ``add_tensors`` then writes them in parallel:
    faster on a machine with several cores, since the kernel serializes the writes to one file. With one
    data file (the default), the bytes are those of ``tf.raw_ops.SaveV2``.

    ``prefix`` may be the URL of an object store (``s3://bucket/run/model.ckpt``; data files are then
    multipart uploads); ``storage_options`` configures object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores").

    >>> import numpy as np, tempfile, os, fastckpt
    >>> prefix = os.path.join(tempfile.mkdtemp(), "model.ckpt")
    >>> with fastckpt.CheckpointWriter(prefix, num_shards=2) as writer:
    ...     writer.add_tensors({"w": np.ones((4, 4), np.float32), "b": np.zeros(4, np.float32)})
    >>> sorted(fastckpt.list_variables(prefix))
    [('b', [4]), ('w', [4, 4])]
    """

    def __init__(
        self,
        prefix: "str | os.PathLike[str]",
        *,
        durable: bool = False,
        num_shards: int = 1,
        storage_options: Optional[Mapping[str, str]] = None,
    ):
        if int(num_shards) < 1:
            raise errors.InvalidArgumentError(f"num_shards must be at least 1, not {num_shards}", os.fspath(prefix))
        self.prefix = os.fspath(prefix)
        self._writer = _fastckpt.BundleWriter(self.prefix, _paths.stores(storage_options), durable, int(num_shards))

    def add(self, name: str, value: Any) -> None:
        """Adds tensor ``name`` (numpy, torch or jax array, Python scalar or list, ``str`` or ``bytes``)."""
        array = to_numpy(value, name, self.prefix)
        dtype, data = _payload(name, array)
        self._writer.add(tensor_key(name), dtype.as_datatype_enum, list(array.shape), data)

    def add_tensors(self, tensors: Union[Mapping[str, Any], Iterable[Tuple[str, Any]]]) -> None:
        """Adds every tensor of ``{name: value}`` (or of ``(name, value)`` pairs) in one call, as ``add``
        would one by one, with the data files written in parallel and the GIL released. If any tensor
        cannot be added (a bad value, a name added before), nothing of the batch is written."""
        items = tensors.items() if isinstance(tensors, Mapping) else tensors
        names, dtypes, shapes, data = [], [], [], []
        for name, value in items:
            array = to_numpy(value, name, self.prefix)
            dtype, payload = _payload(name, array)
            names.append(tensor_key(name))
            dtypes.append(dtype.as_datatype_enum)
            shapes.append(list(array.shape))
            data.append(payload)
        self._writer.add_tensors(names, dtypes, shapes, data)

    def add_slice(self, name: str, full_shape: Sequence[int], slice_spec: str, value: Any) -> None:
        """Adds one slice of the partitioned tensor ``name`` of shape ``full_shape``.

        ``slice_spec`` is TensorFlow's: per dimension ``start,length`` or ``-`` for all of it, joined by
        ``:``, e.g. ``"0,3:-"`` for rows 0 to 2. The reader reassembles the slices.
        """
        array = to_numpy(value, name, self.prefix)
        dtype, data = _payload(name, array)
        self._writer.add(
            tensor_key(name),
            dtype.as_datatype_enum,
            list(array.shape),
            data,
            [int(d) for d in full_shape],
            slice_spec,
        )

    def finish(self) -> str:
        """Writes the index and renames the files into place; returns the prefix."""
        self._writer.finish()
        return self.prefix

    def abort(self) -> None:
        """Gives up: removes the temporary files; nothing appears at the prefix."""
        self._writer.abort()

    def __enter__(self) -> "CheckpointWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


def merge_checkpoints(
    checkpoint_prefixes: Sequence[str],
    merged_prefix: str,
    *,
    durable: bool = False,
    storage_options: Optional[Mapping[str, str]] = None,
) -> str:
    """Merges checkpoints written separately (by several processes or hosts) into one, as TensorFlow's
    ``MergeV2Checkpoints`` does: data files are renamed under ``merged_prefix``, one index is written, and
    the source indexes are deleted. Returns ``merged_prefix``.

    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores")."""
    _paths.stores(storage_options).merge_checkpoints(
        [os.fspath(p) for p in checkpoint_prefixes], os.fspath(merged_prefix), durable
    )
    return os.fspath(merged_prefix)
