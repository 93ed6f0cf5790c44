"""SavedModels as data: load one's graph, signatures and variables without TensorFlow, or build one that
TensorFlow's loader loads.

>>> import os, tempfile, numpy as np, fastckpt
>>> export_dir = os.path.join(tempfile.mkdtemp(), "model")
>>> builder = fastckpt.saved_model.Builder(export_dir)
>>> builder.add_meta_graph_and_variables({"w": np.ones((2, 2), np.float32)}, tags=["serve"])
>>> path = builder.save()
>>> model = fastckpt.saved_model.load(export_dir, tags=["serve"])
>>> model.variables["w"]
array([[1., 1.],
       [1., 1.]], dtype=float32)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Sequence

from . import _fastckpt, _paths, errors, protos
from .dtypes import as_dtype
from .graphs.saver_graph import saver_meta_graph
from .graphs.tensor_protos import make_tensor_proto
from .reading.checkpoint_state import atomic_write, checkpoint_exists
from .reading.object_graph import OBJECT_GRAPH_KEY
from .reading.reader import CheckpointReader
from .saving.saver import Saver
from .saving.writer import CheckpointWriter, to_numpy

__all__ = [
    "Builder",
    "LoadedSavedModel",
    "build_main_op",
    "build_signature_def",
    "build_tensor_info",
    "load",
    "signature_constants",
    "tag_constants",
    "tag_sets",
    "ASSETS_DIRECTORY",
    "ASSETS_KEY",
    "EXTRA_ASSETS_DIRECTORY",
    "INIT_OP_SIGNATURE_KEY",
    "LEGACY_INIT_OP_KEY",
    "MAIN_OP_KEY",
    "SAVED_MODEL_FILENAME_PB",
    "SAVED_MODEL_FILENAME_PBTXT",
    "SAVED_MODEL_SCHEMA_VERSION",
    "TRAIN_OP_KEY",
    "TRAIN_OP_SIGNATURE_KEY",
    "VARIABLES_DIRECTORY",
    "VARIABLES_FILENAME",
]  # and the tag and signature constants, below

SAVED_MODEL_SCHEMA_VERSION = 1
SAVED_MODEL_FILENAME_PB = "saved_model.pb"
SAVED_MODEL_FILENAME_PBTXT = "saved_model.pbtxt"
VARIABLES_DIRECTORY = "variables"
VARIABLES_FILENAME = "variables"
ASSETS_DIRECTORY = "assets"
EXTRA_ASSETS_DIRECTORY = "assets.extra"

# Collections and signature keys a TF1 loader reads (tf.saved_model.constants).
ASSETS_KEY = "saved_model_assets"
MAIN_OP_KEY = "saved_model_main_op"
LEGACY_INIT_OP_KEY = "legacy_init_op"
TRAIN_OP_KEY = "saved_model_train_op"
INIT_OP_SIGNATURE_KEY = "__saved_model_init_op"
TRAIN_OP_SIGNATURE_KEY = "__saved_model_train_op"
# tf.compat.v1.GraphKeys.ASSET_FILEPATHS: a graph's asset tensors.
_ASSET_FILEPATHS = "asset_filepaths"

# Tags of meta graphs (tf.saved_model.tag_constants).
SERVING = "serve"
TRAINING = "train"
EVAL = "eval"
GPU = "gpu"
TPU = "tpu"

# Signature keys and method names (tf.saved_model.signature_constants).
DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default"
DEFAULT_TRAIN_SIGNATURE_DEF_KEY = "train"
DEFAULT_EVAL_SIGNATURE_DEF_KEY = "eval"
CLASSIFY_INPUTS = "inputs"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
PREDICT_INPUTS = "inputs"
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
PREDICT_OUTPUTS = "outputs"
REGRESS_INPUTS = "inputs"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"
REGRESS_OUTPUTS = "outputs"
SUPERVISED_TRAIN_METHOD_NAME = "tensorflow/supervised/training"
SUPERVISED_EVAL_METHOD_NAME = "tensorflow/supervised/eval"

_TAG_CONSTANTS = ("SERVING", "TRAINING", "EVAL", "GPU", "TPU")
_SIGNATURE_CONSTANTS = (
    "DEFAULT_SERVING_SIGNATURE_DEF_KEY",
    "DEFAULT_TRAIN_SIGNATURE_DEF_KEY",
    "DEFAULT_EVAL_SIGNATURE_DEF_KEY",
    "CLASSIFY_INPUTS",
    "CLASSIFY_METHOD_NAME",
    "CLASSIFY_OUTPUT_CLASSES",
    "CLASSIFY_OUTPUT_SCORES",
    "PREDICT_INPUTS",
    "PREDICT_METHOD_NAME",
    "PREDICT_OUTPUTS",
    "REGRESS_INPUTS",
    "REGRESS_METHOD_NAME",
    "REGRESS_OUTPUTS",
    "SUPERVISED_TRAIN_METHOD_NAME",
    "SUPERVISED_EVAL_METHOD_NAME",
)
# The same as namespaces, for code written against tf.compat.v1.saved_model.tag_constants.SERVING.
tag_constants = SimpleNamespace(**{name: globals()[name] for name in _TAG_CONSTANTS})
signature_constants = SimpleNamespace(**{name: globals()[name] for name in _SIGNATURE_CONSTANTS})
__all__ += _TAG_CONSTANTS + _SIGNATURE_CONSTANTS


def _read_saved_model(export_dir: str, storage_options: Optional[Dict[str, str]] = None) -> "protos.SavedModel":
    from google.protobuf import text_format

    pb = os.path.join(export_dir, SAVED_MODEL_FILENAME_PB)
    pbtxt = os.path.join(export_dir, SAVED_MODEL_FILENAME_PBTXT)
    proto = protos.SavedModel()
    if _fastckpt.file_kind(pb, storage_options=storage_options) == "file":
        data = _fastckpt.read_file(pb, storage_options=storage_options)
        try:
            proto.ParseFromString(data)
        except Exception as err:
            raise errors.DataLossError(f"unparsable SavedModel {pb}: {err}", pb) from None
    elif _fastckpt.file_kind(pbtxt, storage_options=storage_options) == "file":
        text = _fastckpt.read_file(pbtxt, storage_options=storage_options).decode("utf-8")
        try:
            text_format.Merge(text, proto)
        except text_format.ParseError as err:
            raise errors.DataLossError(f"unparsable SavedModel {pbtxt}: {err}", pbtxt) from None
    else:
        raise errors.NotFoundError(
            f"no SavedModel in {export_dir}: neither {SAVED_MODEL_FILENAME_PB} nor {SAVED_MODEL_FILENAME_PBTXT}",
            export_dir,
        )
    return proto


def tag_sets(export_dir: str, *, storage_options: Optional[Mapping[str, str]] = None) -> List[List[str]]:
    """The tag sets of the meta graphs of a SavedModel, e.g. ``[["serve"], ["train"]]``.

    ``storage_options``: configuration of object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores")."""
    proto = _read_saved_model(os.fspath(export_dir), _paths.storage_options(storage_options))
    return [list(meta.meta_info_def.tags) for meta in proto.meta_graphs]


