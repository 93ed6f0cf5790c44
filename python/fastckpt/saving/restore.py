"""Restoring into existing arrays (``Saver.restore(into=...)``): numpy arrays and torch tensors of the
stored shape and dtype, or reshaped with ``reshape=True``, and ``fastckpt.Slice`` parts read alone."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence

import numpy as np

from .. import errors
from ..reading.reader import CheckpointReader
from .writer import Slice

__all__ = ["restore_into"]


def restore_into(
    reader: CheckpointReader, names: Mapping[str, str], into: Mapping[str, Any], reshape: bool
) -> Dict[str, Any]:
    """Copies each tensor ``name`` of ``names`` (``{checkpoint_name: local_name}``) into ``into[local_name]``
    (see ``Saver.restore``) and returns ``dict(into)``: arrays that take the stored bytes as they are are read
    into in one parallel pass, a ``fastckpt.Slice`` receives its part alone, everything else is copied in."""
    for name, local in names.items():
        if local not in into:
            raise errors.NotFoundError(f"no target in `into` for {local!r}", reader.path, name)
    parts = {name: into[local] for name, local in names.items() if isinstance(into[local], Slice)}
    targets = {name: _target(into[local], reader, name, reshape) for name, local in names.items() if name not in parts}
    # Arrays that can take the stored bytes as they are are read into in one parallel pass.
    direct = {name: target for name, target in targets.items() if _is_direct_target(target, reader, name)}
    reader.read_tensors_into(direct)
    for name, local in names.items():
        if name in parts:
            _copy_into(parts[name].value, _read_part(reader, name, parts[name]), name, reader.path, reshape)
        elif name not in direct:
            _copy_into(into[local], reader.get_arrays([name])[name], name, reader.path, reshape)
    return dict(into)


def _target(target: Any, reader: CheckpointReader, name: str, reshape: bool) -> Any:
    """``target``, or with ``reshape=True`` a view of it in the stored shape where it has another shape
    with as many elements (numpy arrays; torch tensors are reshaped when copied into)."""
    shape = reader.get_slice(name).shape
    if reshape and isinstance(target, np.ndarray) and target.shape != shape and _same_size(target.shape, shape):
        view = target.view()
        try:
            view.shape = shape  # raises instead of copying when the array is not contiguous
        except AttributeError:
            return target
        return view
    return target


def _read_part(reader: CheckpointReader, name: str, part: Slice) -> np.ndarray:
    """The part of tensor ``name`` that ``part`` covers, read alone."""
    stored = reader.get_slice(name)
    extents = part.extents
    if tuple(int(d) for d in part.full_shape) != stored.shape:
        raise errors.InvalidArgumentError(
            f"cannot restore a part of a tensor of shape {list(part.full_shape)} from one of shape "
            f"{list(stored.shape)}",
            reader.path,
            name,
        )
    if any(start < 0 or start + length > size for (start, length), size in zip(extents, stored.shape)):
        raise errors.InvalidArgumentError(
            f"the part {part.spec} does not lie inside the tensor of shape {list(stored.shape)}", reader.path, name
        )
    return stored[tuple(slice(start, start + length) for start, length in extents)]


def _same_size(a: Sequence[int], b: Sequence[int]) -> bool:
    return int(np.prod(a, dtype=np.int64)) == int(np.prod(b, dtype=np.int64))


def _is_direct_target(target: Any, reader: CheckpointReader, name: str) -> bool:
    """Whether the checkpoint can read ``name`` straight into ``target``, with no intermediate array."""
    if not isinstance(target, np.ndarray):
        return False
    stored = reader.get_slice(name)
    return (
        not stored.dtype.is_string
        and target.dtype == stored.dtype.numpy_dtype
        and target.shape == stored.shape
        and target.flags.c_contiguous
        and target.flags.writeable
    )


def _copy_into(target: Any, value: Any, name: str, path: str, reshape: bool) -> None:
    """Copies a restored value into ``target``, reshaped to it with ``reshape`` when the sizes agree; a
    mismatch is an error naming both sides, as TensorFlow's Assign reports it."""
    value = np.asarray(value)
    target_shape = tuple(getattr(target, "shape", ()))
    if reshape and target_shape != value.shape and _same_size(target_shape, value.shape):
        value = value.reshape(target_shape)
    if type(target).__module__.startswith("torch"):
        import torch

        from ..torch_arrays import numpy_to_tensor

        from_numpy = numpy_to_tensor(value)
        if from_numpy is None or target_shape != value.shape or target.dtype != from_numpy.dtype:
            raise errors.InvalidArgumentError(
                f"cannot restore {value.dtype} {list(value.shape)} into torch {target.dtype} {list(target_shape)}",
                path,
                name,
            )
        with torch.no_grad():
            target.copy_(from_numpy)
        return
    if not isinstance(target, np.ndarray) or target.shape != value.shape or target.dtype != value.dtype:
        description = f"{getattr(target, 'dtype', type(target).__name__)} {list(target_shape)}"
        hint = ""
        if not reshape and target_shape != value.shape and _same_size(target_shape, value.shape):
            hint = " (Saver(reshape=True) restores into another shape with as many elements)"
        raise errors.InvalidArgumentError(
            f"cannot restore {value.dtype} {list(value.shape)} into {description}{hint}", path, name
        )
    np.copyto(target, value)
