"""The ``checkpoint`` state file of a checkpoint directory, and checkpoints by path (TensorFlow's
``checkpoint_management``): whether one exists, when it was written, removing one.

A directory written by a Saver holds a text-format ``CheckpointState``::

    model_checkpoint_path: "model.ckpt-2000"
    all_model_checkpoint_paths: "model.ckpt-1000"
    all_model_checkpoint_paths: "model.ckpt-2000"

>>> import fastckpt
>>> fastckpt.latest_checkpoint("train_dir")          # doctest: +SKIP
'train_dir/model.ckpt-2000'
"""

from __future__ import annotations

import os
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from .. import _fastckpt, _paths, errors, protos

__all__ = [
    "atomic_write",
    "checkpoint_exists",
    "delete_checkpoint_files",
    "get_checkpoint_mtimes",
    "get_checkpoint_state",
    "latest_checkpoint",
    "meta_graph_filename",
    "remove_checkpoint",
    "update_checkpoint_state",
]

_STATE_FILENAME = "checkpoint"


def _resolve_in_dir(path: str, checkpoint_dir: str, stores: "_fastckpt.Stores") -> str:
    """A path named by a state file, resolved against the state file's directory.

    Relative paths are relative to the directory. An absolute path that does not exist (the directory was
    copied or moved, or written on another machine) is looked up by its base name in the directory.
    """
    if not _paths.is_absolute(path):
        return os.path.join(checkpoint_dir, path)
    if not checkpoint_exists(path, storage_options=stores):
        local = os.path.join(checkpoint_dir, os.path.basename(path))
        if checkpoint_exists(local, storage_options=stores):
            return local
    return path


def get_checkpoint_state(
    checkpoint_dir: str,
    latest_filename: Optional[str] = None,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
):
    """Reads the ``CheckpointState`` of a directory, or returns None if it has no state file.

    Paths in the returned message are resolved against the directory (see ``latest_checkpoint``).
    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.InvalidCheckpointStateError: the state file names no checkpoint (it is empty, or has
            no ``model_checkpoint_path``); a ``DataLossError`` and a ``ValueError``, as TensorFlow raises
            ``ValueError("Invalid checkpoint state loaded from ...")`` there.
        fastckpt.errors.DataLossError: the state file is not a valid ``CheckpointState``.
    """
    checkpoint_dir = os.fspath(checkpoint_dir)
    stores = _paths.stores(storage_options)
    filename = os.path.join(checkpoint_dir, latest_filename or _STATE_FILENAME)
    try:
        contents = stores.read_file(filename)
    except errors.NotFoundError:
        return None
    return parse_checkpoint_state(contents, filename, checkpoint_dir, stores)


def parse_checkpoint_state(contents: bytes, filename: str, checkpoint_dir: str, stores: "_fastckpt.Stores"):
    """The ``CheckpointState`` in ``contents``, the bytes of the state file ``filename``, with its paths resolved
    against its directory ``checkpoint_dir`` (see ``get_checkpoint_state``, which raises what this raises)."""
    from google.protobuf import text_format

    try:
        text = contents.decode("utf-8")
    except UnicodeDecodeError as err:
        raise errors.DataLossError(f"checkpoint state file is not text: {err} (in {filename})", filename) from None
    state = protos.CheckpointState()
    try:
        text_format.Merge(text, state)
    except text_format.ParseError as err:
        raise errors.DataLossError(f"unparsable checkpoint state file: {err} (in {filename})", filename) from None
    if not state.model_checkpoint_path:
        raise errors.InvalidCheckpointStateError(
            f"invalid checkpoint state: the state file names no checkpoint (no model_checkpoint_path) (in {filename})",
            filename,
        )
    state.model_checkpoint_path = _resolve_in_dir(state.model_checkpoint_path, checkpoint_dir, stores)
    resolved = [_resolve_in_dir(p, checkpoint_dir, stores) for p in state.all_model_checkpoint_paths]
    del state.all_model_checkpoint_paths[:]
    state.all_model_checkpoint_paths.extend(resolved)
    return state