class LazyVariables(Mapping):
    """The variables of a SavedModel by checkpoint key, read on access.

    A TF2 SavedModel's checkpoint also stores its object graph, under ``_CHECKPOINTABLE_OBJECT_GRAPH``: that
    is no variable, and is left out (``variables.reader.object_graph()`` reads it)."""

    def __init__(self, reader: Optional[CheckpointReader]):
        self._reader = reader

    def _is_variable(self, name: object) -> bool:
        return self._reader is not None and name != OBJECT_GRAPH_KEY and self._reader.has_tensor(name)

    def __getitem__(self, name: str):
        if not self._is_variable(name):
            raise KeyError(name)
        return self._reader.get_tensor(name)

    def __contains__(self, name: object) -> bool:
        return self._is_variable(name)

    def __iter__(self) -> Iterator[str]:
        names = self._reader.get_variable_to_shape_map() if self._reader is not None else ()
        return (name for name in names if name != OBJECT_GRAPH_KEY)

    def __len__(self) -> int:
        if self._reader is None:
            return 0
        return len(self._reader) - (1 if self._reader.has_tensor(OBJECT_GRAPH_KEY) else 0)

    @property
    def reader(self) -> Optional[CheckpointReader]:
        """The CheckpointReader of ``variables/variables`` (None for a SavedModel without variables)."""
        return self._reader


