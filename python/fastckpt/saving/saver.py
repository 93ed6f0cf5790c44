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
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import _paths, errors, protos
from ..distributed import Coordinator, coordinator
from ..dtypes import as_dtype
from ..graphs.meta_graph import export_meta_graph
from ..graphs.saver_graph import saver_meta_graph
from ..reading.checkpoint_state import meta_graph_filename, state_file_contents
from ..reading.reader import CheckpointReader
from .background import BackgroundSaves
from .group import commit_in_rank_0, merge_parts, variables_of_the_group, write_parts
from .restore import restore_into
from .retention import Retention, tidy_directory
from .save_paths import SaveRequest, no_parent_directory, save_request
from .state_files import StateFiles
from .var_list import VarList, check_var_list, is_variable, name_map, tensors_to_save
from .writer import CheckpointWriter, Slice, dtype_and_shape

__all__ = ["Saver"]


class Saver:
    """Saves and restores named values as TensorFlow checkpoints, managing a directory of them as
    ``tf.compat.v1.train.Saver`` does.

    Args:
        var_list: what to save and restore: None (every value given to ``save``, every tensor of the
            checkpoint on ``restore``), a list of names, or a dict ``{checkpoint_name: local_name}`` that
            renames, exactly as TensorFlow's dict does. In the dict, an array (numpy or torch, or a
            ``fastckpt.Slice`` of one) in place of a local name is the variable itself, as in TensorFlow's
            dict of variables: ``save`` saves it, ``restore`` writes the checkpoint's value into it in place. As
            TensorFlow's Saver, this refuses a name twice in a list and one variable under two names
            (``InvalidArgumentError``, a ``ValueError``), and arrays that cannot be written in place.
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
        check_var_list(var_list)
        if var_list is not None and not callable(var_list) and len(var_list) == 0 and not allow_empty:
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
        # {name: (dtype, shape)} of the last save: the variables of its meta graph.
        self._saved_variables: Optional[Dict[str, Tuple[Any, Sequence[int]]]] = None

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
        values: Optional[Mapping[str, Any]],
        save_path: str,
        global_step: Optional[int] = None,
        latest_filename: Optional[str] = None,
        meta_graph_suffix: str = "meta",
        write_meta_graph: bool = True,
        write_state: bool = True,
    ) -> Optional[str]:
        """Saves ``values`` (``{local_name: array-like}``, or a ``fastckpt.Slice`` for one part of a partitioned
        tensor) as a checkpoint; returns its prefix. The arrays of the var_list are saved from themselves
        (``values`` may then be None).

        Missing directories of ``save_path`` are created (TensorFlow creates one level, and none for a sharded
        save). With ``global_step``, the prefix is
        ``save_path-<step>``. The ``checkpoint`` state file of the
        directory is replaced atomically, and checkpoints beyond ``max_to_keep`` are deleted. If anything
        fails, the previous checkpoints and the state file are left as they were. A save in the background
        (``save_async``) finishes first, and if it failed, its error is raised here and nothing is saved.

        Raises:
            fastckpt.errors.InvalidArgumentError: nothing to save ("No variables to save"); ``save_path`` named
                like the state file without ``global_step`` or ``sharded=True`` ("collides with"); a file where
                the directory of ``save_path`` should be ("Parent directory of ... doesn't exist, can't save.").
                Each a ``ValueError``, as TensorFlow raises.
            fastckpt.errors.NotFoundError: a name of the var_list has no value in ``values``.
        """
        self.wait()
        request = save_request(save_path, global_step, latest_filename, self._pad_step_number, self._sharded)
        tensors = tensors_to_save(self._var_list, values)
        return self._write(tensors, request, meta_graph_suffix, write_meta_graph, write_state)

    def save_async(
        self,
        values: Optional[Mapping[str, Any]],
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
            request = save_request(save_path, global_step, latest_filename, self._pad_step_number, self._sharded)
            tensors = self._background.snapshot(tensors_to_save(self._var_list, values))
            save = functools.partial(self._write, tensors, request, meta_graph_suffix, write_meta_graph, write_state)
            return self._background.submit(save, request.checkpoint_file)

    def wait(self) -> None:
        """Blocks until the save in flight (``save_async``) has finished; raises its error if it failed (once:
        the error is then cleared)."""
        self._background.wait()

    def _write(
        self,
        tensors: Dict[str, Any],
        request: SaveRequest,
        meta_graph_suffix: str,
        write_meta_graph: bool,
        write_state: bool,
    ) -> Optional[str]:
        try:
            return self._write_checkpoint(tensors, request, meta_graph_suffix, write_meta_graph, write_state)
        except errors.OpError as error:
            no_directory = no_parent_directory(request.save_path, self._stores)
            if no_directory is None:
                raise
            raise no_directory from error

    def _write_checkpoint(
        self,
        tensors: Dict[str, Any],
        request: SaveRequest,
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
        self._saved_variables = {name: dtype_and_shape(value) for name, value in tensors.items()}
        if write_meta_graph:
            self._write_meta_graph(request, meta_graph_suffix)
        return request.checkpoint_file

    def _prepare_directory(self, request: SaveRequest, meta_graph_suffix: str, write_state: bool) -> List[str]:
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

    def _commit_state(self, request: SaveRequest, meta_graph_suffix: str, listing: List[str]) -> None:
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
                v2_checkpoint=True,
            )
        )
        self._retention.delete_due(save_dir, meta_graph_suffix, listing)

    def _write_meta_graph(self, request: SaveRequest, meta_graph_suffix: str) -> None:
        """Writes the meta graph of the variables just saved beside the checkpoint."""
        assert self._saved_variables is not None
        export_meta_graph(
            meta_graph_filename(request.checkpoint_file, meta_graph_suffix),
            saver_meta_graph(self._saved_variables, self.saver_def),
            storage_options=self._stores,
        )

    def export_meta_graph(
        self,
        filename: "Optional[str | os.PathLike[str]]" = None,
        collection_list: Optional[Sequence[str]] = None,
        as_text: bool = False,
        export_scope: Optional[str] = None,
        clear_devices: bool = False,
        clear_extraneous_savers: bool = False,
        strip_default_attrs: bool = False,
        save_debug_info: bool = False,
    ) -> "protos.MetaGraphDef":
        """Writes the MetaGraphDef of this saver's variables to ``filename`` (binary, or text with ``as_text``;
        nothing written when None) and returns it, as ``tf.compat.v1.train.Saver.export_meta_graph`` does:
        the graph TensorFlow's Saver holds for them, which ``tf.compat.v1.train.import_meta_graph`` imports.
        The variables are those of the last save (whose graph is the ``.meta`` it wrote beside its checkpoint),
        or before any save those of a var_list of arrays; a Saver of ``fastckpt.import_meta_graph`` exports the
        graph it was imported from, as TensorFlow's exports the graph it was imported into. The other options
        are ``fastckpt.export_meta_graph``'s.

        >>> import numpy as np, tempfile, os, fastckpt
        >>> saver = fastckpt.Saver({"w": np.zeros([2, 3], np.float32)})
        >>> meta = saver.export_meta_graph(os.path.join(tempfile.mkdtemp(), "model.meta"), as_text=True)
        >>> [(node.name, node.op) for node in meta.graph_def.node][:2]
        [('w/Initializer/zeros', 'Const'), ('w', 'VariableV2')]

        Raises:
            fastckpt.errors.InvalidArgumentError: the variables are unknown (no save yet, and a var_list of
                names).
            fastckpt.errors.UnimplementedError: ``strip_default_attrs`` or ``save_debug_info``, which need
                TensorFlow's op registry and the Python stack traces of a graph's construction.
        """
        if strip_default_attrs or save_debug_info:
            option = "strip_default_attrs" if strip_default_attrs else "save_debug_info"
            raise errors.UnimplementedError(
                f"Saver.export_meta_graph({option}=True): fastckpt builds its graphs without TensorFlow's op "
                "registry and without Python stack traces, which this needs; export without it (TensorFlow "
                "imports the graph all the same)",
                None if filename is None else os.fspath(filename),
            )
        return export_meta_graph(
            filename,
            self._meta_graph(),
            as_text,
            collection_list,
            export_scope,
            clear_devices,
            clear_extraneous_savers,
            storage_options=self._stores,
        )

    def _meta_graph(self) -> "protos.MetaGraphDef":
        """The MetaGraphDef this saver exports (see ``export_meta_graph``)."""
        if self.meta_graph_def is not None:
            return self.meta_graph_def
        variables = self._saved_variables
        if variables is None and isinstance(self._var_list, Mapping) and all(map(is_variable, self._var_list.values())):
            variables = {name: dtype_and_shape(value) for name, value in tensors_to_save(self._var_list, None).items()}
        if not variables:
            raise errors.InvalidArgumentError(
                "the meta graph needs the variables' dtypes and shapes, and this Saver knows none: export it after "
                "a save, or make it with a var_list of arrays ({checkpoint_name: array})"
            )
        return saver_meta_graph(variables, self.saver_def)

    def _write_together(
        self,
        tensors: Dict[str, Any],
        request: SaveRequest,
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
                # Before anyone writes: the gather of write_parts is the barrier that keeps the others waiting.
                listing = self._prepare_directory(request, meta_graph_suffix, write_state)
            outcomes = write_parts(group, tensors, checkpoint_file, self._write_files, self._stores)
            variables = variables_of_the_group(outcomes, checkpoint_file)
            if not variables:
                if self._allow_empty:
                    return None
                raise errors.InvalidArgumentError("No variables to save", request.save_path)
            self._saved_variables = {name: (as_dtype(dtype), shape) for name, (dtype, shape, _) in variables.items()}

            def commit() -> List[Tuple[str, float]]:
                merge_parts(group, outcomes, checkpoint_file, self._durable, self._stores)
                if write_state:
                    self._commit_state(request, meta_graph_suffix, listing)
                if write_meta_graph:
                    self._write_meta_graph(request, meta_graph_suffix)
                return self._retention.kept

            self._retention.kept = list(commit_in_rank_0(group, commit, checkpoint_file))
        return checkpoint_file

    def restore(self, save_path: str, into: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Reads the checkpoint at ``save_path`` (prefix, V1 file or directory): returns
        ``{local_name: numpy array}`` for the var_list, or with ``into``, copies each value into the
        existing array ``into[local_name]`` (numpy or torch; same shape and dtype, or with ``reshape=True`` the
        same number of elements) and returns ``into``; a ``fastckpt.Slice`` there receives only its part of
        the tensor (read alone, as ``get_slice`` reads it). Without a var_list, ``into`` alone says what to restore.
        The arrays of the var_list receive their values in place, as TensorFlow's variables do (returned under
        their checkpoint names). Every target is checked before anything is written into any of them.

        >>> import numpy as np, tempfile, os, fastckpt
        >>> prefix = fastckpt.Saver().save({"v1": [1.0]}, os.path.join(tempfile.mkdtemp(), "model.ckpt"))
        >>> v1 = np.zeros([1], np.float32)
        >>> _ = fastckpt.Saver({"v1": v1}).restore(prefix)
        >>> v1
        array([1.], dtype=float32)

        Raises:
            fastckpt.errors.NotACheckpointError: nothing at ``save_path`` is a checkpoint ("The passed
                save_path is not a valid checkpoint", a ``ValueError`` as in TensorFlow).
            fastckpt.errors.NotFoundError: a tensor of the var_list is not in the checkpoint.
            fastckpt.errors.InvalidArgumentError: a target has another shape ("Assign requires shapes of both
                tensors to match", as TensorFlow says) or dtype, or cannot be written in place.
        """
        if self._allow_empty and self._var_list is not None and not callable(self._var_list) and not self._var_list:
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
        variables = {name: local for name, local in names.items() if is_variable(local)}
        by_name = {name: local for name, local in names.items() if not is_variable(local)}
        if into is None:
            # Read before anything is written into the var_list's arrays: a missing tensor leaves them as they were.
            values = reader.get_tensors(by_name)
            restore_into(reader, variables, self._reshape)
            return {**{local: values[name] for name, local in by_name.items()}, **variables}
        for name, local in by_name.items():
            if local not in into:
                raise errors.NotFoundError(f"no target in `into` for {local!r}", reader.path, name)
        restore_into(reader, {**variables, **{name: into[local] for name, local in by_name.items()}}, self._reshape)
        return {**into, **variables}
