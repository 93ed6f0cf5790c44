"""What TensorFlow's own tests of the Saver and of checkpoint_management (saver_test.py,
checkpoint_management_test.py) expect, asked of fastckpt with TensorFlow beside it as the judge:
get_checkpoint_mtimes and remove_checkpoint."""

import os

import fastckpt
import numpy as np
import pytest
from helpers.object_stores import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, apply_env


def tf_save(tf, save_path, values, **saver_options):
    """``values`` (``{name: array}``) saved by TensorFlow's Saver as ref variables; returns what save returns."""
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        for name, value in values.items():
            tf1.Variable(value, name=name, use_resource=False)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return tf1.train.Saver(**saver_options).save(sess, save_path)


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
