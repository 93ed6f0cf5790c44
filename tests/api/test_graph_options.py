"""import_meta_graph's and export_meta_graph's options (import_scope, clear_devices, export_scope,
collection_list, clear_extraneous_savers), against TensorFlow's own import_meta_graph and export_meta_graph
of the same graph. Skipped without TensorFlow, except in CI (the last tests need no TensorFlow)."""

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from fastckpt.protos import MetaGraphDef, SaverDef, VariableDef
from helpers.checkpoints import FIXTURES, Expected, assert_same_value


@pytest.fixture
def model(tf, tmp_path):
    """A graph with a tower (a ref and a resource variable, an input from outside, its own saver) and a
    variable outside it with a second saver, nodes on a device, and collections of every kind; the tower's
    variables saved by TensorFlow. Returns (TensorFlow's MetaGraphDef with the tower's saver, prefix)."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.device("/cpu:0"):
        feed = tf.compat.v1.placeholder(tf.float32, [1], name="feed")
        with tf.compat.v1.variable_scope("tower"):
            v1 = tf.compat.v1.get_variable("v1", initializer=tf.constant([1.0]), use_resource=False)
            r = tf.compat.v1.get_variable("r", initializer=tf.constant([2.0]), use_resource=True)
            out = tf.add(v1 * feed, r, name="out")
            saver = tf.compat.v1.train.Saver([v1, r])
        other = tf.compat.v1.get_variable("other", initializer=tf.constant([3.0]), use_resource=False)
        total = tf.add(out, other, name="total")
        other_saver = tf.compat.v1.train.Saver([other])
        for item in (out, total):
            tf.compat.v1.add_to_collection("outputs", item)
        tf.compat.v1.add_to_collection("strings", "tower/hello")
        tf.compat.v1.add_to_collection("ints", 3)
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.SAVERS, saver)
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.SAVERS, other_saver)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "tower.ckpt"))
        meta = saver.export_meta_graph()
    return graph, saver, meta, prefix


def ours(tf_meta):
    return MetaGraphDef.FromString(tf_meta.SerializeToString())


def nodes(meta):
    """What a node is, leaving out the attrs TensorFlow adds on import and export (defaults, shapes)."""
    summary = {}
    for node in meta.graph_def.node:
        colocation = list(node.attr["_class"].list.s) if "_class" in node.attr else None
        summary[node.name] = (node.op, list(node.input), node.device, colocation)
    return summary


def collections(meta):
    """Each collection's values, the VariableDefs and SaverDefs parsed (re-exports may order fields apart)."""
    parse = {"variables": VariableDef, "trainable_variables": VariableDef, "savers": SaverDef}
    result = {}
    for key, collection in meta.collection_def.items():
        kind = collection.WhichOneof("kind")
        values = list(getattr(collection, kind).value)
        if key in parse:
            values = [parse[key].FromString(bytes(value)) for value in values]
        result[key] = (kind, values)
    return result


def tf_exported_after_import(tf, meta, **options):
    """The MetaGraphDef of TensorFlow's graph after its import_meta_graph, and the SaverDef it returns."""
    with tf.Graph().as_default():
        # A copy: TensorFlow's import puts the SaverDef of the message it is given under the scope.
        saver = tf.compat.v1.train.import_meta_graph(type(meta).FromString(meta.SerializeToString()), **options)
        return ours(tf.compat.v1.train.export_meta_graph()), SaverDef.FromString(saver.saver_def.SerializeToString())


@pytest.mark.parametrize("clear_devices", [False, True])
@pytest.mark.parametrize("import_scope", ["copy", "copy/", "deep/copy"])
def test_import_scope_and_clear_devices_as_tensorflow(tf, model, import_scope, clear_devices):
    _, _, meta, _ = model
    theirs, their_saver_def = tf_exported_after_import(tf, meta, import_scope=import_scope, clear_devices=clear_devices)
    saver = fastckpt.import_meta_graph(meta, import_scope=import_scope, clear_devices=clear_devices)
    imported = saver.meta_graph_def
    assert nodes(imported) == nodes(theirs)
    assert collections(imported) == collections(theirs)
    assert imported.saver_def == their_saver_def
    assert imported.saver_def.restore_op_name == import_scope.rstrip("/") + "/tower/save/restore_all"
    devices = {node.device for node in imported.graph_def.node}
    assert devices == {""} if clear_devices else "/device:CPU:0" in devices


def test_scoped_import_restores_checkpoint_names_into_scoped_variables(tf, model, tmp_path):
    _, _, meta, prefix = model
    path = str(tmp_path / "model.meta")
    fastckpt.export_meta_graph(path, ours(meta))
    restored = fastckpt.import_meta_graph(path, import_scope="copy").restore(prefix)
    with tf.Graph().as_default():
        saver = tf.compat.v1.train.import_meta_graph(path, import_scope="copy")
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, prefix)
            theirs = {v.op.name: sess.run(v) for v in tf.compat.v1.global_variables() if v.op.name in restored}
    # The tower's saver restores only the tower's variables, from their checkpoint names, into the scope.
    assert sorted(restored) == sorted(theirs) == ["copy/tower/r", "copy/tower/v1"]
    for name, value in restored.items():
        np.testing.assert_array_equal(value, theirs[name])


