"""What TensorFlow's own tests of the Saver and of checkpoint_management (saver_test.py,
checkpoint_management_test.py) and its tutorials expect, asked of fastckpt with TensorFlow beside it as the
judge: the var_lists it refuses, its errors and their messages, a sharded save named like the state file,
get_checkpoint_mtimes and remove_checkpoint, moving averages from training to inference, variables given as
arrays, and Saver.export_meta_graph."""

import os
import re

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from fastckpt.protos import CheckpointState
from google.protobuf import text_format
from helpers.object_stores import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, apply_env
from helpers.processes import run_python


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def tf_error(call, *args, **kwargs):
    """The exception ``call(*args, **kwargs)`` raises (it must raise)."""
    with pytest.raises(Exception) as raised:
        call(*args, **kwargs)
    return raised.value


def tf_save(tf, save_path, values, **saver_options):
    """``values`` (``{name: array}``) saved by TensorFlow's Saver as ref variables; returns what save returns."""
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        for name, value in values.items():
            tf1.Variable(value, name=name, use_resource=False)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return tf1.train.Saver(**saver_options).save(sess, save_path)


# 1. var_lists TensorFlow refuses ----------------------------------------------------------------------------------


def test_a_name_twice_and_one_variable_under_two_names_are_refused_as_tensorflow_refuses(tf):
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        v0, v1 = tf1.Variable(1.0, name="v0"), tf1.Variable(2.0, name="v1")
        tf_twice = tf_error(lambda: tf1.train.Saver([v0, v1, v1]))
        tf_two_names = tf_error(lambda: tf1.train.Saver({"v0": v0, "v0too": v0}))
    with pytest.raises(errors.InvalidArgumentError) as twice:
        fastckpt.Saver(["v0", "v1", "v1"])
    with pytest.raises(errors.InvalidArgumentError) as two_names:
        fastckpt.Saver({"v0": "v0", "v0too": "v0"})
    for ours, theirs in ((twice.value, tf_twice), (two_names.value, tf_two_names)):
        assert isinstance(theirs, ValueError) and isinstance(ours, ValueError)
        assert str(ours).startswith(str(theirs)), (str(ours), str(theirs))
    # The same array under two names is one variable too; two arrays of equal values are two.
    array = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="The same saveable will be restored with two names: b"):
        fastckpt.Saver({"a": array, "b": array})
    fastckpt.Saver({"a": array, "b": array.copy()})
    with pytest.raises(errors.InvalidTypeError, match="holds names"):
        fastckpt.Saver([array])


# 2. Restoring into another shape ----------------------------------------------------------------------------------


def test_restoring_into_another_shape_says_what_tensorflow_says(tf, tmp_path):
    tf1 = tf.compat.v1
    prefix = tf_save(tf, str(tmp_path / "model"), {"var0": np.arange(6, dtype=np.float32).reshape(2, 3)})
    with tf.Graph().as_default():
        tf1.Variable(np.zeros((3, 2), np.float32), name="var0", use_resource=False)
        with tf1.Session() as sess:
            theirs = tf_error(lambda: tf1.train.Saver().restore(sess, prefix))
    assert isinstance(theirs, tf.errors.InvalidArgumentError)
    tf_line = re.search(r"Assign requires shapes of both tensors to match\.[^\n]*", str(theirs)).group(0)
    target = np.zeros((3, 2), np.float32)
    with pytest.raises(errors.InvalidArgumentError) as ours:
        fastckpt.Saver({"var0": target}).restore(prefix)
    assert str(ours.value).startswith(tf_line + ":"), (str(ours.value), tf_line)
    assert "Saver(reshape=True)" in str(ours.value) and ours.value.tensor_name == "var0"
    assert not target.any()


# 3. A save where the directory cannot be --------------------------------------------------------------------------


