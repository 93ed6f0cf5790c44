"""Checkpoints TensorFlow writes while training, with the names it gives their variables: a TF1 Saver's with the
slots of six optimizers, a Keras 3 model's through tf.train.Checkpoint, and a tf.Module's with a tf.compat.v1
optimizer. Each takes the imported TensorFlow (``tf``) and a directory."""

import numpy as np


def write_tf1_training_checkpoint(tf, directory):
    """A TF1 Saver checkpoint of a dense layer trained two steps by Adam, Momentum, RMSProp, Adagrad, Adadelta
    and Ftrl at once, with an exponential moving average of its weights and a global step. Returns the prefix,
    the names of the weights (the variables and their averages) and of the slots, as TensorFlow gives them."""
    graph = tf.Graph()
    with graph.as_default():
        global_step = tf.compat.v1.train.get_or_create_global_step()
        with tf.compat.v1.variable_scope("dense"):
            kernel = tf.compat.v1.get_variable("kernel", initializer=np.arange(6, dtype=np.float32).reshape(3, 2))
            bias = tf.compat.v1.get_variable("bias", initializer=np.array([0.5, -0.5], np.float32))
        loss = tf.reduce_sum(tf.matmul(tf.ones((1, 3)), kernel) + bias)
        optimizers = [
            tf.compat.v1.train.AdamOptimizer(),
            tf.compat.v1.train.MomentumOptimizer(0.1, 0.9),
            tf.compat.v1.train.RMSPropOptimizer(0.1),
            tf.compat.v1.train.AdagradOptimizer(0.1),
            tf.compat.v1.train.AdadeltaOptimizer(0.1),
            tf.compat.v1.train.FtrlOptimizer(0.1),
        ]
        steps = [optimizers[0].minimize(loss, global_step=global_step)]
        steps += [optimizer.minimize(loss) for optimizer in optimizers[1:]]
        ema = tf.compat.v1.train.ExponentialMovingAverage(0.9)
        steps.append(ema.apply([kernel, bias]))
        weights = [v.op.name for v in tf.compat.v1.trainable_variables()]
        averages = [ema.average_name(v) for v in (kernel, bias)]
        slots = [
            optimizer.get_slot(variable, slot).op.name
            for optimizer in optimizers
            for slot in optimizer.get_slot_names()
            for variable in (kernel, bias)
        ]
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for _ in range(2):
                session.run(steps)
            prefix = saver.save(session, str(directory / "model.ckpt"), global_step=global_step)
    return {"prefix": prefix, "weights": weights + averages, "slots": slots}


def keras_model_and_input(tf):
    """A Keras 3 model (Dense, BatchNormalization, Dense) and an input for it."""
    import keras

    keras.backend.clear_session()  # the layers' names start again: sequential/dense, ...
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    x = tf.constant(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3))
    return model, x


def train(tf, model, optimizer, x, steps=3):
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True) ** 2)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))


def write_keras_checkpoint(tf, directory, optimizer="adam", model_attribute="model", optimizer_attribute="optimizer"):
    """tf.train.Checkpoint(model=..., optimizer=...).save of a Keras 3 model after three training steps (under
    the attribute names given). Returns the prefix, the model, its input, and the Keras paths of the model's and
    the optimizer's variables."""
    import keras

    model, x = keras_model_and_input(tf)
    optimizer = {"adam": keras.optimizers.Adam, "sgd": lambda: keras.optimizers.SGD(0.01, momentum=0.9)}[optimizer]()
    train(tf, model, optimizer, x)
    checkpoint = tf.train.Checkpoint(**{model_attribute: model, optimizer_attribute: optimizer})
    prefix = checkpoint.save(str(directory / "ckpt"))
    return {
        "prefix": prefix,
        "model": model,
        "x": x,
        "weights": [v.path for v in model.weights],
        "optimizer": [v.path for v in optimizer.variables],
    }


def write_tf2_module_checkpoint(tf, directory):
    """tf.train.Checkpoint of a tf.Module trained two steps with tf.compat.v1.train.AdamOptimizer in eager mode:
    slots as .OPTIMIZER_SLOT keys, beta1_power and beta2_power under optimizer/."""

    class Dense(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(np.ones((3, 2), np.float32), name="dense/kernel")
            self.bias = tf.Variable(np.zeros(2, np.float32), name="dense/bias")

    module = Dense()
    optimizer = tf.compat.v1.train.AdamOptimizer()
    for _ in range(2):
        optimizer.minimize(
            lambda: tf.reduce_sum(tf.matmul(tf.ones((1, 3)), module.kernel) + module.bias),
            var_list=[module.kernel, module.bias],
        )
    prefix = tf.train.Checkpoint(model=module, optimizer=optimizer).save(str(directory / "ckpt"))
    return {"prefix": prefix, "weights": ["dense/kernel", "dense/bias"], "module": module, "optimizer": optimizer}
