"""The checkpoint a directory stands for: a SavedModel's variables (``variables/variables``), else the latest
checkpoint its ``checkpoint`` state file names. The one place the SavedModel's file layout is written down
(``fastckpt.saved_model`` exports the names as TensorFlow's ``tf.saved_model.constants`` does).

>>> import fastckpt
>>> directory_checkpoint(fastckpt.examples.model_dir(), _fastckpt.Stores()) == fastckpt.examples.model_path()
True
"""

from __future__ import annotations

import os
import re

from .. import _fastckpt, errors
from .checkpoint_state import checkpoint_exists, get_checkpoint_state

__all__ = [
    "SAVED_MODEL_FILENAME_PB",
    "SAVED_MODEL_FILENAME_PBTXT",
    "VARIABLES_DIRECTORY",
    "VARIABLES_FILENAME",
    "directory_checkpoint",
    "saved_model_variables",
]

SAVED_MODEL_FILENAME_PB = "saved_model.pb"
SAVED_MODEL_FILENAME_PBTXT = "saved_model.pbtxt"
VARIABLES_DIRECTORY = "variables"
VARIABLES_FILENAME = "variables"

# Checkpoints named in the error for a directory without a usable state file; more are counted.
_SHOWN = 5


def saved_model_variables(export_dir: str) -> str:
    """The checkpoint prefix of a SavedModel's variables."""
    return os.path.join(export_dir, VARIABLES_DIRECTORY, VARIABLES_FILENAME)


def directory_checkpoint(path: str, stores: "_fastckpt.Stores") -> str:
    """The checkpoint of the directory ``path``: its SavedModel variables when they exist, else the latest
    checkpoint of its state file.

    Raises:
        fastckpt.errors.NotACheckpointError: a directory with neither (TensorFlow raises ValueError), saying
            what it holds instead: the checkpoints in it, to pass one of them.
        fastckpt.errors.InvalidCheckpointStateError: its state file names no checkpoint.
    """
    variables = saved_model_variables(path)
    if checkpoint_exists(variables, storage_options=stores):
        return variables
    state = get_checkpoint_state(path, storage_options=stores)
    if state is not None and checkpoint_exists(state.model_checkpoint_path, storage_options=stores):
        return state.model_checkpoint_path
    if state is not None:
        why = f"its 'checkpoint' state file names {state.model_checkpoint_path}, where there is no checkpoint"
    else:
        why = "it has no 'checkpoint' state file"
    if any(
        stores.file_kind(os.path.join(path, f)) == "file" for f in (SAVED_MODEL_FILENAME_PB, SAVED_MODEL_FILENAME_PBTXT)
    ):
        why = f"it is a SavedModel without variables ({variables}), and {why}"
    raise errors.NotACheckpointError(f"no checkpoint in directory {path}: {why}{_checkpoints_held(path, stores)}", path)


def _checkpoints_held(path: str, stores: "_fastckpt.Stores") -> str:
    """What to pass instead of the directory ``path``, for the checkpoints it holds (none: ``""``), in the order
    of their numbers (``model.ckpt-2`` before ``model.ckpt-10``)."""
    held = sorted(_fastckpt.listed_checkpoints(stores.list_directory(path)), key=_numbers_in_order)
    if not held:
        return ""
    if len(held) == 1:
        return f"; it holds the checkpoint {held[0]}: pass {os.path.join(path, held[0])}"
    shown = ", ".join(held[:_SHOWN]) + (f" and {len(held) - _SHOWN} more" if len(held) > _SHOWN else "")
    return f"; it holds the checkpoints {shown}: pass one of them, such as {os.path.join(path, held[-1])}"


def _numbers_in_order(name: str) -> list:
    # re.split with a group: the numbers at the odd places.
    return [(int(part), "") if i % 2 else (-1, part) for i, part in enumerate(re.split(r"(\d+)", name))]