class LoadedSavedModel:
    """A SavedModel read as data.

    Attributes:
        export_dir: its directory.
        meta_graph_def: the MetaGraphDef of the chosen tags.
        tags: those tags.
        signatures: ``{signature_key: SignatureDef}``.
        variables: a lazy mapping ``{checkpoint_key: numpy array}``.
        object_graph: the SavedObjectGraph of a TF2 SavedModel, or None.
    """

    def __init__(self, export_dir: str, meta_graph_def: "protos.MetaGraphDef", reader: Optional[CheckpointReader]):
        self.export_dir = export_dir
        self.meta_graph_def = meta_graph_def
        self.tags = list(meta_graph_def.meta_info_def.tags)
        self.signatures: Dict[str, "protos.SignatureDef"] = dict(meta_graph_def.signature_def)
        self.variables = LazyVariables(reader)
        self.object_graph = meta_graph_def.object_graph_def if meta_graph_def.HasField("object_graph_def") else None

    def object_paths(self) -> Dict[str, str]:
        """For a TF2 SavedModel, ``{checkpoint_key: object path}`` of its variables (see
        ``CheckpointReader.object_paths``); empty otherwise."""
        reader = self.variables.reader
        return reader.object_paths() if reader is not None else {}

    def __repr__(self) -> str:
        return f"<fastckpt.saved_model.LoadedSavedModel {self.export_dir!r} tags={self.tags} signatures={sorted(self.signatures)}>"