@pytest.mark.parametrize("sharded", [False, True])
def test_a_file_in_place_of_the_directory_is_tensorflows_value_error(tf, tmp_path, sharded):
    (tmp_path / "afile").write_text("not a directory")
    for save_path in (str(tmp_path / "afile" / "model.ckpt"), str(tmp_path / "afile" / "deeper" / "model.ckpt")):
        theirs = tf_error(tf_save, tf, save_path, {"v": np.float32(1.0)}, sharded=sharded)
        assert type(theirs) is ValueError
        assert str(theirs) == f"Parent directory of {save_path} doesn't exist, can't save."
        with pytest.raises(errors.InvalidArgumentError) as ours:
            fastckpt.Saver(sharded=sharded).save({"v": np.float32(1.0)}, save_path)
        assert isinstance(ours.value, ValueError)
        assert str(ours.value).startswith(str(theirs)) and ours.value.filename == save_path
    assert sorted(os.listdir(tmp_path)) == ["afile"]


def test_a_missing_directory_is_created_as_tensorflow_creates_one(tf, tmp_path):
    """TensorFlow 2.21 creates one missing directory for an unsharded save (and refuses a sharded one, or
    two levels: "Parent directory of ... doesn't exist"); fastckpt creates every missing level, for every save."""
    tf_prefix = tf_save(tf, str(tmp_path / "tf" / "model.ckpt"), {"v": np.float32(1.0)})
    ours = fastckpt.Saver().save({"v": np.float32(1.0)}, str(tmp_path / "ours" / "model.ckpt"))
    assert sorted(os.listdir(os.path.dirname(tf_prefix))) == sorted(os.listdir(os.path.dirname(ours)))


# 4. A sharded save named like the state file ----------------------------------------------------------------------


def test_a_sharded_save_named_like_the_state_file_is_written_and_read_as_tensorflow_does(tf, in_tmp):
    os.mkdir("tf_train")
    os.mkdir("train")
    values = {"v": np.float32(3.0)}
    tf_prefix = tf_save(tf, os.path.join("tf_train", "checkpoint"), values, sharded=True)
    prefix = fastckpt.Saver(sharded=True).save(values, os.path.join("train", "checkpoint"))
    assert (prefix, tf_prefix) == (os.path.join("train", "checkpoint"), os.path.join("tf_train", "checkpoint"))
    assert (
        sorted(os.listdir("train"))
        == sorted(os.listdir("tf_train"))
        == [
            "checkpoint",
            "checkpoint.data-00000-of-00001",
            "checkpoint.index",
            "checkpoint.meta",
        ]
    )
    ours, theirs = (
        text_format.Parse((in_tmp / d / "checkpoint").read_text(), CheckpointState()) for d in ("train", "tf_train")
    )
    assert ours.model_checkpoint_path == theirs.model_checkpoint_path == "checkpoint"
    assert ours.all_model_checkpoint_paths == theirs.all_model_checkpoint_paths == ["checkpoint"]
    tf1 = tf.compat.v1
    assert tf1.train.latest_checkpoint("train") == prefix
    with tf.Graph().as_default():
        v = tf1.Variable(0.0, name="v", use_resource=False)
        with tf1.Session() as sess:
            tf1.train.Saver().restore(sess, tf1.train.latest_checkpoint("train"))
            assert sess.run(v) == 3.0
    # Unsharded, TensorFlow refuses it, and so does fastckpt.
    theirs = tf_error(lambda: tf_save(tf, os.path.join("train", "checkpoint"), values))
    with pytest.raises(errors.InvalidArgumentError) as ours:
        fastckpt.Saver().save(values, os.path.join("train", "checkpoint"))
    assert isinstance(theirs, ValueError) and str(ours.value).startswith(str(theirs))


def test_a_sharded_save_named_like_the_state_file_at_an_absolute_path(tf, tmp_path):
    """TensorFlow raises a RuntimeError there after writing the checkpoint (it compares the state file's path
    with the checkpoint's as strings); fastckpt saves, and TensorFlow reads what it saved."""
    prefix = fastckpt.Saver(sharded=True).save({"v": np.float32(3.0)}, str(tmp_path / "checkpoint"))
    assert tf.compat.v1.train.latest_checkpoint(str(tmp_path)) == prefix
    assert tf.train.load_variable(prefix, "v") == 3.0


# 5. get_checkpoint_mtimes and remove_checkpoint -------------------------------------------------------------------


