"""Freezing: a graph's variables turned into constants holding a checkpoint's values, the graph pruned to
what its outputs need, as ``tf.compat.v1.graph_util.convert_variables_to_constants`` does.

>>> import fastckpt
>>> meta = fastckpt.read_meta_graph(fastckpt.examples.model_path() + ".meta")
>>> frozen = convert_variables_to_constants(meta.graph_def, fastckpt.examples.model_path(), ["add"])
>>> [(node.name, node.op) for node in frozen.node if node.name in ("v1", "add")]
[('v1', 'Const'), ('add', 'AddV2')]
"""

from __future__ import annotations

from collections import deque
from typing import Iterable, Mapping, Optional, Sequence, Set

from .. import errors, protos
from .meta_graph import node_name
from .saver_graph import VARIABLE_OPS
from .tensor_protos import make_tensor_proto

__all__ = ["convert_variables_to_constants", "extract_sub_graph"]

# Resource variables, whose reads (ReadVariableOp) become identities of the constant.
_RESOURCE_VARIABLE_OPS = ("VarHandleOp",)


def extract_sub_graph(graph_def: "protos.GraphDef", dest_nodes: Iterable[str]) -> "protos.GraphDef":
    """The nodes ``dest_nodes`` (node names) need, through inputs and control inputs, in the graph's order.

    Raises:
        fastckpt.errors.InvalidTypeError: ``dest_nodes`` is one string, not names (a ``TypeError``, as
            TensorFlow raises).
        fastckpt.errors.InvalidArgumentError: a name is no node of the graph.
    """
    if isinstance(dest_nodes, (str, bytes)):
        # A string is an iterable of its characters: TensorFlow refuses it rather than look for nodes "a", "d", "d".
        raise errors.InvalidTypeError(
            f"dest_nodes must be an iterable of strings, but got type {type(dest_nodes)}: pass [{dest_nodes!r}]"
        )
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
        wanted.extend(node_name(i) for i in by_name[name].input if node_name(i) in by_name)
    out = protos.GraphDef()
    out.node.extend(node for node in graph_def.node if node.name in keep)
    out.library.CopyFrom(graph_def.library)
    out.versions.CopyFrom(graph_def.versions)
    return out


def convert_variables_to_constants(
    graph_def: "protos.GraphDef",
    checkpoint,
    output_node_names: Sequence[str],
    variable_names_whitelist: Optional[Iterable[str]] = None,
    variable_names_blacklist: Optional[Iterable[str]] = None,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> "protos.GraphDef":
    """Freezes a graph as ``tf.compat.v1.graph_util.convert_variables_to_constants`` does, with values from
    a checkpoint instead of a session.

    The graph is pruned to what ``output_node_names`` need; ``VariableV2`` and ``VarHandleOp`` nodes become
    ``Const`` nodes of the same name holding the checkpoint's values, and ``ReadVariableOp`` nodes reading
    them become ``Identity``. ``checkpoint`` is a CheckpointReader or anything ``load_checkpoint`` opens
    (with ``storage_options``, the configuration of object stores: object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.InvalidTypeError: ``output_node_names`` is one string, not names (see
            ``extract_sub_graph``).
    """
    from ..reading.reader import CheckpointReader

    graph = extract_sub_graph(graph_def, output_node_names)
    reader = (
        checkpoint
        if isinstance(checkpoint, CheckpointReader)
        else CheckpointReader(checkpoint, storage_options=storage_options)
    )
    whitelist = set(variable_names_whitelist) if variable_names_whitelist is not None else None
    blacklist = set(variable_names_blacklist or ())

    def frozen(node) -> bool:
        return node.op in VARIABLE_OPS and (whitelist is None or node.name in whitelist) and node.name not in blacklist

    constants = {node.name for node in graph.node if frozen(node)}
    resource_constants = {
        node.name for node in graph.node if node.name in constants and node.op in _RESOURCE_VARIABLE_OPS
    }
    out = protos.GraphDef()
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
        elif node.op == "ReadVariableOp" and node.input and node_name(node.input[0]) in resource_constants:
            identity = out.node.add(name=node.name, op="Identity", device=node.device)
            identity.input.extend(node.input)
            identity.attr["T"].CopyFrom(node.attr["dtype"])
        else:
            out.node.add().CopyFrom(node)
    out.library.CopyFrom(graph.library)
    out.versions.CopyFrom(graph.versions)
    return out
