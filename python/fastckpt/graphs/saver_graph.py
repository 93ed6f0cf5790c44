"""The graph a Saver writes into its ``.meta`` files, and which variables a graph's saver restores.

>>> import fastckpt
>>> meta = saver_meta_graph({"v1": (fastckpt.dtypes.float32, [1])}, fastckpt.Saver().saver_def)
>>> [node.name for node in meta.graph_def.node][:4]
['v1/Initializer/zeros', 'v1', 'v1/Assign', 'v1/read']
>>> meta.saver_def.restore_op_name
'save/restore_all'
"""

from __future__ import annotations

from collections import deque
from typing import Dict, Iterable, Mapping, Optional, Sequence, Set, Tuple, Union

from .. import protos
from ..dtypes import STRING_ENUM, DType
from .meta_graph import node_name
from .tensor_protos import make_tensor_proto, tensor_proto_to_numpy

__all__ = ["VARIABLE_OPS", "graph_variables", "restored_keys", "restored_variables", "saver_meta_graph"]

# A GraphDef producer version of the TensorFlow 2 era; graphs are readable by any TensorFlow since.
_GRAPH_PRODUCER = 1205
# The ops of variables: ref variables, then resource variables.
VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp")

# The dtypes TensorFlow's optimizers train (Optimizer._valid_dtypes): a Saver graph's other variables (steps,
# counters, strings) are not trainable.
_TRAINABLE_DTYPES = frozenset(("float16", "bfloat16", "float32", "float64", "complex64", "complex128"))


def _node(graph: "protos.GraphDef", name: str, op: str, inputs: Sequence[str] = ()) -> "protos.NodeDef":
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    return node


def _const(graph: "protos.GraphDef", name: str, value) -> "protos.NodeDef":
    proto = make_tensor_proto(value)
    node = _node(graph, name, "Const")
    node.attr["dtype"].type = proto.dtype
    node.attr["value"].tensor.CopyFrom(proto)
    return node


def _colocate(node: "protos.NodeDef", name: str) -> None:
    node.attr["_class"].list.s.append(f"loc:@{name}".encode())