@pytest.mark.parametrize("clear_devices", [False, True])
@pytest.mark.parametrize("export_scope", ["tower", "tower/"])
def test_export_scope_as_tensorflow(tf, model, export_scope, clear_devices):
    graph, saver, meta, prefix = model
    with graph.as_default():
        theirs = saver.export_meta_graph(export_scope=export_scope, clear_devices=clear_devices)
    exported = fastckpt.export_meta_graph(None, ours(meta), export_scope=export_scope, clear_devices=clear_devices)
    assert nodes(exported) == nodes(ours(theirs))
    assert collections(exported) == collections(ours(theirs))
    assert list(exported.collection_def["unbound_inputs"].bytes_list.value) == [b"$unbound_inputs_feed"]
    # TensorFlow leaves its SaverDef naming tower/save/..., which the exported graph no longer has; the
    # SaverDef is stripped as the `savers` collection is, so that the export restores.
    assert exported.saver_def.restore_op_name == "save/restore_all"
    assert theirs.saver_def.restore_op_name == "tower/save/restore_all"


def test_export_scope_imports_elsewhere_and_restores(tf, model, tmp_path):
    _, _, meta, prefix = model
    path = str(tmp_path / "tower.meta")
    fastckpt.export_meta_graph(path, ours(meta), export_scope="tower/")
    with tf.Graph().as_default():
        feed = tf.constant([10.0])
        saver = tf.compat.v1.train.import_meta_graph(
            path, import_scope="copy", input_map={"$unbound_inputs_feed": feed}
        )
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, prefix)
            assert sess.run("copy/out:0").tolist() == [12.0]
    # fastckpt restores the same: the checkpoint still names them tower/v1 and tower/r.
    restored = fastckpt.import_meta_graph(path).restore(prefix)
    assert {name: value.tolist() for name, value in restored.items()} == {"v1": [1.0], "r": [2.0]}


def test_collection_list_as_tensorflow(tf, model):
    graph, saver, meta, _ = model
    wanted = ["outputs", "variables", "no_such_collection"]
    with graph.as_default():
        theirs = saver.export_meta_graph(collection_list=wanted)
    exported = fastckpt.export_meta_graph(None, ours(meta), collection_list=wanted)
    assert sorted(exported.collection_def) == ["outputs", "variables"]
    assert collections(exported) == collections(ours(theirs))
    assert exported.graph_def == ours(meta).graph_def


def test_clear_extraneous_savers_as_tensorflow(tf, model, tmp_path):
    graph, saver, meta, prefix = model
    with graph.as_default():
        theirs = saver.export_meta_graph(clear_extraneous_savers=True)
    path = str(tmp_path / "one_saver.meta")
    exported = fastckpt.export_meta_graph(path, ours(meta), clear_extraneous_savers=True)
    assert nodes(exported) == nodes(ours(theirs))
    assert collections(exported) == collections(ours(theirs))
    assert not any(name.startswith("save_1/") for name in nodes(exported))
    assert collections(exported)["savers"][1] == [exported.saver_def]
    with tf.Graph().as_default():
        saver = tf.compat.v1.train.import_meta_graph(path)
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, prefix)
            assert sess.run("tower/v1:0").tolist() == [1.0]


def test_export_options_written_to_file(model, tmp_path):
    _, _, meta, _ = model
    path = tmp_path / "cleared.meta.txt"
    returned = fastckpt.export_meta_graph(path, ours(meta), as_text=True, clear_devices=True)
    assert fastckpt.read_meta_graph(path) == returned
    assert {node.device for node in returned.graph_def.node} == {""}


# Without TensorFlow ---------------------------------------------------------------------------------------


def saver_meta():
    return fastckpt.graphs.saver_meta_graph({"w": (fastckpt.dtypes.float32, [2])}, fastckpt.Saver().saver_def)


def test_import_without_options_keeps_the_graph(tmp_path):
    meta = saver_meta()
    saver = fastckpt.import_meta_graph(meta)
    assert saver.meta_graph_def == meta
    assert fastckpt.import_meta_graph(fastckpt.protos.MetaGraphDef()) is None  # no variables, as TensorFlow


@pytest.mark.parametrize("kind", ["tf1_saver_resource", "tf1_saver_ref", "partitioned_axis1"])
def test_scoped_import_of_tensorflow_meta_graphs_restores_their_checkpoints(kind):
    expected = Expected(kind)
    saver = fastckpt.import_meta_graph(FIXTURES / kind / "model.ckpt.meta", import_scope="copy")
    restored = saver.restore(expected.path)
    assert sorted(restored) == sorted("copy/" + name for name in expected.tensors)
    for name in expected.tensors:
        assert_same_value(restored["copy/" + name], expected.value(name), name)
    assert all(node.name.startswith("copy/") for node in saver.meta_graph_def.graph_def.node)


def test_scopes_refuse_collections_they_cannot_rename(tmp_path):
    meta = saver_meta()
    meta.collection_def["while_context"].bytes_list.value.append(b"\n\x05while")
    path = str(tmp_path / "loop.meta")
    fastckpt.export_meta_graph(path, meta)
    with pytest.raises(errors.UnimplementedError, match="while_context") as raised:
        fastckpt.import_meta_graph(path, import_scope="copy")
    assert raised.value.filename == path
    with pytest.raises(errors.UnimplementedError, match="while_context"):
        fastckpt.export_meta_graph(str(tmp_path / "out.meta"), meta, export_scope="w")
    # Without a scope nothing needs renaming.
    assert fastckpt.import_meta_graph(path, clear_devices=True).meta_graph_def.collection_def["while_context"]


def test_missing_meta_graph_file(tmp_path):
    with pytest.raises(errors.NotFoundError) as raised:
        fastckpt.import_meta_graph(tmp_path / "missing.meta", import_scope="copy")
    assert raised.value.filename == str(tmp_path / "missing.meta")
