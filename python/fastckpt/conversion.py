"""Conversion between TensorFlow checkpoints and the files other frameworks load: ``.safetensors`` (one file, or a
directory of shards as Hugging Face writes them), ``.npz``, torch's ``.pt`` / ``.bin``, and checkpoints.

>>> import os, tempfile, fastckpt
>>> out = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> fastckpt.convert(fastckpt.examples.model_path(), out, rename=[("^v", "var_")])
2
>>> sorted(fastckpt.conversion.open_source(out).tensors())
['var_1', 'var_2']

Tensors go one batch at a time, and a tensor larger than a batch in parts of rows, so a conversion needs memory
for about ``PART_BYTES`` of tensors at once, not for the model: safetensors files are written header first, then
the tensors' bytes as they come. Names are chosen and rules applied as ``fastckpt.mapping`` says (the rules
``fastckpt.torch.load_into`` applies).

What a format cannot hold is decided here: string tensors go into the safetensors metadata (and come back); dtypes
a format lacks are skipped with a warning (safetensors, torch) or widened exactly (bfloat16 to float32 in
``.npz``).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import io
import json
import os
import re
import sys
import warnings
import zipfile
from typing import Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, TypeVar, Union

import numpy as np

from . import _fastckpt, _paths, errors, mapping
from .dtypes import DType, as_dtype, dtype_of_enum
from .reading.batching import batches
from .reading.reader import CheckpointReader

__all__ = ["convert", "open_source"]

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

# Bytes of tensors read and written at once: whole tensors are read in batches of about this size, larger ones
# in parts of rows of at most this size (a row larger than this is read alone).
PART_BYTES = 64 << 20
# Key prefix, in safetensors metadata, of string tensors (which safetensors cannot hold).
STRING_METADATA_PREFIX = "fastckpt.string:"
# The file names of Hugging Face's safetensors weights in a directory, sharded or not.
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
# The ml_dtypes types .npz cannot hold, and the standard types that hold their values exactly.
_NPZ_WIDENED = {
    "bfloat16": "float32",
    "float8_e4m3fn": "float32",
    "float8_e4m3fnuz": "float32",
    "float8_e4m3b11fnuz": "float32",
    "float8_e5m2": "float32",
    "float8_e5m2fnuz": "float32",
    "int4": "int8",
    "uint4": "uint8",
}
_FLOATING = {
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e4m3b11fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
}
_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_SIZE_UNITS.update({"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40})


class NoProgress:
    """The progress of a conversion, shown nowhere: the interface a caller's progress display implements
    (``progress(label, total_bytes, io_counter)``, a context manager whose ``advance(n)`` counts bytes done)."""

    def __init__(self, label: str, total: int, io: "str | None" = None):
        pass

    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def advance(self, done: int) -> None:
        pass


def tensor_sizes(reader: CheckpointReader) -> Dict[str, int]:
    """``{name: bytes}`` of every tensor of a checkpoint (0 for strings, whose size the index does not give)."""
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    return {name: int(np.prod(shape, dtype=np.int64)) * dtypes[name].size for name, shape in shapes.items()}


def as_array(value) -> np.ndarray:
    """A tensor value as an array; a string scalar (bytes) as a 0-d object array, keeping its NUL bytes."""
    if isinstance(value, bytes):
        array = np.empty((), dtype=object)
        array[()] = value
        return array
    return np.asarray(value)


def parse_size(size: Union[int, str]) -> int:
    """Bytes of a size such as ``"5GB"`` (10^9), ``"500MiB"`` (2^20) or ``1000000``, as Hugging Face parses
    ``max_shard_size``."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*", str(size).upper())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise errors.InvalidArgumentError(f"not a size: {size!r} (write e.g. 5GB, 500MB or 2GiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


class Tensor(NamedTuple):
    """A tensor of a source: its dtype and shape."""

    dtype: DType
    shape: Tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return 0 if self.dtype.name == "string" else int(np.prod(self.shape, dtype=np.int64)) * self.dtype.size

    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.size


def _shape(tensor: Tensor, rows: Optional[int]) -> Tuple[int, ...]:
    return tensor.shape if rows is None else (rows, *tensor.shape[1:])


def _empty(tensor: Tensor, rows: Optional[int] = None) -> np.ndarray:
    """A new array for ``tensor`` (or ``rows`` of its rows)."""
    return np.empty(_shape(tensor, rows), tensor.dtype.numpy_dtype)


# How sources get the arrays they read into: _empty, or an _Arena's.
Allocate = Callable[[Tensor, Optional[int]], np.ndarray]


class _Arena:
    """Memory reused from one batch to a later one: a new array costs the kernel's zeroing of every page it
    touches (a third of a large conversion's time), a reused one nothing."""

    ALIGN = 64

    def __init__(self) -> None:
        self._buffer = np.empty(0, np.uint8)
        self._used = 0

    @staticmethod
    def _nbytes(tensor: Tensor, rows: Optional[int]) -> int:
        return int(np.prod(_shape(tensor, rows), dtype=np.int64)) * tensor.dtype.size

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
            return _empty(tensor, rows)
        self._used += self.size(tensor, rows)
        return self._buffer[start : start + nbytes].view(tensor.dtype.numpy_dtype).reshape(_shape(tensor, rows))


def _bytes_of(array: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous array as a flat uint8 view."""
    return array.reshape(-1).view(np.uint8)


# Sources ---------------------------------------------------------------------------------------------------


class Source:
    """Tensors to convert: ``tensors()`` lists them, ``read`` reads whole ones, ``read_rows`` parts of one,
    numeric ones into arrays from ``empty`` where they are read at all. ``checksum`` in ``read_rows`` carries a
    checkpoint's CRC32C from part to part (others ignore it)."""

    path: str

    def tensors(self) -> Dict[str, Tensor]:
        raise NotImplementedError

    def named(self, names: str) -> Dict[str, str]:
        """``{key: name}``, names chosen as ``fastckpt.mapping.names_of`` says; only checkpoints have names
        other than their keys."""
        if names not in mapping.NAMES:
            mapping.names_of(None, names)  # raises the error that names the choices
        return {key: key for key in self.tensors()}

    def read(self, keys: List[str], empty: Allocate = _empty) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = _empty
    ) -> Tuple[np.ndarray, int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CheckpointSource(Source):
    """A TensorFlow checkpoint, any form ``CheckpointReader`` opens."""

    def __init__(self, path: str, options: Optional[Dict[str, str]]):
        self.reader = CheckpointReader(path, storage_options=options)
        self.path = self.reader.path
        shapes, dtypes = self.reader.get_variable_to_shape_map(), self.reader.get_variable_to_dtype_map()
        self._tensors = {key: Tensor(dtypes[key], tuple(shapes[key])) for key in sorted(shapes)}

    def tensors(self) -> Dict[str, Tensor]:
        return self._tensors

    def named(self, names: str) -> Dict[str, str]:
        return mapping.names_of(self.reader, names)

    def read(self, keys: List[str], empty: Allocate = _empty) -> Dict[str, np.ndarray]:
        strings = [key for key in keys if self._tensors[key].dtype.is_string]
        out = {key: empty(self._tensors[key], None) for key in keys if key not in strings}
        self.reader.read_tensors_into(out)
        out.update((key, as_array(value)) for key, value in self.reader.get_tensors(strings).items())
        return out

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = _empty
    ) -> Tuple[np.ndarray, int]:
        out = empty(self._tensors[key], count)
        checksum = self.reader.read_rows_into(key, first, count, _bytes_of(out), checksum)
        return out, checksum


class SafetensorsSource(Source):
    """A .safetensors file, or the shards a Hugging Face index (``model.safetensors.index.json``) names."""

    def __init__(self, path: str, options: Optional[Dict[str, str]]):
        self.path = path
        if path.endswith(".json"):
            index = json.loads(_fastckpt.read_file(path, storage_options=options))
            weight_map = index.get("weight_map") if isinstance(index, dict) else None
            if not isinstance(weight_map, dict):
                raise errors.DataLossError(f"{path} is no safetensors index: it has no weight_map", path)
            directory = os.path.dirname(path)
            files = [
                _fastckpt.SafetensorsFile(os.path.join(directory, name), options)
                for name in sorted(set(weight_map.values()))
            ]
        else:
            files = [_fastckpt.SafetensorsFile(path, options)]
        self._where: Dict[str, Tuple[_fastckpt.SafetensorsFile, int]] = {}
        self._tensors: Dict[str, Tensor] = {}
        self._strings: Dict[str, np.ndarray] = {}
        for file in files:
            for index, (name, dtype, stored, shape) in enumerate(file.tensors()):
                if dtype is None:
                    warnings.warn(f"skipping {name!r} of {file.path}: TensorFlow has no {stored}", stacklevel=3)
                    continue
                self._where[name] = (file, index)
                self._tensors[name] = Tensor(dtype_of_enum(dtype), tuple(shape))
            for key, value in file.metadata().items():
                if key.startswith(STRING_METADATA_PREFIX):
                    stored = json.loads(value)
                    strings = np.empty(len(stored["values"]), dtype=object)
                    strings[:] = [base64.b64decode(s) for s in stored["values"]]
                    name = key[len(STRING_METADATA_PREFIX) :]
                    self._strings[name] = strings.reshape(stored["shape"])
                    self._tensors[name] = Tensor(as_dtype("string"), tuple(stored["shape"]))

    def tensors(self) -> Dict[str, Tensor]:
        return self._tensors

    def read(self, keys: List[str], empty: Allocate = _empty) -> Dict[str, np.ndarray]:
        out = {}
        for key in keys:
            if key in self._strings:
                out[key] = self._strings[key]
                continue
            file, index = self._where[key]
            out[key] = empty(self._tensors[key], None)
            file.read_into(index, 0, _bytes_of(out[key]))
        return out

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = _empty
    ) -> Tuple[np.ndarray, int]:
        file, index = self._where[key]
        tensor = self._tensors[key]
        out = empty(tensor, count)
        file.read_into(index, first * tensor.row_bytes(), _bytes_of(out))
        return out, checksum


