"""TensorFlow's contracts for graph files and SavedModels, held by fastckpt and checked against TensorFlow itself:
what export_meta_graph takes, what import_meta_graph and the SavedModel loader raise, TensorFlow 1's form of
loader.load, the stripped_op_list of exported meta graphs, and what node names are. Skipped without TensorFlow,
except in CI."""

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from fastckpt.graphs.op_defs import known_op_defs, ops_used_by_graph_def
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


# import_meta_graph and the SavedModel loader --------------------------------------------------------------


def tf_import_meta_graph(tf, path):
    with tf.Graph().as_default():
        tf.compat.v1.train.import_meta_graph(path)


def tf_load(tf, tags, export_dir):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        return tf.compat.v1.saved_model.loader.load(sess, tags, export_dir)


def test_missing_and_unparsable_meta_graph_files_raise_what_tensorflow_raises(tf, tmp_path):
    missing = str(tmp_path / "missing.meta")
    theirs = raised(tf_import_meta_graph, tf, missing)
    ours = raised(fastckpt.import_meta_graph, missing)
    assert type(theirs) is OSError and isinstance(ours, OSError) and isinstance(ours, errors.NotFoundError)
    assert str(ours) == str(theirs) == f"File does not exist. Received: {missing}."
    assert ours.filename == missing

    unparsable = tmp_path / "junk.meta"
    unparsable.write_text("junk junk {")
    theirs = raised(tf_import_meta_graph, tf, str(unparsable))
    ours = raised(fastckpt.import_meta_graph, str(unparsable))
    assert type(theirs) is OSError and isinstance(ours, OSError) and isinstance(ours, errors.DataLossError)
    assert str(theirs).startswith(f"Cannot parse file {unparsable}: ")
    assert str(ours).startswith(f"Cannot parse file {unparsable}: ")
    # Bytes that are neither a binary MetaGraphDef nor UTF-8 text: TensorFlow's decode raises UnicodeDecodeError;
    # fastckpt says what it says of any unparsable file.
    (tmp_path / "binary.meta").write_bytes(b"\xff\xfe not a graph")
    assert isinstance(raised(tf_import_meta_graph, tf, str(tmp_path / "binary.meta")), UnicodeDecodeError)
    with pytest.raises(errors.UnparsableFileError, match="^Cannot parse file "):
        fastckpt.import_meta_graph(tmp_path / "binary.meta")


def saved_model(tmp_path):
    export_dir = str(tmp_path / "export")
    builder = fastckpt.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables({"w": np.array([1.0, 2.0], np.float32)}, ["serve"])
    builder.add_meta_graph(["train", "gpu"])
    builder.save()
    return export_dir


def our_loads(tags, export_dir):
    """fastckpt's two forms of load, TensorFlow 2's order and TensorFlow 1's."""
    return (
        lambda: fastckpt.saved_model.load(export_dir, tags),
        lambda: fastckpt.saved_model.loader.load(None, tags, export_dir),
    )