def twin_checkpoints(tf, directory):
    """In ``directory``: the same variable saved by TensorFlow as V2, V1 and sharded V1; their prefixes."""
    from tensorflow.core.protobuf import saver_pb2

    directory.mkdir()
    values = {"v": np.float32(1.0)}
    v1 = saver_pb2.SaverDef.V1
    return [
        tf_save(tf, str(directory / "v2"), values),
        tf_save(tf, str(directory / "v1"), values, write_version=v1),
        tf_save(tf, str(directory / "v1s"), values, write_version=v1, sharded=True),
    ]


def test_get_checkpoint_mtimes_as_tensorflow(tf, tmp_path):
    prefixes = twin_checkpoints(tf, tmp_path / "run")
    assert prefixes[2].endswith("-?????-of-00001")
    asked = [*prefixes, str(tmp_path / "run" / "nothing")]
    theirs = tf.compat.v1.train.get_checkpoint_mtimes(asked)
    ours = fastckpt.get_checkpoint_mtimes(asked)
    assert len(ours) == len(theirs) == 3  # the missing prefix is left out
    assert [int(t) for t in ours] == [int(t) for t in theirs]  # TensorFlow's local files give whole seconds
    index = os.stat(prefixes[0] + ".index").st_mtime
    assert ours[0] == pytest.approx(index, abs=1e-3) and ours[1] == pytest.approx(
        os.stat(prefixes[1]).st_mtime, abs=1e-3
    )
    assert fastckpt.get_checkpoint_mtimes([]) == tf.compat.v1.train.get_checkpoint_mtimes([]) == []


def test_remove_checkpoint_leaves_what_tensorflows_leaves(tf, tmp_path):
    from tensorflow.core.protobuf import saver_pb2

    theirs, ours = twin_checkpoints(tf, tmp_path / "tf"), twin_checkpoints(tf, tmp_path / "ours")
    versions = [saver_pb2.SaverDef.V2, saver_pb2.SaverDef.V1, saver_pb2.SaverDef.V1]
    for tf_prefix, prefix, version in zip(theirs, ours, versions):
        tf.compat.v1.train.remove_checkpoint(tf_prefix, version)
        fastckpt.remove_checkpoint(prefix, version)
        assert not fastckpt.checkpoint_exists(prefix)
        assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "tf"))
    assert sorted(os.listdir(tmp_path / "ours")) == ["checkpoint"]
    fastckpt.remove_checkpoint(str(tmp_path / "ours" / "nothing"))  # nothing there is no error, as in TensorFlow
    # A sharded V2 checkpoint and a .meta of another suffix.
    prefix = fastckpt.Saver(sharded=True, num_shards=2).save(
        {"a": np.ones(2), "b": np.zeros(2)}, str(tmp_path / "sharded" / "model"), meta_graph_suffix="graph"
    )
    fastckpt.remove_checkpoint(prefix, meta_graph_suffix="graph")
    assert sorted(os.listdir(tmp_path / "sharded")) == ["checkpoint"]


def test_get_checkpoint_mtimes_and_remove_checkpoint_in_an_object_store(s3_server, monkeypatch):
    apply_env(monkeypatch, {})  # no AWS_* variables: storage_options alone reach the server
    options = {
        "aws_endpoint": s3_server.endpoint,
        "aws_access_key_id": S3_ACCESS_KEY,
        "aws_secret_access_key": S3_SECRET_KEY,
        "aws_region": S3_REGION,
        "aws_allow_http": "true",
    }
    bucket = s3_server.create_bucket()
    saver = fastckpt.Saver(sharded=True, num_shards=2, storage_options=options)
    prefixes = [
        saver.save({"a": np.ones(2), "b": np.ones(3)}, f"s3://{bucket}/run/model", global_step=s) for s in (1, 2)
    ]
    mtimes = fastckpt.get_checkpoint_mtimes([*prefixes, f"s3://{bucket}/run/none"], storage_options=options)
    assert len(mtimes) == 2 and all(abs(t - mtimes[0]) < 600 for t in mtimes)
    fastckpt.remove_checkpoint(prefixes[0], storage_options=options)
    listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == [
        "run/checkpoint",
        "run/model-2.data-00000-of-00002",
        "run/model-2.data-00001-of-00002",
        "run/model-2.index",
        "run/model-2.meta",
    ]


# 6. Moving averages, from training to inference -------------------------------------------------------------------

