"""Which checkpoints of a directory a Saver keeps: ``max_to_keep`` and ``keep_checkpoint_every_n_hours`` as
TensorFlow's Saver applies them, the history a new Saver takes up from a directory, and the tidying of what
killed saves left there.

A checkpoint's files (data files, V1 shards) are the core's to name and delete; this module decides which
checkpoints go, and when.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Callable, List, Optional, Sequence, Set, Tuple

from .. import _fastckpt, _paths
from ..reading.checkpoint_state import checkpoint_exists, delete_checkpoint_files

__all__ = ["Retention", "delete_tree", "remove_checkpoint_in_directory", "tidy_directory"]


class Retention:
    """The checkpoints a Saver keeps, oldest first, with the time each was saved, and those due for deletion.

    ``max_to_keep`` of 0 keeps every checkpoint and records none (the state file then names the newest alone,
    as TensorFlow's does).
    """

    def __init__(self, max_to_keep: int, keep_every_hours: float, stores: "_fastckpt.Stores"):
        self.max_to_keep = max_to_keep
        self.keep_every_hours = keep_every_hours
        self.kept: List[Tuple[str, float]] = []
        self.last_preserved_timestamp: Optional[float] = None
        self._due: List[Tuple[str, float]] = []
        self._taken_up: Set[Tuple[str, str]] = set()  # (directory, state file name)
        self._next_checkpoint_time = time.time() + keep_every_hours * 3600
        self._stores = stores

    def recover(self, checkpoint_paths: Sequence[str]) -> None:
        """Keeps the checkpoints among ``checkpoint_paths`` that still exist, timestamped by when each was
        completed (its V2 index or V1 file, as the core finds it)."""
        recovered = []
        for path in checkpoint_paths:
            mtime = self._stores.checkpoint_modified_time(path)
            if mtime is not None:
                recovered.append((path, mtime))
        self.kept = recovered

    def take_up(
        self,
        save_dir: str,
        base_name: str,
        latest_filename: str,
        names: Sequence[str],
        read_state: Callable[[], Any],
    ) -> None:
        """On the first save into a directory, takes up the history its state file (``read_state()``: the
        parsed ``CheckpointState`` or None, read only then) records, and the checkpoints among ``names`` (the
        directory's listing) named as this saver names them (``<base_name>-<step>``) that a killed saver left out
        of it (killed after writing the state, before deleting): ``max_to_keep`` then holds across restarts."""
        key = (_paths.absolute(save_dir), latest_filename)
        if key in self._taken_up:
            return
        self._taken_up.add(key)
        if self.kept:
            return
        state = read_state()
        if state is not None:
            paths = list(state.all_model_checkpoint_paths)
            stamps = list(state.all_model_checkpoint_timestamps)
            if len(stamps) == len(paths):
                self.kept = [
                    (p, t) for p, t in zip(paths, stamps) if checkpoint_exists(p, storage_options=self._stores)
                ]
            else:
                self.recover(paths)
            if state.last_preserved_timestamp:
                self.last_preserved_timestamp = state.last_preserved_timestamp
                self._next_checkpoint_time = state.last_preserved_timestamp + self.keep_every_hours * 3600
        known = {_paths.absolute(path) for path, _ in self.kept}
        ours = re.compile(re.escape(base_name) + r"-\d+")
        orphans = []
        for name in names:
            prefix = os.path.join(save_dir, name[: -len(".index")])
            if (
                name.endswith(".index")
                and ours.fullmatch(name[: -len(".index")])
                and _paths.absolute(prefix) not in known
            ):
                mtime = self._stores.modified_time(os.path.join(save_dir, name))
                orphans.append((prefix, mtime or 0.0))
        self.kept = sorted(orphans, key=lambda item: item[1]) + self.kept

    def record(self, path: str) -> None:
        """Keeps the checkpoint just saved; the oldest beyond ``max_to_keep`` become due for deletion."""
        if not self.max_to_keep:
            return
        self.kept = [(p, t) for p, t in self.kept if p != path]
        self.kept.append((path, time.time()))
        while len(self.kept) > self.max_to_keep:
            self._due.append(self.kept.pop(0))

    def delete_due(self, save_dir: str, meta_graph_suffix: str, listing: Sequence[str]) -> None:
        """Deletes the checkpoints due (one per save, as in TensorFlow, unless history taken up from the
        directory holds more), sparing one every ``keep_checkpoint_every_n_hours``; the core finds each one's
        files in ``listing``, the directory's names from before this save."""
        while self._due:
            path, timestamp = self._due.pop(0)
            if timestamp > self._next_checkpoint_time:
                # keep_checkpoint_every_n_hours: this one is spared.
                self._next_checkpoint_time += self.keep_every_hours * 3600
                self.last_preserved_timestamp = timestamp
                continue
            remove_checkpoint_in_directory(path, save_dir, meta_graph_suffix, listing, self._stores)


def remove_checkpoint_in_directory(
    prefix: str,
    save_dir: str,
    meta_graph_suffix: str,
    listing: Sequence[str],
    stores: "_fastckpt.Stores",
) -> None:
    """Deletes the files of a checkpoint a saver wrote into ``save_dir`` (whose names are ``listing``), and only
    if it lies there."""
    if _paths.real(os.path.dirname(prefix) or ".") != _paths.real(save_dir):
        return
    delete_checkpoint_files(prefix, meta_graph_suffix, stores, list(listing))


def tidy_directory(
    save_dir: str,
    names: Sequence[str],
    base_name: str,
    latest_filename: str,
    checkpoint_file: str,
    meta_graph_suffix: str,
    stores: "_fastckpt.Stores",
) -> List[str]:
    """Removes what saves into ``save_dir`` (listed as ``names``) under the same base name (or of its state file)
    left behind when their process was killed: temporary files whose writer process no longer runs, and the
    files of checkpoints ``<base>-<step>`` whose index is gone or never came (a kill while deleting one, or
    between its data files and its index), other than ``checkpoint_file`` (the one being saved), the parts a
    group save left (``<base>-<step>_temp``), and the unfinished uploads of the checkpoints' files into a bucket
    (S3; see ``Stores.uploads``). Returns the names left."""
    indexed = {name[: -len(".index")] for name in names if name.endswith(".index")}
    # Checkpoints as this saver names them; which files are a checkpoint's data files is the core's to say.
    saved_by_step = re.compile(re.escape(base_name) + r"-\d+")
    meta_suffix = "." + meta_graph_suffix
    # Called before any process of a group writes its part: parts of this checkpoint there are a dead save's.
    parts_of_a_group_save = re.compile(re.escape(base_name) + r"(-\d+)?_temp")

    def checkpoint_of(name: str) -> Optional[str]:
        return name[: -len(meta_suffix)] if name.endswith(meta_suffix) else _fastckpt.bundle_prefix_of(name)

    left = []
    for name in names:
        left.append(name)
        if not (name.startswith(base_name) or name.startswith(latest_filename)):
            continue
        leftover = _fastckpt.leftover_writer(name)
        if leftover is not None:
            orphan = not _process_alive(leftover[1])
        elif parts_of_a_group_save.fullmatch(name):
            delete_tree(os.path.join(save_dir, name), stores)
            orphan = False
            left.pop()
        else:
            owner = checkpoint_of(name)
            orphan = (
                owner is not None
                and saved_by_step.fullmatch(owner) is not None
                and owner not in indexed
                and owner != os.path.basename(checkpoint_file)
            )
        if orphan:
            stores.delete_file(os.path.join(save_dir, name))
            left.pop()
    # Multipart uploads (S3) of this saver's files: before it writes, none of its own is under way, so these are
    # a killed save's, whose parts the bucket keeps and bills until they are aborted.
    for path, upload_id in stores.uploads(os.path.join(save_dir, base_name)):
        name = path[len(save_dir) + 1 :].split("/")[0]
        owner = checkpoint_of(name)
        if parts_of_a_group_save.fullmatch(name) or owner == base_name or saved_by_step.fullmatch(owner or ""):
            stores.abort_upload(path, upload_id)
    return left


def delete_tree(directory: str, stores: "_fastckpt.Stores") -> None:
    """Deletes the files in ``directory`` (the parts of a group save), and the directory where it is one."""
    for name in stores.list_directory(directory):
        stores.delete_file(os.path.join(directory, name))
    if not _fastckpt.is_url(directory) and os.path.isdir(directory):
        os.rmdir(directory)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