class NpzSource(Source):
    """An .npz archive (as ``numpy.savez`` writes), read member by member, parts of rows by seeking."""

    def __init__(self, path: str, options: Optional[Dict[str, str]]):
        self.path = path
        if _fastckpt.is_url(path):
            data = io.BytesIO(_fastckpt.read_file(path, storage_options=options))
            self._zip = zipfile.ZipFile(data)
        else:
            if _fastckpt.file_kind(path) != "file":
                raise errors.NotFoundError(f"no such file: {path}", path)
            self._zip = zipfile.ZipFile(path)
        self._tensors: Dict[str, Tensor] = {}
        self._members: Dict[str, Tuple[str, int]] = {}  # key: (member, offset of the data in it)
        for member in self._zip.namelist():
            key = member[: -len(".npy")] if member.endswith(".npy") else member
            with self._zip.open(member) as f:
                version = np.lib.format.read_magic(f)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in read_header:
                    raise errors.UnimplementedError(f"{member} of {path}: .npy format version {version}", path, key)
                shape, fortran, dtype = read_header[version](f)
                if fortran or dtype.hasobject:
                    raise errors.UnimplementedError(f"{member} of {path}: Fortran-order or object arrays", path, key)
                self._members[key] = (member, f.tell())
            self._tensors[key] = Tensor(as_dtype(dtype), tuple(shape))

    def tensors(self) -> Dict[str, Tensor]:
        return self._tensors

    def _read(self, key: str, start: int, out: np.ndarray) -> np.ndarray:
        member, offset = self._members[key]
        with self._zip.open(member) as f:
            f.seek(offset + start)
            view = memoryview(_bytes_of(out))
            if f.readinto(view) != len(view):
                raise errors.DataLossError(f"{member} of {self.path} is truncated", self.path, key)
        return out

    def read(self, keys: List[str], empty: Allocate = _empty) -> Dict[str, np.ndarray]:
        out = {}
        for key in keys:
            tensor = self._tensors[key]
            if tensor.dtype.name == "string":
                out[key] = np.load(self._zip.open(self._members[key][0]), allow_pickle=False).astype(object)
            else:
                out[key] = self._read(key, 0, empty(tensor, None))
        return out

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = _empty
    ) -> Tuple[np.ndarray, int]:
        tensor = self._tensors[key]
        return self._read(key, first * tensor.row_bytes(), empty(tensor, count)), checksum

    def close(self) -> None:
        self._zip.close()


