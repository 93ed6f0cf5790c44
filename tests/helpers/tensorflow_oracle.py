"""TensorFlow, the oracle of the interoperability tests: imported, or the test skipped (failed in CI), and
the checkpoints its SaveV2 writes."""

import os

import pytest


def tensorflow_or_skip():
    """Imports TensorFlow. In CI (CI=true) a missing TensorFlow fails the test instead of skipping it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("tensorflow is not installed: interop tests need it (pip install tensorflow-cpu)")
    return tf


def tf_save(tf, prefix, tensors):
    """A checkpoint written by TensorFlow's SaveV2 of ``{name: array}``; returns the prefix."""
    names = list(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[name]) for name in names],
    )
    return str(prefix)
