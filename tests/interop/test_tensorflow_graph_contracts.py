"""TensorFlow's contracts for graph files and SavedModels, held by fastckpt and checked against TensorFlow itself:
what export_meta_graph takes. Skipped without TensorFlow, except in CI."""

import fastckpt
import pytest
from fastckpt.protos import MetaGraphDef


def raised(function, *args):
    """The exception ``function(*args)`` raises (the test fails when it raises none)."""
    with pytest.raises(Exception) as info:
        function(*args)
    return info.value


# export_meta_graph of TensorFlow's messages ---------------------------------------------------------------


def test_export_meta_graph_takes_tensorflows_message(tf, tmp_path):
    with tf.Graph().as_default(), tf.compat.v1.device("/cpu:0"):
        tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]), use_resource=False)
        theirs = tf.compat.v1.train.Saver().export_meta_graph()
    ours = MetaGraphDef.FromString(theirs.SerializeToString())
    path = str(tmp_path / "cleared.meta")
    exported = fastckpt.export_meta_graph(path, theirs, clear_devices=True)
    assert isinstance(exported, MetaGraphDef)
    assert exported == fastckpt.export_meta_graph(None, ours, clear_devices=True)
    assert {node.device for node in exported.graph_def.node} == {""}
    assert fastckpt.read_meta_graph(path) == exported
    with pytest.raises(TypeError, match="expected a tensorflow.MetaGraphDef, got GraphDef"):
        fastckpt.export_meta_graph(None, theirs.graph_def)
