"""Graphs as data, without TensorFlow: MetaGraphDefs (``.meta``), GraphDefs (``.pb``), and freezing.

>>> import fastckpt
>>> meta = fastckpt.graphs.saver_meta_graph({"v1": (fastckpt.dtypes.float32, [1])}, fastckpt.Saver().saver_def)
>>> [node.name for node in meta.graph_def.node][:4]
['v1/Initializer/zeros', 'v1', 'v1/Assign', 'v1/read']
>>> meta.saver_def.restore_op_name
'save/restore_all'
"""
from __future__ import annotations

import os
from collections import deque
from typing import Dict, Iterable, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np
from google.protobuf import message as protobuf_message
from google.protobuf import text_format

from . import _fastckpt, errors
from .checkpoint_state import atomic_write
from .dtypes import STRING_ENUM, DType, as_dtype, dtype_of_enum
from .protos import GraphDef, MetaGraphDef, NodeDef, SaverDef, TensorProto, VariableDef

__all__ = [
    "convert_variables_to_constants",
    "export_meta_graph",
    "extract_sub_graph",
    "graph_variables",
    "import_meta_graph",
    "make_tensor_proto",
    "prepend_name_scope",
    "read_graph",
    "read_meta_graph",
    "saver_meta_graph",
    "strip_name_scope",
    "tensor_proto_to_numpy",
    "write_graph",
]

# A GraphDef producer version of the TensorFlow 2 era; graphs are readable by any TensorFlow since.
_GRAPH_PRODUCER = 1205
_VARIABLE_OPS = ("VariableV2", "Variable")
_RESOURCE_VARIABLE_OPS = ("VarHandleOp",)


# Reading and writing ---------------------------------------------------------------------------------------

def _read_message(path: "str | os.PathLike[str]", message_type):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise errors.NotFoundError(f"no such file: {path}", path) from None
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
        raise errors.DataLossError(
            f"{path} is neither a binary nor a text {message_type.DESCRIPTOR.name}: {err}", path
        ) from None


def read_meta_graph(path: "str | os.PathLike[str]") -> "MetaGraphDef":
    """Reads a MetaGraphDef in binary or text format (a ``.meta`` file)."""
    return _read_message(path, MetaGraphDef)


def read_graph(path: "str | os.PathLike[str]") -> "GraphDef":
    """Reads a GraphDef in binary or text format (a ``.pb`` or ``.pbtxt`` file)."""
    return _read_message(path, GraphDef)


def _write_message(filename: str, message, as_text: bool) -> None:
    atomic_write(filename, text_format.MessageToString(message) if as_text else message.SerializeToString())


def write_graph(graph_def: "GraphDef", logdir: str, name: str, as_text: bool = True) -> str:
    """Writes a GraphDef to ``logdir/name`` (as ``tf.io.write_graph``); returns the path."""
    os.makedirs(logdir, exist_ok=True)
    path = os.path.join(logdir, name)
    _write_message(path, graph_def, as_text)
    return path


# Tensors as protos -----------------------------------------------------------------------------------------

def make_tensor_proto(value) -> "TensorProto":
    """A TensorProto of a numpy array (raw bytes in ``tensor_content``; strings in ``string_val``)."""
    from .writer import to_numpy

    array = to_numpy(value)
    dtype = as_dtype(array.dtype)
    proto = TensorProto(dtype=dtype.as_datatype_enum)
    proto.tensor_shape.SetInParent()
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if dtype.is_string:
        proto.string_val.extend(array.reshape(-1).tolist())
    else:
        proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return proto


def tensor_proto_to_numpy(proto: "TensorProto") -> np.ndarray:
    """The value of a TensorProto, decoded by the core with TensorFlow's rule: ``tensor_content`` holds the
    tensor's bytes; otherwise the typed values, the last one repeated over the elements left, and none at
    all meaning zeros (empty strings).

    Raises:
        fastckpt.errors.DataLossError: more values than elements, or content of the wrong length.
    """
    dtype_enum, shape, values = _fastckpt.decode_tensor_proto(proto.SerializeToString())
    dtype = dtype_of_enum(dtype_enum)
    if dtype.is_string:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    little_endian = dtype.numpy_dtype.newbyteorder("<")
    return values.view(little_endian).astype(dtype.numpy_dtype, copy=False).reshape(shape)


# Saver graphs ----------------------------------------------------------------------------------------------