class TorchSource(Source):
    """A torch state dict file (``.pt``, ``.bin``), loaded with ``weights_only=True`` (memory-mapped where its
    format allows)."""

    def __init__(self, path: str, options: Optional[Dict[str, str]]):
        import torch

        from . import torch_arrays

        self.path = path
        if _fastckpt.is_url(path):
            state = torch.load(io.BytesIO(_fastckpt.read_file(path, storage_options=options)), weights_only=True)
        else:
            if _fastckpt.file_kind(path) != "file":
                raise errors.NotFoundError(f"no such file: {path}", path)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # the legacy format cannot be mapped
                state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise errors.InvalidArgumentError(f"{path} holds no flat state dict of tensors", path)
        self._arrays = {str(key): torch_arrays.tensor_to_numpy(value, str(key), path) for key, value in state.items()}
        self._tensors = {key: Tensor(as_dtype(a.dtype), a.shape) for key, a in self._arrays.items()}

    def tensors(self) -> Dict[str, Tensor]:
        return self._tensors

    def read(self, keys: List[str], empty: Allocate = _empty) -> Dict[str, np.ndarray]:
        return {key: self._arrays[key] for key in keys}  # in memory already

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = _empty
    ) -> Tuple[np.ndarray, int]:
        return self._arrays[key][first : first + count], checksum


