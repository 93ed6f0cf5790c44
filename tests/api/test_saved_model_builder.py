"""The SavedModel Builder against TensorFlow: its SavedModels load in tf.compat.v1.saved_model.loader (and
tf.saved_model.load) with variables, signatures, assets at their new paths and the main op; assets and
main ops are recorded as TensorFlow's own builder records them; the constants and build_* helpers are
TensorFlow's. Skipped without TensorFlow, except in CI (the last tests need no TensorFlow)."""

import inspect
import os

import fastckpt
import numpy as np
import pytest
from fastckpt import errors, saved_model
from fastckpt.protos import AttrValue, NodeDef, message_class

AssetFileDef = message_class("tensorflow.AssetFileDef")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def asset_records(meta):
    """The AssetFileDefs of the saved_model_assets collection, as (tensor name, filename)."""
    records = []
    for packed in meta.collection_def[saved_model.ASSETS_KEY].any_list.value:
        record = AssetFileDef()
        assert packed.Unpack(record)
        records.append((record.tensor_info.name, record.filename))
    return records


def raised(function, *args):
    """The exception ``function(*args)`` raises (the test fails when it raises none)."""
    with pytest.raises(Exception) as info:
        function(*args)
    return info.value


def our_meta_graph(export_dir, tags):
    return saved_model.load(export_dir, tags).meta_graph_def


def assign(name, target, source, dtype="string", device=""):
    node = NodeDef(name=name, op="Assign", input=[target, source], device=device)
    node.attr["T"].CopyFrom(AttrValue(type=fastckpt.dtypes.as_dtype(dtype).as_datatype_enum))
    return node


def test_constants_are_tensorflows(tf):
    from tensorflow.python.saved_model import constants, signature_constants, tag_constants

    for module, namespace in (
        (tag_constants, saved_model.tag_constants),
        (signature_constants, saved_model.signature_constants),
    ):
        names = [name for name in dir(module) if name.isupper()]
        assert sorted(vars(namespace)) == sorted(names)
        for name in names:
            assert getattr(saved_model, name) == getattr(namespace, name) == getattr(module, name), name
    # The file names and keys of a SavedModel (tf.saved_model.constants), as fastckpt.saved_model lists them: every
    # constant it exports beside the tag and signature constants is TensorFlow's, with its value, and every one of
    # TensorFlow's it defines is exported.
    tags_and_signatures = {**vars(saved_model.tag_constants), **vars(saved_model.signature_constants)}
    exported = [name for name in saved_model.__all__ if name.isupper() and name not in tags_and_signatures]
    assert exported
    for name in exported:
        assert getattr(saved_model, name) == getattr(constants, name), name
    defined = [name for name in dir(constants) if name.isupper() and hasattr(saved_model, name)]
    assert sorted(defined) == sorted(exported)
    assert "SERVING" in saved_model.__all__ and "PREDICT_METHOD_NAME" in saved_model.__all__


def test_build_functions_are_tensorflows(tf):
    assert list(inspect.signature(saved_model.build_signature_def).parameters) == list(
        inspect.signature(tf.compat.v1.saved_model.build_signature_def).parameters
    )
    assert next(iter(inspect.signature(saved_model.build_tensor_info).parameters)) == "tensor"
    with tf.Graph().as_default():
        tensors = {
            "x": tf.compat.v1.placeholder(tf.float32, [None, 3], name="x"),
            "any": tf.compat.v1.placeholder(tf.string, None, name="any"),
            "scalar": tf.compat.v1.placeholder(tf.int64, [], name="scalar"),
        }
        default = tf.constant([1.0, 2.0, 3.0])
        theirs = {key: tf.compat.v1.saved_model.build_tensor_info(t) for key, t in tensors.items()}
        ours = {
            "x": saved_model.build_tensor_info("x:0", "float32", [None, 3]),
            "any": saved_model.build_tensor_info("any:0", fastckpt.dtypes.string),
            "scalar": saved_model.build_tensor_info("scalar:0", np.int64, []),
        }
        for key in tensors:
            assert ours[key].SerializeToString() == theirs[key].SerializeToString(), key
            assert saved_model.build_tensor_info(tensors[key]).SerializeToString() == theirs[key].SerializeToString()
        their_signature = tf.compat.v1.saved_model.build_signature_def(
            theirs, {"y": theirs["x"]}, tf.compat.v1.saved_model.PREDICT_METHOD_NAME, defaults={"x": default}
        )
        their_plain = tf.compat.v1.saved_model.build_signature_def(theirs, {"y": theirs["x"]})
    our_signature = saved_model.build_signature_def(
        ours, {"y": ours["x"]}, saved_model.PREDICT_METHOD_NAME, defaults={"x": np.array([1.0, 2.0, 3.0], np.float32)}
    )
    assert our_signature.SerializeToString(deterministic=True) == their_signature.SerializeToString(deterministic=True)
    assert saved_model.build_signature_def(ours, {"y": ours["x"]}).SerializeToString(deterministic=True) == (
        their_plain.SerializeToString(deterministic=True)
    )


