"""Regenerates python/fastckpt/examples/model/ with TensorFlow (needs tensorflow-cpu).

    python scripts/make_example.py

Two variables, v1 = [1.0] and v2 = [2.0], saved by a TF1 Saver: the first workflow of the README.
"""

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "fastckpt", "examples", "model")


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    with tf.Graph().as_default():
        v1 = tf.compat.v1.get_variable("v1", initializer=tf.constant([1.0]))
        v2 = tf.compat.v1.get_variable("v2", initializer=tf.constant([2.0]))
        tf.add(v1, v2, name="add")
        saver = tf.compat.v1.train.Saver(save_relative_paths=True)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, os.path.join(OUT, "model.ckpt"))
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
