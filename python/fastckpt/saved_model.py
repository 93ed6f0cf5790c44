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
from typing import Any, Dict, Iterator, List, Optional, Sequence

from google.protobuf import text_format

from . import errors
from .checkpoint_state import atomic_write, checkpoint_exists
from .dtypes import as_dtype
from .graphs import saver_meta_graph
from .protos import MetaGraphDef, SavedModel as SavedModelProto, SignatureDef
from .reader import _OBJECT_GRAPH_KEY, CheckpointReader
from .saver import Saver
from .writer import CheckpointWriter, to_numpy

__all__ = ["Builder", "LoadedSavedModel", "build_signature_def", "build_tensor_info", "load", "tag_sets"]

SAVED_MODEL_FILENAME_PB = "saved_model.pb"
SAVED_MODEL_FILENAME_PBTXT = "saved_model.pbtxt"
VARIABLES_DIRECTORY = "variables"
VARIABLES_FILENAME = "variables"


def _read_saved_model(export_dir: str) -> "SavedModelProto":
    pb = os.path.join(export_dir, SAVED_MODEL_FILENAME_PB)
    pbtxt = os.path.join(export_dir, SAVED_MODEL_FILENAME_PBTXT)
    proto = SavedModelProto()
    if os.path.isfile(pb):
        with open(pb, "rb") as f:
            data = f.read()
        try:
            proto.ParseFromString(data)
        except Exception as err:
            raise errors.DataLossError(f"unparsable SavedModel {pb}: {err}", pb) from None
    elif os.path.isfile(pbtxt):
        with open(pbtxt, "r", encoding="utf-8") as f:
            try:
                text_format.Merge(f.read(), proto)
            except text_format.ParseError as err:
                raise errors.DataLossError(f"unparsable SavedModel {pbtxt}: {err}", pbtxt) from None
    else:
        raise errors.NotFoundError(f"no SavedModel in {export_dir}: neither {SAVED_MODEL_FILENAME_PB} nor {SAVED_MODEL_FILENAME_PBTXT}", export_dir)
    return proto


def tag_sets(export_dir: str) -> List[List[str]]:
    """The tag sets of the meta graphs of a SavedModel, e.g. ``[["serve"], ["train"]]``."""
    return [list(meta.meta_info_def.tags) for meta in _read_saved_model(os.fspath(export_dir)).meta_graphs]


class LazyVariables(Mapping):
    """The variables of a SavedModel by checkpoint key, read on access.

    A TF2 SavedModel's checkpoint also stores its object graph, under ``_CHECKPOINTABLE_OBJECT_GRAPH``: that
    is no variable, and is left out (``variables.reader.object_graph()`` reads it)."""

    def __init__(self, reader: Optional[CheckpointReader]):
        self._reader = reader

    def _is_variable(self, name: object) -> bool:
        return self._reader is not None and name != _OBJECT_GRAPH_KEY and self._reader.has_tensor(name)

    def __getitem__(self, name: str):
        if not self._is_variable(name):
            raise KeyError(name)
        return self._reader.get_tensor(name)

    def __contains__(self, name: object) -> bool:
        return self._is_variable(name)

    def __iter__(self) -> Iterator[str]:
        names = self._reader.get_variable_to_shape_map() if self._reader is not None else ()
        return (name for name in names if name != _OBJECT_GRAPH_KEY)

    def __len__(self) -> int:
        if self._reader is None:
            return 0
        return len(self._reader) - (1 if self._reader.has_tensor(_OBJECT_GRAPH_KEY) else 0)

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

    def __init__(self, export_dir: str, meta_graph_def: "MetaGraphDef", reader: Optional[CheckpointReader]):
        self.export_dir = export_dir
        self.meta_graph_def = meta_graph_def
        self.tags = list(meta_graph_def.meta_info_def.tags)
        self.signatures: Dict[str, "SignatureDef"] = dict(meta_graph_def.signature_def)
        self.variables = LazyVariables(reader)
        self.object_graph = meta_graph_def.object_graph_def if meta_graph_def.HasField("object_graph_def") else None

    def object_paths(self) -> Dict[str, str]:
        """For a TF2 SavedModel, ``{checkpoint_key: object path}`` of its variables (see
        ``CheckpointReader.object_paths``); empty otherwise."""
        reader = self.variables.reader
        return reader.object_paths() if reader is not None else {}

    def __repr__(self) -> str:
        return f"<fastckpt.saved_model.LoadedSavedModel {self.export_dir!r} tags={self.tags} signatures={sorted(self.signatures)}>"


