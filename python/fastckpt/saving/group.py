"""Saves by a group of processes (``Saver(process_group=...)``, see ``fastckpt.distributed``): where each
process writes its part before process 0 merges them, and what the processes tell each other of what they
saved."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from .. import errors
from .writer import Slice, dtype_and_shape

__all__ = [
    "check_one_destination",
    "part_directory",
    "part_prefix",
    "raise_failures",
    "variable_of",
    "variables_of_the_group",
]


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


def check_one_destination(destinations: List[str], checkpoint_file: str) -> None:
    """Raises unless every process of the group saves the same checkpoint (``destinations``: each one's)."""
    if len(set(destinations)) > 1:
        listed = ", ".join(f"rank {rank}: {path}" for rank, path in enumerate(destinations))
        raise errors.InvalidArgumentError(
            f"the processes of the group save different checkpoints ({listed})", checkpoint_file
        )


def raise_failures(outcomes: List[Any], own_error: Optional[BaseException], checkpoint_file: str) -> None:
    """Raises if a process failed to write its part (its outcome is the failure, as text): this process's own
    error where it failed, else an ``AbortedError`` naming the processes that failed and why."""
    failures = [(rank, o) for rank, o in enumerate(outcomes) if isinstance(o, str)]
    if not failures:
        return
    if own_error is not None:
        raise own_error
    listed = "; ".join(f"rank {rank}: {message}" for rank, message in failures)
    raise errors.AbortedError(f"the save of {checkpoint_file} failed ({listed})", checkpoint_file)
