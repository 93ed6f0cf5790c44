"""The mapping rules (fastckpt.mapping) and full names (CheckpointReader.full_names), on checkpoints TensorFlow
wrote while training: TF1 (tf.compat.v1.train.Saver, with the slots of six optimizers, an exponential moving
average and global_step) and TF2 (tf.train.Checkpoint of a Keras 3 model and optimizer, and of a tf.Module with
a tf.compat.v1 optimizer, whose slots are .OPTIMIZER_SLOT keys)."""

import re

import fastckpt
import fastckpt.mapping
import numpy as np
import pytest
from fastckpt.errors import InvalidArgumentError, NotFoundError
from fastckpt.mapping import Mapped, check_transpose, is_optimizer_state, names_of, plan, select
from helpers.checkpoints import FIXTURES
from helpers.docstrings import assert_docstring_examples_pass
from helpers.processes import run_python
from helpers.training_checkpoints import (
    write_keras_checkpoint,
    write_tf1_training_checkpoint,
    write_tf2_module_checkpoint,
)


@pytest.fixture(scope="module")
def tf1(tf, tmp_path_factory):
    return write_tf1_training_checkpoint(tf, tmp_path_factory.mktemp("tf1"))


@pytest.fixture(scope="module")
def keras_ckpt(tf, tmp_path_factory):
    return write_keras_checkpoint(tf, tmp_path_factory.mktemp("keras"))


@pytest.fixture(scope="module")
def module_ckpt(tf, tmp_path_factory):
    return write_tf2_module_checkpoint(tf, tmp_path_factory.mktemp("module"))


def kept(reader, names):
    """The names ``plan`` keeps with skip_optimizer."""
    return set(plan(names_of(reader, names), skip_optimizer=True))


# --- full names -----------------------------------------------------------------------------------------------


def test_full_names_of_a_keras_checkpoint_are_the_variables_paths(tf, keras_ckpt):
    reader = fastckpt.NewCheckpointReader(keras_ckpt["prefix"])
    full = reader.full_names()
    # Every variable Keras saved, under the name it has in Keras (and in TensorFlow, without ":0").
    assert sorted(full.values()) == sorted(keras_ckpt["weights"] + keras_ckpt["optimizer"] + ["save_counter"])
    by_name = {name: key for key, name in full.items()}
    for variable in keras_ckpt["model"].weights:
        assert variable.value.name == variable.path + ":0"
        key = by_name[variable.path]
        np.testing.assert_array_equal(reader.get_tensor(key), variable.numpy())
        # TensorFlow's own reader agrees on the key's value.
        np.testing.assert_array_equal(tf.train.load_checkpoint(keras_ckpt["prefix"]).get_tensor(key), variable.numpy())
    # The object graph's key has no full name; object paths are unchanged.
    assert fastckpt.reading.object_graph.OBJECT_GRAPH_KEY not in full
    assert set(reader.object_paths()) == set(full)


def test_full_names_match_tensorflows_object_graph(tf, module_ckpt):
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    reader = fastckpt.NewCheckpointReader(module_ckpt["prefix"])
    graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
        tf.train.load_checkpoint(module_ckpt["prefix"]).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
    )
    expected = {a.checkpoint_key: a.full_name for node in graph.nodes for a in node.attributes if a.full_name}
    assert reader.full_names() == expected
    assert expected["model/kernel/.ATTRIBUTES/VARIABLE_VALUE"] == "dense/kernel"
    assert expected["model/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE"] == "dense/kernel/Adam"


def test_name_based_checkpoints_have_no_full_names(tf1):
    reader = fastckpt.NewCheckpointReader(tf1["prefix"])
    assert reader.full_names() == {} and reader.object_paths() == {}
    for names in ("key", "object", "full"):
        assert names_of(reader, names) == {key: key for key in reader}


