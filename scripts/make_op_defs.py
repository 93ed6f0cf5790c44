"""Regenerates python/fastckpt/graphs/op_defs.pbtxt with TensorFlow (needs tensorflow-cpu):

    python scripts/make_op_defs.py

The file holds the OpDefs of TensorFlow's op registry for the ops of the graph fastckpt's Saver writes, which
has every op of the graphs fastckpt builds (a SavedModel's meta graphs add asset constants and NoOp main ops, a
frozen graph has constants and identities). fastckpt lists them in the stripped_op_list of the meta graphs it
exports, as TensorFlow's export_meta_graph does; tests/interop/test_tensorflow_graph_contracts.py checks the file
against the registry of the TensorFlow installed.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import fastckpt  # noqa: E402
import tensorflow as tf  # noqa: E402
from fastckpt.graphs.op_defs import OP_DEFS_FILE, ops_used_by_graph_def  # noqa: E402
from fastckpt.graphs.saver_graph import saver_meta_graph  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from tensorflow.python.framework import op_def_registry  # noqa: E402


def main() -> None:
    graph = saver_meta_graph({"v": (fastckpt.float32, [1])}, fastckpt.Saver().saver_def).graph_def
    op_list = fastckpt.protos.OpList()
    for name in ops_used_by_graph_def(graph):
        op_list.op.add().MergeFromString(op_def_registry.get(name).SerializeToString())
    with open(OP_DEFS_FILE, "w", encoding="utf-8") as f:
        f.write(f"# TensorFlow {tf.__version__}'s OpDefs of the ops of fastckpt's graphs: scripts/make_op_defs.py.\n")
        f.write(text_format.MessageToString(op_list))
    print("wrote", OP_DEFS_FILE, [op.name for op in op_list.op])


if __name__ == "__main__":
    main()
