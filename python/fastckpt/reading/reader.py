"""Reading checkpoints: ``NewCheckpointReader`` and friends, as in ``tf.train``.

>>> import fastckpt
>>> reader = fastckpt.NewCheckpointReader(fastckpt.examples.model_path())
>>> reader.get_variable_to_shape_map()
{'v1': [1], 'v2': [1]}
>>> reader.get_tensor("v1")
array([1.], dtype=float32)

Large tensors can be read in part, touching only the bytes needed:

>>> reader.get_slice("v2")[0]
np.float32(2.0)
"""

from __future__ import annotations

import operator
import os
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np

from .. import _fastckpt, _paths, errors, protos
from .._fastckpt import Checkpoint
from ..dtypes import DType, dtype_of_enum
from .directories import directory_checkpoint
from .object_graph import OBJECT_GRAPH_KEY, full_names, object_paths

__all__ = [
    "CheckpointReader",
    "NewCheckpointReader",
    "load_checkpoint",
    "list_variables",
    "load_variable",
    "LazyTensor",
]

PathLike = Union[str, "os.PathLike[str]"]


def tensor_key(name: str) -> bytes:
    """Tensor ``name`` as the checkpoint stores it: UTF-8, with surrogate escapes standing for bytes that are
    not UTF-8 (as names of such tensors are given back)."""
    return name.encode("utf-8", "surrogateescape")


def _as_returned(value: np.ndarray):
    """A value as TensorFlow's reader returns it: a scalar as a numpy scalar (bytes for a string), not a 0-d
    array; other arrays as they are."""
    return value[()] if value.ndim == 0 else value


def _open(path: str, stores: "_fastckpt.Stores") -> Checkpoint:
    """The checkpoint a user's path means, open: a prefix or file as is; for a directory, its SavedModel
    variables (``variables/variables``) when they exist, else the latest checkpoint of its state file.

    The path is tried as a checkpoint first: a prefix in an object store then costs no listing.

    Raises:
        fastckpt.errors.NotACheckpointError: a directory with neither (TensorFlow raises ValueError).
        fastckpt.errors.InvalidCheckpointStateError: its state file names no checkpoint.
    """
    try:
        return Checkpoint.open(path, stores)
    except errors.NotACheckpointError:
        if stores.file_kind(path) != "directory":
            raise
    return Checkpoint.open(directory_checkpoint(path, stores), stores)


