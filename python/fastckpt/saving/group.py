"""Saves by a group of processes (``Saver(process_group=...)``, see ``fastckpt.distributed``): where each
process writes its part before process 0 merges them, what the processes tell each other of what they
saved, and how they agree on the outcome."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _fastckpt, errors
from ..distributed import Coordinator
from .retention import delete_tree
from .writer import Slice, dtype_and_shape, merge_checkpoints

__all__ = [
    "check_one_destination",
    "commit_in_rank_0",
    "gather",
    "merge_parts",
    "part_directory",
    "part_prefix",
    "raise_failures",
    "variable_of",
    "variables_of_the_group",
    "write_parts",
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


def gather(group: Coordinator, value: Any, checkpoint_file: str) -> List[Any]:
    """Every process's ``value``; a failure of the group (a process died) aborts the save."""
    try:
        return group.all_gather(value)
    except Exception as error:
        raise errors.AbortedError(
            f"the save of {checkpoint_file} was abandoned: the processes saving it together failed "
            f"to exchange their outcomes ({type(error).__name__}: {error})",
            checkpoint_file,
        ) from error


def write_parts(
    group: Coordinator,
    tensors: Dict[str, Any],
    checkpoint_file: str,
    write_files: Callable[[str, Dict[str, Any]], None],
    stores: "_fastckpt.Stores",
) -> List[Any]:
    """Once every process saves ``checkpoint_file``, each writes its part (``write_files(prefix, tensors)``);
    returns what each saved. If any failed, process 0 deletes the parts and every process raises."""
    check_one_destination(gather(group, checkpoint_file, checkpoint_file), checkpoint_file)
    own_error: Optional[BaseException] = None
    try:
        if tensors:
            write_files(part_prefix(checkpoint_file, group.rank, group.world_size), tensors)
        outcome: Any = {name: variable_of(value) for name, value in tensors.items()}
    except Exception as error:
        outcome, own_error = f"{type(error).__name__}: {error}", error
    outcomes = gather(group, outcome, checkpoint_file)
    if any(isinstance(o, str) for o in outcomes) and group.rank == 0:
        delete_tree(part_directory(checkpoint_file), stores)
    raise_failures(outcomes, own_error, checkpoint_file)
    return outcomes


def merge_parts(
    group: Coordinator, outcomes: List[Any], checkpoint_file: str, durable: bool, stores: "_fastckpt.Stores"
) -> None:
    """In process 0: merges the parts the processes wrote (``outcomes``: what each saved) into the checkpoint."""
    parts = [part_prefix(checkpoint_file, rank, group.world_size) for rank, o in enumerate(outcomes) if o]
    merge_checkpoints(parts, checkpoint_file, durable=durable, storage_options=stores)
    delete_tree(part_directory(checkpoint_file), stores)


def commit_in_rank_0(group: Coordinator, commit: Callable[[], Any], checkpoint_file: str) -> Any:
    """Runs ``commit()`` in process 0 and returns its result in every process, or raises its failure in each
    (an ``AbortedError`` in the others)."""
    committed: Any = None
    own_error: Optional[BaseException] = None
    if group.rank == 0:
        try:
            committed = commit()
        except Exception as error:
            own_error, committed = error, f"{type(error).__name__}: {error}"
    committed = gather(group, committed, checkpoint_file)[0]
    if isinstance(committed, str):
        if own_error is not None:
            raise own_error
        raise errors.AbortedError(
            f"the save of {checkpoint_file} failed in rank 0, which merges the parts: {committed}", checkpoint_file
        )
    return committed
