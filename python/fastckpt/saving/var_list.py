"""A Saver's ``var_list``: which values it saves and restores, and under which names, as TensorFlow's Saver
takes it: None (everything), a list of names, or a dict ``{checkpoint_name: local_name}`` that renames.

>>> name_map({"model/w": "w"}, ["model/w", "model/b"])
{'model/w': 'w'}
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence, Union

from .. import errors

__all__ = ["VarList", "name_map"]

VarList = Union[None, Sequence[str], Mapping[str, str]]


def name_map(var_list: VarList, available: Sequence[str]) -> Dict[str, str]:
    """``{checkpoint_name: local_name}`` for a var_list: None (everything ``available``), names, or a dict."""
    if var_list is None:
        return {name: name for name in available}
    if isinstance(var_list, Mapping):
        return dict(var_list)
    if isinstance(var_list, str):
        raise errors.InvalidTypeError("var_list must be a list of names or a dict, not a string")
    return {name: name for name in var_list}