def _variable_nodes(graph: "protos.GraphDef", name: str, dtype: DType, shape: Sequence[int]) -> None:
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
    saver_def: "protos.SaverDef",
    trainable: Optional[Iterable[str]] = None,
) -> "protos.MetaGraphDef":
    """A MetaGraphDef that TensorFlow imports, as TensorFlow's Saver exports it for the same variables.

    ``variables`` (``{name: (dtype, shape)}``) become ref variables as ``tf.compat.v1.get_variable`` builds
    them (``VariableV2`` nodes, their ``/read`` snapshots and their ``/Assign`` initializers, which set them to
    zeros), listed in the ``variables`` and ``trainable_variables`` collections as VariableDefs; then the
    save and restore operations TensorFlow's Saver builds (``save/Const:0`` fed with the prefix,
    ``save/control_dependency:0`` to save, ``save/restore_all``). ``trainable`` names the trainable variables;
    by default those of floating point and complex dtypes.

    >>> from fastckpt import Saver, float32, int64
    >>> meta = saver_meta_graph({"w": (float32, [2]), "step": (int64, [])}, Saver().saver_def)
    >>> protos.VariableDef.FromString(meta.collection_def["trainable_variables"].bytes_list.value[0])
    variable_name: "w:0"
    initializer_name: "w/Assign"
    snapshot_name: "w/read:0"
    initial_value_name: "w/Initializer/zeros:0"
    trainable: true
    <BLANKLINE>
    """
    meta = protos.MetaGraphDef()
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
        variable_def = protos.VariableDef(
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
        _node(graph, "save/filename", "PlaceholderWithDefault", ["save/filename/input"]).attr[
            "dtype"
        ].type = STRING_ENUM
        graph.node[-1].attr["shape"].shape.SetInParent()
        _node(graph, "save/Const", "PlaceholderWithDefault", ["save/filename"]).attr["dtype"].type = STRING_ENUM
        graph.node[-1].attr["shape"].shape.SetInParent()
        dtypes = [variables[name][0].as_datatype_enum for name in names]
        for op in ("SaveV2", "RestoreV2"):
            _const(graph, f"save/{op}/tensor_names", [n.encode("utf-8", "surrogateescape") for n in names])
            _const(graph, f"save/{op}/shape_and_slices", [b""] * len(names))
        save = _node(
            graph,
            "save/SaveV2",
            "SaveV2",
            ["save/Const", "save/SaveV2/tensor_names", "save/SaveV2/shape_and_slices", *names],
        )
        save.attr["dtypes"].list.type.extend(dtypes)
        done = _node(graph, "save/control_dependency", "Identity", ["save/Const", "^save/SaveV2"])
        done.attr["T"].type = STRING_ENUM
        done.attr["_class"].list.s.append(b"loc:@save/Const")
        restore = _node(
            graph,
            "save/RestoreV2",
            "RestoreV2",
            ["save/Const", "save/RestoreV2/tensor_names", "save/RestoreV2/shape_and_slices"],
        )
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


def restored_keys(graph_def: "protos.GraphDef", restore_op_name: Optional[str] = None) -> Dict[str, str]:
    """``{variable node: checkpoint key}`` read from the restore operations of a saver graph: each
    ``Assign``/``AssignVariableOp`` fed (through identities) by output ``i`` of a restore op assigns the
    tensor named by entry ``i`` of its tensor names. Only the subgraph of ``restore_op_name`` when given."""
    by_name = {node.name: node for node in graph_def.node}
    if restore_op_name is not None and node_name(restore_op_name) in by_name:
        reachable: Set[str] = set()
        wanted = deque([node_name(restore_op_name)])
        while wanted:
            name = wanted.popleft()
            if name in reachable or name not in by_name:
                continue
            reachable.add(name)
            wanted.extend(node_name(i) for i in by_name[name].input)
        nodes = [by_name[name] for name in reachable]
    else:
        nodes = list(graph_def.node)
    keys: Dict[str, str] = {}
    for node in nodes:
        if node.op not in _ASSIGN_OPS or len(node.input) < 2:
            continue
        source = node.input[1]
        while node_name(source) in by_name and by_name[node_name(source)].op == "Identity":
            source = by_name[node_name(source)].input[0]
        restore = by_name.get(node_name(source))
        if restore is None or restore.op not in _RESTORE_OPS or len(restore.input) < 2:
            continue
        names = by_name.get(node_name(restore.input[1]))
        if names is None or names.op != "Const":
            continue
        index = int(source.rsplit(":", 1)[1]) if ":" in source else 0
        values = tensor_proto_to_numpy(names.attr["value"].tensor).reshape(-1)
        if index < len(values):
            keys[node_name(node.input[0])] = values[index].decode("utf-8", "surrogateescape")
    return keys


def _variable_nodes_to_names(graph: Union["protos.MetaGraphDef", "protos.GraphDef"]) -> Dict[str, str]:
    """``{variable node: variable name}``: from the ``variables`` collection where a meta graph has one (the
    partitions of a partitioned variable named after the whole), else the graph's variable nodes."""
    if isinstance(graph, protos.MetaGraphDef):
        collection = graph.collection_def.get("variables")
        if collection is not None and collection.bytes_list.value:
            names = {}
            for serialized in collection.bytes_list.value:
                variable = protos.VariableDef.FromString(serialized)
                node = node_name(variable.variable_name)
                names[node] = variable.save_slice_info_def.full_name or node
            return names
        graph = graph.graph_def
    return {node.name: node.name for node in graph.node if node.op in VARIABLE_OPS}


def graph_variables(graph: Union["protos.MetaGraphDef", "protos.GraphDef"]) -> Dict[str, str]:
    """``{checkpoint_name: name}`` of a graph's variables (ref and resource): from the ``variables``
    collection where a meta graph has one, else from the graph's variable nodes. A partitioned variable
    appears once, under its full name, for the whole tensor. Checkpoint names are those the graph's restore
    operations read (the saver's, for a meta graph with one); a variable no saver restores is saved under
    its name.

    >>> import fastckpt
    >>> graph_variables(saver_meta_graph({"tower/w": (fastckpt.float32, [2])}, fastckpt.Saver().saver_def))
    {'tower/w': 'tower/w'}
    """
    meta = graph if isinstance(graph, protos.MetaGraphDef) else None
    restore_op = meta.saver_def.restore_op_name if meta is not None and meta.HasField("saver_def") else None
    keys = restored_keys(meta.graph_def if meta is not None else graph, restore_op)
    return {keys.get(node, name): name for node, name in _variable_nodes_to_names(graph).items()}


def restored_variables(meta: "protos.MetaGraphDef") -> Dict[str, str]:
    """``{checkpoint_name: variable name}`` of what a meta graph's saver restores, as TensorFlow's Saver of
    an imported meta graph does: the variables its SaverDef's restore op assigns, under the checkpoint names
    it reads; without a SaverDef (or one that restores none), every variable (see ``graph_variables``)."""
    keys = restored_keys(meta.graph_def, meta.saver_def.restore_op_name) if meta.HasField("saver_def") else {}
    if keys:
        return {keys[node]: name for node, name in _variable_nodes_to_names(meta).items() if node in keys}
    return graph_variables(meta)
