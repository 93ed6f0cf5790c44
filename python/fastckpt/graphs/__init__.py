"""Graphs as data, without TensorFlow: MetaGraphDefs (``.meta``), GraphDefs (``.pb``), tensors as protos,
the graphs Savers write, and freezing. This package gathers them; each lives in a module of its own
(``meta_graph``, ``tensor_protos``, ``saver_graph``, ``freezing``). ``import_meta_graph``, which makes a Saver,
is ``fastckpt.import_meta_graph``, as TensorFlow has it beside the Saver.

>>> import fastckpt
>>> meta = fastckpt.graphs.read_meta_graph(fastckpt.examples.model_path() + ".meta")
>>> frozen = fastckpt.graphs.convert_variables_to_constants(meta.graph_def, fastckpt.examples.model_path(), ["add"])
>>> sorted(node.op for node in frozen.node)
['AddV2', 'Const', 'Const', 'Identity', 'Identity']
"""

from .freezing import convert_variables_to_constants, extract_sub_graph
from .meta_graph import (
    export_meta_graph,
    import_scoped_meta_graph,
    prepend_name_scope,
    read_graph,
    read_meta_graph,
    strip_name_scope,
    write_graph,
)
from .saver_graph import graph_variables, saver_meta_graph
from .tensor_protos import make_tensor_proto, tensor_proto_to_numpy

__all__ = [
    "convert_variables_to_constants",
    "export_meta_graph",
    "extract_sub_graph",
    "graph_variables",
    "import_scoped_meta_graph",
    "make_tensor_proto",
    "prepend_name_scope",
    "read_graph",
    "read_meta_graph",
    "saver_meta_graph",
    "strip_name_scope",
    "tensor_proto_to_numpy",
    "write_graph",
]
