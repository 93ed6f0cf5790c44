"""Where a save goes: the prefix a Saver writes for a ``save_path`` and ``global_step``, and its state file,
checked as TensorFlow's Saver checks them; and the reason a save into a path fails where TensorFlow says
"Parent directory of ... doesn't exist".

>>> save_request("train/model.ckpt", 1000, None, pad_step_number=True, sharded=False).checkpoint_file
'train/model.ckpt-00001000'
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from .. import _fastckpt, errors

__all__ = ["SaveRequest", "no_parent_directory", "save_request"]


class SaveRequest(NamedTuple):
    """Where one save goes: the ``save_path`` given, the checkpoint's prefix, the state file's name."""

    save_path: str
    checkpoint_file: str
    latest_filename: str


def save_request(
    save_path: "str | os.PathLike[str]",
    global_step: Optional[int],
    latest_filename: Optional[str],
    pad_step_number: bool,
    sharded: bool,
) -> SaveRequest:
    """Where a save goes, checked before anything is written: the prefix is ``save_path-<step>`` with a
    ``global_step`` (``-00001000`` with ``pad_step_number``), else ``save_path``.

    Raises:
        fastckpt.errors.InvalidArgumentError: ``latest_filename`` with a directory; ``save_path`` named like the
            state file without a step and not ``sharded`` (TensorFlow's guard, from V1 checkpoints, whose one
            file was the prefix; a V2 checkpoint's files are ``.index`` and ``.data-*``).
    """
    save_path = os.fspath(save_path)
    latest_filename = latest_filename or "checkpoint"
    if os.path.dirname(latest_filename):
        raise errors.InvalidArgumentError(f"latest_filename {latest_filename!r} must not contain a directory")
    if global_step is not None:
        step = int(global_step)
        return SaveRequest(
            save_path, f"{save_path}-{step:08d}" if pad_step_number else f"{save_path}-{step}", latest_filename
        )
    if os.path.basename(save_path) == latest_filename and not sharded:
        raise errors.InvalidArgumentError(
            f"'latest_filename' collides with 'save_path': {latest_filename!r} and {save_path!r} (give a "
            "global_step or sharded=True, or another save_path or latest_filename)",
            save_path,
        )
    return SaveRequest(save_path, save_path, latest_filename)


def no_parent_directory(save_path: str, stores: "_fastckpt.Stores") -> Optional[errors.InvalidArgumentError]:
    """After a save into ``save_path`` failed: TensorFlow's error where a file stands in place of its directory
    or of one of that directory's parents (local paths), else None (missing directories are created)."""
    directory = os.path.dirname(save_path)
    while directory and not _fastckpt.is_url(directory):
        kind = stores.file_kind(directory)
        if kind == "directory":
            return None
        if kind == "file":
            return errors.InvalidArgumentError(
                f"Parent directory of {save_path} doesn't exist, can't save. ({directory} is a file: save into a "
                "directory)",
                save_path,
            )
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    return None