# The dtypes TensorFlow's optimizers train (Optimizer._valid_dtypes): a Saver graph's other variables (steps,
# counters, strings) are not trainable.
_TRAINABLE_DTYPES = frozenset(("float16", "bfloat16", "float32", "float64", "complex64", "complex128"))


def _node(graph: "GraphDef", name: str, op: str, inputs: Sequence[str] = ()) -> "NodeDef":
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    return node


def _const(graph: "GraphDef", name: str, value) -> "NodeDef":
    proto = make_tensor_proto(value)
    node = _node(graph, name, "Const")
    node.attr["dtype"].type = proto.dtype
    node.attr["value"].tensor.CopyFrom(proto)
    return node


def _colocate(node: "NodeDef", name: str) -> None:
    node.attr["_class"].list.s.append(f"loc:@{name}".encode())


def _variable_nodes(graph: "GraphDef", name: str, dtype: DType, shape: Sequence[int]) -> None:
    """The nodes ``tf.compat.v1.get_variable(name, shape, dtype, initializer=tf.zeros_initializer())`` builds
    for a ref variable: ``name/Initializer/zeros``, ``name``, ``name/Assign`` (its initializer) and
    ``name/read`` (its snapshot)."""
    enum = dtype.as_datatype_enum
    zeros = _node(graph, f"{name}/Initializer/zeros", "Const")
    zeros.attr["dtype"].type = enum
    # A TensorProto with a dtype and a shape and no values is all zeros to TensorFlow: no value as big as the
    # variable is stored in the graph.
    zeros.attr["value"].tensor.dtype = enum
    zeros.attr["value"].tensor.tensor_shape.SetInParent()
    for size in shape:
        zeros.attr["value"].tensor.tensor_shape.dim.add(size=int(size))
    _colocate(zeros, name)
    variable = _node(graph, name, "VariableV2")
    variable.attr["dtype"].type = enum
    variable.attr["shape"].shape.CopyFrom(zeros.attr["value"].tensor.tensor_shape)
    variable.attr["container"].s = b""
    variable.attr["shared_name"].s = b""
    assign = _node(graph, f"{name}/Assign", "Assign", [name, zeros.name])
    assign.attr["T"].type = enum
    assign.attr["validate_shape"].b = True
    assign.attr["use_locking"].b = True
    _colocate(assign, name)
    read = _node(graph, f"{name}/read", "Identity", [name])
    read.attr["T"].type = enum
    _colocate(read, name)


