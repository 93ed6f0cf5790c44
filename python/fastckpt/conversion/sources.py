"""The files a conversion reads: TensorFlow checkpoints (anything ``load_checkpoint`` opens), safetensors
files and Hugging Face's sharded directories of them, ``.npz`` and torch's ``.pt``/``.bin``; ``open_source``
chooses by the path."""

from __future__ import annotations

import base64
import io
import json
import os
import warnings
import zipfile
from typing import Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .. import _fastckpt, _optional, _paths, errors, mapping
from ..dtypes import as_dtype, dtype_of_enum
from ..reading.reader import CheckpointReader
from .tensors import (
    SAFETENSORS_INDEX_NAME,
    SAFETENSORS_NAME,
    STRING_METADATA_PREFIX,
    Allocate,
    Tensor,
    bytes_of,
    empty,
)

__all__ = ["CheckpointSource", "NpzSource", "SafetensorsSource", "Source", "TorchSource", "open_source"]

PathLike = Union[str, "os.PathLike[str]"]


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

    def read(self, keys: List[str], empty: Allocate = empty) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = empty
    ) -> Tuple[np.ndarray, int]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CheckpointSource(Source):
    """A TensorFlow checkpoint, any form ``CheckpointReader`` opens."""

    def __init__(self, path: str, stores: "_fastckpt.Stores"):
        self.reader = CheckpointReader(path, storage_options=stores)
        self.path = self.reader.path
        shapes, dtypes = self.reader.get_variable_to_shape_map(), self.reader.get_variable_to_dtype_map()
        self._tensors = {key: Tensor(dtypes[key], tuple(shapes[key])) for key in sorted(shapes)}

    def tensors(self) -> Dict[str, Tensor]:
        return self._tensors

    def named(self, names: str) -> Dict[str, str]:
        return mapping.names_of(self.reader, names)

    def read(self, keys: List[str], empty: Allocate = empty) -> Dict[str, np.ndarray]:
        strings = [key for key in keys if self._tensors[key].dtype.is_string]
        out = {key: empty(self._tensors[key], None) for key in keys if key not in strings}
        self.reader.read_tensors_into(out)
        out.update(self.reader.get_arrays(strings))
        return out

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = empty
    ) -> Tuple[np.ndarray, int]:
        out = empty(self._tensors[key], count)
        checksum = self.reader.read_rows_into(key, first, count, bytes_of(out), checksum)
        return out, checksum


class SafetensorsSource(Source):
    """A .safetensors file, or the shards a Hugging Face index (``model.safetensors.index.json``) names."""

    def __init__(self, path: str, stores: "_fastckpt.Stores"):
        self.path = path
        if path.endswith(".json"):
            index = json.loads(stores.read_file(path))
            weight_map = index.get("weight_map") if isinstance(index, dict) else None
            if not isinstance(weight_map, dict):
                raise errors.DataLossError(f"{path} is no safetensors index: it has no weight_map", path)
            directory = os.path.dirname(path)
            files = [
                _fastckpt.SafetensorsReader(os.path.join(directory, name), stores)
                for name in sorted(set(weight_map.values()))
            ]
        else:
            files = [_fastckpt.SafetensorsReader(path, stores)]
        self._where: Dict[str, Tuple[_fastckpt.SafetensorsReader, int]] = {}
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

    def read(self, keys: List[str], empty: Allocate = empty) -> Dict[str, np.ndarray]:
        out = {}
        for key in keys:
            if key in self._strings:
                out[key] = self._strings[key]
                continue
            file, index = self._where[key]
            out[key] = empty(self._tensors[key], None)
            file.read_into(index, 0, bytes_of(out[key]))
        return out

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = empty
    ) -> Tuple[np.ndarray, int]:
        file, index = self._where[key]
        tensor = self._tensors[key]
        out = empty(tensor, count)
        file.read_into(index, first * tensor.row_bytes(), bytes_of(out))
        return out, checksum


class NpzSource(Source):
    """An .npz archive (as ``numpy.savez`` writes), read member by member, parts of rows by seeking."""

    def __init__(self, path: str, stores: "_fastckpt.Stores"):
        self.path = path
        if _fastckpt.is_url(path):
            data = io.BytesIO(stores.read_file(path))
            self._zip = zipfile.ZipFile(data)
        else:
            if stores.file_kind(path) != "file":
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
            view = memoryview(bytes_of(out))
            if f.readinto(view) != len(view):
                raise errors.DataLossError(f"{member} of {self.path} is truncated", self.path, key)
        return out

    def read(self, keys: List[str], empty: Allocate = empty) -> Dict[str, np.ndarray]:
        out = {}
        for key in keys:
            tensor = self._tensors[key]
            if tensor.dtype.name == "string":
                out[key] = np.load(self._zip.open(self._members[key][0]), allow_pickle=False).astype(object)
            else:
                out[key] = self._read(key, 0, empty(tensor, None))
        return out

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = empty
    ) -> Tuple[np.ndarray, int]:
        tensor = self._tensors[key]
        return self._read(key, first * tensor.row_bytes(), empty(tensor, count)), checksum

    def close(self) -> None:
        self._zip.close()


class TorchSource(Source):
    """A torch state dict file (``.pt``, ``.bin``), loaded with ``weights_only=True`` (memory-mapped where its
    format allows)."""

    def __init__(self, path: str, stores: "_fastckpt.Stores"):
        torch = _optional.require("torch", f"reading {path}, a torch file,", path)
        from .. import torch_arrays

        self.path = path
        if _fastckpt.is_url(path):
            state = torch.load(io.BytesIO(stores.read_file(path)), weights_only=True)
        else:
            if stores.file_kind(path) != "file":
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

    def read(self, keys: List[str], empty: Allocate = empty) -> Dict[str, np.ndarray]:
        return {key: self._arrays[key] for key in keys}  # in memory already

    def read_rows(
        self, key: str, first: int, count: int, checksum: int, empty: Allocate = empty
    ) -> Tuple[np.ndarray, int]:
        return self._arrays[key][first : first + count], checksum


def open_source(path: PathLike, *, storage_options: Optional[Mapping[str, str]] = None) -> Source:
    """The source of a conversion at ``path``, by its suffix: ``.safetensors``, a safetensors index ``.json``,
    ``.npz``, ``.pt`` / ``.bin`` / ``.pth``; a directory holding ``model.safetensors.index.json`` or
    ``model.safetensors``; anything else a TensorFlow checkpoint."""
    path = os.fspath(path)
    stores = _paths.stores(storage_options)
    if path.endswith((".safetensors", ".json")):
        return SafetensorsSource(path, stores)
    if path.endswith(".npz"):
        return NpzSource(path, stores)
    if path.endswith((".pt", ".pth", ".bin")):
        return TorchSource(path, stores)
    if stores.file_kind(path) == "directory":
        for name in (SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME):
            inside = os.path.join(path, name)
            if stores.file_kind(inside) == "file":
                return SafetensorsSource(inside, stores)
    return CheckpointSource(path, stores)