def checkpoint_exists(prefix: str, *, storage_options: Optional[Mapping[str, str]] = None) -> bool:
    """Whether a checkpoint exists at ``prefix``: a V2 index, a V1 file, or the shards of a V1 checkpoint
    (files of other kinds, such as a ``.meta``, are not checkpoints).

    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores")."""
    try:
        _paths.stores(storage_options).locate_checkpoint(os.fspath(prefix))
    except errors.NotACheckpointError:
        return False
    return True


def get_checkpoint_mtimes(
    checkpoint_prefixes: Sequence[str], *, storage_options: Optional[Mapping[str, str]] = None
) -> List[float]:
    """When each checkpoint of ``checkpoint_prefixes`` was written, in seconds since the epoch, as
    ``tf.compat.v1.train.get_checkpoint_mtimes``: the modification time of a V2 checkpoint's ``.index`` file or
    of a V1 checkpoint's (first) file. A prefix where no checkpoint is is left out, as TensorFlow leaves it out
    (so the list may be shorter). TensorFlow's local file system gives whole seconds; this keeps the fraction.

    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores").

    >>> import fastckpt
    >>> len(fastckpt.get_checkpoint_mtimes([fastckpt.examples.model_path(), "no/such/model"]))
    1
    """
    stores = _paths.stores(storage_options)
    mtimes = (stores.checkpoint_modified_time(os.fspath(prefix)) for prefix in checkpoint_prefixes)
    return [mtime for mtime in mtimes if mtime is not None]