def saver_meta_graph(
    variables: Mapping[str, Tuple[DType, Sequence[int]]],
    saver_def: "SaverDef",
    trainable: Optional[Iterable[str]] = None,
) -> "MetaGraphDef":
    """A MetaGraphDef that TensorFlow imports, as TensorFlow's Saver exports it for the same variables.

    ``variables`` (``{name: (dtype, shape)}``) become ref variables as ``tf.compat.v1.get_variable`` builds
    them (``VariableV2`` nodes, their ``/read`` snapshots and their ``/Assign`` initializers, which set them to
    zeros), listed in the ``variables`` and ``trainable_variables`` collections as VariableDefs; then the
    save and restore operations TensorFlow's Saver builds (``save/Const:0`` fed with the prefix,
    ``save/control_dependency:0`` to save, ``save/restore_all``). ``trainable`` names the trainable variables;
    by default those of floating point and complex dtypes.

    >>> from fastckpt import Saver
    >>> meta = saver_meta_graph({"w": (as_dtype("float32"), [2]), "step": (as_dtype("int64"), [])}, Saver().saver_def)
    >>> VariableDef.FromString(meta.collection_def["trainable_variables"].bytes_list.value[0])
    variable_name: "w:0"
    initializer_name: "w/Assign"
    snapshot_name: "w/read:0"
    initial_value_name: "w/Initializer/zeros:0"
    trainable: true
    <BLANKLINE>
    """
    meta = MetaGraphDef()
    graph = meta.graph_def
    graph.versions.producer = _GRAPH_PRODUCER
    names = sorted(variables)
    trainable = (
        {name for name in names if variables[name][0].name in _TRAINABLE_DTYPES}
        if trainable is None
        else set(trainable)
    )
    for name in names:
        dtype, shape = variables[name]
        _variable_nodes(graph, name, dtype, shape)
        variable_def = VariableDef(
            variable_name=f"{name}:0",
            initial_value_name=f"{name}/Initializer/zeros:0",
            initializer_name=f"{name}/Assign",
            snapshot_name=f"{name}/read:0",
            trainable=name in trainable,
        ).SerializeToString()
        meta.collection_def["variables"].bytes_list.value.append(variable_def)
        if name in trainable:
            meta.collection_def["trainable_variables"].bytes_list.value.append(variable_def)
    if names:
        _const(graph, "save/filename/input", b"model")
        _node(graph, "save/filename", "PlaceholderWithDefault", ["save/filename/input"]).attr["dtype"].type = STRING_ENUM
        graph.node[-1].attr["shape"].shape.SetInParent()
        _node(graph, "save/Const", "PlaceholderWithDefault", ["save/filename"]).attr["dtype"].type = STRING_ENUM
        graph.node[-1].attr["shape"].shape.SetInParent()
        dtypes = [variables[name][0].as_datatype_enum for name in names]
        for op in ("SaveV2", "RestoreV2"):
            _const(graph, f"save/{op}/tensor_names", [n.encode("utf-8", "surrogateescape") for n in names])
            _const(graph, f"save/{op}/shape_and_slices", [b""] * len(names))
        save = _node(graph, "save/SaveV2", "SaveV2", ["save/Const", "save/SaveV2/tensor_names", "save/SaveV2/shape_and_slices", *names])
        save.attr["dtypes"].list.type.extend(dtypes)
        done = _node(graph, "save/control_dependency", "Identity", ["save/Const", "^save/SaveV2"])
        done.attr["T"].type = STRING_ENUM
        done.attr["_class"].list.s.append(b"loc:@save/Const")
        restore = _node(graph, "save/RestoreV2", "RestoreV2", ["save/Const", "save/RestoreV2/tensor_names", "save/RestoreV2/shape_and_slices"])
        restore.attr["dtypes"].list.type.extend(dtypes)
        assigns = []
        for i, name in enumerate(names):
            assign_name = "save/Assign" if i == 0 else f"save/Assign_{i}"
            assign = _node(graph, assign_name, "Assign", [name, "save/RestoreV2" if i == 0 else f"save/RestoreV2:{i}"])
            assign.attr["T"].type = dtypes[i]
            assign.attr["_class"].list.s.append(f"loc:@{name}".encode())
            assigns.append("^" + assign_name)
        _node(graph, "save/restore_all", "NoOp", assigns)
        meta.saver_def.CopyFrom(saver_def)
    return meta


# Ops that read tensors from a checkpoint (input 1: their tensor names), and that assign what they read.
_RESTORE_OPS = ("RestoreV2", "RestoreSlice", "Restore")
_ASSIGN_OPS = ("Assign", "AssignVariableOp")


def _restored_keys(graph_def: "GraphDef", restore_op_name: Optional[str] = None) -> Dict[str, str]:
    """``{variable node: checkpoint key}`` read from the restore operations of a saver graph: each
    ``Assign``/``AssignVariableOp`` fed (through identities) by output ``i`` of a restore op assigns the
    tensor named by entry ``i`` of its tensor names. Only the subgraph of ``restore_op_name`` when given."""
    by_name = {node.name: node for node in graph_def.node}
    if restore_op_name is not None and _node_name(restore_op_name) in by_name:
        reachable: Set[str] = set()
        wanted = deque([_node_name(restore_op_name)])
        while wanted:
            name = wanted.popleft()
            if name in reachable or name not in by_name:
                continue
            reachable.add(name)
            wanted.extend(_node_name(i) for i in by_name[name].input)
        nodes = [by_name[name] for name in reachable]
    else:
        nodes = list(graph_def.node)
    keys: Dict[str, str] = {}
    for node in nodes:
        if node.op not in _ASSIGN_OPS or len(node.input) < 2:
            continue
        source = node.input[1]
        while _node_name(source) in by_name and by_name[_node_name(source)].op == "Identity":
            source = by_name[_node_name(source)].input[0]
        restore = by_name.get(_node_name(source))
        if restore is None or restore.op not in _RESTORE_OPS or len(restore.input) < 2:
            continue
        names = by_name.get(_node_name(restore.input[1]))
        if names is None or names.op != "Const":
            continue
        index = int(source.rsplit(":", 1)[1]) if ":" in source else 0
        values = tensor_proto_to_numpy(names.attr["value"].tensor).reshape(-1)
        if index < len(values):
            keys[_node_name(node.input[0])] = values[index].decode("utf-8", "surrogateescape")
    return keys