def load(
    export_dir: "str | os.PathLike[str]",
    tags: Optional[Sequence[str]] = None,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> LoadedSavedModel:
    """Reads the SavedModel in ``export_dir``: the meta graph whose tag set is ``tags`` (any order), or the
    only one when ``tags`` is None. ``storage_options``: configuration of object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.NotFoundError: no SavedModel there, or no meta graph with those tags.
    """
    export_dir = os.fspath(export_dir)
    options = _paths.storage_options(storage_options)
    proto = _read_saved_model(export_dir, options)
    metas = list(proto.meta_graphs)
    found = [list(meta.meta_info_def.tags) for meta in metas]
    if tags is None:
        if len(metas) != 1:
            raise errors.InvalidArgumentError(
                f"{export_dir} has {len(metas)} meta graphs with tag sets {found}: choose one with tags=",
                export_dir,
            )
        meta = metas[0]
    else:
        wanted = set([tags] if isinstance(tags, str) else tags)
        matches = [m for m in metas if set(m.meta_info_def.tags) == wanted]
        if not matches:
            raise errors.NotFoundError(
                f"no meta graph with tags {sorted(wanted)} in {export_dir}; it has {found}", export_dir
            )
        meta = matches[0]
    # variables/variables is a V2 checkpoint, or (SavedModels of 2016) a V1 file or V1 shards.
    prefix = os.path.join(export_dir, VARIABLES_DIRECTORY, VARIABLES_FILENAME)
    exists = checkpoint_exists(prefix, storage_options=options)
    reader = CheckpointReader(prefix, storage_options=options) if exists else None
    return LoadedSavedModel(export_dir, meta, reader)


class Builder:
    """Builds a TF1-style SavedModel that ``tf.compat.v1.saved_model.loader.load`` loads, as
    ``tf.compat.v1.saved_model.Builder`` builds one, from values instead of a session.

    Each meta graph holds the variables (as a Saver's ``.meta`` holds them: ref variables with their
    ``/read`` snapshots and ``/Assign`` initializers, in the ``variables`` and ``trainable_variables``
    collections) and the save and restore operations the loader runs on ``variables/variables``; with, as
    asked, signatures, asset files and a main op.

    >>> import os, tempfile, numpy as np
    >>> export_dir = os.path.join(tempfile.mkdtemp(), "model")
    >>> signature = build_signature_def(
    ...     outputs={"w": build_tensor_info("w/read:0", "float32", [2])}, method_name=PREDICT_METHOD_NAME)
    >>> builder = Builder(export_dir)
    >>> builder.add_meta_graph_and_variables({"w": np.ones(2, np.float32)}, [SERVING],
    ...                                      {DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature})
    >>> os.path.basename(builder.save())
    'saved_model.pb'

    ``export_dir`` may be the URL of an object store; ``storage_options`` configures object stores
    (object_store's keys such as ``aws_endpoint``, ``aws_region``; see README "Object stores") for everything
    the builder reads and writes: the variables, ``saved_model.pb``, and the asset files (read and copied).
    """

    def __init__(self, export_dir: "str | os.PathLike[str]", *, storage_options: Optional[Mapping[str, str]] = None):
        self.export_dir = os.fspath(export_dir)
        self._storage_options = _paths.storage_options(storage_options)
        options = self._storage_options
        if _fastckpt.file_kind(self.export_dir, storage_options=options) == "file" or _fastckpt.list_directory(
            self.export_dir, storage_options=options
        ):
            raise errors.InvalidArgumentError(
                f"export directory {self.export_dir} already exists and is not empty", self.export_dir
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
                in the SavedModel to that tensor when it runs the main op. Files of the same name and other
                contents are stored as ``name_1``, ``name_2``, ... as TensorFlow stores them.
            legacy_init_op: what ``main_op`` was called before TensorFlow 1.4; ``main_op`` wins.
            clear_devices: empty the devices of the graph's nodes (those of a main op NodeDef).
            main_op: the operation the loader runs after restoring the variables, recorded in the
                ``saved_model_main_op`` collection: the name of a node of the graph (``"w/Assign"``), or a
                NodeDef added to the graph (``build_main_op()`` makes a NoOp).

        Raises:
            fastckpt.errors.InvalidArgumentError: variables added already, a signature or main op that does
                not fit the graph.
            fastckpt.errors.NotFoundError: an asset file does not exist.
        """
        if self._variables is not None:
            raise errors.InvalidArgumentError("the variables were added already: use add_meta_graph", self.export_dir)
        variables = {name: to_numpy(value) for name, value in values.items()}
        meta, assets = self._meta_graph(
            variables,
            tags,
            signature_def_map,
            assets_collection,
            legacy_init_op if main_op is None else main_op,
            clear_devices,
        )
        prefix = os.path.join(self.export_dir, VARIABLES_DIRECTORY, VARIABLES_FILENAME)
        with CheckpointWriter(prefix, storage_options=self._storage_options) as writer:
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
        those of ``add_meta_graph_and_variables``."""
        if self._variables is None:
            raise errors.InvalidArgumentError("add_meta_graph_and_variables must come first", self.export_dir)
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
            meta.signature_def[key].CopyFrom(_as_message(signature, protos.SignatureDef))
        return meta, assets

    def _add(self, meta: "protos.MetaGraphDef", assets: Mapping[str, str]) -> None:
        assets_dir = os.path.join(self.export_dir, ASSETS_DIRECTORY)
        options = self._storage_options
        for filename, source in assets.items():
            if filename not in self._asset_files:
                data = _fastckpt.read_file(source, storage_options=options)
                _fastckpt.write_file(os.path.join(assets_dir, filename), data, storage_options=options)
                self._asset_files[filename] = source
        self._saved_model.meta_graphs.append(meta)

    def _add_assets(self, meta: "protos.MetaGraphDef", assets_collection) -> Dict[str, str]:
        """Adds the asset tensors and records; returns ``{file name in assets/: source}``."""
        from .protos import message_class

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
        files = dict(self._asset_files)
        added: Dict[str, str] = {}
        asset_file_def = message_class("tensorflow.AssetFileDef")
        for name, source in sources:
            if _fastckpt.file_kind(source, storage_options=self._storage_options) != "file":
                raise errors.NotFoundError(f"asset file {source} does not exist", source)
            if name is None:
                name = _unique_name("asset_path", taken)
            elif name in taken:
                raise errors.InvalidArgumentError(
                    f"asset tensor name {name!r} is a node of the graph already", self.export_dir
                )
            taken.add(name)
            filename = _asset_filename(source, files, self._storage_options)
            files[filename] = added[filename] = source
            node = graph.node.add(name=name, op="Const")
            node.attr["dtype"].type = as_dtype("string").as_datatype_enum
            node.attr["value"].tensor.CopyFrom(make_tensor_proto(source.encode("utf-8", "surrogateescape")))
            record = asset_file_def(filename=filename)
            record.tensor_info.name = f"{name}:0"
            meta.asset_file_def.add().CopyFrom(record)
            meta.collection_def[ASSETS_KEY].any_list.value.add().Pack(record)
            meta.collection_def[_ASSET_FILEPATHS].node_list.value.append(f"{name}:0")
        return added

    def _add_main_op(self, meta: "protos.MetaGraphDef", main_op) -> None:
        graph = meta.graph_def
        names = {node.name for node in graph.node}
        if isinstance(main_op, str):
            if main_op not in names:
                raise errors.InvalidArgumentError(f"main_op {main_op!r} is no node of the graph", self.export_dir)
            name = main_op
        else:
            node = _as_message(main_op, protos.NodeDef)
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
                raise errors.InvalidArgumentError(
                    f"signature {key!r}: a TensorInfo needs a tensor name and a dtype: {info}", self.export_dir
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
            signature = _as_message(signature, protos.SignatureDef)
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
        atomic_write(path, data, storage_options=self._storage_options)
        return path


def _unique_name(name: str, taken) -> str:
    """``name``, or ``name_1``, ``name_2``, ... as TensorFlow makes names unique in a graph."""
    unique, i = name, 1
    while unique in taken:
        unique, i = f"{name}_{i}", i + 1
    return unique


def _asset_filename(source: str, files: Mapping[str, str], storage_options: Optional[Dict[str, str]] = None) -> str:
    """The file name of ``source`` in ``assets/``: its base name, unless a file of other contents has it
    (then ``name_1``, ``name_2``, ...), as TensorFlow's ``get_asset_filename_to_add`` names it."""
    filename = os.path.basename(source)
    other = files.get(filename)
    if (
        other is None
        or other == source
        or _fastckpt.read_file(source, storage_options=storage_options)
        == _fastckpt.read_file(other, storage_options=storage_options)
    ):
        return filename
    return _unique_name(filename, files)


def _as_message(value, message_type):
    """``value`` as fastckpt's ``message_type``: TensorFlow's messages of the same type are converted."""
    if isinstance(value, message_type):
        return value
    descriptor = getattr(value, "DESCRIPTOR", None)
    if descriptor is None or descriptor.full_name != message_type.DESCRIPTOR.full_name:
        raise TypeError(f"expected a {message_type.DESCRIPTOR.full_name}, got {type(value).__name__}")
    return message_type.FromString(value.SerializeToString())


def build_main_op(control_inputs: Sequence[str] = (), name: str = "main_op") -> "protos.NodeDef":
    """A ``NoOp`` named ``name`` that runs the nodes ``control_inputs`` (as ``tf.group`` builds one), to pass
    as ``main_op`` to the Builder; with no inputs it does nothing, and gives a SavedModel with a main op.

    >>> build_main_op(["w/Assign"]).input
    ['^w/Assign']
    """
    node = protos.NodeDef(name=name, op="NoOp")
    node.input.extend("^" + control_input.lstrip("^") for control_input in control_inputs)
    return node


def build_tensor_info(tensor, dtype=None, shape: Optional[Sequence[Optional[int]]] = None) -> "protos.TensorInfo":
    """A TensorInfo for signatures, as ``tf.compat.v1.saved_model.build_tensor_info(tensor)`` builds it:
    ``tensor`` is the name of a graph tensor (``"w/read:0"``) with its ``dtype`` and ``shape`` (None for an
    unknown rank, None in it for an unknown size), or an object with ``name``, ``dtype`` and ``shape`` (a
    TensorFlow tensor).

    >>> build_tensor_info("w/read:0", "float32", [None, 3])
    name: "w/read:0"
    dtype: DT_FLOAT
    tensor_shape {
      dim {
        size: -1
      }
      dim {
        size: 3
      }
    }
    <BLANKLINE>
    """
    if not isinstance(tensor, str):
        name = tensor.name
        dtype = getattr(tensor.dtype, "as_datatype_enum", tensor.dtype)
        dims = getattr(tensor.shape, "rank", 0) is not None
        shape = [getattr(size, "value", size) for size in tensor.shape] if dims else None
    else:
        name = tensor
        if dtype is None:
            raise errors.InvalidArgumentError(f"build_tensor_info({tensor!r}) needs the tensor's dtype")
    info = protos.TensorInfo(name=name, dtype=as_dtype(dtype).as_datatype_enum)
    if shape is None:
        info.tensor_shape.unknown_rank = True
    else:
        info.tensor_shape.SetInParent()
        for size in shape:
            info.tensor_shape.dim.add(size=-1 if size is None else int(size))
    return info


def build_signature_def(
    inputs=None, outputs=None, method_name: Optional[str] = None, defaults=None
) -> "protos.SignatureDef":
    """A SignatureDef, as ``tf.compat.v1.saved_model.build_signature_def`` builds it: ``inputs`` and
    ``outputs`` are ``{key: TensorInfo}`` (``build_tensor_info``), ``method_name`` is for example
    ``PREDICT_METHOD_NAME``, and ``defaults`` gives inputs default values (``{key: value or TensorProto}``).

    >>> signature = build_signature_def(
    ...     inputs={PREDICT_INPUTS: build_tensor_info("x:0", "float32", [None, 3])},
    ...     outputs={PREDICT_OUTPUTS: build_tensor_info("y:0", "float32", [None])},
    ...     method_name=PREDICT_METHOD_NAME)
    >>> signature.method_name, sorted(signature.inputs), signature.outputs["outputs"].name
    ('tensorflow/serving/predict', ['inputs'], 'y:0')
    """
    signature = protos.SignatureDef()
    for key, info in (inputs or {}).items():
        signature.inputs[key].CopyFrom(_as_message(info, protos.TensorInfo))
    for key, info in (outputs or {}).items():
        signature.outputs[key].CopyFrom(_as_message(info, protos.TensorInfo))
    if method_name is not None:
        signature.method_name = method_name
    for key, value in (defaults or {}).items():
        is_proto = getattr(getattr(value, "DESCRIPTOR", None), "full_name", None) == "tensorflow.TensorProto"
        signature.defaults[key].CopyFrom(
            _as_message(value, protos.TensorProto) if is_proto else make_tensor_proto(value)
        )
    return signature