# Inference as TensorFlow's tutorial does it, in a fresh process: the model's variable, a fresh
# ExponentialMovingAverage, and the shadows restored into the variables.
_EMA_INFERENCE = """
import json, sys
import numpy as np
import fastckpt

v = np.zeros((), np.float32)
w = np.zeros(3, np.float32)
fresh = fastckpt.ExponentialMovingAverage(0.99)
fastckpt.Saver(fresh.variables_to_restore({"v": v, "w": w})).restore(sys.argv[1])
by_name = fastckpt.Saver(fastckpt.ExponentialMovingAverage(0.99).variables_to_restore(["v", "w"])).restore(sys.argv[1])
# As the tutorial writes it: the var_list is the checkpoint's variables, each from its shadow where it has one.
tutorial = fastckpt.Saver(fastckpt.ExponentialMovingAverage(0.99).variables_to_restore()).restore(sys.argv[1])
print(json.dumps([float(v), w.tolist(), float(by_name["v"]), by_name["w"].tolist(),
                  {name: np.asarray(value).tolist() for name, value in tutorial.items()}]))
"""


def test_ema_shadows_trained_by_tensorflow_restore_into_the_variables_in_a_fresh_process(tf, tmp_path):
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        v = tf1.Variable(0.0, name="v")
        w = tf1.Variable(np.zeros(3, np.float32), name="w")
        tf1.train.get_or_create_global_step()
        ema = tf1.train.ExponentialMovingAverage(0.99)
        update = ema.apply([v, w])
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run([v.assign(10.0), w.assign([1.0, 2.0, 3.0])])
            sess.run(update)
            shadows = sess.run([ema.average(v), ema.average(w)])
            prefix = tf1.train.Saver().save(sess, str(tmp_path / "model.ckpt"))
    assert shadows[0] == np.float32(0.099999905)  # the tutorial's number
    v_value, w_value, v_by_name, w_by_name, tutorial = run_python(_EMA_INFERENCE, prefix)
    assert np.float32(v_value) == shadows[0] and np.float32(v_by_name) == shadows[0]
    np.testing.assert_array_equal(np.float32(w_value), shadows[1])
    np.testing.assert_array_equal(np.float32(w_by_name), shadows[1])
    assert sorted(tutorial) == ["global_step", "v", "w"]
    assert np.float32(tutorial["v"]) == shadows[0] and tutorial["global_step"] == 0
    np.testing.assert_array_equal(np.float32(tutorial["w"]), shadows[1])


def test_the_tutorials_numbers(tf):
    """v = 0, shadow created, v = 10, one update: TensorFlow's 0.099999905, as the docstring and README show."""
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        v = tf1.Variable(0.0, name="v")
        ema = tf1.train.ExponentialMovingAverage(0.99)
        update = ema.apply([v])
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(v.assign(10.0))
            expected = []
            for _ in range(3):
                sess.run(update)
                expected.append(sess.run(ema.average(v)))
    ours = fastckpt.ExponentialMovingAverage(0.99)
    ours.apply({"v": np.float32(0.0)})
    for value in expected:
        ours.apply({"v": np.float32(10.0)})
        assert ours.average("v") == value
    assert expected[0] == np.float32(0.099999905)
    assert fastckpt.ExponentialMovingAverage(0.99).variables_to_restore({"v": "x"}) == {
        "v/ExponentialMovingAverage": "x"
    }


# 7. Variables given as arrays -------------------------------------------------------------------------------------


def test_a_dict_of_arrays_restores_into_them_in_place(tmp_path):
    prefix = fastckpt.Saver().save({"v1": [1.0], "v2": np.arange(4, dtype=np.int64)}, str(tmp_path / "model.ckpt"))
    v1, v2 = np.zeros([1], np.float32), np.zeros(4, np.int64)
    restored = fastckpt.Saver({"v1": v1, "v2": v2}).restore(prefix)
    assert v1.tolist() == [1.0] and v2.tolist() == [0, 1, 2, 3]
    assert restored["v1"] is v1 and restored["v2"] is v2
    # Mixed with names; and saved from the arrays themselves.
    mixed = fastckpt.Saver({"v1": v1, "v2": "local"}).restore(prefix)
    assert mixed["local"].tolist() == [0, 1, 2, 3]
    v1 += 1
    again = fastckpt.Saver({"renamed": v1}).save(None, str(tmp_path / "again.ckpt"))
    assert fastckpt.load_checkpoint(again).get_tensor("renamed").tolist() == [2.0]