def _variable_nodes_to_names(graph: Union["MetaGraphDef", "GraphDef"]) -> Dict[str, str]:
    """``{variable node: variable name}``: from the ``variables`` collection where a meta graph has one (the
    partitions of a partitioned variable named after the whole), else the graph's variable nodes."""
    if isinstance(graph, MetaGraphDef):
        collection = graph.collection_def.get("variables")
        if collection is not None and collection.bytes_list.value:
            names = {}
            for serialized in collection.bytes_list.value:
                variable = VariableDef.FromString(serialized)
                node = _node_name(variable.variable_name)
                names[node] = variable.save_slice_info_def.full_name or node
            return names
        graph = graph.graph_def
    return {node.name: node.name for node in graph.node if node.op in _VARIABLE_OPS + _RESOURCE_VARIABLE_OPS}


def graph_variables(graph: Union["MetaGraphDef", "GraphDef"]) -> Dict[str, str]:
    """``{checkpoint_name: name}`` of a graph's variables (ref and resource): from the ``variables``
    collection where a meta graph has one, else from the graph's variable nodes. A partitioned variable
    appears once, under its full name, for the whole tensor. Checkpoint names are those the graph's restore
    operations read (the saver's, for a meta graph with one); a variable no saver restores is saved under
    its name.

    >>> import fastckpt
    >>> graph_variables(saver_meta_graph({"tower/w": (as_dtype("float32"), [2])}, fastckpt.Saver().saver_def))
    {'tower/w': 'tower/w'}
    """
    meta = graph if isinstance(graph, MetaGraphDef) else None
    restore_op = meta.saver_def.restore_op_name if meta is not None and meta.HasField("saver_def") else None
    keys = _restored_keys(meta.graph_def if meta is not None else graph, restore_op)
    return {keys.get(node, name): name for node, name in _variable_nodes_to_names(graph).items()}


# Name scopes: importing and exporting meta graphs ----------------------------------------------------------