def test_full_names_of_the_committed_keras_fixture():
    reader = fastckpt.NewCheckpointReader(FIXTURES / "tf2_keras" / "ckpt")
    full = reader.full_names()
    assert full["optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE"] == "sequential/dense/kernel"
    assert full["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == "adam/iteration"
    assert len(full) == len(reader) - 1  # all but the object graph


# --- names_of ---------------------------------------------------------------------------------------------------


def test_names_of_each_naming(keras_ckpt):
    reader = fastckpt.NewCheckpointReader(keras_ckpt["prefix"])
    by_key = names_of(reader)
    assert by_key == names_of(reader, "key") == {key: key for key in reader}
    objects, full = names_of(reader, "object"), names_of(reader, "full")
    assert list(objects) == list(full) == list(reader)
    paths, full_names = reader.object_paths(), reader.full_names()
    for key in reader:
        assert objects[key] == paths.get(key, key)
        assert full[key] == full_names.get(key, key)
    # The object graph has neither name: it keeps its key.
    assert (
        objects["_CHECKPOINTABLE_OBJECT_GRAPH"]
        == full["_CHECKPOINTABLE_OBJECT_GRAPH"]
        == "_CHECKPOINTABLE_OBJECT_GRAPH"
    )
    assert objects["save_counter/.ATTRIBUTES/VARIABLE_VALUE"] == "save_counter"


@pytest.mark.parametrize("names", ["keys", "", None, "FULL"])
def test_names_of_an_unknown_naming(names):
    reader = fastckpt.NewCheckpointReader(fastckpt.examples.model_path())
    with pytest.raises(InvalidArgumentError, match="names must be one of 'key', 'object', 'full'"):
        names_of(reader, names)


# --- optimizer state on real checkpoints ------------------------------------------------------------------------


def test_tf1_optimizer_state(tf1):
    reader = fastckpt.NewCheckpointReader(tf1["prefix"])
    keys = set(reader)
    assert set(tf1["slots"]) <= keys and len(tf1["slots"]) == 20
    assert {"beta1_power", "beta2_power", "global_step", "dense/kernel/ExponentialMovingAverage"} <= keys
    # What TensorFlow calls weights (trainable variables, their moving averages) is kept; all else is dropped.
    assert kept(reader, "key") == set(tf1["weights"])
    for key in tf1["slots"]:
        assert is_optimizer_state(key, key), key
    for key in tf1["weights"]:
        assert not is_optimizer_state(key, key), key
    # Without skip_optimizer, everything is kept.
    assert set(plan(names_of(reader))) == keys


def test_keras_optimizer_state(keras_ckpt):
    reader = fastckpt.NewCheckpointReader(keras_ckpt["prefix"])
    full = reader.full_names()
    # By full name: exactly the model's variables are kept (Keras 3 lists the trainable ones under the
    # optimizer, the moving statistics under the model).
    assert kept(reader, "full") == set(keras_ckpt["weights"])
    # By key or object path: the same tensors.
    for names in ("key", "object"):
        named = names_of(reader, names)
        kept_keys = {mapped.key for mapped in plan(named, skip_optimizer=True).values()}
        assert {full[key] for key in kept_keys} == set(keras_ckpt["weights"]), names
    dropped = [
        key for key in reader if not any(m.key == key for m in plan(names_of(reader), skip_optimizer=True).values())
    ]
    assert {full.get(key, key) for key in dropped} == set(keras_ckpt["optimizer"]) | {
        "save_counter",
        "_CHECKPOINTABLE_OBJECT_GRAPH",
    }


def test_keras_optimizer_under_another_attribute_is_found_by_full_name(tf, tmp_path):
    written = write_keras_checkpoint(tf, tmp_path, optimizer="sgd", model_attribute="net", optimizer_attribute="opt")
    reader = fastckpt.NewCheckpointReader(written["prefix"])
    assert any(key.startswith("opt/") for key in reader)
    assert all(name.startswith("sgd/") for name in written["optimizer"])
    assert kept(reader, "full") == set(written["weights"])


def test_tf2_optimizer_slots_and_non_slot_variables(module_ckpt):
    reader = fastckpt.NewCheckpointReader(module_ckpt["prefix"])
    assert any(".OPTIMIZER_SLOT" in key for key in reader)
    for names in ("key", "object", "full"):
        planned = plan(names_of(reader, names), skip_optimizer=True)
        assert sorted(m.key for m in planned.values()) == [
            "model/bias/.ATTRIBUTES/VARIABLE_VALUE",
            "model/kernel/.ATTRIBUTES/VARIABLE_VALUE",
        ], names
    assert kept(reader, "full") == {"dense/kernel", "dense/bias"}
    assert kept(reader, "object") == {"model/kernel", "model/bias"}


@pytest.mark.parametrize(
    "key, name, expected",
    [
        ("dense/kernel/Adam", None, True),
        ("dense/kernel/Adam_1", None, True),
        ("dense/kernel/Adam_2", None, True),
        ("bert/encoder/layer_0/output/dense/kernel/adam_m", None, True),
        ("bert/encoder/layer_0/output/dense/kernel/adam_v", None, True),
        ("dense/kernel/RMSProp_1", None, True),
        ("beta1_power", None, True),
        ("tower/beta2_power_1", None, True),
        ("global_step", None, True),
        ("dense/kernel/ExponentialMovingAverage", None, False),
        ("dense/kernel", None, False),
        ("Adam", None, False),  # a variable called Adam, not a slot
        ("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", "Adam/iter", True),
        ("model/optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE", None, True),
        ("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE", "sequential/dense/kernel", False),
        ("model/layer_with_weights-0/kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE", None, True),
        ("save_counter/.ATTRIBUTES/VARIABLE_VALUE", "save_counter", True),
        ("_CHECKPOINTABLE_OBJECT_GRAPH", None, True),
        ("opt/_variables/3/.ATTRIBUTES/VARIABLE_VALUE", "adamw_1/dense_kernel_momentum", True),
        ("net/_functional/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE", "sequential/dense/kernel", False),
        ("optimizer", None, False),  # a TF1 variable named optimizer
    ],
)
def test_is_optimizer_state(key, name, expected):
    assert is_optimizer_state(key, name) is expected


# --- plan -------------------------------------------------------------------------------------------------------

NAMED = {
    "dense/kernel": "dense/kernel",
    "dense/bias": "dense/bias",
    "dense/kernel/Adam": "dense/kernel/Adam",
    "emb/table": "emb/table",
    "global_step": "global_step",
}


def test_plan_keeps_everything_in_order_by_default():
    assert plan(NAMED) == {name: Mapped(key, False) for key, name in NAMED.items()}
    assert list(plan(NAMED)) == list(NAMED)


def test_plan_order_of_steps():
    planned = plan(
        NAMED,
        skip_optimizer=True,
        skip=[r"^emb/"],
        rename=[(r"^dense/", "fc/"), (r"^fc/", "layer."), (r"/", ".")],
        transpose=r"^layer\.kernel$",  # matched against the renamed names
    )
    assert planned == {
        "layer.kernel": Mapped("dense/kernel", True),
        "layer.bias": Mapped("dense/bias", False),
    }


def test_skip_matches_names_before_renaming():
    planned = plan(NAMED, skip="kernel", rename={"dense": "kernel_layer"})
    assert planned == {
        "kernel_layer/bias": Mapped("dense/bias", False),
        "emb/table": Mapped("emb/table", False),
        "global_step": Mapped("global_step", False),
    }


def test_skip_and_transpose_take_compiled_patterns_and_names_not_keys():
    named = {"k1": "dense/kernel", "k2": "dense/bias"}
    planned = plan(named, skip=re.compile("bias$"), transpose=[re.compile("kernel")])
    assert planned == {"dense/kernel": Mapped("k1", True)}


def test_rename_dict_applies_in_order_with_groups():
    planned = plan({"a/0/w": "a/0/w"}, rename={r"a/(\d+)/": r"layers.\1.", r"\.w$": ".weight"})
    assert planned == {"layers.0.weight": Mapped("a/0/w", False)}


def test_two_keys_renamed_to_one_name():
    with pytest.raises(InvalidArgumentError) as err:
        plan({"a/kernel": "a/kernel", "b/kernel": "b/kernel"}, rename=[(r"^\w/", "")])
    assert "'a/kernel'" in str(err.value) and "'b/kernel'" in str(err.value) and "'kernel'" in str(err.value)
    assert err.value.tensor_name == "b/kernel"


def test_two_keys_with_one_full_name(keras_ckpt):
    named = {"k1/.ATTRIBUTES/VARIABLE_VALUE": "dense/kernel", "k2/.ATTRIBUTES/VARIABLE_VALUE": "dense/kernel"}
    with pytest.raises(InvalidArgumentError, match="'k1/.ATTRIBUTES/VARIABLE_VALUE' and 'k2/.ATTRIBUTES/"):
        plan(named, filename="somewhere")


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"skip": ["ok", "(unclosed"]}, "(unclosed"),
        ({"transpose": "[z-a]"}, "[z-a]"),
        ({"rename": [("*star", "x")]}, "*star"),
        ({"rename": {"a(": "b"}}, "a("),
    ],
)
def test_invalid_patterns_are_named(kwargs, pattern):
    with pytest.raises(InvalidArgumentError) as err:
        plan(NAMED, **kwargs)
    assert repr(pattern) in str(err.value)