def test_a_torch_tensor_in_the_var_list_is_restored_into(tmp_path):
    torch = pytest.importorskip("torch")
    prefix = fastckpt.Saver().save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "m.ckpt"))
    target = torch.zeros(3, 2, requires_grad=True)
    fastckpt.Saver({"w": target}, reshape=True).restore(prefix)
    assert target.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_what_cannot_be_written_in_place_is_refused_by_the_constructor():
    read_only = np.zeros(2, np.float32)
    read_only.flags.writeable = False
    cases = [
        (read_only, errors.InvalidArgumentError, "read-only"),
        (1.0, errors.InvalidTypeError, "scalar"),
        (np.float32(1.0), errors.InvalidTypeError, "scalar"),
        ([1.0, 2.0], errors.InvalidTypeError, "list"),
    ]
    for value, error, words in cases:
        with pytest.raises(error, match=words) as raised:
            fastckpt.Saver({"v1": value})
        assert "'v1'" in str(raised.value) and raised.value.tensor_name == "v1"


def test_a_target_that_cannot_take_its_tensor_is_refused_before_anything_is_written(tmp_path):
    prefix = fastckpt.Saver().save({"a": [1.0, 2.0], "b": [3.0], "c": [4.0]}, str(tmp_path / "model.ckpt"))
    a, b, c = np.zeros(2, np.float32), np.zeros(1, np.float32), np.zeros(1, np.float64)
    with pytest.raises(errors.InvalidArgumentError, match="dtypes differ") as raised:
        fastckpt.Saver({"a": a, "b": b, "c": c}).restore(prefix)
    assert raised.value.tensor_name == "c" and raised.value.filename == prefix
    with pytest.raises(errors.NotFoundError):
        fastckpt.Saver({"a": a, "b": b, "missing": "m"}).restore(prefix)
    with pytest.raises(errors.InvalidArgumentError, match="Assign requires shapes"):
        fastckpt.Saver().restore(prefix, into={"a": a, "b": np.zeros(2, np.float32)})
    assert not a.any() and not b.any() and not c.any()


# 8. Saver.export_meta_graph ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_text", [False, True])
def test_export_meta_graph_writes_what_tensorflow_imports(tf, tmp_path, as_text):
    saver = fastckpt.Saver()
    prefix = saver.save({"v1": np.float32(1.0), "w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "m"))
    filename = str(tmp_path / "exported.meta")
    exported = saver.export_meta_graph(filename, as_text=as_text)
    assert exported == fastckpt.read_meta_graph(filename)
    assert (b"graph_def {" in open(filename, "rb").read()) == as_text
    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        tf_saver = tf1.train.import_meta_graph(filename)
        with tf1.Session() as sess:
            tf_saver.restore(sess, prefix)
            assert sess.run(graph.get_tensor_by_name("v1:0")) == 1.0
            assert sess.run(graph.get_tensor_by_name("w:0")).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_export_meta_graph_of_a_var_list_of_arrays_before_any_save_and_its_options(tf, tmp_path):
    saver = fastckpt.Saver({"tower/w": np.ones([2], np.float32)})
    assert saver.export_meta_graph() == saver.export_meta_graph(str(tmp_path / "a.meta"))
    scoped = saver.export_meta_graph(str(tmp_path / "scoped.meta"), export_scope="tower", collection_list=["variables"])
    assert list(scoped.collection_def) == ["variables"] and not scoped.HasField("saver_def")
    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        assert tf1.train.import_meta_graph(str(tmp_path / "a.meta")) is not None
        assert [v.name for v in tf1.global_variables()] == ["tower/w:0"]
        assert graph.get_operation_by_name("save/restore_all") is not None
    with pytest.raises(errors.InvalidArgumentError, match="knows none"):
        fastckpt.Saver(["w"]).export_meta_graph()
    with pytest.raises(errors.UnimplementedError, match="strip_default_attrs"):
        saver.export_meta_graph(strip_default_attrs=True)
    imported = fastckpt.import_meta_graph(str(tmp_path / "a.meta"))
    assert imported.export_meta_graph() == imported.meta_graph_def
