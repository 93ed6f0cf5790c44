"""TensorFlow is the judge of what fastckpt writes: it reads it back, restores it into graphs, and writes
the same bytes itself. Skipped without TensorFlow, except in CI."""

import os

import fastckpt
import ml_dtypes
import numpy as np
from helpers.checkpoints import NUMPY_DTYPES, assert_same_value


def every_dtype_values():
    rng = np.random.default_rng(3)
    values = {}
    for dtype in [ml_dtypes.bfloat16, *NUMPY_DTYPES]:
        name = np.dtype(dtype).name
        values[f"{name}/matrix"] = (rng.standard_normal((5, 7)) * 50).astype(dtype)
        values[f"{name}/scalar"] = np.array(3, dtype=dtype)[()]
        values[f"{name}/empty"] = np.zeros((0, 4), dtype=dtype)
    values["string/matrix"] = np.array([[b"", b"\x00\xff"], ["ünï".encode(), b"y" * 500]], dtype=object)
    values["string/scalar"] = b"scalar"
    values["odd names/ünïcödé/变量 "] = np.float32(1.5)
    return values


def test_tensorflow_reads_every_dtype(tf, tmp_path):
    values = every_dtype_values()
    prefix = str(tmp_path / "ckpt")
    with fastckpt.CheckpointWriter(prefix) as writer:
        for name, value in values.items():
            writer.add(name, value)
    reader = tf.train.load_checkpoint(prefix)
    assert set(reader.get_variable_to_shape_map()) == set(values)
    for name, value in values.items():
        assert_same_value(reader.get_tensor(name), value, name)


def test_same_bytes_as_save_v2(tf, tmp_path):
    """Same tensors in the same order: byte-identical .index and .data, over several index blocks."""
    values = every_dtype_values()
    for i in range(7000):
        values[f"model/encoder/layer_{i:05d}/" + "attention/" * 6 + "kernel"] = np.float32(i)
    names = list(values)
    np.random.default_rng(0).shuffle(names)
    tf.raw_ops.SaveV2(
        prefix=str(tmp_path / "tf"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(values[n]) for n in names],
    )
    with fastckpt.CheckpointWriter(str(tmp_path / "ours")) as writer:
        for name in names:
            writer.add(name, values[name])
    with fastckpt.CheckpointWriter(str(tmp_path / "ours-batch")) as writer:
        writer.add_tensors({name: values[name] for name in names})
    assert os.path.getsize(tmp_path / "tf.index") > 2 * 262144, "the index should span several blocks"
    for suffix in (".index", ".data-00000-of-00001"):
        tf_bytes = (tmp_path / f"tf{suffix}").read_bytes()
        assert (tmp_path / f"ours{suffix}").read_bytes() == tf_bytes, suffix
        assert (tmp_path / f"ours-batch{suffix}").read_bytes() == tf_bytes, suffix


def test_tensorflow_reads_several_data_files(tf, tmp_path):
    values = every_dtype_values()
    values["big"] = np.arange(1 << 20, dtype=np.float32).reshape(1024, 1024)
    prefix = str(tmp_path / "ckpt")
    with fastckpt.CheckpointWriter(prefix, num_shards=3) as writer:
        writer.add_tensors(values)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ckpt.data-0000{i}-of-00003" for i in range(3)] + [
        "ckpt.index"
    ]
    reader = tf.train.load_checkpoint(prefix)
    assert set(reader.get_variable_to_shape_map()) == set(values)
    for name, value in values.items():
        assert_same_value(reader.get_tensor(name), value, name)


def test_same_bytes_as_save_v2_with_slices(tf, tmp_path):
    full = np.arange(6 * 4, dtype=np.float32).reshape(6, 4)
    specs = ["6 4 0,2:-", "6 4 2,4:0,3", "6 4 2,4:3,1"]
    pieces = [full[:2], full[2:, :3], full[2:, 3:]]
    tf.raw_ops.SaveV2(
        prefix=str(tmp_path / "tf"),
        tensor_names=["w"] * 3,
        shape_and_slices=specs,
        tensors=[tf.constant(p) for p in pieces],
    )
    with fastckpt.CheckpointWriter(str(tmp_path / "ours")) as writer:
        for spec, piece in zip(specs, pieces):
            writer.add_slice("w", [6, 4], spec.split(" ")[2], piece)
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / f"ours{suffix}").read_bytes() == (tmp_path / f"tf{suffix}").read_bytes(), suffix
    np.testing.assert_array_equal(tf.train.load_checkpoint(str(tmp_path / "ours")).get_tensor("w"), full)