@pytest.fixture
def exported(tmp_path):
    """A SavedModel with two meta graphs: serve (a signature, two assets, a main op storing the asset's path
    as the loader feeds it) and train (an asset of its own, a NoOp main op)."""
    vocab = write(str(tmp_path / "src" / "vocab.txt"), "a\nb\n")
    labels = write(str(tmp_path / "src" / "labels.txt"), "cat\ndog\n")
    other_vocab = write(str(tmp_path / "other" / "train_vocab.txt"), "x\ny\nz\n")
    export_dir = str(tmp_path / "export")
    values = {"w": np.array([1.0, 2.0, 3.0], np.float32), "step": np.int64(42), "vocab_path": b""}
    signature = saved_model.build_signature_def(
        outputs={"weights": saved_model.build_tensor_info("w/read:0", "float32", [3])},
        method_name=saved_model.PREDICT_METHOD_NAME,
    )
    builder = saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(
        values,
        [saved_model.SERVING],
        {saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY: signature},
        assets_collection=[vocab, labels],
        main_op=assign("main_op", "vocab_path", "asset_path"),
    )
    builder.add_meta_graph(
        [saved_model.TRAINING], assets_collection={"train_vocab": other_vocab}, main_op=saved_model.build_main_op()
    )
    builder.save()
    return export_dir, values


def test_tensorflow_loader_loads_variables_signatures_assets_and_main_op(tf, exported):
    from tensorflow.python.saved_model import loader_impl

    export_dir, values = exported
    assets_dir = os.path.join(export_dir, "assets")
    assert sorted(os.listdir(assets_dir)) == ["labels.txt", "train_vocab.txt", "vocab.txt"]
    with tf.Graph().as_default():
        with tf.compat.v1.Session() as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, [tf.compat.v1.saved_model.SERVING], export_dir)
            output = meta.signature_def["serving_default"].outputs["weights"].name
            assert sess.run(output).tolist() == [1.0, 2.0, 3.0]
            assert sess.run("step:0") == 42
            # The main op ran with the asset's path in the SavedModel fed to its tensor.
            assert sess.run("vocab_path:0") == os.path.join(assets_dir, "vocab.txt").encode()
            assert [op.name for op in tf.compat.v1.get_collection(tf.compat.v1.saved_model.MAIN_OP_KEY)] == ["main_op"]
            assert [t.name for t in tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS)] == [
                "asset_path:0",
                "asset_path_1:0",
            ]
        assets = loader_impl.get_asset_tensors(export_dir.encode(), meta)
    assert {name: open(path, "rb").read() for name, path in assets.items()} == {
        "asset_path:0": b"a\nb\n",
        "asset_path_1:0": b"cat\ndog\n",
    }
    with tf.Graph().as_default():
        with tf.compat.v1.Session() as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, ["train"], export_dir)
            assert sess.run("w:0").tolist() == [1.0, 2.0, 3.0]
            assert [op.type for op in tf.compat.v1.get_collection(saved_model.MAIN_OP_KEY)] == ["NoOp"]
        train_assets = loader_impl.get_asset_tensors(export_dir.encode(), meta)
    assert {name: open(path).read() for name, path in train_assets.items()} == {"train_vocab:0": "x\ny\nz\n"}