def test_a_replacement_with_a_missing_group():
    with pytest.raises(InvalidArgumentError, match=r"rename '\^dense/' -> '\\\\2/' fails on 'dense/kernel'"):
        plan(NAMED, rename=[("^dense/", r"\2/")])


@pytest.mark.parametrize("rename", ["a=b", [("a",)], [("a", 1)], ["ab"]])
def test_rename_must_be_pairs(rename):
    with pytest.raises(InvalidArgumentError, match="rename"):
        plan(NAMED, rename=rename)


def test_rename_to_nothing():
    with pytest.raises(InvalidArgumentError, match="empty") as err:
        plan({"emb/table": "emb/table"}, rename=[(".*", "")])
    assert err.value.tensor_name == "emb/table"


def test_check_transpose():
    shapes = {"dense/kernel": [3, 2], "dense/bias": [2], "emb/table": [5, 4]}
    planned = plan({k: k for k in shapes}, transpose="kernel")
    assert check_transpose(planned, shapes) == {"dense/kernel": (2, 3), "dense/bias": (2,), "emb/table": (5, 4)}
    with pytest.raises(InvalidArgumentError) as err:
        check_transpose(plan({k: k for k in shapes}, transpose="dense"), shapes, filename="model.ckpt")
    assert "'dense/bias'" in str(err.value) and "1-D" in str(err.value) and "[2]" in str(err.value)
    assert err.value.tensor_name == "dense/bias" and err.value.filename == "model.ckpt"