def load(export_dir: "str | os.PathLike[str]", tags: Optional[Sequence[str]] = None) -> LoadedSavedModel:
    """Reads the SavedModel in ``export_dir``: the meta graph whose tag set is ``tags`` (any order), or the
    only one when ``tags`` is None.

    Raises:
        fastckpt.errors.NotFoundError: no SavedModel there, or no meta graph with those tags.
    """
    export_dir = os.fspath(export_dir)
    proto = _read_saved_model(export_dir)
    metas = list(proto.meta_graphs)
    if tags is None:
        if len(metas) != 1:
            raise errors.InvalidArgumentError(
                f"{export_dir} has {len(metas)} meta graphs with tag sets {tag_sets(export_dir)}: choose one with tags=",
                export_dir,
            )
        meta = metas[0]
    else:
        wanted = set([tags] if isinstance(tags, str) else tags)
        matches = [m for m in metas if set(m.meta_info_def.tags) == wanted]
        if not matches:
            raise errors.NotFoundError(
                f"no meta graph with tags {sorted(wanted)} in {export_dir}; it has {tag_sets(export_dir)}", export_dir
            )
        meta = matches[0]
    # variables/variables is a V2 checkpoint, or (SavedModels of 2016) a V1 file or V1 shards.
    prefix = os.path.join(export_dir, VARIABLES_DIRECTORY, VARIABLES_FILENAME)
    reader = CheckpointReader(prefix) if checkpoint_exists(prefix) else None
    return LoadedSavedModel(export_dir, meta, reader)


class Builder:
    """Builds a TF1-style SavedModel that ``tf.compat.v1.saved_model.loader.load`` loads with its variables,
    as ``tf.compat.v1.saved_model.Builder`` does.

    >>> builder = Builder(export_dir)                                               # doctest: +SKIP
    >>> builder.add_meta_graph_and_variables({"w": w}, ["serve"], {"serving_default": signature})  # doctest: +SKIP
    >>> builder.save()                                                              # doctest: +SKIP
    """

    def __init__(self, export_dir: "str | os.PathLike[str]"):
        self.export_dir = os.fspath(export_dir)
        if os.path.exists(self.export_dir) and os.listdir(self.export_dir):
            raise errors.InvalidArgumentError(f"export directory {self.export_dir} already exists and is not empty", self.export_dir)
        self._saved_model = SavedModelProto(saved_model_schema_version=1)
        self._variables: Optional[Dict[str, Any]] = None

    def _add_meta_graph(self, tags: Sequence[str], signature_def_map: Optional[Dict[str, "SignatureDef"]]) -> None:
        variables = {name: (as_dtype(value.dtype), value.shape) for name, value in (self._variables or {}).items()}
        meta = saver_meta_graph(variables, Saver().saver_def)
        meta.meta_info_def.tags.extend([tags] if isinstance(tags, str) else tags)
        for key, signature in (signature_def_map or {}).items():
            meta.signature_def[key].CopyFrom(signature)
        self._saved_model.meta_graphs.append(meta)

    def add_meta_graph_and_variables(
        self, values: Dict[str, Any], tags: Sequence[str], signature_def_map: Optional[Dict[str, "SignatureDef"]] = None
    ) -> None:
        """Writes ``values`` as the SavedModel's variables and adds a meta graph for them with ``tags``."""
        if self._variables is not None:
            raise errors.InvalidArgumentError("the variables were added already: use add_meta_graph", self.export_dir)
        self._variables = {name: to_numpy(value) for name, value in values.items()}
        prefix = os.path.join(self.export_dir, VARIABLES_DIRECTORY, VARIABLES_FILENAME)
        with CheckpointWriter(prefix) as writer:
            for name in sorted(self._variables):
                writer.add(name, self._variables[name])
        self._add_meta_graph(tags, signature_def_map)

    def add_meta_graph(self, tags: Sequence[str], signature_def_map: Optional[Dict[str, "SignatureDef"]] = None) -> None:
        """Adds another meta graph, sharing the variables added before."""
        if self._variables is None:
            raise errors.InvalidArgumentError("add_meta_graph_and_variables must come first", self.export_dir)
        self._add_meta_graph(tags, signature_def_map)

    def save(self, as_text: bool = False) -> str:
        """Writes ``saved_model.pb`` (or ``.pbtxt``); returns its path."""
        os.makedirs(self.export_dir, exist_ok=True)
        path = os.path.join(self.export_dir, SAVED_MODEL_FILENAME_PBTXT if as_text else SAVED_MODEL_FILENAME_PB)
        atomic_write(path, text_format.MessageToString(self._saved_model) if as_text else self._saved_model.SerializeToString())
        return path


def build_tensor_info(name: str, dtype, shape: Optional[Sequence[int]] = None):
    """A TensorInfo naming a graph tensor (``"v1/read:0"``) for signatures."""
    from .protos import TensorInfo

    info = TensorInfo(name=name, dtype=as_dtype(dtype).as_datatype_enum)
    if shape is None:
        info.tensor_shape.unknown_rank = True
    else:
        for size in shape:
            info.tensor_shape.dim.add(size=-1 if size is None else int(size))
    return info


def build_signature_def(inputs=None, outputs=None, method_name: str = "tensorflow/serving/predict") -> "SignatureDef":
    """A SignatureDef from ``{key: TensorInfo}`` inputs and outputs."""
    signature = SignatureDef(method_name=method_name)
    for key, info in (inputs or {}).items():
        signature.inputs[key].CopyFrom(info)
    for key, info in (outputs or {}).items():
        signature.outputs[key].CopyFrom(info)
    return signature

