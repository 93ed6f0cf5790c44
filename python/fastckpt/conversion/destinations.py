"""The files a conversion writes: safetensors (one file, or shards with Hugging Face's index), ``.npz``,
torch's ``.pt``/``.bin`` and TensorFlow checkpoints, each written as it comes and published only when complete;
and what each can hold (``held``): a dtype a format lacks is skipped with a warning, or widened exactly."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import warnings
import zipfile
from typing import Dict, List, Optional

import numpy as np

from .. import _fastckpt, _optional
from ..dtypes import as_dtype
from .tensors import SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME, STRING_METADATA_PREFIX, Tensor, bytes_of

__all__ = ["Destination", "destination_kind", "held", "open_destination"]

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
    """A write-only file object over a core ``WriteFile`` (a local file or an object being uploaded).
    ``discard`` drops what is written from then on: a zip archive being given up can still be closed (it writes
    its end record), and nothing reaches the aborted file."""

    def __init__(self, writer: "_fastckpt.WriteFile"):
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
        stores: "_fastckpt.Stores",
    ):
        self.path, self._stores = path, stores
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
        self._writer_of: Dict[str, "_fastckpt.SafetensorsWriter"] = {}
        try:
            for i, (file, shard) in enumerate(zip(names, shards)):
                specs = [(name, tensors[name].dtype.as_datatype_enum, list(tensors[name].shape)) for name in shard]
                # Strings ride in the first shard's metadata.
                writer = _fastckpt.SafetensorsWriter(file, specs, metadata if i == 0 else {"format": "pt"}, stores)
                self._writers.append(writer)
                self._writer_of.update((name, writer) for name in shard)
        except BaseException:
            self.abort()
            raise

    def order(self) -> List[str]:
        return [name for writer in self._writers for name in writer.order()]

    def write(self, name: str, array: np.ndarray) -> None:
        self._writer_of[name].write(bytes_of(np.ascontiguousarray(array)))

    def write_rows(self, name: str, part: np.ndarray) -> None:
        self.write(name, part)

    def commit(self) -> None:
        for writer in self._writers:
            writer.commit()
        if self._index is not None:
            text = json.dumps(self._index, indent=2, sort_keys=True) + "\n"
            self._stores.write_file(os.path.join(self.path, SAFETENSORS_INDEX_NAME), text.encode())

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

    def __init__(self, path: str, tensors: Dict[str, Tensor], stores: "_fastckpt.Stores"):
        self._order = list(tensors)
        self._tensors = tensors
        self._file = _fastckpt.WriteFile(path, stores)
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
        self._member.write(bytes_of(np.ascontiguousarray(array)))
        self._end_member()

    def write_rows(self, name: str, part: np.ndarray) -> None:
        if self._rows_written == 0:
            self._start(name, part.dtype)
        self._member.write(bytes_of(np.ascontiguousarray(part)))
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

    def __init__(self, path: str, tensors: Dict[str, Tensor], stores: "_fastckpt.Stores"):
        self.path, self._stores = path, stores
        self._order = list(tensors)
        self._state: Dict[str, object] = {}

    def order(self) -> List[str]:
        return self._order

    def write(self, name: str, array: np.ndarray) -> None:
        import torch

        from .. import torch_arrays

        dtype = torch_arrays.torch_dtype(as_dtype(array.dtype))
        tensor = torch.empty(array.shape, dtype=dtype)
        torch_arrays.numpy_view(tensor, array.dtype)[...] = array
        self._state[name] = tensor

    def commit(self) -> None:
        import torch

        file = _fastckpt.WriteFile(self.path, self._stores)
        try:
            torch.save(self._state, _Stream(file))
            file.commit()
        except BaseException:
            file.abort()
            raise


class CheckpointDestination(Destination):
    """A TensorFlow checkpoint prefix (V2)."""

    def __init__(self, path: str, tensors: Dict[str, Tensor], stores: "_fastckpt.Stores"):
        from ..saving.writer import CheckpointWriter

        self._order = list(tensors)
        self._writer = CheckpointWriter(path, storage_options=stores)

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


def held(kind: str, name: str, tensor: Tensor, strings: Optional[np.ndarray]) -> Optional[Tensor]:
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
        from .. import torch_arrays

        if dtype == "string" or torch_arrays.torch_dtype(tensor.dtype) is None:
            warnings.warn(f"skipping {name!r}: torch has no {dtype} tensors", stacklevel=4)
            return None
    return tensor


def destination_kind(dst: str, max_shard_size) -> str:
    """The kind of destination ``dst`` is, by its suffix: ``"keras"`` (a Keras 3 file, which the pipeline
    builds from a Keras 2 SavedModel, not from tensors), ``"safetensors"`` (or a directory of shards, with
    ``max_shard_size``), ``"npz"``, ``"torch"``, else ``"checkpoint"`` (a prefix).

    Raises:
        fastckpt.errors.MissingDependencyError: a torch file without torch: found here, before anything is
            read.
    """
    if dst.endswith(".keras"):
        return "keras"
    if dst.endswith(".safetensors") or max_shard_size is not None:
        return "safetensors"
    if dst.endswith(".npz"):
        return "npz"
    if dst.endswith((".pt", ".pth", ".bin")):
        _optional.require("torch", f"writing {dst}, a torch state dict,", dst)
        return "torch"
    return "checkpoint"


def open_destination(
    kind: str,
    path: str,
    tensors: Dict[str, Tensor],
    strings: Dict[str, np.ndarray],
    shard_bytes: Optional[int],
    stores: "_fastckpt.Stores",
) -> Destination:
    """The destination of ``kind`` (``destination_kind``) at ``path`` for ``tensors`` as written (``strings``:
    the values of the string tensors among them, which safetensors keeps in its metadata)."""
    if kind == "safetensors":
        numeric = {name: tensor for name, tensor in tensors.items() if tensor.dtype.name != "string"}
        return SafetensorsDestination(path, numeric, strings, shard_bytes, stores)
    kinds = {"npz": NpzDestination, "torch": TorchDestination, "checkpoint": CheckpointDestination}
    return kinds[kind](path, tensors, stores)