def test_transpose_of_a_tf1_checkpoint(tf1):
    reader = fastckpt.NewCheckpointReader(tf1["prefix"])
    planned = plan(names_of(reader), skip_optimizer=True, transpose=r"kernel$")
    shapes = check_transpose(planned, reader.get_variable_to_shape_map())
    assert shapes == {
        "dense/kernel": (2, 3),
        "dense/bias": (2,),
        "dense/kernel/ExponentialMovingAverage": (3, 2),
        "dense/bias/ExponentialMovingAverage": (2,),
    }


# --- select (the names of fastckpt.torch.load and fastckpt.jax.load) ---------------------------------------------


def test_select(keras_ckpt):
    reader = fastckpt.NewCheckpointReader(keras_ckpt["prefix"])
    assert select(reader) == select(reader, "key") == {key: key for key in reader}
    full = select(reader, "full")
    assert set(keras_ckpt["weights"]) <= set(full)
    assert {full[name] for name in keras_ckpt["weights"]} <= set(reader)
    assert keras_ckpt["weights"][0] == "sequential/dense/kernel"
    key = full["sequential/dense/kernel"]
    assert select(reader, iter([key])) == {key: key}
    with pytest.raises(NotFoundError) as err:
        select(reader, [key, "sequential/dense/kernel"])
    assert err.value.tensor_name == "sequential/dense/kernel"
    with pytest.raises(InvalidArgumentError, match=r"\['v1'\]"):
        select(reader, "v1")


# --- the module ---------------------------------------------------------------------------------------------------


def test_docstring_examples():
    assert_docstring_examples_pass(fastckpt.mapping)


def test_import_fastckpt_imports_neither_torch_nor_jax():
    code = (
        "import json, sys, fastckpt, fastckpt.mapping\n"
        "r = fastckpt.NewCheckpointReader(fastckpt.examples.model_path())\n"
        "fastckpt.mapping.plan(fastckpt.mapping.names_of(r, 'full'), skip_optimizer=True)\n"
        "r.get_tensors()\n"
        "print(json.dumps(sorted(m for m in ('torch', 'jax', 'jaxlib', 'tensorflow') if m in sys.modules)))\n"
    )
    assert run_python(code) == []
