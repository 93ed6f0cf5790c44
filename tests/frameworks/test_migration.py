"""Migrating TensorFlow checkpoints to PyTorch and JAX, end to end: TensorFlow trains and saves the models,
fastckpt.torch and fastckpt.jax load them into the models' PyTorch and JAX twins (tests/helpers/migration_models.py),
and the twins must compute what TensorFlow computes.

- A Keras 3 model (Embedding, LayerNormalization, Conv2D, BatchNormalization, Dense) trained with Adam and
  saved by tf.train.Checkpoint: by full names, optimizer state skipped, into torch layers (strictly) and a
  jax.numpy function; both must match Keras' predict.
- BERT as Google's TF1 code names it (pretraining heads, Adam slots, global_step) saved by
  tf.compat.v1.train.Saver: into transformers' BertModel, strictly, every tensor equal to TensorFlow's, and
  its outputs TensorFlow's. BertModel runs in a child process without TensorFlow (see migration_models.py).

Skipped without TensorFlow, except in CI."""

import json
import os
import re

import numpy as np
import pytest
from helpers.migration_models import (
    BERT_RENAME,
    BERT_SKIP,
    CHANNELS,
    FILTERS,
    jax_forward,
    keras_inputs,
    keras_model,
    torch_twin,
    write_tf1_bert,
)
from helpers.processes import run_helper

# Keras' outputs against the twins'.
TOLERANCE = 1e-5

# Keras 3 full names (layer/variable) to the torch twin's state dict names.
KERAS_RENAME = [
    (r"/(kernel|embeddings|gamma)$", "/weight"),
    (r"/beta$", "/bias"),
    (r"/moving_mean$", "/running_mean"),
    (r"/moving_variance$", "/running_var"),
    (r"/", "."),
]
# The Dense kernels, [in, out] in Keras, [out, in] in torch.nn.Linear.
KERAS_TRANSPOSE = [r"^(hidden|head)\.weight$"]


def renamed(name, rules):
    for pattern, replacement in rules:
        name = re.sub(pattern, replacement, name)
    return name


@pytest.fixture(scope="module")
def keras_checkpoint(tf, tmp_path_factory):
    """A Keras 3 model trained 4 steps with Adam, saved with its optimizer by tf.train.Checkpoint."""
    import keras

    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"Keras {keras.__version__}: these checks are of Keras 3's checkpoints")
    model = keras_model(keras)
    optimizer = keras.optimizers.Adam(1e-2)
    model.compile(optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = {v.path: v.numpy() for v in model.weights}
    train = keras_inputs(seed=0, n=64)
    labels = np.random.default_rng(1).integers(0, 3, 64)
    model.fit(list(train), labels, batch_size=16, epochs=1, shuffle=False, verbose=0)
    weights = {v.path: v.numpy() for v in model.weights}
    # Training moved every weight, BatchNormalization's moving statistics included, and left Adam's slots.
    assert all(not np.array_equal(weights[name], before[name]) for name in weights), "a weight did not train"
    assert int(optimizer.iterations.numpy()) == 4
    optimizer_names = [v.path for v in optimizer.variables]
    assert any(name.endswith("_momentum") for name in optimizer_names), optimizer_names
    prefix = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(tmp_path_factory.mktemp("keras") / "ckpt"))
    inputs = keras_inputs(seed=2, n=5)
    return {
        "path": prefix,
        "weights": weights,
        "optimizer_names": optimizer_names,
        "inputs": inputs,
        "predictions": model.predict(list(inputs), verbose=0),
    }


