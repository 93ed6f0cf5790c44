"""Loading a SavedModel as data: its meta graphs by tags, their signatures, and its variables read lazily
(``fastckpt.saved_model.load``; TensorFlow 1's form of it is ``fastckpt.saved_model.loader``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Dict, Iterator, List, Optional, Sequence

from .. import _fastckpt, _paths, errors, protos
from ..reading.checkpoint_state import checkpoint_exists
from ..reading.directories import SAVED_MODEL_FILENAME_PB, SAVED_MODEL_FILENAME_PBTXT, saved_model_variables
from ..reading.object_graph import OBJECT_GRAPH_KEY
from ..reading.reader import CheckpointReader

__all__ = ["LazyVariables", "LoadedSavedModel", "load", "read_saved_model", "tag_sets"]


def read_saved_model(export_dir: str, stores: "_fastckpt.Stores") -> "protos.SavedModel":
    """The SavedModel message of ``export_dir``, from ``saved_model.pb`` else ``saved_model.pbtxt``, as
    TensorFlow's loader reads it.

    Raises:
        fastckpt.errors.MissingFileError: neither file is there ("SavedModel file does not exist at").
        fastckpt.errors.UnparsableFileError: the file is no SavedModel ("Cannot parse file").
    """
    from google.protobuf import message as protobuf_message
    from google.protobuf import text_format

    pb = os.path.join(export_dir, SAVED_MODEL_FILENAME_PB)
    pbtxt = os.path.join(export_dir, SAVED_MODEL_FILENAME_PBTXT)
    proto = protos.SavedModel()
    if stores.file_kind(pb) == "file":
        try:
            proto.ParseFromString(stores.read_file(pb))
        except protobuf_message.DecodeError as err:
            raise errors.UnparsableFileError(f"Cannot parse file {pb}: {err}.", pb) from None
    elif stores.file_kind(pbtxt) == "file":
        try:
            text_format.Merge(stores.read_file(pbtxt).decode("utf-8"), proto)
        except (UnicodeDecodeError, text_format.ParseError) as err:
            raise errors.UnparsableFileError(f"Cannot parse file {pbtxt}: {err}.", pbtxt) from None
    else:
        raise errors.MissingFileError(
            f"SavedModel file does not exist at: {export_dir}{os.path.sep}"
            f"{{{SAVED_MODEL_FILENAME_PBTXT}|{SAVED_MODEL_FILENAME_PB}}}",
            export_dir,
        )
    return proto


def tag_sets(export_dir: str, *, storage_options: Optional[Mapping[str, str]] = None) -> List[List[str]]:
    """The tag sets of the meta graphs of a SavedModel, e.g. ``[["serve"], ["train"]]``.

    ``storage_options``: configuration of object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores")."""
    proto = read_saved_model(os.fspath(export_dir), _paths.stores(storage_options))
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

    The fields of the MetaGraphDef read through (``.signature_def``, ``.collection_def``, ``.graph_def``,
    ``.saver_def``, ``.asset_file_def``, ``.meta_info_def``), so that code written for TensorFlow 1's
    ``loader.load``, which returns the MetaGraphDef, reads this as it read that.
    """

    def __init__(self, export_dir: str, meta_graph_def: "protos.MetaGraphDef", reader: Optional[CheckpointReader]):
        self.export_dir = export_dir
        self.meta_graph_def = meta_graph_def
        self.tags = list(meta_graph_def.meta_info_def.tags)
        self.signatures: Dict[str, "protos.SignatureDef"] = dict(meta_graph_def.signature_def)
        self.variables = LazyVariables(reader)
        self.object_graph = meta_graph_def.object_graph_def if meta_graph_def.HasField("object_graph_def") else None

    def __getattr__(self, name: str):
        # Called only for names that are no attribute: the MetaGraphDef's fields.
        meta = self.__dict__.get("meta_graph_def")
        if meta is not None and name in meta.DESCRIPTOR.fields_by_name:
            return getattr(meta, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def object_paths(self) -> Dict[str, str]:
        """For a TF2 SavedModel, ``{checkpoint_key: object path}`` of its variables (see
        ``CheckpointReader.object_paths``); empty otherwise."""
        reader = self.variables.reader
        return reader.object_paths() if reader is not None else {}

    def __repr__(self) -> str:
        return f"<fastckpt.saved_model.LoadedSavedModel {self.export_dir!r} tags={self.tags} signatures={sorted(self.signatures)}>"


def _meta_graph_with_tags(proto: "protos.SavedModel", tags, export_dir: str) -> "protos.MetaGraphDef":
    """The meta graph whose tag set is ``tags`` (any order; one string is one tag), or the only one when
    ``tags`` is None."""
    metas = list(proto.meta_graphs)
    found = [list(meta.meta_info_def.tags) for meta in metas]
    if tags is None:
        if len(metas) != 1:
            raise errors.InvalidArgumentError(
                f"{export_dir} has {len(metas)} meta graphs with tag sets {found}: choose one with tags=",
                export_dir,
            )
        return metas[0]
    wanted = set([tags] if isinstance(tags, str) else tags)
    for meta in metas:
        if set(meta.meta_info_def.tags) == wanted:
            return meta
    # TensorFlow's loader names the tags as it was given them: str(tags).strip("[]").
    raise errors.MetaGraphNotFoundError(
        f"MetaGraphDef associated with tags {str(tags).strip('[]')} could not be found in SavedModel "
        f"{export_dir}, with available tags {found}: choose one of these with tags=",
        export_dir,
    )


def load(
    export_dir: "str | os.PathLike[str]",
    tags: Optional[Sequence[str]] = None,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> LoadedSavedModel:
    """Reads the SavedModel in ``export_dir``: the meta graph whose tag set is ``tags`` (any order), or the
    only one when ``tags`` is None; TensorFlow 2's ``tf.saved_model.load(export_dir, tags)`` order (TensorFlow
    1's ``loader.load(sess, tags, export_dir)`` is ``fastckpt.saved_model.loader.load``).
    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.MissingFileError: no SavedModel there (an ``OSError``, as TensorFlow raises).
        fastckpt.errors.UnparsableFileError: its ``saved_model.pb`` does not parse (an ``OSError``).
        fastckpt.errors.MetaGraphNotFoundError: no meta graph with those tags (a ``RuntimeError``, as
            TensorFlow raises).
        fastckpt.errors.InvalidArgumentError: ``tags`` is None and there are several meta graphs.
        fastckpt.errors.InvalidTypeError: ``export_dir`` is no path (the tags of TensorFlow 1's order).
    """
    if not isinstance(export_dir, (str, os.PathLike)):
        raise errors.InvalidTypeError(
            f"export_dir must be a path, got {export_dir!r}: load(export_dir, tags) is TensorFlow 2's order; "
            "TensorFlow 1's loader.load(sess, tags, export_dir) is fastckpt.saved_model.loader.load(None, tags, "
            "export_dir)"
        )
    export_dir = os.fspath(export_dir)
    stores = _paths.stores(storage_options)
    meta = _meta_graph_with_tags(read_saved_model(export_dir, stores), tags, export_dir)
    # variables/variables is a V2 checkpoint, or (SavedModels of 2016) a V1 file or V1 shards.
    prefix = saved_model_variables(export_dir)
    exists = checkpoint_exists(prefix, storage_options=stores)
    reader = CheckpointReader(prefix, storage_options=stores) if exists else None
    return LoadedSavedModel(export_dir, meta, reader)
