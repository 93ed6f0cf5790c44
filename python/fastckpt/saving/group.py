"""Saves by a group of processes (``Saver(process_group=...)``, see ``fastckpt.distributed``): where each
process writes its part before process 0 merges them, and what the processes tell each other of what they
saved."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

from .. import errors
from .writer import Slice, dtype_and_shape

__all__ = ["part_directory", "part_prefix", "variable_of", "variables_of_the_group"]


def part_directory(checkpoint_file: str) -> str:
    """Where the processes of a group write their parts of ``checkpoint_file`` before they are merged."""
    return checkpoint_file + "_temp"


def part_prefix(checkpoint_file: str, rank: int, world_size: int) -> str:
    return os.path.join(part_directory(checkpoint_file), f"part-{rank:05d}-of-{world_size:05d}")


def variable_of(value: Any) -> Tuple[str, Tuple[int, ...], bool]:
    """What a process tells the others of a value it saved: dtype name, the variable's shape, whether a part."""
    dtype, shape = dtype_and_shape(value)
    return dtype.name, tuple(shape), isinstance(value, Slice)


def variables_of_the_group(outcomes: List[Dict[str, Any]], checkpoint_file: str) -> Dict[str, Any]:
    """``{name: (dtype, shape, is_part)}`` over every process; a tensor saved whole by one process and by
    another too (or as a part) is an error naming both."""
    variables: Dict[str, Any] = {}
    owner: Dict[str, int] = {}
    for rank, saved in enumerate(outcomes):
        for name, (dtype, shape, is_part) in saved.items():
            if name in variables and not (is_part and variables[name][2]):
                raise errors.InvalidArgumentError(
                    f"tensor {name!r} is saved by rank {owner[name]} and by rank {rank}: names must be unique "
                    "across the processes, unless each saves a fastckpt.Slice of it",
                    checkpoint_file,
                    name,
                )
            if name in variables and variables[name][:2] != (dtype, tuple(shape)):
                raise errors.InvalidArgumentError(
                    f"the parts of tensor {name!r} disagree: rank {owner[name]} saves {variables[name][0]} "
                    f"{list(variables[name][1])}, rank {rank} {dtype} {list(shape)}",
                    checkpoint_file,
                    name,
                )
            variables.setdefault(name, (dtype, tuple(shape), is_part))
            owner.setdefault(name, rank)
    return variables
