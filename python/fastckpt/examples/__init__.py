"""A small checkpoint written by TensorFlow, shipped with the package for examples and smoke tests.

``model/`` holds what ``tf.compat.v1.train.Saver().save(sess, "model/model.ckpt")`` wrote for two variables,
``v1 = [1.0]`` and ``v2 = [2.0]``: the ``checkpoint`` state file, ``model.ckpt.index``,
``model.ckpt.data-00000-of-00001`` and ``model.ckpt.meta``. ``scripts/make_example.py`` in the source
repository regenerates it.
"""

import os

__all__ = ["model_dir", "model_path"]


def model_dir() -> str:
    """The directory of the example model (it holds a ``checkpoint`` state file)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "model")


def model_path() -> str:
    """The prefix of the example checkpoint, ``.../model/model.ckpt``."""
    return os.path.join(model_dir(), "model.ckpt")
