"""Live interoperability: checkpoints written now by the installed TensorFlow, read by fastckpt and by
TensorFlow's own reader, must agree. These skip without TensorFlow, except in CI, where they must run."""

import subprocess
import sys

import fastckpt
import numpy as np
from helpers.checkpoints import FIXTURES, Expected, assert_same_value, check_against_expected, fixture_kinds


def assert_reads_like_tensorflow(tf, path, sample_slices=False):
    theirs = tf.train.load_checkpoint(path)
    ours = fastckpt.load_checkpoint(path)
    assert ours.get_variable_to_shape_map() == theirs.get_variable_to_shape_map()
    assert {n: d.name for n, d in ours.get_variable_to_dtype_map().items()} == {
        n: d.name for n, d in theirs.get_variable_to_dtype_map().items()
    }
    rng = np.random.default_rng(1)
    for name in theirs.get_variable_to_shape_map():
        expected = theirs.get_tensor(name)
        assert_same_value(ours.get_tensor(name), expected, name)
        if sample_slices and np.ndim(expected) > 0 and np.shape(expected)[0] > 2:
            rows = sorted(rng.integers(0, np.shape(expected)[0], size=2).tolist())
            index = slice(rows[0], rows[1] + 1)
            assert_same_value(ours.get_slice(name)[index], expected[index], f"{name}[{index}]")


def test_fixture_kinds_written_now(tf, tmp_path):
    """The fixture generator, run against the installed TensorFlow into a fresh directory."""
    result = subprocess.run(
        [sys.executable, str(FIXTURES / "generate.py"), "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    kinds = sorted(p.name for p in tmp_path.iterdir() if (p / "expected.json").is_file())
    assert kinds == fixture_kinds()
    for kind in kinds:
        check_against_expected(Expected(kind, tmp_path))


def random_value(rng, dtype, shape):
    if dtype.is_bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.is_complex:
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    if dtype.is_floating:
        return rng.standard_normal(shape) * 100
    if dtype == tf_module().string:
        return np.array(
            [
                bytes(rng.integers(0, 256, size=int(n), dtype=np.uint8))
                for n in rng.integers(0, 300, size=int(np.prod(shape)))
            ],
            dtype=object,
        ).reshape(shape)
    return rng.integers(
        dtype.min, dtype.max, size=shape, endpoint=True, dtype=np.uint64 if dtype.name == "uint64" else np.int64
    )


def tf_module():
    import tensorflow

    return tensorflow


def test_random_tensors_of_every_dtype(tf, tmp_path):
    rng = np.random.default_rng(0)
    dtypes = [
        tf.float16,
        tf.bfloat16,
        tf.float32,
        tf.float64,
        tf.int8,
        tf.int16,
        tf.int32,
        tf.int64,
        tf.uint8,
        tf.uint16,
        tf.uint32,
        tf.uint64,
        tf.bool,
        tf.complex64,
        tf.complex128,
        tf.string,
    ]
    names, tensors = [], []
    for dtype in dtypes:
        for shape in [(), (0,), (4, 0, 2), (7,), (3, 5, 2), (513, 1031)]:
            if dtype == tf.string and np.prod(shape) > 1000:
                continue
            names.append(f"{dtype.name}/{'x'.join(map(str, shape)) or 'scalar'}")
            tensors.append(tf.constant(random_value(rng, dtype, shape), dtype=dtype))
    prefix = str(tmp_path / "ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    assert_reads_like_tensorflow(tf, prefix, sample_slices=True)


def test_thousands_of_tensors_over_many_index_blocks(tf, tmp_path):
    names = [f"model/layer_{i // 100:03d}/block_{i % 100:02d}/" + "w" * 40 + f"/kernel_{i}" for i in range(20000)]
    tensors = [tf.constant([float(i), -float(i)]) for i in range(len(names))]
    prefix = str(tmp_path / "many")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    reader = fastckpt.load_checkpoint(prefix)
    assert len(reader) == 20000
    assert_reads_like_tensorflow(tf, prefix)


def test_partitioned_embedding_rows(tf, tmp_path):
    """A partitioned embedding read whole and a few rows at a time, across partition boundaries."""
    full = np.arange(1000 * 16, dtype=np.float32).reshape(1000, 16)

    def rows_of_full(shape, dtype=None, partition_info=None):
        start = partition_info.var_offset[0]
        return tf.constant(full[start : start + shape[0]])

    with tf.Graph().as_default():
        tf.compat.v1.get_variable(
            "embedding", shape=full.shape, initializer=rows_of_full, partitioner=tf.compat.v1.fixed_size_partitioner(7)
        )
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            prefix = saver.save(sess, str(tmp_path / "model.ckpt"))
    assert_reads_like_tensorflow(tf, prefix)
    view = fastckpt.load_checkpoint(prefix).get_slice("embedding")
    for index in [np.s_[0], np.s_[140:150], np.s_[998:], np.s_[::97, 3], np.s_[-1, ::-1], np.s_[5:900:111, 2:9:3]]:
        assert_same_value(view[index], full[index], repr(index))


def test_sharded_v1_checkpoint(tf, tmp_path):
    """A V1 Saver with sharded=True writes model.ckpt-00000-of-0000N and records a glob in the state file."""
    with tf.Graph().as_default():
        tf.compat.v1.get_variable("a", initializer=tf.constant([[1.0, 2.0], [3.0, 4.0]]))
        tf.compat.v1.get_variable("b", initializer=tf.constant([5, 6, 7], dtype=tf.int64))
        saver = tf.compat.v1.train.Saver(sharded=True, write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            pattern = saver.save(sess, str(tmp_path / "model.ckpt"), write_meta_graph=False)
    assert "?????" in pattern
    assert_reads_like_tensorflow(tf, pattern)
    assert fastckpt.load_checkpoint(str(tmp_path)).format == "v1"
    np.testing.assert_array_equal(fastckpt.load_variable(str(tmp_path), "b"), [5, 6, 7])


def test_the_dtype_table_agrees_with_tensorflow(tf):
    """Every dtype of the core's table: TensorFlow's number, name, floating-ness and numpy type (the extension
    resolves the numpy types the reader gives arrays)."""
    import fastckpt.dtypes

    table = fastckpt._fastckpt.dtype_table()
    assert len(table) == 30
    for name, enum, size, _, is_floating in table:
        ours, theirs = fastckpt.dtypes.dtype_of_enum(enum), tf.dtypes.as_dtype(enum)
        assert (ours.name, ours.is_floating, is_floating) == (theirs.name, theirs.is_floating, theirs.is_floating), name
        assert ours.numpy_dtype == fastckpt._fastckpt.numpy_dtype(enum), name
        if name not in ("resource", "variant") and not theirs.is_quantized:
            assert ours.numpy_dtype == np.dtype(theirs.as_numpy_dtype), name
        if size:
            assert size == ours.numpy_dtype.itemsize, name
