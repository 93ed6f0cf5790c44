"""TensorFlow judges the graph side: it imports fastckpt's .meta files and restores, runs frozen graphs
(with the node names its own freezing gives), and loads fastckpt's SavedModels. Skipped without
TensorFlow, except in CI."""

import fastckpt
import numpy as np
import pytest


def test_tensorflow_imports_our_meta_graph_and_restores(tf, tmp_path):
    values = {"v1": [1.0], "v2": [2.0], "name": b"model-7", "table": np.arange(6, dtype=np.int64).reshape(2, 3)}
    prefix = fastckpt.Saver().save(values, str(tmp_path / "model.ckpt"), global_step=1)
    with tf.Graph().as_default():
        saver = tf.compat.v1.train.import_meta_graph(prefix + ".meta")
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, prefix)
            v1, v2, name, table = sess.run(["v1/read:0", "v2:0", "name:0", "table:0"])
            # TensorFlow saving through our graph writes a checkpoint fastckpt reads back.
            saver.save(sess, str(tmp_path / "resaved"))
    assert (v1 + v2).tolist() == [3.0] and name == b"model-7"
    np.testing.assert_array_equal(table, values["table"])
    np.testing.assert_array_equal(fastckpt.load_variable(str(tmp_path / "resaved"), "table"), values["table"])


def test_tensorflow_lists_our_variables_and_runs_their_initializers(tf, tmp_path):
    values = {
        "dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
        "bias": np.array([0.5, -1.0]),
        "global_step": np.int64(7),
        "name": b"model-7",
    }
    prefix = fastckpt.Saver().save(values, str(tmp_path / "model.ckpt"))
    meta = fastckpt.read_meta_graph(prefix + ".meta")
    assert fastckpt.graphs.graph_variables(meta) == {name: name for name in values}
    with tf.Graph().as_default():
        saver = tf.compat.v1.train.import_meta_graph(prefix + ".meta")
        global_variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        assert sorted(global_variables) == sorted(values)
        assert sorted(v.op.name for v in tf.compat.v1.trainable_variables()) == ["bias", "dense/kernel"]
        assert tf.compat.v1.train.get_global_step().op.name == "global_step"
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, prefix)
            for name, value in values.items():
                np.testing.assert_array_equal(sess.run(global_variables[name]), value)
            sess.run(tf.compat.v1.global_variables_initializer())
            initialized = sess.run({name: v.value() for name, v in global_variables.items()})
    for name, value in values.items():
        np.testing.assert_array_equal(initialized[name], np.zeros_like(value) if name != "name" else b"")


def test_our_variable_defs_are_those_tensorflow_writes(tf):
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.get_variable("w", [2, 3], tf.float32, tf.compat.v1.zeros_initializer(), use_resource=False)
        theirs = tf.compat.v1.train.export_meta_graph()
    ours = fastckpt.graphs.saver_meta_graph({"w": (fastckpt.dtypes.float32, [2, 3])}, fastckpt.Saver().saver_def)
    for key in ("variables", "trainable_variables"):
        their_defs = [fastckpt.protos.VariableDef.FromString(v) for v in theirs.collection_def[key].bytes_list.value]
        our_defs = [fastckpt.protos.VariableDef.FromString(v) for v in ours.collection_def[key].bytes_list.value]
        assert our_defs == their_defs
    their_nodes = {node.name: (node.op, list(node.input)) for node in theirs.graph_def.node}
    assert {
        node.name: (node.op, list(node.input)) for node in ours.graph_def.node if not node.name.startswith("save/")
    } == their_nodes


def test_initial_values_take_no_room(tf):
    meta = fastckpt.graphs.saver_meta_graph(
        {"embedding": (fastckpt.dtypes.float32, [100000, 512])}, fastckpt.Saver().saver_def
    )
    assert meta.ByteSize() < 4096
    with tf.Graph().as_default():
        tf.compat.v1.train.import_meta_graph(tf.compat.v1.MetaGraphDef.FromString(meta.SerializeToString()))
        with tf.compat.v1.Session() as sess:
            zeros = sess.run("embedding/Initializer/zeros:0")
    assert zeros.shape == (100000, 512) and not zeros.any()


def build_and_save(tf, tmp_path, use_resource):
    """A TF1 graph computing add = v1 + v2 (plus an unused variable), saved by TensorFlow."""
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1.get_variable("v1", initializer=tf.constant([1.0]), use_resource=use_resource)
        v2 = tf.compat.v1.get_variable("v2", initializer=tf.constant([2.0]), use_resource=use_resource)
        tf.compat.v1.get_variable("unused", initializer=tf.constant([9.0]), use_resource=use_resource)
        tf.add(v1, v2, name="add")
        saver = tf.compat.v1.train.Saver()
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(tf.compat.v1.global_variables_initializer())
        prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    return graph, sess, prefix


@pytest.mark.parametrize("use_resource", [False, True], ids=["ref", "resource"])
def test_frozen_graph_matches_tensorflow_freezing(tf, tmp_path, use_resource):
    graph, sess, prefix = build_and_save(tf, tmp_path, use_resource)
    with sess:
        theirs = tf.compat.v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["add"])
    from tensorflow.core.framework import graph_pb2

    graph_def = fastckpt.protos.GraphDef.FromString(graph.as_graph_def().SerializeToString())
    ours = fastckpt.convert_variables_to_constants(graph_def, prefix, ["add"])
    assert sorted((n.name, n.op) for n in ours.node) == sorted((n.name, n.op) for n in theirs.node)
    path = fastckpt.write_graph(ours, str(tmp_path), "frozen.pb", as_text=False)
    frozen = graph_pb2.GraphDef.FromString(open(path, "rb").read())
    with tf.Graph().as_default() as serving:
        tf.graph_util.import_graph_def(frozen, name="")
        with tf.compat.v1.Session(graph=serving) as sess:
            assert sess.run("add:0").tolist() == [3.0]


def test_text_export_parses_back_in_tensorflow(tf, tmp_path):
    from google.protobuf import text_format
    from tensorflow.core.protobuf import meta_graph_pb2

    graph, sess, prefix = build_and_save(tf, tmp_path, use_resource=True)
    sess.close()
    meta = fastckpt.read_meta_graph(prefix + ".meta")
    fastckpt.export_meta_graph(tmp_path / "model.meta.txt", meta, as_text=True)
    theirs = meta_graph_pb2.MetaGraphDef()
    text_format.Merge((tmp_path / "model.meta.txt").read_text(), theirs)
    original = meta_graph_pb2.MetaGraphDef.FromString(open(prefix + ".meta", "rb").read())
    assert theirs == original


def test_tensorflow_loads_our_saved_model(tf, tmp_path):
    export_dir = str(tmp_path / "export")
    builder = fastckpt.saved_model.Builder(export_dir)
    signature = fastckpt.saved_model.build_signature_def(
        outputs={"weights": fastckpt.saved_model.build_tensor_info("w/read:0", "float32", [3])}
    )
    builder.add_meta_graph_and_variables(
        {"w": np.array([1.0, 2.0, 3.0], np.float32), "step": np.int64(42)}, ["serve"], {"serving_default": signature}
    )
    builder.save()
    with tf.Graph().as_default():
        with tf.compat.v1.Session() as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], export_dir)
            output = meta.signature_def["serving_default"].outputs["weights"].name
            assert sess.run(output).tolist() == [1.0, 2.0, 3.0]
            assert sess.run("step:0") == 42