class CheckpointReader:
    """An open checkpoint: V2 (``prefix.index`` + data files) or V1, found from a prefix, a V1 file, a
    directory with a ``checkpoint`` state file, or a SavedModel directory.

    Data files are memory-mapped; each ``get_tensor`` copies the tensor once, into the array it returns, and
    verifies its CRC32C as TensorFlow does (``verify_checksums=False`` skips that).

    A path to one of a V2 checkpoint's own files (``model.ckpt.index``, ``model.ckpt.data-00000-of-00001``)
    opens that checkpoint.

    ``path`` may be the URL of an object store (``s3://bucket/run/model.ckpt``, ``gs://``, ``az://``,
    ``https://``); ``storage_options`` configures object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``, added to what the environment variables say; see README "Object stores").

    Raises:
        fastckpt.errors.NotACheckpointError: nothing at ``path`` is a checkpoint (a ``NotFoundError`` and a
            ``ValueError``); for a file of another kind (a ``.meta``, a state file, ``.h5``, ``.safetensors``,
            ...), the message says what it is and what to pass instead.
        fastckpt.errors.DataLossError: the checkpoint is corrupt or truncated.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        verify_checksums: bool = True,
        storage_options: Optional[Mapping[str, str]] = None,
    ):
        self._checkpoint = _open(os.fspath(path), _paths.stores(storage_options))
        self._path = os.fspath(self._checkpoint.path)
        self._verify = verify_checksums
        # Names, dtypes and shapes stay in the extension, looked up there: opening builds no Python object
        # per tensor.

    @property
    def path(self) -> str:
        """The checkpoint prefix (V2) or file (V1) that was opened."""
        return self._path

    @property
    def format(self) -> str:
        """``"v2"`` or ``"v1"``."""
        return self._checkpoint.format

    def get_variable_to_shape_map(self) -> Dict[str, List[int]]:
        """``{name: shape}`` of every tensor; partitioned tensors appear once, with their full shape."""
        return self._checkpoint.shape_map()

    def get_variable_to_dtype_map(self) -> Dict[str, DType]:
        """``{name: fastckpt.DType}`` of every tensor."""
        return {name: dtype_of_enum(enum) for name, enum in self._checkpoint.dtype_map().items()}

    def has_tensor(self, name: str) -> bool:
        return isinstance(name, str) and tensor_key(name) in self._checkpoint

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._checkpoint.names())

    def __len__(self) -> int:
        return len(self._checkpoint)

    def _lookup(self, name: str) -> Tuple[bytes, DType, Tuple[int, ...]]:
        """The key, dtype and shape of tensor ``name``."""
        key = tensor_key(name)
        dtype_enum, shape = self._checkpoint.dtype_and_shape(key)
        return key, dtype_of_enum(dtype_enum), shape

    def get_tensor(self, name: str) -> np.ndarray:
        """The value of tensor ``name`` as a numpy array (strings: an object array of ``bytes``; scalars: a
        numpy scalar, or ``bytes``, as TensorFlow returns them).

        Raises:
            fastckpt.errors.NotFoundError: no such tensor.
            fastckpt.errors.DataLossError: its bytes are corrupt (checksum mismatch) or missing.
        """
        return _as_returned(self._checkpoint.get(tensor_key(name), self._verify))

    def get_tensors(self, names: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
        """``{name: value}`` of several tensors (default: all), read in parallel with checksums verified;
        values as ``get_tensor`` returns them."""
        names, arrays = self._read_numeric(names)
        return {
            name: _as_returned(self._read_string(name) if array is None else array)
            for name, array in zip(names, arrays)
        }

    def get_arrays(self, names: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
        """``{name: numpy array}`` of several tensors (default: all), read as ``get_tensors`` reads them, but
        every value an array: a scalar as a 0-d array (a string one an object array holding its ``bytes``, NUL
        bytes kept), where ``get_tensor`` gives a numpy scalar or ``bytes`` as TensorFlow does."""
        names, arrays = self._read_numeric(names)
        return {name: self._read_string(name) if array is None else array for name, array in zip(names, arrays)}

    def _read_numeric(self, names: Optional[Iterable[str]]) -> Tuple[List[str], List[Optional[np.ndarray]]]:
        """The names of the tensors ``names`` (default: all) and their arrays, the numeric ones read in one
        parallel pass; None for string tensors (``_read_string`` reads them)."""
        if names is None:
            return self._checkpoint.read_all(self._verify)
        names = list(names)
        keys, dtypes, _ = map(list, zip(*map(self._lookup, names))) if names else ([], [], [])
        numeric = [i for i, dtype in enumerate(dtypes) if not dtype.is_string]
        arrays: List[Optional[np.ndarray]] = [None] * len(names)
        for i, array in zip(numeric, self._checkpoint.read_tensors([keys[i] for i in numeric], self._verify)):
            arrays[i] = array
        return names, arrays

    def _read_string(self, name: str) -> np.ndarray:
        return self._checkpoint.get(tensor_key(name), self._verify)

    def view(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a read-only numpy array over the memory-mapped data file: nothing is read or
        verified until the array is used (no checksum check: this is the opt-out of verification). Tensors that
        cannot be viewed as stored (strings, partitioned tensors, V1 files, the other byte order) are read
        instead. Views need local files: on an object store this raises ``UnimplementedError``."""
        if _fastckpt.is_url(self._path):
            raise errors.UnimplementedError(
                f"views map local files, and {self._path} is in an object store: read it with get_tensors", self._path
            )
        key, dtype, shape = self._lookup(name)
        raw = None if dtype.is_string else self._checkpoint.mapped(key)
        if raw is None:
            return self.get_tensor(name)
        return raw.view(dtype.numpy_dtype).reshape(shape)

    def views(self, names: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
        """``{name: view(name)}`` of several tensors (default: all): a zero-copy open, in time that grows with
        the number of tensors, not their size."""
        return {name: self.view(name) for name in (self._checkpoint.names() if names is None else names)}

    def read_into(self, name: str, out: np.ndarray) -> None:
        """Reads tensor ``name`` straight into ``out``, a C-contiguous numpy array of its dtype and shape."""
        self.read_tensors_into({name: out})

    def read_tensors_into(self, targets: Mapping[str, np.ndarray]) -> None:
        """Reads several tensors straight into the caller's arrays, ``{name: out}``, in parallel as
        ``get_tensors`` reads (checksums verified). Each ``out`` is a writable C-contiguous numpy array of the
        tensor's dtype and shape; the arrays are all checked before anything is read.

        >>> import fastckpt
        >>> reader = fastckpt.NewCheckpointReader(fastckpt.examples.model_path())
        >>> v1, v2 = np.zeros(1, np.float32), np.zeros(1, np.float32)
        >>> reader.read_tensors_into({"v1": v1, "v2": v2})
        >>> v1, v2
        (array([1.], dtype=float32), array([2.], dtype=float32))
        """
        keys, outs = [], []
        for name, out in targets.items():
            key, dtype, shape = self._lookup(name)
            if (
                dtype.is_string
                or not isinstance(out, np.ndarray)
                or out.dtype != dtype.numpy_dtype
                or out.shape != shape
            ):
                raise errors.InvalidArgumentError(
                    f"cannot read {dtype.name} {list(shape)} tensor {name!r} into {getattr(out, 'dtype', type(out))} "
                    f"{list(getattr(out, 'shape', []))}",
                    self._path,
                    name,
                )
            if not out.flags.c_contiguous or not out.flags.writeable:
                raise errors.InvalidArgumentError(
                    f"cannot read {name!r} into an array that is not writable and C-contiguous", self._path, name
                )
            keys.append(key)
            outs.append(out.reshape(-1).view(np.uint8))
        self._checkpoint.read_tensors_into(keys, outs, self._verify)

    def read_bytes_into(self, targets: Mapping[str, np.ndarray]) -> None:
        """``read_tensors_into`` for callers that check dtypes and shapes themselves (fastckpt.torch): each
        target is a writable flat uint8 array of the tensor's size in bytes, so no numpy type is needed for
        the dtype (bfloat16 needs no ml_dtypes). The sizes are still checked."""
        keys = [self._lookup(name)[0] for name in targets]
        self._checkpoint.read_tensors_into(keys, list(targets.values()), self._verify)

    def read_rows_into(self, name: str, first: int, count: int, out: np.ndarray, checksum: int = 0) -> int:
        """Reads rows ``first`` to ``first + count - 1`` (along the first dimension) of numeric tensor ``name``
        into ``out``, a writable flat uint8 array of their size in bytes, for reading a large tensor in parts:
        pass 0 as ``checksum`` with the first part, then what the call before returned; the part that ends
        the tensor verifies its CRC32C (a mismatch is a ``DataLossError``)."""
        return self._checkpoint.read_rows(self._lookup(name)[0], first, count, checksum, out)

    def stored_range(self, name: str) -> Optional[Tuple[str, int, int, int]]:
        """Where the bytes of tensor ``name`` lie as stored, ``(data file, offset, length, size of the data file
        when it was opened)`` (fastckpt.torch maps them copy-on-write); None where ``view`` reads instead."""
        where = self._checkpoint.stored_range(self._lookup(name)[0])
        return None if where is None else (os.fspath(where[0]), where[1], where[2], where[3])

    def _read(self, key: bytes, dtype: DType, shape, region) -> np.ndarray:
        if dtype.is_string:
            strings = self._checkpoint.read_strings(key, region)
            array = np.empty(len(strings), dtype=object)
            array[:] = strings
            return array.reshape(shape)
        raw = self._checkpoint.read(key, region, self._verify if region is None else False)
        return raw.view(dtype.numpy_dtype).reshape(shape)

    def get_slice(self, name: str) -> "LazyTensor":
        """A lazy view of tensor ``name``: indexing it (``reader.get_slice("emb")[1000:1010]``) reads only the
        bytes of the selected elements. Partial reads cannot verify the tensor's checksum."""
        key, dtype, shape = self._lookup(name)
        return LazyTensor(self, key, dtype, shape)

    def object_graph(self) -> Optional["protos.TrackableObjectGraph"]:
        """The object graph a TF2 checkpoint (``tf.train.Checkpoint``) stores, or None for name-based ones."""
        if not self.has_tensor(OBJECT_GRAPH_KEY):
            return None
        return protos.TrackableObjectGraph.FromString(self.get_tensor(OBJECT_GRAPH_KEY))

    def object_paths(self) -> Dict[str, str]:
        """For a TF2 checkpoint, ``{checkpoint_key: object path}``: e.g.
        ``model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`` → ``model/layer_with_weights-0/kernel``,
        and an optimizer slot ``.../.OPTIMIZER_SLOT/optimizer/m`` → ``<variable path>/optimizer/m``.

        Only keys the checkpoint holds: a variable that was saved uninitialized is in the object graph (see
        ``object_graph``) without a value."""
        graph = self.object_graph()
        return {} if graph is None else object_paths(graph, self)

    def full_names(self) -> Dict[str, str]:
        """For a TF2 checkpoint, ``{checkpoint_key: full name}``: the names the variables had in TensorFlow (what a
        TF1 ``Saver`` would have saved them as), which only the object graph keeps, beside each key: e.g.
        ``model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`` → ``dense/kernel`` (tf.keras 2), and with
        Keras 3 ``optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE`` → ``sequential/dense/kernel``, the
        Adam state under ``adam/...``.

        Keys without a full name are left out; a checkpoint without an object graph (``tf.compat.v1.train.Saver``,
        whose keys are the full names) gives ``{}``.

        >>> import fastckpt
        >>> fastckpt.NewCheckpointReader(fastckpt.examples.model_path()).full_names()
        {}
        """
        graph = self.object_graph()
        return {} if graph is None else full_names(graph, self)

    def debug_string(self) -> bytes:
        """One line per tensor, ``name (DT_TYPE) [d0,d1]``, as TensorFlow's reader prints it."""
        lines = [
            f"{name} ({protos.DataType.Name(dtype)}) [{','.join(map(str, shape))}]\n"
            for name, dtype, shape in zip(*self._checkpoint.tensors())
        ]
        return "".join(lines).encode("utf-8", "surrogateescape")

    def __repr__(self) -> str:
        return f"<fastckpt.CheckpointReader {self._path!r} ({self.format}, {len(self)} tensors)>"


class LazyTensor:
    """A tensor that has not been read: index it with numpy basic indexing (integers, slices with steps,
    ``...`` and ``None``) to read just those elements."""

    def __init__(self, reader: CheckpointReader, key: bytes, dtype: DType, shape: Tuple[int, ...]):
        self._reader = reader
        self._key = key
        self.dtype = dtype
        self.shape = shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        value = self[...]
        return value if dtype is None else value.astype(dtype)

    def __getitem__(self, index) -> np.ndarray:
        region, flips, result_shape = _basic_index(index, self.shape)
        counts = [count for _, count, _ in region]
        value = self._reader._read(self._key, self.dtype, counts, region)
        if flips:
            value = value[tuple(slice(None, None, -1) if flip else slice(None) for flip in flips)]
        # numpy gives a scalar, not a 0-d array, when every dimension is indexed by an integer.
        return _as_returned(value.reshape(result_shape))

    def __repr__(self) -> str:
        return f"<fastckpt.LazyTensor shape={list(self.shape)} dtype={self.dtype.name}>"


def _basic_index(index, shape: Tuple[int, ...]):
    """Turns a numpy basic index into ``[(start, count, step)]`` per dimension (step > 0), which dimensions
    to reverse afterwards, and the shape of the result."""
    if not isinstance(index, tuple):
        index = (index,)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    if used > len(shape):
        raise IndexError(f"too many indices for a tensor of rank {len(shape)}")
    if Ellipsis in [i for i in index if i is Ellipsis]:
        at = next(n for n, i in enumerate(index) if i is Ellipsis)
        index = index[:at] + (slice(None),) * (len(shape) - used) + index[at + 1 :]
    else:
        index = index + (slice(None),) * (len(shape) - used)

    region, flips, result_shape = [], [], []
    dim = 0
    for item in index:
        if item is None:
            result_shape.append(1)
            continue
        size = shape[dim]
        if isinstance(item, slice):
            start, stop, step = item.indices(size)
            count = len(range(start, stop, step))
            if count == 0:
                region.append((0, 0, 1))
                flips.append(False)
            elif step > 0:
                region.append((start, count, step))
                flips.append(False)
            else:
                region.append((start + (count - 1) * step, count, -step))
                flips.append(True)
            result_shape.append(count)
        else:
            try:
                position = operator.index(item)
            except TypeError:
                raise IndexError(
                    f"only integers, slices, '...' and None are valid indices of a checkpoint tensor, not {item!r}"
                ) from None
            if not -size <= position < size:
                raise IndexError(f"index {position} is out of bounds for axis {dim} with size {size}")
            region.append((position % size, 1, 1))
            flips.append(False)
        dim += 1
    return region, flips if any(flips) else [], tuple(result_shape)


def NewCheckpointReader(  # noqa: N802 - TensorFlow's name
    filepattern: PathLike, *, storage_options: Optional[Mapping[str, str]] = None
) -> CheckpointReader:
    """Opens a checkpoint, as ``tf.compat.v1.train.NewCheckpointReader`` does.

    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores")."""
    return CheckpointReader(filepattern, storage_options=storage_options)


def load_checkpoint(
    ckpt_dir_or_file: PathLike, *, storage_options: Optional[Mapping[str, str]] = None
) -> CheckpointReader:
    """Opens a checkpoint from a prefix, a file or a directory, as ``tf.train.load_checkpoint`` does.

    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores")."""
    return CheckpointReader(ckpt_dir_or_file, storage_options=storage_options)


def list_variables(
    ckpt_dir_or_file: PathLike, *, storage_options: Optional[Mapping[str, str]] = None
) -> List[Tuple[str, List[int]]]:
    """``[(name, shape)]`` of every tensor, sorted by name, as ``tf.train.list_variables`` returns.

    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores")."""
    reader = CheckpointReader(ckpt_dir_or_file, storage_options=storage_options)
    return sorted(reader.get_variable_to_shape_map().items())


def load_variable(
    ckpt_dir_or_file: PathLike, name: str, *, storage_options: Optional[Mapping[str, str]] = None
) -> np.ndarray:
    """The value of one tensor, as ``tf.train.load_variable`` returns (a trailing ``:0`` is ignored).

    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores")."""
    if name.endswith(":0"):
        name = name[:-2]
    return CheckpointReader(ckpt_dir_or_file, storage_options=storage_options).get_tensor(name)
