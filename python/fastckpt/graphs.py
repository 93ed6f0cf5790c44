"""Graphs as data, without TensorFlow: MetaGraphDefs (``.meta``), GraphDefs (``.pb``), and freezing.

>>> import fastckpt
>>> meta = fastckpt.graphs.saver_meta_graph({"v1": (fastckpt.dtypes.float32, [1])}, fastckpt.Saver().saver_def)
>>> [node.name for node in meta.graph_def.node][:3]
['v1', 'v1/read', 'save/filename/input']
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

from . import errors
from .checkpoint_state import atomic_write
from .dtypes import DType, as_dtype
from .protos import GraphDef, MetaGraphDef, NodeDef, SaverDef, TensorProto, VariableDef

__all__ = [
    "convert_variables_to_constants",
    "export_meta_graph",
    "extract_sub_graph",
    "graph_variables",
    "import_meta_graph",
    "make_tensor_proto",
    "read_graph",
    "read_meta_graph",
    "saver_meta_graph",
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


def export_meta_graph(filename: "str | os.PathLike[str]", meta_graph_def: "MetaGraphDef", as_text: bool = False) -> None:
    """Writes a MetaGraphDef to ``filename``, binary or in text format, replacing the file atomically."""
    _write_message(os.fspath(filename), meta_graph_def, as_text)


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
    """The value of a TensorProto (``tensor_content``, or typed values, a single one standing for all)."""
    dtype = as_dtype(proto.dtype)
    shape = [d.size for d in proto.tensor_shape.dim]
    count = int(np.prod(shape, dtype=np.int64))
    if dtype.is_string:
        values = list(proto.string_val)
    elif proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype.numpy_dtype.newbyteorder("<")).astype(dtype.numpy_dtype).reshape(shape)
    else:
        field = {
            "float32": "float_val", "float64": "double_val", "int64": "int64_val", "uint32": "uint32_val",
            "uint64": "uint64_val", "bool": "bool_val", "complex64": "scomplex_val", "complex128": "dcomplex_val",
            "float16": "half_val", "bfloat16": "half_val",
        }.get(dtype.name, "int_val")
        values = list(getattr(proto, field))
        if dtype.name in ("float16", "bfloat16"):
            values = np.array(values, dtype=np.uint16).view(dtype.numpy_dtype).tolist()
        if dtype.name.startswith("complex"):
            values = [complex(r, i) for r, i in zip(values[::2], values[1::2])]
    array = np.empty(count, dtype=dtype.numpy_dtype)
    if values:
        array[: len(values)] = values
        array[len(values):] = values[-1]
    elif count:
        array[:] = dtype.numpy_dtype.type(0) if not dtype.is_string else b""
    return array.reshape(shape)


# Saver graphs ----------------------------------------------------------------------------------------------

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


def saver_meta_graph(
    variables: Mapping[str, Tuple[DType, Sequence[int]]], saver_def: "SaverDef"
) -> "MetaGraphDef":
    """A MetaGraphDef that TensorFlow imports: ``variables`` (``{name: (dtype, shape)}``) as ``VariableV2``
    nodes with their ``/read`` identities, and the save and restore operations TensorFlow's Saver builds
    (``save/Const:0`` fed with the prefix, ``save/control_dependency:0`` to save, ``save/restore_all``)."""
    meta = MetaGraphDef()
    graph = meta.graph_def
    graph.versions.producer = _GRAPH_PRODUCER
    names = sorted(variables)
    for name in names:
        dtype, shape = variables[name]
        variable = _node(graph, name, "VariableV2")
        variable.attr["dtype"].type = dtype.as_datatype_enum
        variable.attr["shape"].shape.SetInParent()
        for size in shape:
            variable.attr["shape"].shape.dim.add(size=int(size))
        read = _node(graph, f"{name}/read", "Identity", [name])
        read.attr["T"].type = dtype.as_datatype_enum
        read.attr["_class"].list.s.append(f"loc:@{name}".encode())
    if names:
        _const(graph, "save/filename/input", b"model")
        _node(graph, "save/filename", "PlaceholderWithDefault", ["save/filename/input"]).attr["dtype"].type = 7
        graph.node[-1].attr["shape"].shape.SetInParent()
        _node(graph, "save/Const", "PlaceholderWithDefault", ["save/filename"]).attr["dtype"].type = 7
        graph.node[-1].attr["shape"].shape.SetInParent()
        dtypes = [variables[name][0].as_datatype_enum for name in names]
        for op in ("SaveV2", "RestoreV2"):
            _const(graph, f"save/{op}/tensor_names", [n.encode("utf-8", "surrogateescape") for n in names])
            _const(graph, f"save/{op}/shape_and_slices", [b""] * len(names))
        save = _node(graph, "save/SaveV2", "SaveV2", ["save/Const", "save/SaveV2/tensor_names", "save/SaveV2/shape_and_slices", *names])
        save.attr["dtypes"].list.type.extend(dtypes)
        done = _node(graph, "save/control_dependency", "Identity", ["save/Const", "^save/SaveV2"])
        done.attr["T"].type = 7
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


def graph_variables(graph: Union["MetaGraphDef", "GraphDef"]) -> Dict[str, str]:
    """``{checkpoint_name: name}`` of a graph's variables (ref and resource): from the ``variables``
    collection where a meta graph has one, else from the graph's variable nodes. A partitioned variable
    appears once, under its full name, for the whole tensor."""
    variables: Dict[str, str] = {}
    if isinstance(graph, MetaGraphDef):
        collection = graph.collection_def.get("variables")
        if collection is not None and collection.bytes_list.value:
            for serialized in collection.bytes_list.value:
                variable = VariableDef.FromString(serialized)
                checkpoint_name = variable.save_slice_info_def.full_name or variable.variable_name.rsplit(":", 1)[0]
                variables[checkpoint_name] = checkpoint_name
            return variables
        graph = graph.graph_def
    for node in graph.node:
        if node.op in _VARIABLE_OPS + _RESOURCE_VARIABLE_OPS:
            variables[node.name] = node.name
    return variables


def import_meta_graph(path: "str | os.PathLike[str]"):
    """A Saver for the variables of a ``.meta`` file (``fastckpt.Saver``, with the MetaGraphDef attached as
    ``.meta_graph_def``): ``import_meta_graph("model.ckpt.meta").restore("model.ckpt")`` returns
    ``{variable_name: value}``."""
    from .saver import Saver

    meta = read_meta_graph(path)
    settings = meta.saver_def
    saver = Saver(
        graph_variables(meta),
        max_to_keep=settings.max_to_keep if meta.HasField("saver_def") else 5,
        keep_checkpoint_every_n_hours=settings.keep_checkpoint_every_n_hours or 10000.0,
        sharded=settings.sharded,
    )
    saver.meta_graph_def = meta
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