def test_tensorflow_2_loads_it(tf, exported):
    export_dir, _ = exported
    model = tf.saved_model.load(export_dir, tags=["serve"])
    assert model.signatures["serving_default"]()["weights"].numpy().tolist() == [1.0, 2.0, 3.0]
    assert [open(path.asset_path.numpy()).read() for path in model.asset_paths] == ["a\nb\n", "cat\ndog\n"]


def test_assets_and_main_op_recorded_as_tensorflows_builder(tf, tmp_path):
    sources = [
        write(str(tmp_path / "a" / "vocab.txt"), "a"),
        write(str(tmp_path / "b" / "vocab.txt"), "b"),
        write(str(tmp_path / "c" / "vocab.txt"), "a"),
    ]
    their_dir, our_dir = str(tmp_path / "theirs"), str(tmp_path / "ours")
    with tf.Graph().as_default():
        tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]), use_resource=False)
        tensors = [tf.constant(path, name="asset_path") for path in sources]
        for tensor in tensors:
            tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, tensor)
        main_op = tf.no_op(name="main_op")
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(their_dir)
            builder.add_meta_graph_and_variables(sess, ["serve"], assets_collection=tensors, main_op=main_op)
            builder.save()
    theirs = fastckpt.saved_model.load(their_dir, ["serve"]).meta_graph_def
    builder = saved_model.Builder(our_dir)
    builder.add_meta_graph_and_variables(
        {"w": [1.0]}, ["serve"], assets_collection=sources, main_op=saved_model.build_main_op()
    )
    builder.save()
    ours = our_meta_graph(our_dir, ["serve"])
    # Same basename: the same contents share the file, other contents are renamed as TensorFlow renames them.
    assert (
        asset_records(ours)
        == asset_records(theirs)
        == [("asset_path:0", "vocab.txt"), ("asset_path_1:0", "vocab.txt_1"), ("asset_path_2:0", "vocab.txt")]
    )
    assert sorted(os.listdir(os.path.join(our_dir, "assets"))) == sorted(os.listdir(os.path.join(their_dir, "assets")))
    for name in os.listdir(os.path.join(our_dir, "assets")):
        assert (
            open(os.path.join(our_dir, "assets", name)).read() == open(os.path.join(their_dir, "assets", name)).read()
        )
    for key in (saved_model.MAIN_OP_KEY, "asset_filepaths"):
        assert ours.collection_def[key] == theirs.collection_def[key]
    # The MetaGraphDef's asset_file_def (read first by the loader) says the same as the collection.
    assert [(a.tensor_info.name, a.filename) for a in ours.asset_file_def] == asset_records(ours)
    their_consts = {
        n.name: n.attr["value"].tensor.string_val for n in theirs.graph_def.node if n.name.startswith("asset_path")
    }
    assert {
        n.name: n.attr["value"].tensor.string_val for n in ours.graph_def.node if n.name in their_consts
    } == their_consts


@pytest.mark.parametrize("clear_devices", [False, True])
def test_clear_devices_and_legacy_init_op(tf, tmp_path, clear_devices):
    export_dir = str(tmp_path / "export")
    builder = saved_model.Builder(export_dir)
    main_op = assign("init_step", "step", "step/Initializer/zeros", "int64", device="/device:CPU:0")
    builder.add_meta_graph_and_variables(
        {"step": np.int64(5)}, ["serve"], legacy_init_op=main_op, clear_devices=clear_devices
    )
    builder.save()
    meta = our_meta_graph(export_dir, ["serve"])
    assert list(meta.collection_def[saved_model.MAIN_OP_KEY].node_list.value) == ["init_step"]
    assert next(n for n in meta.graph_def.node if n.name == "init_step").device == (
        "" if clear_devices else "/device:CPU:0"
    )
    with tf.Graph().as_default():
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.saved_model.loader.load(sess, ["serve"], export_dir)
            assert sess.run("step:0") == 0  # the main op runs after the restore


