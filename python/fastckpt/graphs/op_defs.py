"""The OpDefs of the ops a graph uses: a MetaGraphDef's ``meta_info_def.stripped_op_list``, which TensorFlow's
``export_meta_graph`` fills from its op registry (TensorFlow's importer reads it to drop attributes newer than
itself). fastckpt has no registry: a definition comes from the meta graph being exported, else from
``op_defs.pbtxt`` beside this module, TensorFlow's OpDefs of the ops of the graphs fastckpt builds (a Saver's
graph, a SavedModel's, a frozen graph), written by ``scripts/make_op_defs.py``.

>>> import fastckpt
>>> meta = fastckpt.graphs.saver_meta_graph({"w": (fastckpt.float32, [2])}, fastckpt.Saver().saver_def)
>>> [op.name for op in stripped_op_list(meta.graph_def).op]
['Assign', 'Const', 'Identity', 'NoOp', 'PlaceholderWithDefault', 'RestoreV2', 'SaveV2', 'VariableV2']
"""

from __future__ import annotations

import functools
import os
from typing import Dict, List, Optional, Set

from .. import protos

__all__ = ["OP_DEFS_FILE", "known_op_defs", "ops_used_by_graph_def", "stripped_op_list", "with_stripped_op_list"]

OP_DEFS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "op_defs.pbtxt")
# Ops that call the function named by their attr "f".
_FUNCTION_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


@functools.lru_cache(maxsize=None)
def known_op_defs() -> Dict[str, "protos.OpDef"]:
    """``{op name: OpDef}`` of ``op_defs.pbtxt``."""
    from google.protobuf import text_format

    with open(OP_DEFS_FILE, encoding="utf-8") as f:
        op_list = text_format.Parse(f.read(), protos.OpList())
    return {op.name: op for op in op_list.op}


def ops_used_by_graph_def(graph_def: "protos.GraphDef") -> List[str]:
    """The ops a graph's nodes use, sorted, with those of the functions of its library they call (the functions
    themselves left out), as TensorFlow's ``meta_graph.ops_used_by_graph_def`` finds them."""
    functions = {function.signature.name: function for function in graph_def.library.function}
    used: Set[str] = set()
    pending = []

    def use(op: str) -> None:
        if op not in used and op in functions:
            pending.append(functions[op])
        used.add(op)

    def visit(node: "protos.NodeDef") -> None:
        use(node.op)
        if node.op in _FUNCTION_CALLS and "f" in node.attr:
            use(node.attr["f"].func.name)

    for node in graph_def.node:
        visit(node)
    while pending:
        for node in pending.pop().node_def:
            visit(node)
    return sorted(op for op in used if op not in functions)


def stripped_op_list(graph_def: "protos.GraphDef", defined: Optional["protos.OpList"] = None) -> "protos.OpList":
    """The ``stripped_op_list`` of a meta graph of ``graph_def``: the OpDefs of the ops it uses, sorted by name,
    each from ``defined`` (the list of the meta graph it comes from) where that has it, else fastckpt's. An op
    neither defines is left out, as TensorFlow leaves out the ops its registry lacks."""
    definitions = {op.name: op for op in defined.op} if defined is not None else {}
    known = known_op_defs()
    out = protos.OpList()
    for name in ops_used_by_graph_def(graph_def):
        op = definitions.get(name) or known.get(name)
        if op is not None:
            out.op.add().CopyFrom(op)
    return out


def with_stripped_op_list(meta: "protos.MetaGraphDef", refresh: bool = False) -> "protos.MetaGraphDef":
    """``meta`` with its ``stripped_op_list`` as TensorFlow's export fills it: a list given is kept, an empty
    one (or any with ``refresh``, for a graph cut down to a name scope) becomes the OpDefs of the ops the graph
    uses (``stripped_op_list``, definitions taken from the list given first). ``meta`` itself when nothing
    changes, else a copy."""
    listed = meta.meta_info_def.stripped_op_list
    if listed.op and not refresh:
        return meta
    ops = stripped_op_list(meta.graph_def, listed)
    if ops == listed:
        return meta
    out = protos.MetaGraphDef()
    out.CopyFrom(meta)
    out.meta_info_def.stripped_op_list.CopyFrom(ops)
    return out
