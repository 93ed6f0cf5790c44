"""The models of tests/frameworks/test_migration.py, each written twice: as TensorFlow trains and saves it, and as
PyTorch or JAX computes it from the same weights.

- A Keras 3 functional model (Embedding -> LayerNormalization, Conv2D -> BatchNormalization, two Dense) and its
  twins: a torch.nn.Module of the matching torch layers and a jax.numpy function.
- BERT as google-research/bert's modeling.py names and computes it, written with tf.compat.v1 in graph mode
  (with its pretraining heads cls/..., trained a few steps with BERT's AdamWeightDecayOptimizer or with
  tf.compat.v1.train.AdamOptimizer) and saved by tf.compat.v1.train.Saver.

Run as a script (`python migration_models.py bert JOB_DIR`) it is the child process that loads those BERT
checkpoints into transformers.BertModel through fastckpt.torch.load_into. It runs apart from the test process
because transformers' BertModel imports torch._dynamo, which loads triton, whose LLVM aborts the process
("CommandLine Error: Option 'bitcode-mdindex-threshold' registered more than once") when TensorFlow's is
loaded too, in either order; the child never imports TensorFlow.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------------------
# Keras 3

EMBED_VOCAB, EMBED_DIM, TOKENS = 20, 8, 6
IMAGE, CHANNELS, FILTERS = 8, 3, 4
HIDDEN, CLASSES = 16, 3
# Keras' defaults, which are not torch's (1e-5): LayerNormalization and BatchNormalization both use 1e-3.
KERAS_EPSILON = 1e-3


def keras_model(keras):
    tokens = keras.Input((TOKENS,), dtype="int32", name="tokens")
    image = keras.Input((IMAGE, IMAGE, CHANNELS), name="image")
    e = keras.layers.Embedding(EMBED_VOCAB, EMBED_DIM, name="embed")(tokens)
    e = keras.layers.LayerNormalization(name="embed_norm")(e)
    e = keras.layers.GlobalAveragePooling1D(name="embed_pool")(e)
    c = keras.layers.Conv2D(FILTERS, 3, padding="same", name="conv")(image)
    c = keras.layers.BatchNormalization(name="bn")(c)
    c = keras.layers.ReLU(name="relu")(c)
    c = keras.layers.GlobalAveragePooling2D(name="conv_pool")(c)
    x = keras.layers.Concatenate(name="concat")([e, c])
    x = keras.layers.Dense(HIDDEN, activation="relu", name="hidden")(x)
    out = keras.layers.Dense(CLASSES, name="head")(x)
    return keras.Model([tokens, image], out, name="two_branch")


def keras_inputs(seed, n):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, EMBED_VOCAB, (n, TOKENS)).astype(np.int32)
    # Offset and scaled, so that BatchNormalization's moving statistics move visibly from 0 and 1.
    image = (rng.standard_normal((n, IMAGE, IMAGE, CHANNELS)) * 2.0 + 0.5).astype(np.float32)
    return tokens, image


def torch_twin():
    """The Keras model as one writes it in PyTorch, with torch's own layers (and Keras' epsilons)."""
    import torch
    from torch import nn

    class TwoBranch(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(EMBED_VOCAB, EMBED_DIM)
            self.embed_norm = nn.LayerNorm(EMBED_DIM, eps=KERAS_EPSILON)
            self.conv = nn.Conv2d(CHANNELS, FILTERS, 3, padding=1)
            self.bn = nn.BatchNorm2d(FILTERS, eps=KERAS_EPSILON)
            self.hidden = nn.Linear(EMBED_DIM + FILTERS, HIDDEN)
            self.head = nn.Linear(HIDDEN, CLASSES)

        def forward(self, tokens, image):
            e = self.embed_norm(self.embed(tokens)).mean(dim=1)
            c = torch.relu(self.bn(self.conv(image.permute(0, 3, 1, 2)))).mean(dim=(2, 3))
            x = torch.relu(self.hidden(torch.cat([e, c], dim=1)))
            return self.head(x)

    return TwoBranch()


def jax_forward(params, tokens, image):
    """The Keras model in jax.numpy, on the Keras-named, Keras-shaped weights (HWIO kernels, [in, out] Dense)."""
    import jax
    import jax.numpy as jnp

    def layer_norm(x, gamma, beta):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + KERAS_EPSILON) * gamma + beta

    e = jnp.take(params["embed/embeddings"], tokens, axis=0)
    e = layer_norm(e, params["embed_norm/gamma"], params["embed_norm/beta"]).mean(axis=1)
    c = jax.lax.conv_general_dilated(
        image, params["conv/kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    c = c + params["conv/bias"]
    c = (c - params["bn/moving_mean"]) / jnp.sqrt(params["bn/moving_variance"] + KERAS_EPSILON)
    c = jax.nn.relu(c * params["bn/gamma"] + params["bn/beta"]).mean(axis=(1, 2))
    x = jnp.concatenate([e, c], axis=1)
    x = jax.nn.relu(x @ params["hidden/kernel"] + params["hidden/bias"])
    return x @ params["head/kernel"] + params["head/bias"]


# ---------------------------------------------------------------------------------------------------------
# BERT, as google-research/bert names it

BERT_CONFIG = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
)
BATCH, SEQ = 3, 7


def bert_inputs():
    rng = np.random.default_rng(16)
    input_ids = rng.integers(1, BERT_CONFIG["vocab_size"], (BATCH, SEQ)).astype(np.int32)
    token_type_ids = np.zeros((BATCH, SEQ), np.int32)
    token_type_ids[:, 4:] = 1
    attention_mask = np.ones((BATCH, SEQ), np.int32)
    attention_mask[1, 5:] = 0  # a padded sequence
    labels = rng.integers(0, BERT_CONFIG["vocab_size"], (BATCH, SEQ)).astype(np.int32)
    next_sentence = np.array([0, 1, 0], np.int32)
    return input_ids, token_type_ids, attention_mask, labels, next_sentence


def write_tf1_bert(tf, prefix, optimizer, steps=3):
    """Builds BERT (modeling.py's variable names and computation) with its pretraining heads in a
    tf.compat.v1 graph, trains it `steps` steps, saves it with tf.compat.v1.train.Saver at global_step.

    Returns {"path": the saved checkpoint, "values": {name: value} of every variable saved, "trainable": the
    names of the model's variables (the rest is the optimizer's), "outputs": sequence_output and pooled_output
    on bert_inputs() with the saved weights}."""
    v1 = tf.compat.v1
    cfg = BERT_CONFIG
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_size = hidden // heads
    input_ids, token_type_ids, attention_mask, labels, next_sentence = bert_inputs()
    init = v1.truncated_normal_initializer(stddev=0.02)

    def dense(x, units, name):
        with v1.variable_scope(name):
            kernel = v1.get_variable("kernel", [x.shape[-1], units], initializer=init)
            bias = v1.get_variable("bias", [units], initializer=v1.zeros_initializer())
            return tf.tensordot(x, kernel, 1) + bias

    def layer_norm(x):
        with v1.variable_scope("LayerNorm"):
            gamma = v1.get_variable("gamma", [hidden], initializer=v1.ones_initializer())
            beta = v1.get_variable("beta", [hidden], initializer=v1.zeros_initializer())
            mean, var = tf.nn.moments(x, [-1], keepdims=True)
            return (x - mean) * tf.math.rsqrt(var + 1e-12) * gamma + beta

    def gelu(x):
        return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))

    def split_heads(x):
        return tf.transpose(tf.reshape(x, [BATCH, SEQ, heads, head_size]), [0, 2, 1, 3])

    graph = tf.Graph()
    with graph.as_default():
        with v1.variable_scope("bert"):
            with v1.variable_scope("embeddings"):
                word = v1.get_variable("word_embeddings", [cfg["vocab_size"], hidden], initializer=init)
                x = tf.gather(word, input_ids)
                token_types = v1.get_variable(
                    "token_type_embeddings", [cfg["type_vocab_size"], hidden], initializer=init
                )
                x += tf.gather(token_types, token_type_ids)
                positions = v1.get_variable(
                    "position_embeddings", [cfg["max_position_embeddings"], hidden], initializer=init
                )
                x += positions[None, :SEQ]
                x = layer_norm(x)
            with v1.variable_scope("encoder"):
                adder = (1.0 - tf.cast(attention_mask, tf.float32))[:, None, None, :] * -10000.0
                for i in range(cfg["num_hidden_layers"]):
                    with v1.variable_scope(f"layer_{i}"):
                        with v1.variable_scope("attention"):
                            with v1.variable_scope("self"):
                                q = split_heads(dense(x, hidden, "query"))
                                k = split_heads(dense(x, hidden, "key"))
                                v = split_heads(dense(x, hidden, "value"))
                                scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(head_size) + adder
                                context = tf.matmul(tf.nn.softmax(scores), v)
                                context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [BATCH, SEQ, hidden])
                            with v1.variable_scope("output"):
                                attention = layer_norm(dense(context, hidden, "dense") + x)
                        with v1.variable_scope("intermediate"):
                            intermediate = gelu(dense(attention, cfg["intermediate_size"], "dense"))
                        with v1.variable_scope("output"):
                            x = layer_norm(dense(intermediate, hidden, "dense") + attention)
            sequence_output = x
            with v1.variable_scope("pooler"):
                pooled_output = tf.tanh(dense(sequence_output[:, 0], hidden, "dense"))
        # The pretraining heads of run_pretraining.py: masked LM (tied to the word embeddings) and next sentence.
        with v1.variable_scope("cls/predictions"):
            with v1.variable_scope("transform"):
                transformed = layer_norm(gelu(dense(sequence_output, hidden, "dense")))
            output_bias = v1.get_variable("output_bias", [cfg["vocab_size"]], initializer=v1.zeros_initializer())
            lm_logits = tf.tensordot(transformed, word, [[2], [1]]) + output_bias
        with v1.variable_scope("cls/seq_relationship"):
            nsp_weights = v1.get_variable("output_weights", [2, hidden], initializer=init)
            nsp_bias = v1.get_variable("output_bias", [2], initializer=v1.zeros_initializer())
            nsp_logits = tf.matmul(pooled_output, nsp_weights, transpose_b=True) + nsp_bias
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=lm_logits)
        ) + tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=next_sentence, logits=nsp_logits))

        global_step = v1.train.get_or_create_global_step()
        learning_rate = 1e-2
        if optimizer == "tf_adam":
            train_op = v1.train.AdamOptimizer(learning_rate).minimize(loss, global_step=global_step)
        elif optimizer == "adam_weight_decay":
            # optimization.py's AdamWeightDecayOptimizer: slots named <variable>/adam_m and <variable>/adam_v,
            # decoupled weight decay except on LayerNorm and biases, global_step incremented beside it.
            params = v1.trainable_variables()
            assignments = []
            for grad, param in zip(tf.gradients(loss, params), params):
                name = param.op.name
                m = v1.get_variable(name + "/adam_m", param.shape, trainable=False, initializer=v1.zeros_initializer())
                v = v1.get_variable(name + "/adam_v", param.shape, trainable=False, initializer=v1.zeros_initializer())
                grad = tf.convert_to_tensor(grad)
                next_m = 0.9 * m + 0.1 * grad
                next_v = 0.999 * v + 0.001 * tf.square(grad)
                update = next_m / (tf.sqrt(next_v) + 1e-6)
                if "LayerNorm" not in name and "bias" not in name:
                    update += 0.01 * param
                assignments += [param.assign(param - learning_rate * update), m.assign(next_m), v.assign(next_v)]
            train_op = tf.group(*assignments, global_step.assign(global_step + 1))
        else:
            raise ValueError(optimizer)

        saver = v1.train.Saver()
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            for _ in range(steps):
                sess.run(train_op)
            path = saver.save(sess, prefix, global_step=global_step)
            variables = v1.global_variables()
            values = dict(zip([v.op.name for v in variables], sess.run(variables)))
            outputs = dict(zip(["sequence_output", "pooled_output"], sess.run([sequence_output, pooled_output])))
        trainable = [v.op.name for v in v1.trainable_variables()]
    return {"path": path, "values": values, "trainable": trainable, "outputs": outputs}


# The rules that take Google's BERT names to transformers' BertModel names, applied in order.
BERT_RENAME = [
    (r"^bert/", ""),
    (r"/layer_(\d+)/", r"/layer.\1/"),
    (r"/(kernel|gamma)$", "/weight"),
    (r"/beta$", "/bias"),
    (r"_embeddings$", "_embeddings/weight"),
    (r"/", "."),
]
# Every Dense kernel ([in, out]) becomes a torch Linear weight ([out, in]); embedding tables stay as they are.
BERT_TRANSPOSE = [r"\.(query|key|value|dense)\.weight$"]
# The pretraining heads: BertModel has no counterpart.
BERT_SKIP = [r"^cls/"]


def _bert_child(job_dir):
    """Loads each checkpoint of job.json into a fresh BertModel and writes what came of it to results.npz."""
    import fastckpt.torch
    import torch
    from transformers import BertConfig, BertModel

    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    input_ids, token_type_ids, attention_mask = (torch.from_numpy(a.astype(np.int64)) for a in bert_inputs()[:3])
    arrays, report = {}, {}
    for case, path in job.items():
        torch.manual_seed(0)
        model = BertModel(BertConfig(**BERT_CONFIG)).eval()
        state_names = list(model.state_dict())
        missing, unexpected = fastckpt.torch.load_into(
            model,
            path,
            rename=BERT_RENAME,
            skip=BERT_SKIP,
            skip_optimizer=True,
            transpose=BERT_TRANSPOSE,
            strict=True,
        )
        with torch.no_grad():
            first = model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
            second = model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
        for name, tensor in model.state_dict().items():
            arrays[f"{case}/state/{name}"] = tensor.numpy()
        for key in ("last_hidden_state", "pooler_output"):
            arrays[f"{case}/first/{key}"] = first[key].numpy()
            arrays[f"{case}/second/{key}"] = second[key].numpy()
        # Without skip_optimizer, the optimizer's tensors are what the checkpoint has beyond the model.
        loose = BertModel(BertConfig(**BERT_CONFIG))
        loose_missing, loose_unexpected = fastckpt.torch.load_into(
            loose, path, rename=BERT_RENAME, skip=BERT_SKIP, transpose=BERT_TRANSPOSE, strict=False
        )
        try:
            fastckpt.torch.load_into(
                BertModel(BertConfig(**BERT_CONFIG)), path, rename=BERT_RENAME, skip=BERT_SKIP, transpose=BERT_TRANSPOSE
            )
            strict_error = None
        except Exception as error:  # reported to the test, which judges it
            strict_error = f"{type(error).__name__}: {error}"
        report[case] = dict(
            state_names=state_names,
            buffers=[name for name, _ in model.named_buffers()],
            missing=list(missing),
            unexpected=list(unexpected),
            loose_missing=list(loose_missing),
            loose_unexpected=list(loose_unexpected),
            strict_error=strict_error,
        )
    report["tensorflow_imported"] = "tensorflow" in sys.modules
    np.savez(job_dir / "results.npz", **arrays)
    (job_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] != ["bert"] or len(sys.argv) != 3:
        sys.exit("usage: migration_models.py bert JOB_DIR")
    _bert_child(Path(sys.argv[2]))