def test_saved_model_loader_errors_are_tensorflows(tf, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for export_dir in (str(tmp_path / "missing"), str(empty)):
        theirs = raised(tf_load, tf, ["serve"], export_dir)
        assert type(theirs) is OSError
        for load in our_loads(["serve"], export_dir):
            ours = raised(load)
            assert isinstance(ours, OSError) and isinstance(ours, errors.NotFoundError)
            assert (
                str(ours)
                == str(theirs)
                == f"SavedModel file does not exist at: {export_dir}/{{saved_model.pbtxt|saved_model.pb}}"
            )

    for filename, junk in (("saved_model.pb", b"\xff\xfe junk"), ("saved_model.pbtxt", b"junk junk {")):
        export_dir = tmp_path / filename.replace(".", "_")
        export_dir.mkdir()
        (export_dir / filename).write_bytes(junk)
        theirs = raised(tf_load, tf, ["serve"], str(export_dir))
        assert type(theirs) is OSError and str(theirs).startswith("Cannot parse file ")
        for load in our_loads(["serve"], str(export_dir)):
            ours = raised(load)
            assert isinstance(ours, OSError) and isinstance(ours, errors.DataLossError)
            assert str(ours).startswith(f"Cannot parse file {export_dir / filename}: ")


def test_unknown_tags_raise_what_tensorflow_raises_and_name_the_tag_sets(tf, tmp_path):
    export_dir = saved_model(tmp_path)
    theirs = raised(tf_load, tf, ["nope", "x"], export_dir)
    assert type(theirs) is RuntimeError
    start = "MetaGraphDef associated with tags 'nope', 'x' could not be found in SavedModel"
    assert str(theirs).startswith(start)
    for load in our_loads(["nope", "x"], export_dir):
        ours = raised(load)
        assert isinstance(ours, RuntimeError) and isinstance(ours, errors.NotFoundError)
        assert str(ours).startswith(start) and export_dir in str(ours)
        assert "[['serve'], ['train', 'gpu']]" in str(ours)


# TensorFlow 1's loader.load(sess, tags, export_dir) -------------------------------------------------------


def test_tensorflow_1_loader_form_gives_the_meta_graph_and_the_values(tf, tmp_path):
    export_dir = str(tmp_path / "export")
    builder = fastckpt.saved_model.Builder(export_dir)
    signature = fastckpt.saved_model.build_signature_def(
        outputs={"weights": fastckpt.saved_model.build_tensor_info("w/read:0", "float32", [2])}
    )
    builder.add_meta_graph_and_variables(
        {"w": np.array([1.0, 2.0], np.float32), "step": np.int64(7)}, ["serve"], {"serving_default": signature}
    )
    builder.save()
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        theirs = tf.compat.v1.saved_model.loader.load(sess, ["serve"], export_dir)
        session_values = {name: sess.run(f"{name}:0") for name in ("w", "step")}
    ours = fastckpt.saved_model.loader.load(None, ["serve"], export_dir)
    expected = MetaGraphDef.FromString(theirs.SerializeToString())
    # TensorFlow's import adds the default attrs of the ops to the graph of the message it returns.
    assert [(n.name, n.op) for n in ours.graph_def.node] == [(n.name, n.op) for n in expected.graph_def.node]
    expected.graph_def.CopyFrom(ours.graph_def)
    assert ours.meta_graph_def == expected
    # The MetaGraphDef's fields read through, as code written for TensorFlow 1 reads them.
    for field in ("signature_def", "collection_def", "graph_def", "saver_def", "meta_info_def"):
        assert getattr(ours, field) == getattr(ours.meta_graph_def, field), field
    assert ours.signature_def["serving_default"].outputs["weights"].name == "w/read:0"
    assert sorted(ours.variables) == sorted(session_values)
    for name, value in session_values.items():
        np.testing.assert_array_equal(ours.variables[name], value)
    with pytest.raises(AttributeError):
        ours.no_such_field  # noqa: B018 - the lookup is what is tested
    # fastckpt restores into no session; TensorFlow 1's order given to TensorFlow 2's load is named.
    with tf.compat.v1.Session() as sess, pytest.raises(errors.InvalidTypeError, match="pass None for sess"):
        fastckpt.saved_model.loader.load(sess, ["serve"], export_dir)
    with pytest.raises(TypeError, match=r"fastckpt\.saved_model\.loader\.load\(None, tags, export_dir\)"):
        fastckpt.saved_model.load(["serve"], export_dir)


# stripped_op_list -----------------------------------------------------------------------------------------


def op_defs(op_list):
    """``{name: serialized OpDef}`` of an OpList, fastckpt's or TensorFlow's."""
    return {op.name: op.SerializeToString(deterministic=True) for op in op_list.op}


def test_saver_meta_lists_the_ops_tensorflow_lists(tf, tmp_path):
    values = {"dense/kernel": np.zeros((2, 3), np.float32), "step": np.int64(0)}
    prefix = fastckpt.Saver().save(values, str(tmp_path / "model.ckpt"))
    ours = fastckpt.read_meta_graph(prefix + ".meta").meta_info_def.stripped_op_list
    with tf.Graph().as_default():
        for name, value in values.items():
            tf.compat.v1.get_variable(
                name, value.shape, value.dtype, tf.compat.v1.zeros_initializer(), use_resource=False
            )
        theirs = tf.compat.v1.train.Saver().export_meta_graph().meta_info_def.stripped_op_list
    assert len(theirs.op) == 8
    assert list(op_defs(ours)) == list(op_defs(theirs))
    assert op_defs(ours) == op_defs(theirs)


def test_op_defs_file_is_tensorflows_registry_for_the_ops_of_fastckpts_graphs(tf, tmp_path):
    """The file holds TensorFlow's OpDefs, and those of every op of the graphs fastckpt builds (a Saver's, a
    SavedModel's with a main op and an asset, a frozen one): neither stale nor missing one (else run
    scripts/make_op_defs.py)."""
    from tensorflow.python.framework import op_def_registry

    known = known_op_defs()
    for name, op in known.items():
        assert op.SerializeToString(deterministic=True) == op_def_registry.get(name).SerializeToString(
            deterministic=True
        ), name
    saver_graph = fastckpt.graphs.saver_meta_graph({"w": (fastckpt.float32, [2])}, fastckpt.Saver().saver_def)
    assert sorted(known) == ops_used_by_graph_def(saver_graph.graph_def)
    export_dir = str(tmp_path / "export")
    (tmp_path / "vocab.txt").write_text("a\n")
    builder = fastckpt.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(
        {"w": [1.0]}, ["serve"], assets_collection=[str(tmp_path / "vocab.txt")], main_op="w/Assign"
    )
    builder.add_meta_graph(["train"], main_op=fastckpt.saved_model.build_main_op())
    builder.save()
    prefix = fastckpt.Saver().save({"w": [1.0]}, str(tmp_path / "model.ckpt"))
    frozen = fastckpt.convert_variables_to_constants(saver_graph.graph_def, prefix, ["w/read"])
    saved_model_graphs = [fastckpt.saved_model.load(export_dir, [tag]).graph_def for tag in ("serve", "train")]
    for graph in saved_model_graphs + [frozen]:
        assert set(ops_used_by_graph_def(graph)) <= set(known)


def test_saved_model_meta_graphs_list_their_ops(tf, tmp_path):
    from tensorflow.python.framework import op_def_registry

    export_dir = str(tmp_path / "export")
    builder = fastckpt.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables({"w": [1.0]}, ["serve"], main_op=fastckpt.saved_model.build_main_op())
    builder.save()
    meta = fastckpt.saved_model.load(export_dir, ["serve"]).meta_graph_def
    listed = op_defs(meta.meta_info_def.stripped_op_list)
    assert list(listed) == ops_used_by_graph_def(meta.graph_def)
    assert listed == {name: op_def_registry.get(name).SerializeToString(deterministic=True) for name in listed}


def test_scoped_export_lists_only_the_ops_inside_the_scope(tf):
    graph = tf.Graph()
    with graph.as_default():
        feed = tf.compat.v1.placeholder(tf.float32, [1], name="feed")
        with tf.compat.v1.variable_scope("tower"):
            v = tf.compat.v1.get_variable("v", initializer=tf.constant([1.0]), use_resource=False)
            tf.multiply(v, feed, name="out")
            saver = tf.compat.v1.train.Saver([v])
        tf.add(feed, feed, name="outside")
        whole = saver.export_meta_graph()
        theirs = saver.export_meta_graph(export_scope="tower")
    assert {"AddV2", "Placeholder"} <= set(op_defs(whole.meta_info_def.stripped_op_list))
    # TensorFlow's own message, as export_meta_graph takes it.
    ours = fastckpt.export_meta_graph(None, whole, export_scope="tower")
    assert op_defs(ours.meta_info_def.stripped_op_list) == op_defs(theirs.meta_info_def.stripped_op_list)
    assert "AddV2" not in op_defs(ours.meta_info_def.stripped_op_list)
    # A list given with a graph kept whole is kept.
    assert (
        fastckpt.export_meta_graph(None, whole).meta_info_def
        == MetaGraphDef.FromString(whole.SerializeToString()).meta_info_def
    )


# Node names -----------------------------------------------------------------------------------------------


def test_one_string_of_node_names_is_refused_as_tensorflow_refuses_it(tf, tmp_path):
    with tf.Graph().as_default() as graph:
        v = tf.compat.v1.get_variable("v", initializer=tf.constant([1.0]), use_resource=False)
        tf.add(v, v, name="add")
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
            theirs = [
                raised(tf.compat.v1.graph_util.extract_sub_graph, graph.as_graph_def(), "add"),
                raised(tf.compat.v1.graph_util.convert_variables_to_constants, sess, graph.as_graph_def(), "add"),
            ]
    graph_def = fastckpt.protos.GraphDef.FromString(graph.as_graph_def().SerializeToString())
    ours = [
        raised(fastckpt.graphs.extract_sub_graph, graph_def, "add"),
        raised(fastckpt.convert_variables_to_constants, graph_def, prefix, "add"),
    ]
    for their_error, our_error in zip(theirs, ours):
        assert type(their_error) is TypeError and isinstance(our_error, TypeError)
        assert isinstance(our_error, errors.InvalidTypeError)
        assert str(their_error) == "dest_nodes must be an iterable of strings, but got type <class 'str'>."
        assert str(our_error).startswith(str(their_error)[:-1])
    # A list of the one name is what was meant.
    assert [node.name for node in fastckpt.graphs.extract_sub_graph(graph_def, ["add"]).node if node.op == "AddV2"] == [
        "add"
    ]
