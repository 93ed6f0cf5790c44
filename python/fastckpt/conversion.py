"""Conversion between TensorFlow checkpoints and other tensor files: ``.safetensors`` and ``.npz``, either way,
and checkpoint to checkpoint. What each format cannot hold is decided here: string tensors go into the
safetensors metadata (and come back), dtypes a format lacks are skipped with a warning (safetensors) or
widened exactly (bfloat16 to float32 in ``.npz``).

>>> import os, tempfile, fastckpt
>>> out = os.path.join(tempfile.mkdtemp(), "model.npz")
>>> fastckpt.conversion.convert(fastckpt.examples.model_path(), out)
2
>>> sorted(read_tensors(out))
['v1', 'v2']
"""

from __future__ import annotations

import base64
import json
import os
import sys
import warnings
from typing import Dict, Iterator, List, Mapping, Optional

import numpy as np

from . import _fastckpt, _paths, errors
from .reader import CheckpointReader

__all__ = ["convert", "read_tensors", "write_tensors"]

# Key prefix, in safetensors metadata, of string tensors (which safetensors cannot hold).
STRING_METADATA_PREFIX = "fastckpt.string:"
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
# The numpy dtypes safetensors holds; tensors of other dtypes are skipped with a warning.
_SAFETENSORS_DTYPES = {
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "complex64",
}


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


def nbytes(array: np.ndarray) -> int:
    """The bytes of an array's elements (0 for strings, whose size depends on their contents)."""
    return 0 if array.dtype == object else int(array.nbytes)