def open_source(path: PathLike, *, storage_options: Optional[Mapping[str, str]] = None) -> Source:
    """The source of a conversion at ``path``, by its suffix: ``.safetensors``, a safetensors index ``.json``,
    ``.npz``, ``.pt`` / ``.bin`` / ``.pth``; a directory holding ``model.safetensors.index.json`` or
    ``model.safetensors``; anything else a TensorFlow checkpoint."""
    path = os.fspath(path)
    options = _paths.storage_options(storage_options)
    if path.endswith((".safetensors", ".json")):
        return SafetensorsSource(path, options)
    if path.endswith(".npz"):
        return NpzSource(path, options)
    if path.endswith((".pt", ".pth", ".bin")):
        return TorchSource(path, options)
    if _fastckpt.file_kind(path, storage_options=options) == "directory":
        for name in (SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME):
            inside = os.path.join(path, name)
            if _fastckpt.file_kind(inside, storage_options=options) == "file":
                return SafetensorsSource(inside, options)
    return CheckpointSource(path, options)


# Destinations ----------------------------------------------------------------------------------------------


class Destination:
    """Where converted tensors go. ``order`` is the order they must come in; ``write`` takes whole tensors,
    ``write_rows`` consecutive parts of one (where ``takes_parts``); nothing is visible before ``commit``."""

    takes_parts = False

    def order(self) -> List[str]:
        raise NotImplementedError

    def write(self, name: str, array: np.ndarray) -> None:
        raise NotImplementedError

    def write_rows(self, name: str, part: np.ndarray) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        pass


class _Stream(io.RawIOBase):
    """A write-only file object over a core ``FileWriter`` (a local file or an object being uploaded).
    ``discard`` drops what is written from then on: a zip archive being given up can still be closed (it writes
    its end record), and nothing reaches the aborted file."""

    def __init__(self, writer: "_fastckpt.FileWriter"):
        self._writer = writer
        self.discard = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.discard:
            return memoryview(data).nbytes
        return self._writer.write(np.frombuffer(data, np.uint8))


