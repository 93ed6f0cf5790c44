"""``convert``: a source's tensors, chosen, renamed, transposed and cast as ``fastckpt.mapping`` says, written
to a destination one batch at a time (reading the next batch while this one is written), larger tensors in parts
of rows."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
from typing import Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple, TypeVar, Union

import numpy as np

from .. import _paths, errors, mapping
from ..dtypes import as_dtype
from ..reading.batching import batches
from .destinations import Destination, destination_kind, held, open_destination
from .sources import Source, open_source
from .tensors import Arena, Tensor

__all__ = ["PART_BYTES", "NoProgress", "convert", "parse_size"]

# Bytes of tensors read and written at once: whole tensors are read in batches of about this size, larger ones
# in parts of rows of at most this size (a row larger than this is read alone).
PART_BYTES = 64 << 20

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

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


def parse_size(size: Union[int, str]) -> int:
    """Bytes of a size such as ``"5GB"`` (10^9), ``"500MiB"`` (2^20) or ``1000000``, as Hugging Face parses
    ``max_shard_size``."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*", str(size).upper())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise errors.InvalidArgumentError(f"not a size: {size!r} (write e.g. 5GB, 500MB or 2GiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


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
        fastckpt.errors.MissingDependencyError: a torch file (either side) without torch, a ``.keras`` file
            without Keras 3; the message says what to install.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    kind = destination_kind(dst, max_shard_size)
    if kind == "keras":
        others = (rename, skip, skip_optimizer, transpose, dtype, max_shard_size)
        rules_given = names != "key" or any(rule not in (None, False, [], ()) for rule in others)
        return _to_keras_file(src, dst, rules_given, storage_options)
    stores = _paths.stores(storage_options)
    cast = as_dtype(dtype) if dtype is not None else None
    if cast is not None and not cast.is_floating:
        raise errors.InvalidArgumentError(f"dtype= casts floating tensors to a floating dtype, not {cast.name}")
    shard_bytes = parse_size(max_shard_size) if max_shard_size is not None else None
    source = open_source(src, storage_options=stores)
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
            if cast is not None and tensor.dtype.is_floating:
                tensor = Tensor(cast, tensor.shape)
            if kind != "checkpoint" and tensor.dtype.name.startswith(("qint", "quint")):
                # Other formats have no quantized types: the integers they are stored as.
                tensor = Tensor(as_dtype(tensor.dtype.numpy_dtype), tensor.shape)
            written = held(kind, name, Tensor(tensor.dtype, shapes[name]), strings.get(name))
            if written is not None:
                planned[name] = _Planned(key, stored[key], written, flip)
        destination = open_destination(
            kind,
            dst,
            {name: p.written for name, p in planned.items()},
            {name: strings[name] for name in planned if name in strings},
            shard_bytes,
            stores,
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
        from ..keras import save_keras_file
    except ImportError as err:  # its message says what to install
        raise errors.MissingDependencyError(f"cannot write {dst}: {err}", dst) from err
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
    arenas = [Arena(), Arena()]
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
                arena.reset(Arena.size(first.stored, count))
                part, checksum = source.read_rows(first.key, start, count, checksum, arena.empty)
                yield [(batch[0], _converted(first, part), True, part.nbytes)]
            continue
        arena, turn = arenas[turn], 1 - turn
        keys = [planned[name].key for name in batch if name not in strings]
        arena.reset(sum(Arena.size(source.tensors()[key]) for key in keys))
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
