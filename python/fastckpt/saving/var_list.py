"""A Saver's ``var_list``: which values it saves and restores, and under which names, as TensorFlow's Saver
takes it: None (everything), a list of names, or a dict ``{checkpoint_name: local_name}`` that renames; or a
callable that makes one of these of the names there are (the checkpoint's, at a restore), as
``ExponentialMovingAverage.variables_to_restore()`` gives in a fresh process. In
the dict, an array (numpy, torch, or a ``fastckpt.Slice`` of one) in place of a local name is the variable
itself, as TensorFlow's dict maps names to variables: saved from, and restored into in place.

>>> name_map({"model/w": "w"}, ["model/w", "model/b"])
{'model/w': 'w'}
>>> check_var_list(["v0", "v1", "v1"])
Traceback (most recent call last):
fastckpt.errors.InvalidArgumentError: At least two variables have the same name: v1
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, Mapping, Optional, Sequence, Union

from .. import errors
from ..arrays import to_numpy
from .restore import check_writable
from .writer import Slice

__all__ = ["VarList", "check_var_list", "is_variable", "name_map", "tensors_to_save"]

VarList = Union[None, Sequence[str], Mapping[str, Any], Callable[[Sequence[str]], Mapping[str, Any]]]


def is_variable(local: Any) -> bool:
    """Whether a var_list entry is a variable (an array to save from and restore into) rather than a name."""
    return not isinstance(local, str)


def check_var_list(var_list: VarList) -> None:
    """Raises where TensorFlow's Saver refuses the var_list (``ValueError`` there): a name twice in a list, or a
    dict that restores one variable (a local name, or an array) under two checkpoint names; and where an array
    of the dict cannot be restored into in place (read-only, a scalar, a jax array). A callable's var_list is
    checked when it is made."""
    if var_list is None or callable(var_list):
        return
    if isinstance(var_list, str):
        raise errors.InvalidTypeError("var_list must be a list of names or a dict, not a string")
    if isinstance(var_list, Mapping):
        _check_dict(var_list)
        return
    seen = set()
    for name in var_list:
        if not isinstance(name, str):
            raise errors.InvalidTypeError(
                f"a var_list list holds names, not {type(name).__name__}: to save and restore arrays, pass a dict "
                "{checkpoint_name: array}"
            )
        if name in seen:
            raise errors.InvalidArgumentError(f"At least two variables have the same name: {name}", None, name)
        seen.add(name)


def _identity(local: Any) -> Hashable:
    """What makes two entries of a dict one variable: the same local name, the same array (for a Slice, the same
    array at the same offset)."""
    if not is_variable(local):
        return local
    if isinstance(local, Slice):
        return id(local.value), tuple(int(o) for o in local.offset)
    return id(local)


def _check_dict(var_list: Mapping[str, Any]) -> None:
    first: Dict[Hashable, str] = {}
    for checkpoint_name, local in var_list.items():
        if not isinstance(checkpoint_name, str):
            raise errors.InvalidTypeError(
                f"the keys of a var_list dict are checkpoint names, not {type(checkpoint_name).__name__}"
            )
        if is_variable(local):
            check_writable(local, checkpoint_name)
        key = _identity(local)
        if key in first:
            what = f"the variable {local!r}" if not is_variable(local) else "the same array"
            raise errors.InvalidArgumentError(
                f"The same saveable will be restored with two names: {checkpoint_name} (the var_list maps "
                f"{first[key]!r} and {checkpoint_name!r} to {what}: keep one)",
                None,
                checkpoint_name,
            )
        first[key] = checkpoint_name


def name_map(var_list: VarList, available: Sequence[str]) -> Dict[str, Any]:
    """``{checkpoint_name: local_name or variable}`` for a var_list: None (everything ``available``), names, a
    dict, or a callable making one of these of ``available``."""
    if callable(var_list):
        var_list = var_list(available)
        check_var_list(var_list)
    if var_list is None:
        return {name: name for name in available}
    if isinstance(var_list, Mapping):
        return dict(var_list)
    if isinstance(var_list, str):
        raise errors.InvalidTypeError("var_list must be a list of names or a dict, not a string")
    return {name: name for name in var_list}


def tensors_to_save(var_list: VarList, values: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """``{checkpoint_name: numpy array or Slice of one}`` that a Saver of ``var_list`` saves of ``values``
    (``{local_name: value}``; the var_list's own arrays are saved from themselves).

    Raises:
        fastckpt.errors.NotFoundError: a name of the var_list has no value.
    """
    values = values or {}
    tensors: Dict[str, Any] = {}
    for checkpoint_name, local_name in name_map(var_list, list(values)).items():
        if is_variable(local_name):
            value = local_name
        elif local_name in values:
            value = values[local_name]
        else:
            raise errors.NotFoundError(f"no value given for {local_name!r}", None, local_name)
        if isinstance(value, Slice):
            value.extents  # noqa: B018 - checks the part's dimensions before anything is written
            tensors[checkpoint_name] = value._replace(value=to_numpy(value.value))
        else:
            tensors[checkpoint_name] = to_numpy(value)
    return tensors
