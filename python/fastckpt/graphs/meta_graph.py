"""MetaGraphDefs and GraphDefs as files, and name scopes: reading and writing them (binary or text), and
importing or exporting a meta graph under a name scope as TensorFlow's ``import_meta_graph`` and
``export_meta_graph`` do, without TensorFlow.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional, Set, Tuple

from .. import _fastckpt, _paths, errors, protos
from ..reading.checkpoint_state import atomic_write
from .op_defs import with_stripped_op_list

__all__ = [
    "export_meta_graph",
    "import_scoped_meta_graph",
    "node_name",
    "prepend_name_scope",
    "read_graph",
    "read_meta_graph",
    "strip_name_scope",
    "write_graph",
]


def node_name(input_name: str) -> str:
    """The node an input names: ``"^a"``, ``"a:1"`` and ``"a"`` all name node ``a``."""
    return input_name.lstrip("^").split(":")[0]


def _read_message(path: "str | os.PathLike[str]", message_type, stores: "_fastckpt.Stores"):
    """The message in a file, binary or text, as TensorFlow's ``read_meta_graph_file`` reads it."""
    from google.protobuf import message as protobuf_message
    from google.protobuf import text_format

    path = os.fspath(path)
    try:
        data = stores.read_file(path)
    except errors.NotFoundError:
        raise errors.MissingFileError(f"File does not exist. Received: {path}.", path) from None
    message = message_type()
    try:
        message.ParseFromString(data)
        return message
    except protobuf_message.DecodeError:
        pass
    try:
        text_format.Merge(data.decode("utf-8"), message)
        return message
    except (UnicodeDecodeError, text_format.ParseError) as err:
        raise errors.UnparsableFileError(
            f"Cannot parse file {path}: it is neither a binary nor a text {message_type.DESCRIPTOR.name} ({err})",
            path,
        ) from None


def read_meta_graph(
    path: "str | os.PathLike[str]", *, storage_options: Optional[Mapping[str, str]] = None
) -> "protos.MetaGraphDef":
    """Reads a MetaGraphDef in binary or text format (a ``.meta`` file).

    ``storage_options``: configuration of object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.MissingFileError: no such file (an ``OSError``, as TensorFlow raises).
        fastckpt.errors.UnparsableFileError: the file is no MetaGraphDef (an ``OSError``, as TensorFlow raises).
    """
    return _read_message(path, protos.MetaGraphDef, _paths.stores(storage_options))


def read_graph(
    path: "str | os.PathLike[str]", *, storage_options: Optional[Mapping[str, str]] = None
) -> "protos.GraphDef":
    """Reads a GraphDef in binary or text format (a ``.pb`` or ``.pbtxt`` file).

    ``storage_options``: configuration of object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores"). Raises as ``read_meta_graph``."""
    return _read_message(path, protos.GraphDef, _paths.stores(storage_options))


def _write_message(filename: str, message, as_text: bool, stores: "_fastckpt.Stores") -> None:
    from google.protobuf import text_format

    atomic_write(
        filename,
        text_format.MessageToString(message) if as_text else message.SerializeToString(),
        storage_options=stores,
    )