class SafetensorsDestination(Destination):
    """A .safetensors file, or with ``max_shard_size`` a directory of shards as Hugging Face writes them
    (``model-00001-of-0000N.safetensors`` and ``model.safetensors.index.json``; one shard is ``model.safetensors``
    alone)."""

    takes_parts = True

    def __init__(
        self,
        path: str,
        tensors: Dict[str, Tensor],
        strings: Dict[str, np.ndarray],
        max_shard_size: Optional[int],
        options: Optional[Dict[str, str]],
    ):
        self.path, self._options = path, options
        metadata = {"format": "pt"}
        for name, value in strings.items():
            metadata[STRING_METADATA_PREFIX + name] = json.dumps(
                {"shape": list(value.shape), "values": [base64.b64encode(s).decode() for s in value.reshape(-1)]}
            )
        if strings:
            print(f"{len(strings)} string tensor(s) stored in the safetensors metadata", file=sys.stderr)
        shards = _shards(tensors, max_shard_size) if max_shard_size is not None else [list(tensors)]
        if max_shard_size is None:
            names = [path]
        elif len(shards) == 1:
            names = [os.path.join(path, SAFETENSORS_NAME)]
        else:
            names = [
                os.path.join(path, f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors") for i in range(len(shards))
            ]
        self._index = None
        if len(shards) > 1:
            weight_map = {name: os.path.basename(file) for file, shard in zip(names, shards) for name in shard}
            total = sum(tensors[name].nbytes for name in weight_map)
            self._index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        self._writers = []
        self._writer_of: Dict[str, "_fastckpt.SafetensorsFileWriter"] = {}
        try:
            for i, (file, shard) in enumerate(zip(names, shards)):
                specs = [(name, tensors[name].dtype.as_datatype_enum, list(tensors[name].shape)) for name in shard]
                # Strings ride in the first shard's metadata.
                writer = _fastckpt.SafetensorsFileWriter(file, specs, metadata if i == 0 else {"format": "pt"}, options)
                self._writers.append(writer)
                self._writer_of.update((name, writer) for name in shard)
        except BaseException:
            self.abort()
            raise

    def order(self) -> List[str]:
        return [name for writer in self._writers for name in writer.order()]

    def write(self, name: str, array: np.ndarray) -> None:
        self._writer_of[name].write(_bytes_of(np.ascontiguousarray(array)))

    def write_rows(self, name: str, part: np.ndarray) -> None:
        self.write(name, part)

    def commit(self) -> None:
        for writer in self._writers:
            writer.commit()
        if self._index is not None:
            text = json.dumps(self._index, indent=2, sort_keys=True) + "\n"
            _fastckpt.write_file(os.path.join(self.path, SAFETENSORS_INDEX_NAME), text.encode(), False, self._options)

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()


def _shards(tensors: Dict[str, Tensor], max_bytes: int) -> List[List[str]]:
    """Tensors in shards of at most ``max_bytes`` (a larger tensor alone), in order, as Hugging Face splits
    state dicts."""
    shards: List[List[str]] = [[]]
    size = 0
    for name, tensor in tensors.items():
        if shards[-1] and size + tensor.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += tensor.nbytes
    return shards


class NpzDestination(Destination):
    """An .npz archive as ``numpy.savez`` writes it (uncompressed), streamed member by member."""

    takes_parts = True

    def __init__(self, path: str, tensors: Dict[str, Tensor], options: Optional[Dict[str, str]]):
        self._order = list(tensors)
        self._tensors = tensors
        self._file = _fastckpt.FileWriter(path, options)
        self._stream = _Stream(self._file)
        self._zip = zipfile.ZipFile(self._stream, "w")
        self._member = None
        self._rows_written = 0

    def order(self) -> List[str]:
        return self._order

    def _start(self, name: str, dtype: np.dtype) -> None:
        self._end_member()
        self._member = self._zip.open(f"{name}.npy", "w", force_zip64=True)
        header = {
            "descr": np.lib.format.dtype_to_descr(dtype),
            "fortran_order": False,
            "shape": self._tensors[name].shape,
        }
        try:
            np.lib.format.write_array_header_1_0(self._member, header)
        except ValueError:  # a header too long for version 1.0
            np.lib.format.write_array_header_2_0(self._member, header)

    def _end_member(self) -> None:
        if self._member is not None:
            self._member.close()
            self._member = None

    def write(self, name: str, array: np.ndarray) -> None:
        if array.dtype == object:
            array = array.astype(bytes)
        self._start(name, array.dtype)
        self._member.write(_bytes_of(np.ascontiguousarray(array)))
        self._end_member()

    def write_rows(self, name: str, part: np.ndarray) -> None:
        if self._rows_written == 0:
            self._start(name, part.dtype)
        self._member.write(_bytes_of(np.ascontiguousarray(part)))
        self._rows_written += part.shape[0]
        if self._rows_written == self._tensors[name].shape[0]:
            self._end_member()
            self._rows_written = 0

    def commit(self) -> None:
        self._end_member()
        self._zip.close()
        self._file.commit()

    def abort(self) -> None:
        self._stream.discard = True
        self._end_member()
        self._zip.close()
        self._file.abort()


class TorchDestination(Destination):
    """A torch state dict file (``.pt``, ``.bin``): torch's format pickles whole tensors, so they are held until
    ``commit`` writes the file."""

    def __init__(self, path: str, tensors: Dict[str, Tensor], options: Optional[Dict[str, str]]):
        import torch  # noqa: F401 - fails early, before anything is read, where torch is missing

        self.path, self._options = path, options
        self._order = list(tensors)
        self._state: Dict[str, object] = {}

    def order(self) -> List[str]:
        return self._order

    def write(self, name: str, array: np.ndarray) -> None:
        import torch

        from . import torch_arrays

        dtype = torch_arrays.torch_dtype(as_dtype(array.dtype))
        tensor = torch.empty(array.shape, dtype=dtype)
        torch_arrays.numpy_view(tensor, array.dtype)[...] = array
        self._state[name] = tensor

    def commit(self) -> None:
        import torch

        file = _fastckpt.FileWriter(self.path, self._options)
        try:
            torch.save(self._state, _Stream(file))
            file.commit()
        except BaseException:
            file.abort()
            raise


class CheckpointDestination(Destination):
    """A TensorFlow checkpoint prefix (V2)."""

    def __init__(self, path: str, tensors: Dict[str, Tensor], options: Optional[Dict[str, str]]):
        from .saving.writer import CheckpointWriter

        self._order = list(tensors)
        self._writer = CheckpointWriter(path, storage_options=options)

    def order(self) -> List[str]:
        return self._order

    def write(self, name: str, array: np.ndarray) -> None:
        if array.dtype.kind == "S":
            array = array.astype(object)
        self._writer.add(name, array)

    def commit(self) -> None:
        self._writer.finish()

    def abort(self) -> None:
        self._writer.abort()


def _held(kind: str, name: str, tensor: Tensor, strings: Optional[np.ndarray]) -> Optional[Tensor]:
    """The tensor ``kind`` of destination stores for ``tensor``, or None (with a warning) where it cannot."""
    dtype = tensor.dtype.name
    if (
        kind == "safetensors"
        and dtype != "string"
        and tensor.dtype.as_datatype_enum not in _fastckpt.safetensors_dtypes()
    ):
        warnings.warn(f"skipping {name!r}: safetensors cannot hold {dtype}", stacklevel=4)
        return None
    if kind == "npz":
        if dtype == "string":
            # npz holds strings only as fixed-width bytes, which drop trailing NULs.
            if any(s.endswith(b"\0") for s in strings.reshape(-1)):
                warnings.warn(
                    f"skipping string tensor {name!r}: an element ends with a NUL byte, which .npz drops", stacklevel=4
                )
                return None
        elif dtype in _NPZ_WIDENED:
            wider = _NPZ_WIDENED[dtype]
            warnings.warn(f"{name!r}: .npz cannot hold {dtype}; stored exactly as {wider}", stacklevel=4)
            return Tensor(as_dtype(wider), tensor.shape)
    if kind == "torch":
        from . import torch_arrays

        if dtype == "string" or torch_arrays.torch_dtype(tensor.dtype) is None:
            warnings.warn(f"skipping {name!r}: torch has no {dtype} tensors", stacklevel=4)
            return None
    return tensor


def _destination_kind(dst: str, max_shard_size) -> str:
    if dst.endswith(".safetensors") or max_shard_size is not None:
        return "safetensors"
    if dst.endswith(".npz"):
        return "npz"
    if dst.endswith((".pt", ".pth", ".bin")):
        return "torch"
    return "checkpoint"


# Conversion ------------------------------------------------------------------------------------------------


class _Planned(NamedTuple):
    key: str  # in the source
    stored: Tensor  # as the source holds it
    written: Tensor  # as the destination gets it
    transpose: bool


def convert(
    src: PathLike,
    dst: PathLike,
    progress=NoProgress,
    *,
    names: str = "key",
    rename=None,
    skip=None,
    skip_optimizer: bool = False,
    transpose=None,
    dtype=None,
    max_shard_size: Union[None, int, str] = None,
    storage_options: Optional[Mapping[str, str]] = None,
) -> int:
    """Converts the tensors of ``src`` into ``dst`` and returns how many were written.

    Sources (``open_source``): any TensorFlow checkpoint ``NewCheckpointReader`` opens, ``.safetensors`` (one
    file, or through a ``model.safetensors.index.json``, or a directory holding either), ``.npz``, ``.pt`` /
    ``.bin`` (a state dict, loaded with ``weights_only=True``). Destinations, by suffix: ``.safetensors``;
    with ``max_shard_size`` (bytes, or ``"5GB"``) a directory of shards as Hugging Face writes them; ``.npz``;
    ``.pt`` / ``.bin`` (a torch state dict); ``.keras`` (from a Keras 2 SavedModel: a Keras 3 model file, see
    ``fastckpt.keras.save_keras_file``); anything else a checkpoint prefix. Either side may be a URL.

    ``names`` (``"key"``, ``"object"``, ``"full"``), ``skip_optimizer``, ``skip``, ``rename`` and ``transpose``
    choose and name the tensors as ``fastckpt.mapping.plan`` says; ``dtype`` casts floating tensors (e.g.
    ``"bfloat16"``, ``"float16"``). ``storage_options`` configures object stores for both sides.

    Memory: tensors are read and written ``PART_BYTES`` at a time, and one larger than that in parts of rows
    (into .safetensors and .npz; transposed tensors, and tensors bound for a checkpoint or a torch file, are
    read whole), so the resident set grows by a few times ``PART_BYTES``, not by the model.

    >>> import os, tempfile, fastckpt
    >>> out = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> fastckpt.convert(fastckpt.examples.model_path(), out, dtype="float16")
    2

    Raises:
        fastckpt.errors.InvalidArgumentError: a rule is invalid, two tensors get one name, or a transposed
            tensor is not 2-D.
        fastckpt.errors.NotFoundError, fastckpt.errors.DataLossError: as reading ``src`` raises them. Nothing
            appears at ``dst`` unless the conversion completes.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if dst.endswith(".keras"):
        others = (rename, skip, skip_optimizer, transpose, dtype, max_shard_size)
        rules_given = names != "key" or any(rule not in (None, False, [], ()) for rule in others)
        return _to_keras_file(src, dst, rules_given, storage_options)
    options = _paths.storage_options(storage_options)
    cast = as_dtype(dtype) if dtype is not None else None
    if cast is not None and cast.name not in _FLOATING:
        raise errors.InvalidArgumentError(f"dtype= casts floating tensors to a floating dtype, not {cast.name}")
    shard_bytes = parse_size(max_shard_size) if max_shard_size is not None else None
    kind = _destination_kind(dst, shard_bytes)
    source = open_source(src, storage_options=options)
    try:
        stored = source.tensors()
        planned_names = mapping.plan(
            source.named(names),
            rename=rename,
            skip=skip,
            skip_optimizer=skip_optimizer,
            transpose=transpose,
            filename=source.path,
        )
        shapes = mapping.check_transpose(
            planned_names, {key: t.shape for key, t in stored.items()}, filename=source.path
        )
        strings = {
            name: source.read([m.key])[m.key]
            for name, m in planned_names.items()
            if stored[m.key].dtype.name == "string"
        }
        planned: Dict[str, _Planned] = {}
        for name, (key, flip) in planned_names.items():
            tensor = stored[key]
            if tensor.dtype.name in ("resource", "variant"):
                continue
            if cast is not None and tensor.dtype.name in _FLOATING:
                tensor = Tensor(cast, tensor.shape)
            if kind != "checkpoint" and tensor.dtype.name.startswith(("qint", "quint")):
                # Other formats have no quantized types: the integers they are stored as.
                tensor = Tensor(as_dtype(tensor.dtype.numpy_dtype), tensor.shape)
            written = _held(kind, name, Tensor(tensor.dtype, shapes[name]), strings.get(name))
            if written is not None:
                planned[name] = _Planned(key, stored[key], written, flip)
        if kind == "safetensors":
            numeric = {name: p.written for name, p in planned.items() if p.written.dtype.name != "string"}
            destination: Destination = SafetensorsDestination(
                dst, numeric, {name: strings[name] for name in planned if name in strings}, shard_bytes, options
            )
        else:
            written = {name: p.written for name, p in planned.items()}
            destination = {"npz": NpzDestination, "torch": TorchDestination, "checkpoint": CheckpointDestination}[kind](
                dst, written, options
            )
        try:
            total = sum(p.stored.nbytes for p in planned.values())
            batches_read = _read_ahead(_read_batches(source, destination, planned, strings))
            with progress("converting", total, "rchar") as bar, contextlib.closing(batches_read):
                for batch in batches_read:
                    for name, value, is_part, size in batch:
                        if is_part:
                            destination.write_rows(name, value)
                        else:
                            destination.write(name, value)
                        bar.advance(size)
            destination.commit()
        except BaseException:
            destination.abort()
            raise
        return len(planned)
    finally:
        source.close()


def _to_keras_file(src: str, dst: str, rules_given: bool, storage_options) -> int:
    """A Keras 2 SavedModel as a ``.keras`` file (``fastckpt.keras.save_keras_file``), which Keras 3 builds from
    the model's config: the rules that choose and name tensors have nothing to apply to."""
    if rules_given:
        raise errors.InvalidArgumentError(
            f"{dst} is a .keras file, built from the Keras model {src} holds: names, rename, skip, "
            "skip_optimizer, transpose, dtype and max_shard_size do not apply to it",
            dst,
        )
    try:
        from .keras import save_keras_file
    except ImportError as err:
        raise errors.UnimplementedError(f"cannot write {dst}: {err}", dst) from None
    return save_keras_file(src, dst, storage_options=storage_options)


def _in_parts(p: _Planned, destination: Destination) -> bool:
    """Whether a tensor is read and written in parts of rows rather than whole."""
    return destination.takes_parts and not p.transpose and bool(p.stored.shape) and p.stored.nbytes > PART_BYTES


def _batches(destination: Destination, planned: Dict[str, _Planned]) -> Iterator[List[str]]:
    """The destination's order in batches of at most ``PART_BYTES``; a tensor read in parts alone."""
    run: List[str] = []
    for name in destination.order():
        if _in_parts(planned[name], destination):
            yield from batches(run, [planned[n].stored.nbytes for n in run], PART_BYTES)
            yield [name]
            run = []
        else:
            run.append(name)
    yield from batches(run, [planned[n].stored.nbytes for n in run], PART_BYTES)


def _converted(p: _Planned, value: np.ndarray) -> np.ndarray:
    if p.transpose:
        value = value.T
    if value.dtype != p.written.dtype.numpy_dtype and p.written.dtype.name != "string":
        value = value.astype(p.written.dtype.numpy_dtype)
    return value


def _read_batches(
    source: Source, destination: Destination, planned: Dict[str, _Planned], strings
) -> Iterator[List[Tuple[str, np.ndarray, bool, int]]]:
    """The tensors to write, a batch (or a part of rows of a larger tensor) at a time, as ``(name, value, is a
    part of rows, bytes read)``. Batches are read into two arenas in turn: a batch's arrays are valid until the
    batch two after it is read, which ``_read_ahead`` (one batch ahead of the one being written) allows."""
    arenas = [_Arena(), _Arena()]
    turn = 0
    for batch in _batches(destination, planned):
        first = planned[batch[0]]
        if _in_parts(first, destination):
            rows = max(1, PART_BYTES // max(1, first.stored.row_bytes()))
            checksum = 0
            total = first.stored.shape[0]
            for start in range(0, total, rows):
                arena, turn = arenas[turn], 1 - turn
                count = min(rows, total - start)
                arena.reset(_Arena.size(first.stored, count))
                part, checksum = source.read_rows(first.key, start, count, checksum, arena.empty)
                yield [(batch[0], _converted(first, part), True, part.nbytes)]
            continue
        arena, turn = arenas[turn], 1 - turn
        keys = [planned[name].key for name in batch if name not in strings]
        arena.reset(sum(_Arena.size(source.tensors()[key]) for key in keys))
        values = source.read(keys, arena.empty)
        yield [
            (
                name,
                _converted(planned[name], strings[name] if name in strings else values[planned[name].key]),
                False,
                planned[name].stored.nbytes,
            )
            for name in batch
        ]


def _read_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, each produced on a thread of its own while the caller consumes the one before: reading the
    next batch overlaps writing this one (both release the GIL), at the cost of holding two batches. Closed
    early (the caller failed), it waits for the read in flight before returning."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fastckpt-read") as reader:
        pending = reader.submit(next, items, None)
        while True:
            item = pending.result()
            if item is None:
                return
            pending = reader.submit(next, items, None)
            yield item