def batches(names: List[str], sizes: Dict[str, int], batch_bytes: int) -> Iterator[List[str]]:
    """``names`` in consecutive batches of about ``batch_bytes`` (a tensor larger than that on its own)."""
    batch: List[str] = []
    size = 0
    for name in names:
        batch.append(name)
        size += sizes.get(name, 0)
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def batch_bytes(total: int) -> int:
    """Batch size for reading or writing ``total`` bytes in parts: large enough that each part keeps every core
    busy, small enough that a progress bar moves (at least 50 parts of a large checkpoint)."""
    return max(64 << 20, total // 50)


def read_tensors(
    src: str, progress=NoProgress, *, storage_options: Optional[Mapping[str, str]] = None
) -> Dict[str, np.ndarray]:
    """All tensors of a checkpoint (any path ``NewCheckpointReader`` opens), .safetensors or .npz file, as
    arrays (string scalars as 0-d object arrays). ``storage_options``: configuration of object stores
    (object_store's keys such as ``aws_endpoint``, ``aws_region``; see README "Object stores")."""
    options = _paths.storage_options(storage_options)
    if src.endswith(".safetensors"):
        _import_safetensors()
        from safetensors import safe_open

        if _fastckpt.file_kind(src, storage_options=options) != "file":
            raise errors.NotFoundError(f"no such file: {src}", src)
        tensors = {}
        with safe_open(src, "np") as f, progress("reading", os.path.getsize(src)) as progress:
            metadata = f.metadata() or {}
            names = list(f.keys())
            if any(f.get_slice(name).get_dtype() == "BF16" for name in names):
                import ml_dtypes  # noqa: F401 - safetensors' numpy loader needs numpy to know "bfloat16"
            for name in names:
                try:
                    tensors[name] = f.get_tensor(name)
                except AttributeError:  # safetensors' numpy loader lacks the float8 types
                    tensors[name] = _read_safetensors_float8(src, name)
                progress.advance(nbytes(tensors[name]))
        for key, value in metadata.items():
            if key.startswith(STRING_METADATA_PREFIX):
                stored = json.loads(value)
                strings = np.empty(len(stored["values"]), dtype=object)
                strings[:] = [base64.b64decode(s) for s in stored["values"]]
                tensors[key[len(STRING_METADATA_PREFIX) :]] = strings.reshape(stored["shape"])
        return tensors
    if src.endswith(".npz"):
        if _fastckpt.file_kind(src, storage_options=options) != "file":
            raise errors.NotFoundError(f"no such file: {src}", src)
        tensors = {}
        with np.load(src, allow_pickle=False) as npz:
            total = sum(info.file_size for info in npz.zip.infolist())
            with progress("reading", total, "rchar") as progress:
                for name in npz.files:
                    tensors[name] = npz[name]
                    progress.advance(nbytes(tensors[name]))
        return tensors
    reader = CheckpointReader(src, storage_options=options)
    sizes = tensor_sizes(reader)
    total = sum(sizes.values())
    tensors = {}
    # In batches, each read in parallel by get_tensors, so that the bar moves.
    with progress("reading", total, "rchar") as progress:
        for batch in batches(sorted(sizes), sizes, batch_bytes(total)):
            for name, value in reader.get_tensors(batch).items():
                tensors[name] = as_array(value)
            progress.advance(sum(sizes[name] for name in batch))
    return tensors


def as_array(value) -> np.ndarray:
    """A tensor value as an array; a string scalar (bytes) as a 0-d object array, keeping its NUL bytes."""
    if isinstance(value, bytes):
        array = np.empty((), dtype=object)
        array[()] = value
        return array
    return np.asarray(value)


def _read_safetensors_float8(path: str, name: str) -> np.ndarray:
    """One float8 tensor of a .safetensors file, read from the offsets its header gives."""
    import ml_dtypes

    dtypes = {"F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2}
    with open(path, "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        info = json.loads(f.read(header_size))[name]
        if info["dtype"] not in dtypes:
            raise errors.UnimplementedError(f"cannot read {info['dtype']} tensor {name!r} from {path}", path, name)
        start, end = info["data_offsets"]
        f.seek(8 + header_size + start)
        data = f.read(end - start)
    return np.frombuffer(data, dtype=dtypes[info["dtype"]]).reshape(info["shape"])


def _import_safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise errors.InvalidArgumentError(
            "converting to or from .safetensors needs the safetensors package (pip install safetensors)"
        ) from None
    return safetensors.numpy


def write_tensors(
    tensors: Dict[str, np.ndarray],
    dst: str,
    progress=NoProgress,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> None:
    """Writes ``{name: array}`` to ``dst``: a .safetensors or .npz file, or else a checkpoint prefix (written
    with ``storage_options``, the configuration of object stores)."""
    if dst.endswith(".safetensors"):
        safetensors_numpy = _import_safetensors()
        arrays, metadata = {}, {}
        for name, value in tensors.items():
            if value.dtype == object:
                metadata[STRING_METADATA_PREFIX + name] = json.dumps(
                    {"shape": list(value.shape), "values": [base64.b64encode(s).decode() for s in value.reshape(-1)]}
                )
            elif value.dtype.name in _SAFETENSORS_DTYPES:
                arrays[name] = np.require(value, requirements="C")
            else:
                warnings.warn(f"skipping {name!r}: safetensors cannot hold {value.dtype.name}", stacklevel=2)
        with progress("writing", sum(map(nbytes, arrays.values())), "wchar"):
            safetensors_numpy.save_file(arrays, dst, metadata=metadata or None)
        if metadata:
            print(f"{len(metadata)} string tensor(s) stored in the safetensors metadata", file=sys.stderr)
    elif dst.endswith(".npz"):
        arrays = {}
        for name, value in tensors.items():
            if value.dtype == object:
                # npz holds strings only as fixed-width bytes, which drop trailing NULs.
                if any(s.endswith(b"\0") for s in value.reshape(-1)):
                    warnings.warn(
                        f"skipping string tensor {name!r}: an element ends with a NUL byte, which .npz drops",
                        stacklevel=2,
                    )
                    continue
                value = value.astype(bytes)
            elif value.dtype.name in _NPZ_WIDENED:
                wider = _NPZ_WIDENED[value.dtype.name]
                warnings.warn(f"{name!r}: .npz cannot hold {value.dtype.name}; stored exactly as {wider}", stacklevel=2)
                value = value.astype(wider)
            arrays[name] = value
        with progress("writing", sum(map(nbytes, arrays.values())), "wchar"):
            np.savez(dst, **arrays)
    else:
        from .writer import CheckpointWriter

        for name, value in tensors.items():
            if value.dtype.kind == "S":
                tensors[name] = value.astype(object)
        sizes = {name: nbytes(value) for name, value in tensors.items()}
        total = sum(sizes.values())
        # In batches, each written by add_tensors (in parallel, without the GIL), so that the bar moves.
        with (
            progress("writing", total, "wchar") as progress,
            CheckpointWriter(dst, storage_options=storage_options) as writer,
        ):
            for batch in batches(sorted(tensors), sizes, batch_bytes(total)):
                writer.add_tensors([(name, tensors[name]) for name in batch])
                progress.advance(sum(sizes[name] for name in batch))


def convert(src: str, dst: str, progress=NoProgress, *, storage_options: Optional[Mapping[str, str]] = None) -> int:
    """Converts the tensors of ``src`` (a checkpoint, .safetensors or .npz) into ``dst`` (.safetensors, .npz,
    or a checkpoint prefix), the format chosen by ``dst``'s suffix; returns how many tensors were written.
    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores"), for the checkpoints read and written."""
    src, dst = os.fspath(src), os.fspath(dst)
    options = _paths.storage_options(storage_options)
    tensors = read_tensors(src, progress, storage_options=options)
    write_tensors(tensors, dst, progress, storage_options=options)
    return len(tensors)