def test_keras_checkpoint_into_torch_layers(keras_checkpoint):
    torch = pytest.importorskip("torch")
    import fastckpt.torch

    ckpt = keras_checkpoint
    model = torch_twin().eval()
    # The module's state dict: its tensors share the parameters' and buffers' storage, so filling them fills it.
    target = model.state_dict()
    # Keras has no counterpart of BatchNorm2d's batch counter (torch uses it only for momentum=None).
    del target["bn.num_batches_tracked"]
    # Conv2D's kernel is HWIO, Conv2d's weight OIHW: transpose covers Dense's 2-D kernels only, so the kernel is
    # loaded as it is stored and permuted into the layer.
    kernel = torch.empty(3, 3, CHANNELS, FILTERS)
    target["conv.weight"] = kernel
    missing, unexpected = fastckpt.torch.load_into(
        target,
        ckpt["path"],
        names="full",
        rename=KERAS_RENAME,
        skip_optimizer=True,
        transpose=KERAS_TRANSPOSE,
        strict=True,
    )
    assert (list(missing), list(unexpected)) == ([], [])
    with torch.no_grad():
        model.conv.weight.copy_(kernel.permute(3, 2, 0, 1))

    state = {name: tensor.numpy() for name, tensor in model.state_dict().items()}
    for name, value in ckpt["weights"].items():
        torch_name = renamed(name, KERAS_RENAME)
        expected = value.T if name.endswith("/kernel") and value.ndim == 2 else value
        if name == "conv/kernel":
            expected = value.transpose(3, 2, 0, 1)
        np.testing.assert_array_equal(state[torch_name], expected, err_msg=name)

    tokens, image = ckpt["inputs"]
    with torch.no_grad():
        outputs = model(torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(outputs, ckpt["predictions"], rtol=0, atol=TOLERANCE)


def test_keras_optimizer_state_is_what_strict_refuses(keras_checkpoint):
    """Without skip_optimizer the optimizer's tensors (and tf.train.Checkpoint's save_counter) are unexpected:
    strict loading refuses them, and a loose one names exactly them. (The object graph, a string tensor, is
    never loaded into torch.)"""
    pytest.importorskip("torch")
    import fastckpt.torch

    ckpt = keras_checkpoint

    def target():
        state = torch_twin().state_dict()
        del state["bn.num_batches_tracked"]
        state["conv.weight"] = state["conv.weight"].new_empty(3, 3, CHANNELS, FILTERS)
        return state

    rules = dict(names="full", rename=KERAS_RENAME, transpose=KERAS_TRANSPOSE)
    # Keras names the optimizer adam, or adam_1 when the process made an Adam before.
    with pytest.raises(fastckpt.errors.InvalidArgumentError, match=r"adam(_\d+)?\.conv_kernel_momentum"):
        fastckpt.torch.load_into(target(), ckpt["path"], **rules)
    missing, unexpected = fastckpt.torch.load_into(target(), ckpt["path"], strict=False, **rules)
    expected = {renamed(name, KERAS_RENAME) for name in ckpt["optimizer_names"] + ["save_counter"]}
    assert list(missing) == []
    assert sorted(unexpected) == sorted(expected)


# The optimizer's int64 step counters narrow to int32 (jax_enable_x64 is off): not the model's weights.
@pytest.mark.filterwarnings("ignore:jax_enable_x64 is off")
def test_keras_checkpoint_into_jax(keras_checkpoint):
    jax = pytest.importorskip("jax")
    import fastckpt.jax

    ckpt = keras_checkpoint
    params = fastckpt.jax.load(ckpt["path"], names="full")
    for name, value in ckpt["weights"].items():
        assert isinstance(params[name], jax.Array), (name, type(params[name]))
        np.testing.assert_array_equal(np.asarray(params[name]), value, err_msg=name)
    weights = {name: params[name] for name in ckpt["weights"]}
    outputs = np.asarray(jax.jit(jax_forward)(weights, *ckpt["inputs"]))
    np.testing.assert_allclose(outputs, ckpt["predictions"], rtol=0, atol=TOLERANCE)


BERT_OPTIMIZERS = ["adam_weight_decay", "tf_adam"]


@pytest.fixture(scope="module")
def bert_checkpoints(tf, tmp_path_factory):
    """BERT checkpoints written by tf.compat.v1.train.Saver, one per optimizer, and what a child process made of
    them: each loaded into a transformers.BertModel by fastckpt.torch.load_into, then run on bert_inputs()."""
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("bert")
    written = {}
    for optimizer in BERT_OPTIMIZERS:
        (root / optimizer).mkdir()
        written[optimizer] = write_tf1_bert(tf, str(root / optimizer / "bert_model.ckpt"), optimizer)
    (root / "job.json").write_text(json.dumps({case: w["path"] for case, w in written.items()}), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    run_helper("migration_models.py", "bert", root, env=env, timeout=300)
    report = json.loads((root / "report.json").read_text(encoding="utf-8"))
    assert report.pop("tensorflow_imported") is False
    with np.load(root / "results.npz") as results:
        arrays = {name: results[name] for name in results.files}
    return written, report, arrays


@pytest.mark.parametrize("optimizer", BERT_OPTIMIZERS)
def test_google_bert_checkpoint_into_transformers(bert_checkpoints, optimizer):
    written, report, arrays = bert_checkpoints
    tf_side, loaded = written[optimizer], report[optimizer]
    values, trainable = tf_side["values"], tf_side["trainable"]
    assert values["global_step"] == 3
    optimizer_state = sorted(set(values) - set(trainable))
    assert len(optimizer_state) > len(trainable)  # two slots per weight, global_step (and beta1/2_power)

    # strict=True held: BertModel's state dict is exactly the renamed weights (the cls/ heads aside). Its
    # buffers (position_ids, token_type_ids) are not persistent: not in the state dict, not asked of the
    # checkpoint.
    assert (loaded["missing"], loaded["unexpected"]) == ([], [])
    model_weights = [name for name in trainable if not name.startswith("cls/")]
    assert sorted(loaded["state_names"]) == sorted(renamed(name, BERT_RENAME) for name in model_weights)
    assert not set(loaded["buffers"]) & set(loaded["state_names"]), loaded["buffers"]

    # Every tensor is TensorFlow's, Dense kernels ([in, out]) as Linear weights ([out, in]).
    for name in model_weights:
        expected = values[name].T if name.endswith("/kernel") else values[name]
        loaded_value = arrays[f"{optimizer}/state/{renamed(name, BERT_RENAME)}"]
        np.testing.assert_array_equal(loaded_value, expected, err_msg=name)

    # BertModel computes what TensorFlow's BERT computed with these weights: finite, the same twice over.
    for ours, theirs in [("last_hidden_state", "sequence_output"), ("pooler_output", "pooled_output")]:
        first, second = arrays[f"{optimizer}/first/{ours}"], arrays[f"{optimizer}/second/{ours}"]
        assert np.isfinite(first).all(), ours
        assert first.tobytes() == second.tobytes(), ours
        np.testing.assert_allclose(first, tf_side["outputs"][theirs], rtol=0, atol=TOLERANCE, err_msg=ours)

    # Without skip_optimizer the optimizer's tensors are the unexpected ones, and strict loading refuses them.
    assert loaded["loose_missing"] == []
    expected_unexpected = [renamed(name, BERT_RENAME) for name in optimizer_state if not re.search(BERT_SKIP[0], name)]
    assert sorted(loaded["loose_unexpected"]) == sorted(expected_unexpected)
    assert loaded["strict_error"] is not None and "global_step" in loaded["strict_error"], loaded["strict_error"]