def remove_checkpoint(
    checkpoint_prefix: str,
    checkpoint_format_version: int = 2,
    meta_graph_suffix: str = "meta",
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> None:
    """Deletes the checkpoint at ``checkpoint_prefix`` and its meta graph file (``<prefix>.meta``), as
    ``tf.compat.v1.train.remove_checkpoint``: its index first, then its data files (a V1 checkpoint: its file,
    or the shards its ``-?????-of-NNNNN`` pattern names). What is not there is no error.

    ``checkpoint_format_version`` (``SaverDef.V2``, 2, or ``V1``, 1) is TensorFlow's argument, taken for its
    signature: there it says which files to look for, and with the wrong one TensorFlow leaves the checkpoint;
    here the core finds the files of the checkpoint at the prefix, whichever its format. ``storage_options``:
    configuration of object stores (object_store's keys such as ``aws_endpoint``, ``aws_region``; see README
    "Object stores").

    >>> import numpy as np, tempfile, os, fastckpt
    >>> prefix = fastckpt.Saver().save({"v": np.ones(2)}, os.path.join(tempfile.mkdtemp(), "model.ckpt"))
    >>> fastckpt.remove_checkpoint(prefix)
    >>> fastckpt.checkpoint_exists(prefix), os.path.exists(prefix + ".meta")
    (False, False)
    """
    delete_checkpoint_files(os.fspath(checkpoint_prefix), meta_graph_suffix, _paths.stores(storage_options))


def delete_checkpoint_files(
    prefix: str, meta_graph_suffix: str, stores: "_fastckpt.Stores", listing: Optional[List[str]] = None
) -> None:
    """Deletes the files of the checkpoint ``prefix`` (the core names them, and deletes the index first: a
    deletion cut short leaves no checkpoint half there) and its meta graph file; ``listing``, the names in its
    directory where the caller has listed it already (one listing per save, in object stores)."""
    stores.delete_checkpoint(prefix, listing)
    stores.delete_file(meta_graph_filename(prefix, meta_graph_suffix))


def latest_checkpoint(
    checkpoint_dir: str,
    latest_filename: Optional[str] = None,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> Optional[str]:
    """The prefix of the newest checkpoint named by the directory's state file, or None.

    Unlike TensorFlow, absolute paths written on another machine or before the directory was moved still
    resolve, against the directory the state file is in. ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.InvalidCheckpointStateError: the state file names no checkpoint (as TensorFlow raises
            ValueError).
    """
    stores = _paths.stores(storage_options)
    state = get_checkpoint_state(checkpoint_dir, latest_filename, storage_options=stores)
    if state is not None and checkpoint_exists(state.model_checkpoint_path, storage_options=stores):
        return state.model_checkpoint_path
    return None


def meta_graph_filename(checkpoint_filename: str, meta_graph_suffix: str = "meta") -> str:
    """The ``.meta`` file of a checkpoint: ``model.ckpt-100`` → ``model.ckpt-100.meta`` (a V1 shard
    pattern's ``-?????-of-NNNNN`` is dropped)."""
    return _fastckpt.meta_graph_path(os.fspath(checkpoint_filename), meta_graph_suffix)


def atomic_write(
    filename: str,
    data: Union[str, bytes],
    durable: bool = False,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> None:
    """Replaces ``filename`` with ``data`` so that readers see the old or the new contents, never a mix, as
    every file fastckpt writes is replaced (missing directories are created; ``durable`` fsyncs)."""
    _paths.stores(storage_options).write_file(
        filename, data.encode("utf-8") if isinstance(data, str) else data, durable
    )


def update_checkpoint_state(
    save_dir: str,
    model_checkpoint_path: str,
    all_model_checkpoint_paths: Optional[Sequence[str]] = None,
    latest_filename: Optional[str] = None,
    all_model_checkpoint_timestamps: Optional[Sequence[float]] = None,
    last_preserved_timestamp: Optional[float] = None,
    save_relative_paths: bool = False,
    durable: bool = False,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> None:
    """Writes the directory's ``checkpoint`` state file, atomically (a reader never sees it torn).

    As in TensorFlow, ``all_model_checkpoint_paths`` (oldest first) gets ``model_checkpoint_path``
    appended if it is not its last element, and with ``save_relative_paths`` absolute paths are written
    relative to ``save_dir``. ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores").
    """
    filename, contents = state_file_contents(
        save_dir,
        model_checkpoint_path,
        all_model_checkpoint_paths,
        latest_filename,
        all_model_checkpoint_timestamps,
        last_preserved_timestamp,
        save_relative_paths,
    )
    atomic_write(filename, contents, durable, storage_options=_paths.stores(storage_options))


def state_file_contents(
    save_dir: str,
    model_checkpoint_path: str,
    all_model_checkpoint_paths: Optional[Sequence[str]],
    latest_filename: Optional[str],
    all_model_checkpoint_timestamps: Optional[Sequence[float]],
    last_preserved_timestamp: Optional[float],
    save_relative_paths: bool,
    v2_checkpoint: bool = False,
) -> Tuple[str, str]:
    """The path and the text of the state file ``update_checkpoint_state`` writes. A checkpoint named like the
    state file collides with it, unless ``v2_checkpoint`` says it is a V2 one, whose files are ``.index`` and
    ``.data-*`` (a sharded Saver's save to ``train/checkpoint``, which TensorFlow allows)."""
    from google.protobuf import text_format

    save_dir = os.fspath(save_dir)
    paths = list(all_model_checkpoint_paths or [])
    if not paths or paths[-1] != model_checkpoint_path:
        paths.append(model_checkpoint_path)
    timestamps = list(all_model_checkpoint_timestamps or [])
    if timestamps and len(timestamps) != len(paths):
        raise errors.InvalidArgumentError(
            f"{len(timestamps)} checkpoint timestamps for {len(paths)} checkpoint paths", save_dir
        )

    def written(path: str) -> str:
        if save_relative_paths and _paths.is_absolute(path):
            return _paths.relative(path, save_dir)
        if not _paths.is_absolute(save_dir) and not _paths.is_absolute(path):
            return _paths.relative(path, save_dir)
        return path

    state = protos.CheckpointState(
        model_checkpoint_path=written(model_checkpoint_path),
        all_model_checkpoint_paths=[written(p) for p in paths],
        all_model_checkpoint_timestamps=timestamps,
        last_preserved_timestamp=last_preserved_timestamp or 0.0,
    )
    filename = os.path.join(save_dir, latest_filename or _STATE_FILENAME)
    named = os.path.join(save_dir, state.model_checkpoint_path)
    if not v2_checkpoint and _paths.normalized(filename) == _paths.normalized(named):
        raise errors.InvalidArgumentError(
            f"checkpoint path {model_checkpoint_path} collides with the state file {filename}", filename
        )
    return filename, text_format.MessageToString(state)