def tf_asset_graph(tf, path):
    """A graph with variable w and the asset ``path``, as a TensorFlow builder's graph; returns the asset tensors."""
    tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]), use_resource=False)
    tensor = tf.constant(path, name="asset_path")
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, tensor)
    return [tensor]


def asset_contents(tf, export_dir, tags):
    """``{asset filename: contents}`` of the meta graph tagged ``tags``, as TensorFlow's loader finds them."""
    from tensorflow.python.saved_model import loader_impl

    meta = tf_load_meta_graph(tf, export_dir, tags)
    paths = loader_impl.get_asset_tensors(export_dir.encode(), meta)
    return {os.path.basename(os.fsdecode(path)): open(path).read() for path in paths.values()}


def tf_load_meta_graph(tf, export_dir, tags):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        return tf.compat.v1.saved_model.loader.load(sess, tags, export_dir)


@pytest.mark.parametrize("second", ["other contents", "same contents", "same file"])
def test_assets_across_meta_graphs_stored_as_tensorflows_builder(tf, tmp_path, second):
    """A name is stored once, by the first meta graph that has it; a later meta graph's file of that name is
    recorded as that file, whatever its contents (TensorFlow's builder gives the second graph the first file)."""
    first = write(str(tmp_path / "a" / "foo.txt"), "content_foo")
    if second == "same file":
        other = first
    else:
        other = write(str(tmp_path / "b" / "foo.txt"), "content_bar" if second == "other contents" else "content_foo")
    their_dir, our_dir = str(tmp_path / "theirs"), str(tmp_path / "ours")
    builder = tf.compat.v1.saved_model.Builder(their_dir)
    for tags, path in ((["foo"], first), (["bar"], other)):
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            tensors = tf_asset_graph(tf, path)
            sess.run(tf.compat.v1.global_variables_initializer())
            if tags == ["foo"]:
                builder.add_meta_graph_and_variables(sess, tags, assets_collection=tensors)
            else:
                builder.add_meta_graph(tags, assets_collection=tensors)
    builder.save()
    builder = saved_model.Builder(our_dir)
    builder.add_meta_graph_and_variables({"w": [1.0]}, ["foo"], assets_collection=[first])
    if second == "other contents":
        with pytest.warns(UserWarning, match="assets/foo.txt, which an earlier meta graph stored from"):
            builder.add_meta_graph(["bar"], assets_collection=[other])
    else:
        builder.add_meta_graph(["bar"], assets_collection=[other])
    builder.save()
    assert sorted(os.listdir(os.path.join(our_dir, "assets"))) == sorted(os.listdir(os.path.join(their_dir, "assets")))
    assert os.listdir(os.path.join(our_dir, "assets")) == ["foo.txt"]
    for tags in (["foo"], ["bar"]):
        ours, theirs = our_meta_graph(our_dir, tags), our_meta_graph(their_dir, tags)
        assert asset_records(ours) == asset_records(theirs) == [("asset_path:0", "foo.txt")]
        assert asset_contents(tf, our_dir, tags) == asset_contents(tf, their_dir, tags) == {"foo.txt": "content_foo"}