# Collections of VariableDefs and of SaverDefs (those with proto functions registered in TensorFlow).
_VARIABLE_COLLECTIONS = frozenset(
    ("variables", "trainable_variables", "local_variables", "model_variables", "moving_average_variables",
     "metric_variables", "global_step")
)
_SAVERS = "savers"
# Collections of protos fastckpt has no definition of (QueueRunnerDef, CondContextDef, WhileContextDef): the
# names inside them cannot be put under, or taken out of, a name scope.
_OPAQUE_COLLECTIONS = frozenset(("queue_runners", "cond_context", "while_context"))
# A scoped export names the inputs from outside the scope `$unbound_inputs_<input>` and lists them here.
_UNBOUND_INPUTS = "unbound_inputs"
_UNBOUND_INPUT_PREFIX = "$unbound_inputs_"
_SAVE_AND_RESTORE_OPS = frozenset(
    ("SaveV2", "Save", "SaveSlice", "LegacySave", "LegacySaveSlice", "RestoreV2", "Restore", "RestoreSlice",
     "LegacyRestore", "LegacyRestoreSlice")
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
            return f"{marker}{scope}/{name[len(marker):]}"
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
            return marker + name[len(head):].lstrip("/")
    return name


def _rename_bytes(value: bytes, rename) -> bytes:
    return rename(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def _rename_variable_def(variable: "VariableDef", rename) -> None:
    for field in ("variable_name", "initial_value_name", "initializer_name", "snapshot_name"):
        if getattr(variable, field):
            setattr(variable, field, rename(getattr(variable, field)))
    if variable.HasField("save_slice_info_def"):
        variable.save_slice_info_def.full_name = rename(variable.save_slice_info_def.full_name)


def _rename_saver_def(saver_def: "SaverDef", rename) -> None:
    for field in ("filename_tensor_name", "save_tensor_name", "restore_op_name"):
        setattr(saver_def, field, rename(getattr(saver_def, field)))


def _opaque_collection_error(key: str, source: Optional[str]) -> errors.UnimplementedError:
    where = f" of {source}" if source else ""
    return errors.UnimplementedError(
        f"the {key!r} collection{where} holds protos fastckpt does not define: its names cannot be moved into "
        "or out of a name scope",
        source,
    )


def _imported(meta: "MetaGraphDef", import_scope: str, clear_devices: bool, source: Optional[str]) -> "MetaGraphDef":
    """The MetaGraphDef TensorFlow's graph holds after ``import_meta_graph(meta, clear_devices, import_scope)``:
    ``import_graph_def`` puts node names, inputs and colocation groups under the scope, and the collections
    and the SaverDef are rebuilt under it (VariableDef and SaverDef names, node lists and strings)."""
    out = MetaGraphDef()
    out.CopyFrom(meta)
    if clear_devices:
        for node in out.graph_def.node:
            node.device = ""
    if not import_scope:
        return out

    def scoped(name: str) -> str:
        return prepend_name_scope(name, import_scope)

    for node in out.graph_def.node:
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
    for key, collection in out.collection_def.items():
        kind = collection.WhichOneof("kind")
        if key == _UNBOUND_INPUTS:
            continue
        if key in _OPAQUE_COLLECTIONS:
            raise _opaque_collection_error(key, source)
        if kind == "bytes_list" and key in _VARIABLE_COLLECTIONS | {_SAVERS}:
            values = collection.bytes_list.value
            for i, serialized in enumerate(values):
                proto = (SaverDef if key == _SAVERS else VariableDef).FromString(serialized)
                (_rename_saver_def if key == _SAVERS else _rename_variable_def)(proto, scoped)
                values[i] = proto.SerializeToString()
        elif kind == "node_list":
            collection.node_list.value[:] = [scoped(name) for name in collection.node_list.value]
        elif kind == "bytes_list":
            # TensorFlow puts the strings of a collection under the scope too, as if they were names.
            collection.bytes_list.value[:] = [_rename_bytes(value, scoped) for value in collection.bytes_list.value]
    if out.HasField("saver_def"):
        _rename_saver_def(out.saver_def, scoped)
    return out


def _scope_of(name: str) -> str:
    name = name[1:] if name.startswith("^") else name
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _extraneous_saver_nodes(graph_def: "GraphDef", saver_def: Optional["SaverDef"]) -> Set[str]:
    """The nodes of the savers other than ``saver_def``'s, as TensorFlow finds them: every node in the name
    scope of a save or restore op, except the scopes of ``saver_def``'s ops."""
    saver_nodes = {node.name for node in graph_def.node if node.op in _SAVE_AND_RESTORE_OPS}
    scopes = {_scope_of(name) + "/" for name in saver_nodes if _scope_of(name) not in saver_nodes}
    if saver_def is not None:
        scopes -= {
            _scope_of(_node_name(saver_def.save_tensor_name)) + "/",
            _scope_of(_node_name(saver_def.restore_op_name)) + "/",
        }
    return {node.name for node in graph_def.node if any(node.name.startswith(scope) for scope in scopes)}


def _exported_graph(
    graph_def: "GraphDef", export_scope: Optional[str], exclude: Set[str], clear_devices: bool
) -> Tuple["GraphDef", list]:
    """The nodes under ``export_scope`` (all without one) but those excluded, with the scope stripped from
    their names, inputs, colocation groups and loop frame names, as TensorFlow's ``_node_def`` strips it;
    and the inputs from outside the scope, renamed ``$unbound_inputs_<input>``."""
    out = GraphDef()
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
                new.input[i] = control + _UNBOUND_INPUT_PREFIX + name[len(control):]
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
    from .protos import message_class

    def in_scope(name: str) -> bool:
        return not export_scope or name.startswith(export_scope)

    def stripped(name: str) -> str:
        return strip_name_scope(name, export_scope)

    kind = collection.WhichOneof("kind")
    out = message_class("tensorflow.CollectionDef")()
    if kind == "bytes_list" and key in _VARIABLE_COLLECTIONS:
        for serialized in collection.bytes_list.value:
            variable = VariableDef.FromString(serialized)
            if in_scope(variable.variable_name):
                _rename_variable_def(variable, stripped)
                out.bytes_list.value.append(variable.SerializeToString())
    elif kind == "bytes_list" and key == _SAVERS:
        for serialized in collection.bytes_list.value:
            saver_def = SaverDef.FromString(serialized)
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
    meta: "MetaGraphDef",
    collection_list: Optional[Iterable[str]],
    export_scope: Optional[str],
    clear_devices: bool,
    clear_extraneous_savers: bool,
    source: Optional[str],
) -> "MetaGraphDef":
    """What TensorFlow's ``export_meta_graph(graph_def=..., saver_def=..., ...)`` exports of ``meta``."""
    from .protos import message_class

    collection_list = None if collection_list is None else list(collection_list)
    saver_def = meta.saver_def if meta.HasField("saver_def") else None
    exclude = _extraneous_saver_nodes(meta.graph_def, saver_def) if clear_extraneous_savers else set()
    out = MetaGraphDef()
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


def _meta_graph_argument(meta_graph_or_file) -> Tuple["MetaGraphDef", Optional[str]]:
    """The MetaGraphDef (fastckpt's or TensorFlow's message, or a file of one) and its file name."""
    descriptor = getattr(meta_graph_or_file, "DESCRIPTOR", None)
    if descriptor is not None and descriptor.full_name == "tensorflow.MetaGraphDef":
        if isinstance(meta_graph_or_file, MetaGraphDef):
            return meta_graph_or_file, None
        return MetaGraphDef.FromString(meta_graph_or_file.SerializeToString()), None
    path = os.fspath(meta_graph_or_file)
    return read_meta_graph(path), path


def export_meta_graph(
    filename: "Optional[str | os.PathLike[str]]",
    meta_graph_def: "MetaGraphDef",
    as_text: bool = False,
    collection_list: Optional[Iterable[str]] = None,
    export_scope: Optional[str] = None,
    clear_devices: bool = False,
    clear_extraneous_savers: bool = False,
) -> "MetaGraphDef":
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

    Signatures and asset files are exported as they are.

    >>> import fastckpt
    >>> meta = saver_meta_graph({"tower/w": (as_dtype("float32"), [2])}, fastckpt.Saver().saver_def)
    >>> tower = export_meta_graph(None, meta, export_scope="tower")
    >>> sorted(node.name for node in tower.graph_def.node)
    ['w', 'w/Assign', 'w/Initializer/zeros', 'w/read']
    >>> tower.HasField("saver_def")  # its save/ and restore operations are outside the scope
    False

    Raises:
        fastckpt.errors.UnimplementedError: ``export_scope`` with a queue runner or control flow collection.
    """
    filename = os.fspath(filename) if filename is not None else None
    exported = meta_graph_def
    if collection_list is not None or export_scope or clear_devices or clear_extraneous_savers:
        exported = _exported(
            meta_graph_def, collection_list, export_scope, clear_devices, clear_extraneous_savers, filename
        )
    if filename is not None:
        _write_message(filename, exported, as_text)
    return exported


def import_meta_graph(meta_graph_or_file, clear_devices: bool = False, import_scope: Optional[str] = None):
    """A Saver for the variables of a meta graph (a ``.meta`` file, or a MetaGraphDef), as
    ``tf.compat.v1.train.import_meta_graph`` returns: ``import_meta_graph("model.ckpt.meta").restore("model.ckpt")``
    returns ``{variable_name: value}``. The MetaGraphDef as TensorFlow's graph then holds it is attached as
    ``.meta_graph_def``; None is returned when the graph has no variables, as TensorFlow does.

    With ``import_scope``, the graph goes under that name scope: node names, inputs and colocation groups,
    and the names in the SaverDef and the collections (variables, savers, node lists, strings), exactly as
    TensorFlow imports it. The Saver restores each variable from the checkpoint under its name there, as
    TensorFlow's does: ``v1`` in the checkpoint is restored as ``tower/v1``. ``clear_devices`` empties the
    nodes' devices.

    >>> import fastckpt
    >>> meta = saver_meta_graph({"v1": (as_dtype("float32"), [1])}, fastckpt.Saver().saver_def)
    >>> saver = import_meta_graph(meta, import_scope="tower")
    >>> saver.meta_graph_def.saver_def.restore_op_name
    'tower/save/restore_all'
    >>> [node.input for node in saver.meta_graph_def.graph_def.node if node.name == "tower/v1/read"]
    [['tower/v1']]

    Raises:
        fastckpt.errors.NotFoundError, fastckpt.errors.DataLossError: the file is missing or no MetaGraphDef.
        fastckpt.errors.UnimplementedError: ``import_scope`` with a queue runner or control flow collection.
    """
    from .saver import Saver

    meta, source = _meta_graph_argument(meta_graph_or_file)
    imported = _imported(meta, _without_slash(import_scope), clear_devices, source)
    # TensorFlow's Saver restores what the SaverDef's restore op restores, under the checkpoint names it reads.
    keys = _restored_keys(meta.graph_def, meta.saver_def.restore_op_name) if meta.HasField("saver_def") else {}
    if keys:
        variables = {keys[node]: name for node, name in _variable_nodes_to_names(meta).items() if node in keys}
    else:
        variables = graph_variables(meta)
    if not variables:
        return None
    names = {checkpoint_name: prepend_name_scope(name, import_scope) for checkpoint_name, name in variables.items()}
    settings = meta.saver_def
    saver = Saver(
        names,
        max_to_keep=settings.max_to_keep if meta.HasField("saver_def") else 5,
        keep_checkpoint_every_n_hours=settings.keep_checkpoint_every_n_hours or 10000.0,
        sharded=settings.sharded,
    )
    saver.meta_graph_def = imported
    return saver


# Freezing --------------------------------------------------------------------------------------------------

def _node_name(input_name: str) -> str:
    return input_name.lstrip("^").split(":")[0]


def extract_sub_graph(graph_def: "GraphDef", dest_nodes: Iterable[str]) -> "GraphDef":
    """The nodes ``dest_nodes`` need (through inputs and control inputs), in the graph's order."""
    by_name = {node.name: node for node in graph_def.node}
    wanted = deque(dest_nodes)
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise errors.InvalidArgumentError(f"output nodes not in the graph: {missing}")
    keep: Set[str] = set()
    while wanted:
        name = wanted.popleft()
        if name in keep:
            continue
        keep.add(name)
        wanted.extend(_node_name(i) for i in by_name[name].input if _node_name(i) in by_name)
    out = GraphDef()
    out.node.extend(node for node in graph_def.node if node.name in keep)
    out.library.CopyFrom(graph_def.library)
    out.versions.CopyFrom(graph_def.versions)
    return out


def convert_variables_to_constants(
    graph_def: "GraphDef",
    checkpoint,
    output_node_names: Sequence[str],
    variable_names_whitelist: Optional[Iterable[str]] = None,
    variable_names_blacklist: Optional[Iterable[str]] = None,
) -> "GraphDef":
    """Freezes a graph as ``tf.compat.v1.graph_util.convert_variables_to_constants`` does, with values from
    a checkpoint instead of a session.

    The graph is pruned to what ``output_node_names`` need; ``VariableV2`` and ``VarHandleOp`` nodes become
    ``Const`` nodes of the same name holding the checkpoint's values, and ``ReadVariableOp`` nodes reading
    them become ``Identity``. ``checkpoint`` is a CheckpointReader or anything ``load_checkpoint`` opens.
    """
    from .reader import CheckpointReader

    reader = checkpoint if isinstance(checkpoint, CheckpointReader) else CheckpointReader(checkpoint)
    whitelist = set(variable_names_whitelist) if variable_names_whitelist is not None else None
    blacklist = set(variable_names_blacklist or ())
    graph = extract_sub_graph(graph_def, output_node_names)

    def frozen(node) -> bool:
        return (
            node.op in _VARIABLE_OPS + _RESOURCE_VARIABLE_OPS
            and (whitelist is None or node.name in whitelist)
            and node.name not in blacklist
        )

    constants = {node.name for node in graph.node if frozen(node)}
    resource_constants = {node.name for node in graph.node if node.name in constants and node.op in _RESOURCE_VARIABLE_OPS}
    out = GraphDef()
    for node in graph.node:
        if node.name in constants:
            if not reader.has_tensor(node.name):
                raise errors.NotFoundError(
                    f"variable {node.name!r} of the graph is not in checkpoint {reader.path}", reader.path, node.name
                )
            value = reader.get_tensor(node.name)
            proto = make_tensor_proto(value)
            const = out.node.add(name=node.name, op="Const")
            const.attr["dtype"].type = proto.dtype
            const.attr["value"].tensor.CopyFrom(proto)
            if node.device:
                const.device = node.device
        elif node.op == "ReadVariableOp" and node.input and _node_name(node.input[0]) in resource_constants:
            identity = out.node.add(name=node.name, op="Identity", device=node.device)
            identity.input.extend(node.input)
            identity.attr["T"].CopyFrom(node.attr["dtype"])
        else:
            out.node.add().CopyFrom(node)
    out.library.CopyFrom(graph.library)
    out.versions.CopyFrom(graph.versions)
    return out