def write_graph(
    graph_def: "protos.GraphDef",
    logdir: str,
    name: str,
    as_text: bool = True,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> str:
    """Writes a GraphDef to ``logdir/name`` (as ``tf.io.write_graph``); returns the path.

    ``storage_options``: configuration of object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores")."""
    path = os.path.join(logdir, name)
    _write_message(path, graph_def, as_text, _paths.stores(storage_options))
    return path


# Name scopes ----------------------------------------------------------------------------------------------

# Collections of VariableDefs and of SaverDefs (those with proto functions registered in TensorFlow).
_VARIABLE_COLLECTIONS = frozenset(
    (
        "variables",
        "trainable_variables",
        "local_variables",
        "model_variables",
        "moving_average_variables",
        "metric_variables",
        "global_step",
    )
)
_SAVERS = "savers"
# Collections of protos fastckpt has no definition of (QueueRunnerDef, CondContextDef, WhileContextDef): the
# names inside them cannot be put under, or taken out of, a name scope.
_OPAQUE_COLLECTIONS = frozenset(("queue_runners", "cond_context", "while_context"))
# A scoped export names the inputs from outside the scope `$unbound_inputs_<input>` and lists them here.
_UNBOUND_INPUTS = "unbound_inputs"
_UNBOUND_INPUT_PREFIX = "$unbound_inputs_"
_SAVE_AND_RESTORE_OPS = frozenset(
    (
        "SaveV2",
        "Save",
        "SaveSlice",
        "LegacySave",
        "LegacySaveSlice",
        "RestoreV2",
        "Restore",
        "RestoreSlice",
        "LegacyRestore",
        "LegacyRestoreSlice",
    )
)
# Prefixes that stay in front of a name scope: control inputs and colocation groups.
_NAME_MARKERS = ("^", "loc:@")


def _without_slash(scope: Optional[str]) -> str:
    return scope[:-1] if scope and scope.endswith("/") else (scope or "")


def prepend_name_scope(name: str, scope: Optional[str]) -> str:
    """``name`` under ``scope``, as TensorFlow's ``ops.prepend_name_scope``.

    >>> [prepend_name_scope(name, "tower") for name in ("v1:0", "^save/restore_all", "loc:@v1")]
    ['tower/v1:0', '^tower/save/restore_all', 'loc:@tower/v1']
    """
    scope = _without_slash(scope)
    if not scope:
        return name
    for marker in _NAME_MARKERS:
        if name.startswith(marker):
            return f"{marker}{scope}/{name[len(marker) :]}"
    return f"{scope}/{name}"


def strip_name_scope(name: str, scope: Optional[str]) -> str:
    """``name`` without ``scope``, as TensorFlow's ``ops.strip_name_scope``; names outside it are unchanged.

    >>> [strip_name_scope(name, "tower") for name in ("tower/v1:0", "^tower/save/restore_all", "other/v1")]
    ['v1:0', '^save/restore_all', 'other/v1']
    """
    scope = _without_slash(scope)
    if not scope:
        return name
    for marker in _NAME_MARKERS + ("",):
        head = marker + scope + "/"
        if name.startswith(head):
            return marker + name[len(head) :].lstrip("/")
    return name


def _rename_bytes(value: bytes, rename) -> bytes:
    return rename(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _rename_variable_def(variable: "protos.VariableDef", rename) -> None:
    for field in ("variable_name", "initial_value_name", "initializer_name", "snapshot_name"):
        if getattr(variable, field):
            setattr(variable, field, rename(getattr(variable, field)))
    if variable.HasField("save_slice_info_def"):
        variable.save_slice_info_def.full_name = rename(variable.save_slice_info_def.full_name)


def _rename_saver_def(saver_def: "protos.SaverDef", rename) -> None:
    for field in ("filename_tensor_name", "save_tensor_name", "restore_op_name"):
        setattr(saver_def, field, rename(getattr(saver_def, field)))


def _opaque_collection_error(key: str, source: Optional[str]) -> errors.UnimplementedError:
    where = f" of {source}" if source else ""
    return errors.UnimplementedError(
        f"the {key!r} collection{where} holds protos fastckpt does not define: its names cannot be moved into "
        "or out of a name scope",
        source,
    )


def _imported(
    meta: "protos.MetaGraphDef", import_scope: str, clear_devices: bool, source: Optional[str]
) -> "protos.MetaGraphDef":
    """The MetaGraphDef TensorFlow's graph holds after ``import_meta_graph(meta, clear_devices, import_scope)``:
    ``import_graph_def`` puts node names, inputs and colocation groups under the scope, and the collections
    and the SaverDef are rebuilt under it (VariableDef and SaverDef names, node lists and strings)."""
    out = protos.MetaGraphDef()
    out.CopyFrom(meta)
    if clear_devices:
        for node in out.graph_def.node:
            node.device = ""
    if not import_scope:
        return out

    def scoped(name: str) -> str:
        return prepend_name_scope(name, import_scope)

    for node in out.graph_def.node:
        _scope_node(node, scoped)
    for key, collection in out.collection_def.items():
        _scope_collection(key, collection, scoped, source)
    if out.HasField("saver_def"):
        _rename_saver_def(out.saver_def, scoped)
    return out


def _scope_node(node: "protos.NodeDef", scoped) -> None:
    """Puts a node's name, inputs and colocation groups under the scope (``scoped`` renames), as
    ``import_graph_def`` does."""
    node.name = scoped(node.name)
    for i, name in enumerate(node.input):
        # Unbound inputs name no node of this graph: they stay as the exporter named them.
        if not name.lstrip("^").startswith(_UNBOUND_INPUT_PREFIX):
            node.input[i] = scoped(name)
    if "_class" in node.attr:
        groups = node.attr["_class"].list.s
        for i, group in enumerate(groups):
            if group.startswith(b"loc:@"):
                groups[i] = _rename_bytes(group, scoped)


def _scope_collection(key: str, collection: "protos.CollectionDef", scoped, source: Optional[str]) -> None:
    """Rebuilds a collection under the scope (``scoped`` renames): VariableDef and SaverDef names, node lists
    and strings, as TensorFlow's import rebuilds them."""
    kind = collection.WhichOneof("kind")
    if key == _UNBOUND_INPUTS:
        return
    if key in _OPAQUE_COLLECTIONS:
        raise _opaque_collection_error(key, source)
    if kind == "bytes_list" and key in _VARIABLE_COLLECTIONS | {_SAVERS}:
        values = collection.bytes_list.value
        for i, serialized in enumerate(values):
            proto = (protos.SaverDef if key == _SAVERS else protos.VariableDef).FromString(serialized)
            (_rename_saver_def if key == _SAVERS else _rename_variable_def)(proto, scoped)
            values[i] = proto.SerializeToString()
    elif kind == "node_list":
        collection.node_list.value[:] = [scoped(name) for name in collection.node_list.value]
    elif kind == "bytes_list":
        # TensorFlow puts the strings of a collection under the scope too, as if they were names.
        collection.bytes_list.value[:] = [_rename_bytes(value, scoped) for value in collection.bytes_list.value]


def _scope_of(name: str) -> str:
    name = name[1:] if name.startswith("^") else name
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _extraneous_saver_nodes(graph_def: "protos.GraphDef", saver_def: Optional["protos.SaverDef"]) -> Set[str]:
    """The nodes of the savers other than ``saver_def``'s, as TensorFlow finds them: every node in the name
    scope of a save or restore op, except the scopes of ``saver_def``'s ops."""
    saver_nodes = {node.name for node in graph_def.node if node.op in _SAVE_AND_RESTORE_OPS}
    scopes = {_scope_of(name) + "/" for name in saver_nodes if _scope_of(name) not in saver_nodes}
    if saver_def is not None:
        scopes -= {
            _scope_of(node_name(saver_def.save_tensor_name)) + "/",
            _scope_of(node_name(saver_def.restore_op_name)) + "/",
        }
    return {node.name for node in graph_def.node if any(node.name.startswith(scope) for scope in scopes)}


def _exported_graph(
    graph_def: "protos.GraphDef", export_scope: Optional[str], exclude: Set[str], clear_devices: bool
) -> Tuple["protos.GraphDef", list]:
    """The nodes under ``export_scope`` (all without one) but those excluded, with the scope stripped from
    their names, inputs, colocation groups and loop frame names, as TensorFlow's ``_node_def`` strips it;
    and the inputs from outside the scope, renamed ``$unbound_inputs_<input>``."""
    out = protos.GraphDef()
    out.versions.CopyFrom(graph_def.versions)
    out.library.CopyFrom(graph_def.library)
    unbound = []
    for node in graph_def.node:
        if node.name in exclude:
            continue
        if export_scope and not (node.name.startswith(_UNBOUND_INPUT_PREFIX) or node.name.startswith(export_scope)):
            continue
        new = out.node.add()
        new.CopyFrom(node)
        new.name = strip_name_scope(node.name, export_scope)
        for i, name in enumerate(node.input):
            if export_scope and not name.lstrip("^").startswith(export_scope):
                control = "^" if name.startswith("^") else ""
                new.input[i] = control + _UNBOUND_INPUT_PREFIX + name[len(control) :]
                unbound.append(new.input[i])
            else:
                new.input[i] = strip_name_scope(name, export_scope)
        if "_class" in node.attr:
            groups = [
                _rename_bytes(group, lambda name: strip_name_scope(name, export_scope))
                for group in node.attr["_class"].list.s
                if not export_scope or group.split(b"@", 1)[-1].startswith(export_scope.encode())
            ]
            new.attr["_class"].list.s[:] = groups
        frame = node.attr["frame_name"].s if "frame_name" in node.attr else None
        if node.op in ("Enter", "RefEnter") and export_scope and frame and frame.startswith(export_scope.encode()):
            new.attr["frame_name"].s = _rename_bytes(frame, lambda name: strip_name_scope(name, export_scope))
        if clear_devices:
            new.device = ""
    return out, unbound


def _exported_collection(key: str, collection, export_scope: Optional[str], exclude: Set[str], source: Optional[str]):
    """The part of a collection TensorFlow's ``add_collection_def`` exports: VariableDefs, SaverDefs and
    node names under ``export_scope`` with the scope stripped (nodes excluded left out), other values
    as they are. None when nothing is left."""
    from ..protos import message_class

    def in_scope(name: str) -> bool:
        return not export_scope or name.startswith(export_scope)

    def stripped(name: str) -> str:
        return strip_name_scope(name, export_scope)

    kind = collection.WhichOneof("kind")
    out = message_class("tensorflow.CollectionDef")()
    if kind == "bytes_list" and key in _VARIABLE_COLLECTIONS:
        for serialized in collection.bytes_list.value:
            variable = protos.VariableDef.FromString(serialized)
            if in_scope(variable.variable_name):
                _rename_variable_def(variable, stripped)
                out.bytes_list.value.append(variable.SerializeToString())
    elif kind == "bytes_list" and key == _SAVERS:
        for serialized in collection.bytes_list.value:
            saver_def = protos.SaverDef.FromString(serialized)
            names = (saver_def.filename_tensor_name, saver_def.save_tensor_name, saver_def.restore_op_name)
            if all(in_scope(name) for name in names):
                _rename_saver_def(saver_def, stripped)
                out.bytes_list.value.append(saver_def.SerializeToString())
    elif key in _OPAQUE_COLLECTIONS and export_scope:
        raise _opaque_collection_error(key, source)
    elif kind == "node_list":
        out.node_list.value.extend(
            stripped(name) for name in collection.node_list.value if name not in exclude and in_scope(name)
        )
    elif kind is not None:
        out.CopyFrom(collection)
    return out if kind is not None and getattr(out, kind).value else None


def _exported(
    meta: "protos.MetaGraphDef",
    collection_list: Optional[Iterable[str]],
    export_scope: Optional[str],
    clear_devices: bool,
    clear_extraneous_savers: bool,
    source: Optional[str],
) -> "protos.MetaGraphDef":
    """What TensorFlow's ``export_meta_graph(graph_def=..., saver_def=..., ...)`` exports of ``meta``."""
    from ..protos import message_class

    collection_list = None if collection_list is None else list(collection_list)
    saver_def = meta.saver_def if meta.HasField("saver_def") else None
    exclude = _extraneous_saver_nodes(meta.graph_def, saver_def) if clear_extraneous_savers else set()
    out = protos.MetaGraphDef()
    out.CopyFrom(meta)
    collections = dict(meta.collection_def)
    if export_scope or clear_devices or clear_extraneous_savers:
        graph, unbound = _exported_graph(meta.graph_def, export_scope, exclude, clear_devices)
        out.graph_def.CopyFrom(graph)
        # The unbound inputs are those of this export, not those of the one that made `meta`.
        collections.pop(_UNBOUND_INPUTS, None)
        if unbound:
            collections[_UNBOUND_INPUTS] = message_class("tensorflow.CollectionDef")()
            collections[_UNBOUND_INPUTS].bytes_list.value.extend(name.encode() for name in unbound)
    if export_scope and saver_def is not None:
        # As the `savers` collection exports a Saver (Saver.to_proto): stripped, or left out when its
        # operations are outside the scope (and so not exported).
        names = (saver_def.filename_tensor_name, saver_def.save_tensor_name, saver_def.restore_op_name)
        if all(name.startswith(export_scope) for name in names):
            _rename_saver_def(out.saver_def, lambda name: strip_name_scope(name, export_scope))
        else:
            out.ClearField("saver_def")
    if clear_extraneous_savers and (_SAVERS in collections or _SAVERS in (collection_list or ())):
        # The only saver left is `meta`'s own.
        collections.pop(_SAVERS, None)
        if saver_def is not None:
            collections[_SAVERS] = message_class("tensorflow.CollectionDef")()
            collections[_SAVERS].bytes_list.value.append(saver_def.SerializeToString())
    out.ClearField("collection_def")
    for key in collections if collection_list is None else collection_list:
        if key in collections:
            exported = _exported_collection(key, collections[key], export_scope, exclude, source)
            if exported is not None:
                out.collection_def[key].CopyFrom(exported)
    return out


def _meta_graph_argument(meta_graph_or_file, stores: "_fastckpt.Stores") -> Tuple["protos.MetaGraphDef", Optional[str]]:
    """The MetaGraphDef (fastckpt's or TensorFlow's message, or a file of one) and its file name."""
    if hasattr(meta_graph_or_file, "DESCRIPTOR"):
        return protos.as_message(meta_graph_or_file, protos.MetaGraphDef), None
    path = os.fspath(meta_graph_or_file)
    return read_meta_graph(path, storage_options=stores), path


def export_meta_graph(
    filename: "Optional[str | os.PathLike[str]]",
    meta_graph_def: "protos.MetaGraphDef",
    as_text: bool = False,
    collection_list: Optional[Iterable[str]] = None,
    export_scope: Optional[str] = None,
    clear_devices: bool = False,
    clear_extraneous_savers: bool = False,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> "protos.MetaGraphDef":
    """Writes ``meta_graph_def`` to ``filename`` (binary, or text with ``as_text``; the file replaced
    atomically, nothing written when ``filename`` is None) and returns what was written, with the options of
    ``tf.compat.v1.train.export_meta_graph`` applied as TensorFlow applies them:

    - ``collection_list``: only these collections are exported;
    - ``export_scope``: only the nodes whose names start with it, the scope stripped from their names,
      inputs and colocation groups (inputs from outside become ``$unbound_inputs_<name>``, listed in the
      ``unbound_inputs`` collection), and from the collections' variables, savers and node names; the
      SaverDef is stripped too, or left out when its operations are outside the scope;
    - ``clear_devices``: the nodes' devices are emptied;
    - ``clear_extraneous_savers``: the nodes in the name scopes of other savers' save and restore ops are
      left out, and the ``savers`` collection holds only the MetaGraphDef's own SaverDef.

    Signatures and asset files are exported as they are. The ``meta_info_def.stripped_op_list`` lists the
    OpDefs of the ops of the exported graph, as TensorFlow's export lists them: a list given is kept, an empty
    one is filled, and a graph cut down by ``export_scope`` or ``clear_extraneous_savers`` lists only the ops
    left (the definitions from the list given, else fastckpt's: see ``fastckpt.graphs.op_defs``).
    ``meta_graph_def`` is fastckpt's message or TensorFlow's. ``storage_options``: configuration of object
    stores (object_store's keys such as ``aws_endpoint``, ``aws_region``; see README "Object stores").

    >>> import fastckpt
    >>> from fastckpt.graphs.saver_graph import saver_meta_graph
    >>> meta = saver_meta_graph({"tower/w": (fastckpt.float32, [2])}, fastckpt.Saver().saver_def)
    >>> tower = export_meta_graph(None, meta, export_scope="tower")
    >>> sorted(node.name for node in tower.graph_def.node)
    ['w', 'w/Assign', 'w/Initializer/zeros', 'w/read']
    >>> tower.HasField("saver_def")  # its save/ and restore operations are outside the scope
    False

    Raises:
        fastckpt.errors.UnimplementedError: ``export_scope`` with a queue runner or control flow collection.
        fastckpt.errors.InvalidTypeError: ``meta_graph_def`` is no MetaGraphDef.
    """
    filename = os.fspath(filename) if filename is not None else None
    exported = protos.as_message(meta_graph_def, protos.MetaGraphDef)
    if collection_list is not None or export_scope or clear_devices or clear_extraneous_savers:
        exported = _exported(exported, collection_list, export_scope, clear_devices, clear_extraneous_savers, filename)
    exported = with_stripped_op_list(exported, refresh=bool(export_scope or clear_extraneous_savers))
    if filename is not None:
        _write_message(filename, exported, as_text, _paths.stores(storage_options))
    return exported


def import_scoped_meta_graph(
    meta_graph_or_file,
    import_scope: Optional[str] = None,
    clear_devices: bool = False,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> Tuple["protos.MetaGraphDef", "protos.MetaGraphDef"]:
    """A meta graph (a ``.meta`` file, or a MetaGraphDef) as given, and as TensorFlow's graph holds it once
    imported: with ``import_scope``, node names, inputs and colocation groups, and the names in the SaverDef
    and the collections (variables, savers, node lists, strings) under that name scope; with
    ``clear_devices``, the nodes' devices emptied. ``storage_options``: configuration of object stores (object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.MissingFileError, fastckpt.errors.UnparsableFileError: the file is missing or no
            MetaGraphDef (``OSError``, as TensorFlow raises; also NotFoundError and DataLossError).
        fastckpt.errors.UnimplementedError: ``import_scope`` with a queue runner or control flow collection.
    """
    meta, source = _meta_graph_argument(meta_graph_or_file, _paths.stores(storage_options))
    return meta, _imported(meta, _without_slash(import_scope), clear_devices, source)