def test_builder_misuse_raises_what_tensorflows_builder_raises(tf, tmp_path):
    """AssertionError, with TensorFlow's message and then the export directory and the signature concerned."""
    their_dir, our_dir = str(tmp_path / "theirs"), str(tmp_path / "ours")
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]), use_resource=False)
        sess.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(their_dir)
        theirs = {"add_meta_graph first": raised(builder.add_meta_graph, ["train"])}
        for case, info in (("no dtype", {"name": "w:0"}), ("no name", {"dtype": 1})):
            signature = {
                "s": tf.compat.v1.saved_model.build_signature_def(outputs={"y": tf.compat.v1.TensorInfo(**info)})
            }
            theirs[case] = raised(builder.add_meta_graph_and_variables, sess, ["serve"], signature)
        builder.add_meta_graph_and_variables(sess, ["serve"])
        theirs["variables twice"] = raised(builder.add_meta_graph_and_variables, sess, ["serve"])
        builder.save()
    theirs["existing directory"] = raised(tf.compat.v1.saved_model.Builder, their_dir)

    builder = saved_model.Builder(our_dir)
    ours = {"add_meta_graph first": raised(builder.add_meta_graph, ["train"])}
    for case, info in (("no dtype", {"name": "w:0"}), ("no name", {"dtype": 1})):
        signature = {"s": saved_model.build_signature_def(outputs={"y": fastckpt.protos.TensorInfo(**info)})}
        ours[case] = raised(builder.add_meta_graph_and_variables, {"w": [1.0]}, ["serve"], signature)
    builder.add_meta_graph_and_variables({"w": [1.0]}, ["serve"])
    ours["variables twice"] = raised(builder.add_meta_graph_and_variables, {"w": [1.0]}, ["serve"])
    builder.save()
    ours["existing directory"] = raised(saved_model.Builder, our_dir)

    for case, their_error in theirs.items():
        our_error = ours[case]
        assert type(their_error) is AssertionError, case
        assert isinstance(our_error, AssertionError) and isinstance(our_error, errors.BuilderMisuseError), case
        assert our_error.filename == our_dir, case
        if case == "existing directory":
            assert str(our_error) == str(their_error).replace(their_dir, our_dir)
        else:
            assert str(our_error).startswith(str(their_error)[:-1]) and our_dir in str(our_error), case


# Without TensorFlow ---------------------------------------------------------------------------------------


def test_builder_refuses_what_does_not_fit_the_graph_before_writing(tmp_path):
    export_dir = str(tmp_path / "export")
    builder = saved_model.Builder(export_dir)
    good = saved_model.build_tensor_info("w/read:0", "float32", [1])
    cases = [
        (
            errors.InvalidArgumentError,
            dict(
                signature_def_map={
                    "s": saved_model.build_signature_def(outputs={"y": saved_model.build_tensor_info("y:0", "float32")})
                }
            ),
        ),
        (
            errors.InvalidArgumentError,
            dict(
                signature_def_map={
                    saved_model.INIT_OP_SIGNATURE_KEY: saved_model.build_signature_def(outputs={"w": good})
                }
            ),
        ),
        (
            errors.InvalidArgumentError,
            dict(
                signature_def_map={
                    "s": saved_model.build_signature_def(outputs={"w": fastckpt.protos.TensorInfo(name="w/read:0")})
                }
            ),
        ),
        (errors.InvalidArgumentError, dict(main_op="no_such_op")),
        (errors.InvalidArgumentError, dict(main_op=saved_model.build_main_op(["no_such_op"]))),
        (errors.InvalidArgumentError, dict(main_op=saved_model.build_main_op(name="w/read"))),
        (errors.InvalidArgumentError, dict(assets_collection=str(tmp_path))),
        (errors.NotFoundError, dict(assets_collection=[str(tmp_path / "missing.txt")])),
    ]
    for error, arguments in cases:
        with pytest.raises(error) as raised:
            builder.add_meta_graph_and_variables({"w": [1.0]}, ["serve"], **arguments)
        assert raised.value.filename in (export_dir, str(tmp_path / "missing.txt")), arguments
        assert not os.path.exists(export_dir), arguments
    builder.add_meta_graph_and_variables({"w": [1.0]}, ["serve"], main_op="w/Assign")
    with pytest.raises(errors.InvalidArgumentError):
        builder.add_meta_graph_and_variables({"w": [1.0]}, ["serve"])
    builder.save()
    assert list(our_meta_graph(export_dir, ["serve"]).collection_def[saved_model.MAIN_OP_KEY].node_list.value) == [
        "w/Assign"
    ]


def test_build_tensor_info_needs_a_dtype_for_a_name():
    with pytest.raises(errors.InvalidArgumentError):
        saved_model.build_tensor_info("w/read:0")
