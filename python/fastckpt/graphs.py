"""Graphs beside checkpoints: the ``.meta`` MetaGraphDef a Saver writes.

>>> import fastckpt
>>> meta = fastckpt.graphs.variables_meta_graph({"v1": (fastckpt.dtypes.float32, [1])})
>>> [(node.name, node.op) for node in meta.graph_def.node]
[('v1', 'VariableV2')]
"""
from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Tuple

from google.protobuf import text_format

from .checkpoint_state import atomic_write_text
from .dtypes import DType
from .protos import MetaGraphDef, SaverDef

__all__ = ["export_meta_graph", "variables_meta_graph"]


def variables_meta_graph(
    variables: Mapping[str, Tuple[DType, Sequence[int]]], saver_def: Optional["SaverDef"] = None
) -> "MetaGraphDef":
    """A MetaGraphDef describing ``variables`` (``{name: (dtype, shape)}``) as ``VariableV2`` nodes, with
    ``saver_def``."""
    meta = MetaGraphDef()
    for name in sorted(variables):
        dtype, shape = variables[name]
        node = meta.graph_def.node.add(name=name, op="VariableV2")
        node.attr["dtype"].type = dtype.as_datatype_enum
        node.attr["shape"].shape.SetInParent()
        for size in shape:
            node.attr["shape"].shape.dim.add(size=int(size))
        node.attr["container"].s = b""
        node.attr["shared_name"].s = b""
    if saver_def is not None:
        meta.saver_def.CopyFrom(saver_def)
    return meta


def export_meta_graph(filename: "str | os.PathLike[str]", meta_graph_def: "MetaGraphDef", as_text: bool = False) -> None:
    """Writes a MetaGraphDef to ``filename``, binary or in text format, replacing the file atomically."""
    filename = os.fspath(filename)
    if as_text:
        atomic_write_text(filename, text_format.MessageToString(meta_graph_def))
        return
    temp = f"{filename}.tmp{os.getpid()}"
    try:
        with open(temp, "wb") as f:
            f.write(meta_graph_def.SerializeToString())
        os.replace(temp, filename)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
