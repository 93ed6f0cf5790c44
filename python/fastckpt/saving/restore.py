"""Restoring into existing arrays (``Saver.restore(into=...)``, and the arrays of a var_list): numpy arrays and
torch tensors of the stored shape and dtype, or reshaped with ``reshape=True``, and ``fastckpt.Slice`` parts
read alone. Every target is checked against the checkpoint before anything is written into any of them."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .. import errors
from ..reading.reader import CheckpointReader, LazyTensor
from .writer import Slice

__all__ = ["check_writable", "restore_into"]


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "copy_")


def check_writable(target: Any, name: str, path: Optional[str] = None) -> None:
    """Raises unless a tensor can be restored into ``target`` in place: a writable numpy array, a torch tensor,
    or a ``fastckpt.Slice`` of one. ``name`` (and ``path``) name the variable (and the checkpoint) in the error."""
    array = target.value if isinstance(target, Slice) else target
    if _is_torch_tensor(array):
        return
    if isinstance(array, np.ndarray):
        if not array.flags.writeable:
            raise errors.InvalidArgumentError(
                f"cannot restore {name!r} into a read-only numpy array: pass a writable one (array.copy())", path, name
            )
        return
    hint = (
        "a Python or numpy scalar cannot be written in place: pass a 0-d array, np.array(value)"
        if isinstance(array, (int, float, complex, bool, np.generic))
        else "pass a writable numpy array or a torch tensor"
    )
    raise errors.InvalidTypeError(
        f"cannot restore {name!r} into a {type(array).__name__}, which cannot be written in place: {hint}", path, name
    )


def restore_into(reader: CheckpointReader, targets: Mapping[str, Any], reshape: bool) -> None:
    """Copies each tensor ``name`` of ``targets`` (``{checkpoint_name: target}``) into its target, once every
    target is checked: arrays that take the stored bytes as they are are read into in one parallel pass, a
    ``fastckpt.Slice`` receives its part alone, everything else is copied in.

    Raises:
        fastckpt.errors.NotFoundError: a tensor is not in the checkpoint.
        fastckpt.errors.InvalidArgumentError: a target that cannot take its tensor (shape, dtype, read-only).
    """
    stored = {name: reader.get_slice(name) for name in targets}
    for name, target in targets.items():
        _check_target(target, stored[name], name, reader.path, reshape)
    parts = {name: target for name, target in targets.items() if isinstance(target, Slice)}
    whole = {name: _target(target, stored[name], reshape) for name, target in targets.items() if name not in parts}
    # Arrays that can take the stored bytes as they are are read into in one parallel pass.
    direct = {name: target for name, target in whole.items() if _is_direct_target(target, stored[name])}
    reader.read_tensors_into(direct)
    for name in whole.keys() - direct.keys():
        _copy_into(whole[name], reader.get_arrays([name])[name])  # one at a time: one tensor's copy in memory
    for name, part in parts.items():
        _copy_into(part.value, stored[name][tuple(slice(start, start + length) for start, length in part.extents)])


def _shape_text(shape: Sequence[int]) -> str:
    """A shape as TensorFlow's messages write it: ``[3,2]``."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def _check_target(target: Any, stored: LazyTensor, name: str, path: str, reshape: bool) -> None:
    """Raises unless ``target`` (a ``Slice``: its part) can take the tensor ``stored`` as TensorFlow's Assign
    would, or with ``reshape`` another shape of as many elements."""
    check_writable(target, name, path)
    if isinstance(target, Slice):
        _check_part(target, stored, name, path)
        target, shape = target.value, tuple(length for _, length in target.extents)
    else:
        shape = stored.shape
    target_shape = tuple(target.shape)
    if target_shape != shape and not (reshape and _same_size(target_shape, shape)):
        hint = ""
        if _same_size(target_shape, shape):
            hint = " (Saver(reshape=True) restores into another shape with as many elements)"
        raise errors.InvalidArgumentError(
            f"Assign requires shapes of both tensors to match. lhs shape= {_shape_text(target_shape)} rhs shape= "
            f"{_shape_text(shape)}: cannot restore {stored.dtype.name} {list(shape)} tensor {name!r} of {path} into "
            f"{target.dtype} {list(target_shape)}{hint}",
            path,
            name,
        )
    if not _takes_dtype(target, stored):
        raise errors.InvalidArgumentError(
            f"cannot restore {stored.dtype.name} {list(shape)} tensor {name!r} of {path} into {target.dtype} "
            f"{list(target_shape)}: the dtypes differ, which TensorFlow refuses too (restore without a target "
            "and convert the returned array)",
            path,
            name,
        )


def _takes_dtype(target: Any, stored: LazyTensor) -> bool:
    if _is_torch_tensor(target):
        from ..torch_arrays import torch_dtype  # torch is imported: the target is one of its tensors

        return torch_dtype(stored.dtype) == target.dtype
    if stored.dtype.is_string:
        return target.dtype == object
    return target.dtype == stored.dtype.numpy_dtype


def _check_part(part: Slice, stored: LazyTensor, name: str, path: str) -> None:
    """Raises unless ``part`` is a part of a tensor of the stored shape that lies inside it."""
    extents = part.extents
    if tuple(int(d) for d in part.full_shape) != stored.shape:
        raise errors.InvalidArgumentError(
            f"cannot restore a part of a tensor of shape {list(part.full_shape)} from tensor {name!r} of {path}, "
            f"of shape {list(stored.shape)}",
            path,
            name,
        )
    if any(start < 0 or start + length > size for (start, length), size in zip(extents, stored.shape)):
        raise errors.InvalidArgumentError(
            f"the part {part.spec} does not lie inside tensor {name!r} of {path}, of shape {list(stored.shape)}",
            path,
            name,
        )


def _target(target: Any, stored: LazyTensor, reshape: bool) -> Any:
    """``target``, or with ``reshape=True`` a view of it in the stored shape where it has another shape
    with as many elements (numpy arrays; torch tensors are reshaped when copied into)."""
    shape = stored.shape
    if reshape and isinstance(target, np.ndarray) and target.shape != shape:
        view = target.view()
        try:
            view.shape = shape  # raises instead of copying when the array is not contiguous
        except AttributeError:
            return target
        return view
    return target


def _same_size(a: Sequence[int], b: Sequence[int]) -> bool:
    return int(np.prod(a, dtype=np.int64)) == int(np.prod(b, dtype=np.int64))


def _is_direct_target(target: Any, stored: LazyTensor) -> bool:
    """Whether the checkpoint can read the tensor straight into ``target``, with no intermediate array."""
    return (
        isinstance(target, np.ndarray)
        and not stored.dtype.is_string
        and target.shape == stored.shape
        and target.flags.c_contiguous
    )


def _copy_into(target: Any, value: Any) -> None:
    """Copies a restored value into a target checked to take it (reshaped to it where ``reshape`` allowed)."""
    value = np.asarray(value).reshape(tuple(target.shape))
    if _is_torch_tensor(target):
        import torch

        from ..torch_arrays import numpy_to_tensor

        with torch.no_grad():
            target.copy_(numpy_to_tensor(value))
        return
    np.copyto(target, value)