def test_tf1_saver_restores_ours_into_a_graph(tf, tmp_path):
    """Plain, partitioned and string variables, restored by TensorFlow's own Saver."""
    full = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    saver = fastckpt.Saver(sharded=True, num_shards=2)
    prefix = str(tmp_path / "model.ckpt")
    values = {"v1": np.array([1.0], np.float32), "v2": np.array([2.0], np.float32), "name": b"run-7"}
    saver.save(values, prefix)
    # The partitioned variable's slices, as fixed_size_partitioner(3) lays them out.
    with fastckpt.CheckpointWriter(str(tmp_path / "emb.ckpt")) as writer:
        for start, length in [(0, 4), (4, 3), (7, 3)]:
            writer.add_slice("emb", [10, 3], f"{start},{length}:0,3", full[start : start + length])
    with tf.Graph().as_default():
        v1 = tf.compat.v1.get_variable("v1", shape=[1])
        v2 = tf.compat.v1.get_variable("v2", shape=[1])
        name = tf.compat.v1.get_variable(
            "name", shape=[], dtype=tf.string, initializer=tf.compat.v1.constant_initializer("")
        )
        emb = tf.compat.v1.get_variable("emb", shape=[10, 3], partitioner=tf.compat.v1.fixed_size_partitioner(3))
        add = v1 + v2
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver([v1, v2, name]).restore(sess, prefix)
            tf.compat.v1.train.Saver({"emb": emb}).restore(sess, str(tmp_path / "emb.ckpt"))
            np.testing.assert_array_equal(sess.run(add), [3.0])
            assert sess.run(name) == b"run-7"
            np.testing.assert_array_equal(sess.run(tf.convert_to_tensor(emb)), full)


def test_same_files_and_state_as_tf1_saver(tf, tmp_path):
    """The same saves with max_to_keep leave the same files, and a state file naming the same checkpoints."""
    steps = [100, 200, 300, 400, 500]
    theirs, ours = tmp_path / "tf", tmp_path / "fastckpt"
    theirs.mkdir()
    ours.mkdir()
    with tf.Graph().as_default():
        v = tf.compat.v1.get_variable("v", initializer=tf.constant([0.0]))
        tf_saver = tf.compat.v1.train.Saver(max_to_keep=2)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for step in steps:
                sess.run(v.assign([float(step)]))
                tf_saver.save(sess, str(theirs / "model.ckpt"), global_step=step)
    saver = fastckpt.Saver(max_to_keep=2)
    for step in steps:
        saver.save({"v": [float(step)]}, str(ours / "model.ckpt"), global_step=step)
    assert sorted(os.listdir(ours)) == sorted(os.listdir(theirs))
    tf_state = tf.train.get_checkpoint_state(str(theirs))
    our_state = tf.train.get_checkpoint_state(str(ours))
    assert os.path.basename(our_state.model_checkpoint_path) == os.path.basename(tf_state.model_checkpoint_path)
    assert [os.path.basename(p) for p in our_state.all_model_checkpoint_paths] == [
        os.path.basename(p) for p in tf_state.all_model_checkpoint_paths
    ]
    assert tf.train.latest_checkpoint(str(ours)) == str(ours / "model.ckpt-500")
    np.testing.assert_array_equal(tf.train.load_variable(str(ours), "v"), [500.0])


def test_ema_matches_tensorflow(tf):
    with tf.Graph().as_default():
        v = tf.compat.v1.get_variable("v", initializer=tf.constant(0.0))
        ema = tf.compat.v1.train.ExponentialMovingAverage(0.99, num_updates=None)
        update = ema.apply([v])
        shadow = ema.average(v)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(v.assign(10.0))
            sess.run(update)
            sess.run(v.assign(4.0))
            sess.run(update)
            expected = sess.run(shadow)
            tf_restore_map = ema.variables_to_restore()
    ours = fastckpt.ExponentialMovingAverage(0.99)
    for value in (0.0, 10.0, 4.0):
        ours.apply({"v": np.float32(value)})
    assert ours.average("v") == expected
    assert ours.variables_to_restore(["v"]) == {k: var.op.name for k, var in tf_restore_map.items()}


def test_tensorflow_reads_merged_checkpoints(tf, tmp_path):
    parts = [str(tmp_path / f"host{i}" / "part") for i in range(3)]
    for i, part in enumerate(parts):
        with fastckpt.CheckpointWriter(part) as writer:
            writer.add(f"host{i}/w", np.full((4,), i, dtype=np.int64))
    merged = fastckpt.merge_checkpoints(parts, str(tmp_path / "model.ckpt"))
    reader = tf.train.load_checkpoint(merged)
    for i in range(3):
        np.testing.assert_array_equal(reader.get_tensor(f"host{i}/w"), [i] * 4)


def test_meta_graph_parses_in_tensorflow(tf, tmp_path):
    from tensorflow.core.protobuf import meta_graph_pb2, saver_pb2

    fastckpt.Saver(max_to_keep=3).save({"v": np.zeros((2, 3), np.float32), "step": 7}, str(tmp_path / "m.ckpt"))
    meta = meta_graph_pb2.MetaGraphDef.FromString((tmp_path / "m.ckpt.meta").read_bytes())
    nodes = {node.name: node for node in meta.graph_def.node}
    assert nodes["v"].op == "VariableV2" and nodes["v"].attr["dtype"].type == tf.float32.as_datatype_enum
    assert [d.size for d in nodes["v"].attr["shape"].shape.dim] == [2, 3]
    assert nodes["step"].attr["dtype"].type == tf.int32.as_datatype_enum
    assert meta.saver_def.max_to_keep == 3 and meta.saver_def.version == saver_pb2.SaverDef.V2
