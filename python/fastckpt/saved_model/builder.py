"""Building a TF1-style SavedModel that TensorFlow's loader loads, from values instead of a session."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any, Dict, Optional, Sequence

from .. import _fastckpt, _paths, errors, protos
from ..arrays import to_numpy
from ..dtypes import as_dtype
from ..graphs.op_defs import stripped_op_list
from ..graphs.saver_graph import saver_meta_graph
from ..graphs.tensor_protos import make_tensor_proto
from ..reading.checkpoint_state import atomic_write
from ..reading.directories import SAVED_MODEL_FILENAME_PB, SAVED_MODEL_FILENAME_PBTXT, saved_model_variables
from ..saving.saver import Saver
from ..saving.writer import CheckpointWriter
from .constants import (
    ASSET_FILEPATHS,
    ASSETS_DIRECTORY,
    ASSETS_KEY,
    INIT_OP_SIGNATURE_KEY,
    MAIN_OP_KEY,
    SAVED_MODEL_SCHEMA_VERSION,
    TRAIN_OP_SIGNATURE_KEY,
)

__all__ = ["Builder"]


class Builder:
    """Builds a TF1-style SavedModel that ``tf.compat.v1.saved_model.loader.load`` loads, as
    ``tf.compat.v1.saved_model.Builder`` builds one, from values instead of a session.

    Each meta graph holds the variables (as a Saver's ``.meta`` holds them: ref variables with their
    ``/read`` snapshots and ``/Assign`` initializers, in the ``variables`` and ``trainable_variables``
    collections) and the save and restore operations the loader runs on ``variables/variables``; with, as
    asked, signatures, asset files and a main op.

    >>> import os, tempfile, numpy as np
    >>> from fastckpt.saved_model import build_signature_def, build_tensor_info, signature_constants, tag_constants
    >>> export_dir = os.path.join(tempfile.mkdtemp(), "model")
    >>> signature = build_signature_def(outputs={"w": build_tensor_info("w/read:0", "float32", [2])},
    ...                                 method_name=signature_constants.PREDICT_METHOD_NAME)
    >>> builder = Builder(export_dir)
    >>> builder.add_meta_graph_and_variables({"w": np.ones(2, np.float32)}, [tag_constants.SERVING],
    ...                                      {signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature})
    >>> os.path.basename(builder.save())
    'saved_model.pb'

    ``export_dir`` may be the URL of an object store; ``storage_options`` configures object stores
    (object_store's keys such as ``aws_endpoint``, ``aws_region``; see README "Object stores") for everything
    the builder reads and writes: the variables, ``saved_model.pb``, and the asset files (read and copied).

    Raises:
        fastckpt.errors.BuilderMisuseError: ``export_dir`` exists and is not empty (an ``AssertionError``, as
            TensorFlow raises).
    """

    def __init__(self, export_dir: "str | os.PathLike[str]", *, storage_options: Optional[Mapping[str, str]] = None):
        self.export_dir = os.fspath(export_dir)
        self._stores = _paths.stores(storage_options)
        options = self._stores
        if options.file_kind(self.export_dir) == "file" or options.list_directory(self.export_dir):
            raise errors.BuilderMisuseError(
                f"Export directory {self.export_dir} already exists, and isn't empty. Please choose a different "
                "export directory, or delete all the contents of the specified directory.",
                self.export_dir,
            )
        self._saved_model = protos.SavedModel(saved_model_schema_version=SAVED_MODEL_SCHEMA_VERSION)
        self._variables: Optional[Dict[str, Any]] = None
        # {file name in assets/: the file it was copied from}, over all meta graphs.
        self._asset_files: Dict[str, str] = {}

    def add_meta_graph_and_variables(
        self,
        values: Mapping,
        tags: Sequence[str],
        signature_def_map: Optional[Mapping[str, "protos.SignatureDef"]] = None,
        assets_collection=None,
        legacy_init_op=None,
        clear_devices: bool = False,
        main_op=None,
    ) -> None:
        """Writes ``values`` (``{name: array-like}``) as the SavedModel's variables, and adds the first meta
        graph, tagged ``tags`` (``[SERVING]``, ``["serve", "gpu"]``), as TensorFlow's builder does.

        Args:
            values: the variables, ``{name: numpy/torch/jax array, number, list or string}``.
            tags: the meta graph's tag set.
            signature_def_map: ``{key: SignatureDef}`` (``build_signature_def``); their tensors must be tensors
                of the graph, such as ``"w/read:0"``.
            assets_collection: asset files, copied into ``assets/``: a list of paths, or ``{node name: path}``.
                Each becomes a string ``Const`` holding its path (named ``asset_path``, ``asset_path_1``, ...
                for a list), listed in the ``asset_filepaths`` collection, and an AssetFileDef (in the
                ``saved_model_assets`` collection and in ``asset_file_def``): the loader feeds the asset's path
                in the SavedModel to that tensor when it runs the main op. As TensorFlow's builder stores
                them: in one meta graph, files of the same name and other contents are stored as ``name_1``,
                ``name_2``, ...; a name is stored once, by the first meta graph that has it, and a later meta
                graph's file of that name is recorded as that file (with a warning when the contents differ).
            legacy_init_op: what ``main_op`` was called before TensorFlow 1.4; ``main_op`` wins.
            clear_devices: empty the devices of the graph's nodes (those of a main op NodeDef).
            main_op: the operation the loader runs after restoring the variables, recorded in the
                ``saved_model_main_op`` collection: the name of a node of the graph (``"w/Assign"``), or a
                NodeDef added to the graph (``build_main_op()`` makes a NoOp).

        Raises:
            fastckpt.errors.BuilderMisuseError: variables added already, a TensorInfo of a signature without
                a name or a dtype (an ``AssertionError``, as TensorFlow raises).
            fastckpt.errors.InvalidArgumentError: a signature or main op that does not fit the graph.
            fastckpt.errors.NotFoundError: an asset file does not exist.
        """
        if self._variables is not None:
            raise errors.BuilderMisuseError(
                "Graph state including variables and assets has already been saved. Please invoke "
                f"`add_meta_graph()` instead (export directory {self.export_dir}).",
                self.export_dir,
            )
        variables = {name: to_numpy(value) for name, value in values.items()}
        meta, assets = self._meta_graph(
            variables,
            tags,
            signature_def_map,
            assets_collection,
            legacy_init_op if main_op is None else main_op,
            clear_devices,
        )
        prefix = saved_model_variables(self.export_dir)
        with CheckpointWriter(prefix, storage_options=self._stores) as writer:
            writer.add_tensors({name: variables[name] for name in sorted(variables)})
        self._variables = variables
        self._add(meta, assets)

    def add_meta_graph(
        self,
        tags: Sequence[str],
        signature_def_map: Optional[Mapping[str, "protos.SignatureDef"]] = None,
        assets_collection=None,
        legacy_init_op=None,
        clear_devices: bool = False,
        main_op=None,
    ) -> None:
        """Adds another meta graph, tagged ``tags``, over the variables added before; the other arguments are
        those of ``add_meta_graph_and_variables``.

        Raises:
            fastckpt.errors.BuilderMisuseError: no variables added yet (an ``AssertionError``, as TensorFlow
                raises); and as ``add_meta_graph_and_variables``.
        """
        if self._variables is None:
            raise errors.BuilderMisuseError(
                "Graph state including variables and assets has not been saved yet. Please invoke "
                f"`add_meta_graph_and_variables()` first (export directory {self.export_dir}).",
                self.export_dir,
            )
        meta, assets = self._meta_graph(
            self._variables,
            tags,
            signature_def_map,
            assets_collection,
            legacy_init_op if main_op is None else main_op,
            clear_devices,
        )
        self._add(meta, assets)

    def _meta_graph(self, variables, tags, signature_def_map, assets_collection, main_op, clear_devices):
        """The meta graph, checked whole before anything is written, and its asset files to copy
        (``{file name in assets/: source}``)."""
        meta = saver_meta_graph(
            {name: (as_dtype(value.dtype), value.shape) for name, value in variables.items()}, Saver().saver_def
        )
        meta.meta_info_def.tags.extend([tags] if isinstance(tags, str) else tags)
        assets = self._add_assets(meta, assets_collection)
        if main_op is not None:
            self._add_main_op(meta, main_op)
        if clear_devices:
            for node in meta.graph_def.node:
                node.device = ""
        self._check_signatures(meta, signature_def_map or {})
        for key, signature in (signature_def_map or {}).items():
            meta.signature_def[key].CopyFrom(protos.as_message(signature, protos.SignatureDef))
        meta.meta_info_def.stripped_op_list.CopyFrom(stripped_op_list(meta.graph_def))
        return meta, assets

    def _add(self, meta: "protos.MetaGraphDef", assets: Mapping[str, str]) -> None:
        assets_dir = os.path.join(self.export_dir, ASSETS_DIRECTORY)
        options = self._stores
        for filename, source in assets.items():
            stored = self._asset_files.get(filename)
            if stored is None:
                options.write_file(os.path.join(assets_dir, filename), options.read_file(source))
                self._asset_files[filename] = source
            elif stored != source and options.read_file(stored) != options.read_file(source):
                warnings.warn(
                    f"asset {source} is recorded as assets/{filename}, which an earlier meta graph stored from "
                    f"{stored}, of other contents: this meta graph gets that file, as TensorFlow's builder gives "
                    "it; give the files other names to keep both",
                    stacklevel=3,
                )
        self._saved_model.meta_graphs.append(meta)

    def _add_assets(self, meta: "protos.MetaGraphDef", assets_collection) -> Dict[str, str]:
        """Adds the asset tensors and records; returns ``{file name in assets/: source}``."""
        from ..protos import message_class

        if assets_collection is None:
            return {}
        if isinstance(assets_collection, Mapping):
            sources = [(name, os.fspath(path)) for name, path in assets_collection.items()]
        elif isinstance(assets_collection, (str, bytes, os.PathLike)):
            raise errors.InvalidArgumentError(
                "assets_collection is a list of paths or {node name: path}, not a path", self.export_dir
            )
        else:
            sources = [(None, os.fspath(path)) for path in assets_collection]
        graph = meta.graph_def
        taken = {node.name for node in graph.node}
        # File names are made unique within a meta graph, as TensorFlow's _maybe_save_assets makes them.
        files: Dict[str, str] = {}
        added: Dict[str, str] = {}
        asset_file_def = message_class("tensorflow.AssetFileDef")
        for name, source in sources:
            if self._stores.file_kind(source) != "file":
                raise errors.NotFoundError(f"asset file {source} does not exist", source)
            if name is None:
                name = _unique_name("asset_path", taken)
            elif name in taken:
                raise errors.InvalidArgumentError(
                    f"asset tensor name {name!r} is a node of the graph already", self.export_dir
                )
            taken.add(name)
            filename = _asset_filename(source, files, self._stores)
            files[filename] = added[filename] = source
            node = graph.node.add(name=name, op="Const")
            node.attr["dtype"].type = as_dtype("string").as_datatype_enum
            node.attr["value"].tensor.CopyFrom(make_tensor_proto(source.encode("utf-8", "surrogateescape")))
            record = asset_file_def(filename=filename)
            record.tensor_info.name = f"{name}:0"
            meta.asset_file_def.add().CopyFrom(record)
            meta.collection_def[ASSETS_KEY].any_list.value.add().Pack(record)
            meta.collection_def[ASSET_FILEPATHS].node_list.value.append(f"{name}:0")
        return added

    def _add_main_op(self, meta: "protos.MetaGraphDef", main_op) -> None:
        graph = meta.graph_def
        names = {node.name for node in graph.node}
        if isinstance(main_op, str):
            if main_op not in names:
                raise errors.InvalidArgumentError(f"main_op {main_op!r} is no node of the graph", self.export_dir)
            name = main_op
        else:
            node = protos.as_message(main_op, protos.NodeDef)
            if node.name in names:
                raise errors.InvalidArgumentError(
                    f"main_op {node.name!r} is a node of the graph already", self.export_dir
                )
            missing = [i for i in node.input if i.lstrip("^").split(":")[0] not in names]
            if missing:
                raise errors.InvalidArgumentError(
                    f"main_op {node.name!r} has inputs that are no nodes of the graph: {missing}", self.export_dir
                )
            graph.node.add().CopyFrom(node)
            name = node.name
        meta.collection_def[MAIN_OP_KEY].node_list.value.append(name)

    def _check_signatures(self, meta: "protos.MetaGraphDef", signature_def_map: Mapping[str, Any]) -> None:
        """As TensorFlow's builder checks them (every TensorInfo names a tensor and has a dtype, no key of
        the init or train op), and their tensors are outputs of the graph's nodes."""
        for key in (INIT_OP_SIGNATURE_KEY, TRAIN_OP_SIGNATURE_KEY):
            if key in signature_def_map:
                raise errors.InvalidArgumentError(f"signature key {key!r} is reserved", self.export_dir)
        names = {node.name for node in meta.graph_def.node}

        def check(key: str, info) -> None:
            encoding = info.WhichOneof("encoding")
            if encoding == "composite_tensor":
                for component in info.composite_tensor.components:
                    check(key, component)
                return
            if encoding is None or info.dtype == 0:
                field = (
                    "one of the 'encoding' fields (e.g., name or coo_sparse)" if encoding is None else "the dtype field"
                )
                raise errors.BuilderMisuseError(
                    f"Invalid `tensor_info`: {info}. All TensorInfo protos used in the SignatureDefs must have "
                    f"{field} set (signature {key!r} of the SavedModel in {self.export_dir}).",
                    self.export_dir,
                )
            tensors = (
                [info.name]
                if encoding == "name"
                else [
                    info.coo_sparse.values_tensor_name,
                    info.coo_sparse.indices_tensor_name,
                    info.coo_sparse.dense_shape_tensor_name,
                ]
            )
            for tensor in tensors:
                if tensor.split(":")[0] not in names:
                    raise errors.InvalidArgumentError(
                        f"signature {key!r}: {tensor!r} is no tensor of the graph", self.export_dir
                    )

        for key, signature in signature_def_map.items():
            signature = protos.as_message(signature, protos.SignatureDef)
            for info in list(signature.inputs.values()) + list(signature.outputs.values()):
                check(key, info)

    def save(self, as_text: bool = False) -> str:
        """Writes ``saved_model.pb`` (or ``.pbtxt``); returns its path."""
        from google.protobuf import text_format

        path = os.path.join(self.export_dir, SAVED_MODEL_FILENAME_PBTXT if as_text else SAVED_MODEL_FILENAME_PB)
        data = (
            text_format.MessageToString(self._saved_model)
            if as_text
            else self._saved_model.SerializeToString(deterministic=True)
        )
        atomic_write(path, data, storage_options=self._stores)
        return path


def _unique_name(name: str, taken) -> str:
    """``name``, or ``name_1``, ``name_2``, ... as TensorFlow makes names unique in a graph."""
    unique, i = name, 1
    while unique in taken:
        unique, i = f"{name}_{i}", i + 1
    return unique


def _asset_filename(source: str, files: Mapping[str, str], stores: "_fastckpt.Stores") -> str:
    """The file name of ``source`` in ``assets/``: its base name, unless a file of other contents has it
    (then ``name_1``, ``name_2``, ...), as TensorFlow's ``get_asset_filename_to_add`` names it."""
    filename = os.path.basename(source)
    other = files.get(filename)
    if other is None or other == source or stores.read_file(source) == stores.read_file(other):
        return filename
    return _unique_name(filename, files)
