"""Saving and restoring like ``tf.compat.v1.train.Saver``, with numpy (torch, jax) values instead of a graph.

>>> import numpy as np, tempfile, os, fastckpt
>>> train_dir = tempfile.mkdtemp()
>>> saver = fastckpt.Saver(max_to_keep=2)
>>> for step in (1000, 2000, 3000):
...     path = saver.save({"v": np.full([2], step, np.float32)}, os.path.join(train_dir, "model.ckpt"), global_step=step)
>>> [os.path.basename(p) for p in saver.last_checkpoints]
['model.ckpt-2000', 'model.ckpt-3000']
>>> saver.restore(fastckpt.latest_checkpoint(train_dir))["v"]
array([3000., 3000.], dtype=float32)
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import threading
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from .. import _paths, errors, protos
from ..arrays import to_numpy
from ..distributed import Coordinator, coordinator
from ..dtypes import as_dtype
from ..graphs.meta_graph import export_meta_graph
from ..graphs.saver_graph import saver_meta_graph
from ..reading.checkpoint_state import meta_graph_filename, state_file_contents
from ..reading.reader import CheckpointReader
from .background import BackgroundSaves
from .group import (
    check_one_destination,
    part_directory,
    part_prefix,
    raise_failures,
    variable_of,
    variables_of_the_group,
)
from .restore import restore_into
from .retention import Retention, delete_tree, tidy_directory
from .state_files import StateFiles
from .var_list import VarList, name_map
from .writer import CheckpointWriter, Slice, dtype_and_shape, merge_checkpoints

__all__ = ["Saver"]


class Saver:
    """Saves and restores named values as TensorFlow checkpoints, managing a directory of them as
    ``tf.compat.v1.train.Saver`` does.

    Args:
        var_list: what to save and restore: None (every value given to ``save``, every tensor of the
            checkpoint on ``restore``), a list of names, or a dict ``{checkpoint_name: local_name}`` that
            renames, exactly as TensorFlow's dict does.
        max_to_keep: how many recent checkpoints to keep; older ones are deleted (None or 0 keeps all).
        keep_checkpoint_every_n_hours: additionally keep one checkpoint every N hours of saving.
        sharded: write several data files in parallel (the layout of TensorFlow's sharded saves).
        num_shards: how many data files a sharded save writes (default: one per CPU, at most one per tensor).
        pad_step_number: name checkpoints ``model.ckpt-00001000`` rather than ``model.ckpt-1000``.
        save_relative_paths: write paths relative to the directory into the ``checkpoint`` state file.
        durable: fsync checkpoint files, state file and directory.
        reshape: let ``restore(into=...)`` fill a target of another shape with the same number of elements,
            as TensorFlow's ``reshape=True`` does.
        allow_empty: with nothing to save, ``save`` writes nothing and returns None, as TensorFlow's does;
            without it, saving nothing is an ``InvalidArgumentError`` ("No variables to save").
        storage_options: configuration of object stores (object_store's keys such as ``aws_endpoint``,
            ``aws_region``; see README "Object stores"), for everything this saver reads, writes and deletes.
        process_group: save one checkpoint from many processes: a torch.distributed process group (or a
            ``fastckpt.distributed.Coordinator``). Every process calls ``save`` with its own values, whole
            tensors under names unique across the processes and parts of partitioned ones as
            ``fastckpt.Slice``; each writes its part in parallel, process 0 merges them, writes the state file
            and applies ``max_to_keep``, and every process gets the prefix (see ``fastckpt.distributed``).

    Unlike TensorFlow's Saver, a new Saver on a directory that already holds checkpoints takes its history
    from the state file, so ``max_to_keep`` holds across restarts of the training process.
    """

    def __init__(
        self,
        var_list: VarList = None,
        max_to_keep: Optional[int] = 5,
        keep_checkpoint_every_n_hours: float = 10000.0,
        sharded: bool = False,
        num_shards: Optional[int] = None,
        pad_step_number: bool = False,
        save_relative_paths: bool = False,
        durable: bool = False,
        reshape: bool = False,
        allow_empty: bool = False,
        *,
        storage_options: Optional[Mapping[str, str]] = None,
        process_group: Any = None,
    ):
        if var_list is not None and not isinstance(var_list, str) and len(var_list) == 0 and not allow_empty:
            raise errors.InvalidArgumentError("No variables to save")
        self._var_list = var_list
        self._reshape = reshape
        self._allow_empty = allow_empty
        self._sharded = sharded
        self._num_shards = num_shards
        self._pad_step_number = pad_step_number
        self._save_relative_paths = save_relative_paths
        self._durable = durable
        self._stores = _paths.stores(storage_options)
        self._retention = Retention(max_to_keep or 0, keep_checkpoint_every_n_hours, self._stores)
        self._coordinator: Optional[Coordinator] = None if process_group is None else coordinator(process_group)
        self._state_files = StateFiles(durable, self._stores)
        self._lock = threading.Lock()
        self._background = BackgroundSaves()
        # The MetaGraphDef this saver was imported from (import_meta_graph), if any.
        self.meta_graph_def = None

    @property
    def saver_def(self) -> "protos.SaverDef":
        """The SaverDef this saver writes into ``.meta`` files (tensor names as TensorFlow's Saver builds)."""
        return protos.SaverDef(
            filename_tensor_name="save/Const:0",
            save_tensor_name="save/control_dependency:0",
            restore_op_name="save/restore_all",
            max_to_keep=self._retention.max_to_keep,
            sharded=self._sharded,
            keep_checkpoint_every_n_hours=self._retention.keep_every_hours,
            version=protos.SaverDef.V2,
        )

    # History of the directory --------------------------------------------------------------------------

    @property
    def last_checkpoints(self) -> List[str]:
        """The checkpoints this saver keeps, oldest first."""
        return [path for path, _ in self._retention.kept]

    def set_last_checkpoints_with_time(self, last_checkpoints_with_time: List[Tuple[str, float]]) -> None:
        """Sets the kept checkpoints as ``[(prefix, timestamp)]``, oldest first."""
        self._retention.kept = list(last_checkpoints_with_time)

    def recover_last_checkpoints(self, checkpoint_paths: Sequence[str]) -> None:
        """Takes the checkpoints among ``checkpoint_paths`` that still exist as the kept ones, timestamped
        by their files' modification times (after a crash, for example)."""
        self._retention.recover(checkpoint_paths)

    # Saving and restoring --------------------------------------------------------------------------------

    def save(
        self,
        values: Mapping[str, Any],
        save_path: str,
        global_step: Optional[int] = None,
        latest_filename: Optional[str] = None,
        meta_graph_suffix: str = "meta",
        write_meta_graph: bool = True,
        write_state: bool = True,
    ) -> Optional[str]:
        """Saves ``values`` (``{local_name: array-like}``, or a ``fastckpt.Slice`` for one part of a partitioned
        tensor) as a checkpoint; returns its prefix.

        Missing directories of ``save_path`` are created. With ``global_step``, the prefix is
        ``save_path-<step>``. The ``checkpoint`` state file of the
        directory is replaced atomically, and checkpoints beyond ``max_to_keep`` are deleted. If anything
        fails, the previous checkpoints and the state file are left as they were. A save in the background
        (``save_async``) finishes first, and if it failed, its error is raised here and nothing is saved.
        """
        self.wait()
        request = self._request(save_path, global_step, latest_filename)
        tensors = self._tensors_to_save(values)
        return self._write(tensors, request, meta_graph_suffix, write_meta_graph, write_state)

    def save_async(
        self,
        values: Mapping[str, Any],
        save_path: str,
        global_step: Optional[int] = None,
        latest_filename: Optional[str] = None,
        meta_graph_suffix: str = "meta",
        write_meta_graph: bool = True,
        write_state: bool = True,
    ) -> "concurrent.futures.Future[Optional[str]]":
        """Saves as ``save`` does, in the background: returns as soon as ``values`` are captured, with a Future
        of the prefix ``save`` would return.

        The values are copied (on every core, with the GIL released) before this returns, so the caller may
        change its arrays at once; the copy is kept and reused by the next ``save_async`` of values of the
        same sizes, so that it copies into memory already touched. One save is in flight per Saver at a time:
        a second ``save_async`` (or ``save``) first waits for the one before. The state file names the new
        checkpoint, and old ones are deleted, only once it is complete (and durable with ``durable=True``). A
        failure is raised by the Future's ``result()``, and again by the next ``save``, ``save_async`` or
        ``wait()``. At interpreter exit the save in flight finishes; a process killed meanwhile keeps every
        checkpoint completed before.

        >>> import numpy as np, tempfile, os, fastckpt
        >>> saver, weights = fastckpt.Saver(), np.zeros(3, np.float32)
        >>> future = saver.save_async({"w": weights}, os.path.join(tempfile.mkdtemp(), "model.ckpt"), global_step=1)
        >>> weights += 1  # the save in flight has its own copy
        >>> path = future.result()
        >>> fastckpt.load_variable(path, "w")
        array([0., 0., 0.], dtype=float32)
        """
        with self._background.lock:
            self.wait()
            request = self._request(save_path, global_step, latest_filename)
            tensors = self._background.snapshot(self._tensors_to_save(values))
            save = functools.partial(self._write, tensors, request, meta_graph_suffix, write_meta_graph, write_state)
            return self._background.submit(save, request.checkpoint_file)

    def wait(self) -> None:
        """Blocks until the save in flight (``save_async``) has finished; raises its error if it failed (once:
        the error is then cleared)."""
        self._background.wait()

    def _request(self, save_path: str, global_step: Optional[int], latest_filename: Optional[str]) -> "_Request":
        """Where a save goes, checked before anything is written."""
        save_path = os.fspath(save_path)
        latest_filename = latest_filename or "checkpoint"
        if os.path.dirname(latest_filename):
            raise errors.InvalidArgumentError(f"latest_filename {latest_filename!r} must not contain a directory")
        if global_step is not None:
            step = int(global_step)
            checkpoint_file = f"{save_path}-{step:08d}" if self._pad_step_number else f"{save_path}-{step}"
        else:
            checkpoint_file = save_path
            if os.path.basename(save_path) == latest_filename:
                raise errors.InvalidArgumentError(
                    f"save_path {save_path!r} collides with the state file {latest_filename!r}", save_path
                )
        return _Request(save_path, checkpoint_file, latest_filename)

    def _write(
        self,
        tensors: Dict[str, Any],
        request: "_Request",
        meta_graph_suffix: str,
        write_meta_graph: bool,
        write_state: bool,
    ) -> Optional[str]:
        if self._coordinator is not None:
            return self._write_together(tensors, request, meta_graph_suffix, write_meta_graph, write_state)
        if not tensors:
            if self._allow_empty:
                return None
            raise errors.InvalidArgumentError("No variables to save", request.save_path)
        with self._lock:
            listing = self._prepare_directory(request, meta_graph_suffix, write_state)
            self._write_files(request.checkpoint_file, tensors)
            if write_state:
                self._commit_state(request, meta_graph_suffix, listing)
        if write_meta_graph:
            self._write_meta_graph(request, meta_graph_suffix, {n: dtype_and_shape(v) for n, v in tensors.items()})
        return request.checkpoint_file

    def _prepare_directory(self, request: "_Request", meta_graph_suffix: str, write_state: bool) -> List[str]:
        """Before a save writes: removes what killed saves left, and takes up the directory's history. Returns
        the names left in the directory, its one listing of this save."""
        save_dir = os.path.dirname(request.save_path) or "."
        base_name = os.path.basename(request.save_path)
        # The one listing of the directory this save makes.
        names = self._stores.list_directory(save_dir)
        names = tidy_directory(
            save_dir,
            names,
            base_name,
            request.latest_filename,
            request.checkpoint_file,
            meta_graph_suffix,
            self._stores,
        )
        if write_state and self._retention.max_to_keep:
            # The directory's history matters only to max_to_keep: without it, as in TensorFlow, the state
            # file names the newest checkpoint alone.
            state_file = os.path.join(save_dir, request.latest_filename)
            self._retention.take_up(
                save_dir,
                base_name,
                request.latest_filename,
                names,
                lambda: self._state_files.read(state_file, save_dir),
            )
        return names

    def _write_files(self, prefix: str, tensors: Dict[str, Any]) -> None:
        """Writes ``tensors`` (arrays and Slices) as the checkpoint ``prefix``."""
        whole = {name: value for name, value in tensors.items() if not isinstance(value, Slice)}
        num_shards = 1
        if self._sharded:
            num_shards = max(1, min(self._num_shards or os.cpu_count() or 1, len(tensors)))
        with CheckpointWriter(
            prefix, durable=self._durable, num_shards=num_shards, storage_options=self._stores
        ) as writer:
            writer.add_tensors({name: whole[name] for name in sorted(whole)})
            for name in sorted(set(tensors) - set(whole)):
                part = tensors[name]
                writer.add_slice(name, part.full_shape, part.spec, part.value)

    def _commit_state(self, request: "_Request", meta_graph_suffix: str, listing: List[str]) -> None:
        """Names the new (complete) checkpoint in the state file, then deletes those beyond ``max_to_keep``
        (their files found in ``listing``, the directory's names from before this save)."""
        save_dir = os.path.dirname(request.save_path) or "."
        self._retention.record(request.checkpoint_file)
        self._state_files.write(
            *state_file_contents(
                save_dir,
                request.checkpoint_file,
                self.last_checkpoints,
                request.latest_filename,
                [t for _, t in self._retention.kept],
                self._retention.last_preserved_timestamp,
                self._save_relative_paths,
            )
        )
        self._retention.delete_due(save_dir, meta_graph_suffix, listing)

    def _write_meta_graph(
        self, request: "_Request", meta_graph_suffix: str, variables: Mapping[str, Tuple[Any, Sequence[int]]]
    ) -> None:
        export_meta_graph(
            meta_graph_filename(request.checkpoint_file, meta_graph_suffix),
            saver_meta_graph(variables, self.saver_def),
            storage_options=self._stores,
        )

    def _write_together(
        self,
        tensors: Dict[str, Any],
        request: "_Request",
        meta_graph_suffix: str,
        write_meta_graph: bool,
        write_state: bool,
    ) -> Optional[str]:
        """A save by every process of the group (see ``fastckpt.distributed``): each writes its part, process 0
        merges them, and all return the prefix or raise the same failure."""
        group = self._coordinator
        assert group is not None
        checkpoint_file = request.checkpoint_file
        with self._lock:
            listing: List[str] = []
            if group.rank == 0:
                # Before anyone writes: the gather below is the barrier that keeps the others waiting.
                listing = self._prepare_directory(request, meta_graph_suffix, write_state)
            check_one_destination(self._gather(checkpoint_file, request), checkpoint_file)
            outcome, own_error = self._write_own_part(tensors, checkpoint_file)
            outcomes = self._gather(outcome, request)
            if any(isinstance(o, str) for o in outcomes) and group.rank == 0:
                delete_tree(part_directory(checkpoint_file), self._stores)
            raise_failures(outcomes, own_error, checkpoint_file)
            variables = variables_of_the_group(outcomes, checkpoint_file)
            if not variables:
                if self._allow_empty:
                    return None
                raise errors.InvalidArgumentError("No variables to save", request.save_path)
            committed: Any = None
            if group.rank == 0:
                try:
                    self._merge_parts(
                        outcomes, variables, request, listing, meta_graph_suffix, write_meta_graph, write_state
                    )
                    committed = self._retention.kept
                except Exception as error:
                    own_error, committed = error, f"{type(error).__name__}: {error}"
            committed = self._gather(committed, request)[0]
            if isinstance(committed, str):
                if own_error is not None:
                    raise own_error
                raise errors.AbortedError(
                    f"the save of {checkpoint_file} failed in rank 0, which merges the parts: {committed}",
                    checkpoint_file,
                )
            if group.rank != 0:
                self._retention.kept = list(committed)
        return checkpoint_file

    def _write_own_part(self, tensors: Dict[str, Any], checkpoint_file: str) -> Tuple[Any, Optional[BaseException]]:
        """Writes this process's part of a group save: returns what it tells the others (what it saved, or its
        failure as text) and its own error, if any."""
        group = self._coordinator
        assert group is not None
        try:
            if tensors:
                self._write_files(part_prefix(checkpoint_file, group.rank, group.world_size), tensors)
            return {name: variable_of(value) for name, value in tensors.items()}, None
        except Exception as error:
            return f"{type(error).__name__}: {error}", error

    def _merge_parts(
        self,
        outcomes: List[Any],
        variables: Dict[str, Any],
        request: "_Request",
        listing: List[str],
        meta_graph_suffix: str,
        write_meta_graph: bool,
        write_state: bool,
    ) -> None:
        """In process 0: merges the parts of a group save into the checkpoint, then commits it as a save does."""
        group = self._coordinator
        assert group is not None
        checkpoint_file = request.checkpoint_file
        parts = [part_prefix(checkpoint_file, rank, group.world_size) for rank, o in enumerate(outcomes) if o]
        merge_checkpoints(parts, checkpoint_file, durable=self._durable, storage_options=self._stores)
        delete_tree(part_directory(checkpoint_file), self._stores)
        if write_state:
            self._commit_state(request, meta_graph_suffix, listing)
        if write_meta_graph:
            self._write_meta_graph(
                request,
                meta_graph_suffix,
                {name: (as_dtype(dtype), shape) for name, (dtype, shape, _) in variables.items()},
            )

    def _gather(self, value: Any, request: "_Request") -> List[Any]:
        """Every process's ``value``; a failure of the group (a process died) aborts the save."""
        assert self._coordinator is not None
        try:
            return self._coordinator.all_gather(value)
        except Exception as error:
            raise errors.AbortedError(
                f"the save of {request.checkpoint_file} was abandoned: the processes saving it together failed "
                f"to exchange their outcomes ({type(error).__name__}: {error})",
                request.checkpoint_file,
            ) from error

    def _tensors_to_save(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        """``{checkpoint_name: numpy array or Slice of one}`` of the var_list."""
        names = name_map(self._var_list, list(values))
        tensors: Dict[str, Any] = {}
        for checkpoint_name, local_name in names.items():
            if local_name not in values:
                raise errors.NotFoundError(f"no value given for {local_name!r}", None, local_name)
            value = values[local_name]
            if isinstance(value, Slice):
                value.extents  # noqa: B018 - checks the part's dimensions before anything is written
                tensors[checkpoint_name] = value._replace(value=to_numpy(value.value))
            else:
                tensors[checkpoint_name] = to_numpy(value)
        return tensors

    def restore(self, save_path: str, into: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Reads the checkpoint at ``save_path`` (prefix, V1 file or directory): returns
        ``{local_name: numpy array}`` for the var_list, or with ``into``, copies each value into the
        existing array ``into[local_name]`` (numpy or torch; same shape and dtype, or with ``reshape=True`` the
        same number of elements) and returns ``into``; a ``fastckpt.Slice`` there receives only its part of
        the tensor (read alone, as ``get_slice`` reads it). Without a var_list, ``into`` alone says what to restore.

        Raises:
            fastckpt.errors.NotACheckpointError: nothing at ``save_path`` is a checkpoint ("The passed
                save_path is not a valid checkpoint", a ``ValueError`` as in TensorFlow).
            fastckpt.errors.NotFoundError: a tensor of the var_list is not in the checkpoint.
            fastckpt.errors.InvalidArgumentError: a target of ``into`` has another shape or dtype.
        """
        if self._allow_empty and self._var_list is not None and len(self._var_list) == 0:
            return {} if into is None else dict(into)
        try:
            reader = CheckpointReader(save_path, storage_options=self._stores)
        except errors.NotACheckpointError as error:
            message = f"The passed save_path is not a valid checkpoint: {os.fspath(save_path)} ({error.message})"
            raise errors.NotACheckpointError(message, error.filename) from None
        if into is not None and self._var_list is None:
            names = {local: local for local in into}
        else:
            names = name_map(self._var_list, list(reader.get_variable_to_shape_map()))
        if into is None:
            values = reader.get_tensors(names)
            return {local: values[name] for name, local in names.items()}
        return restore_into(reader, names, into, self._reshape)


class _Request(NamedTuple):
    """Where one save goes: the ``save_path`` given, the checkpoint's prefix, the state file's name."""

    save_path: str
    checkpoint_file: str
    latest_filename: str
