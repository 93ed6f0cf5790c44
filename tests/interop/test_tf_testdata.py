"""fastckpt reads the checkpoints, SavedModels, V1 files and state files that TensorFlow and TensorFlow
Serving committed as test data (2016-2022) as TensorFlow 2.21 reads them.

The data lives outside the project, in ``../shared/tf-testdata`` beside the checkout (the tests skip without
it). Each item directory holds TensorFlow's files and ``tf_answers.json``: ``targets`` lists what was asked
(``[kind, path relative to the item]``) and ``answers["kind:path"]`` what TensorFlow 2.21 answered:

``ckpt`` (a checkpoint prefix, V1 file or V1 file pattern)
    ``list_variables``, ``shapes``, ``dtypes`` (``DType.name``); ``tensors``: each value of
    ``reader.get_tensor`` encoded as ``encode`` below encodes it; ``load_variable``: the sha256 of
    ``json.dumps(encode(tf.train.load_variable(path, name)), sort_keys=True)``; ``debug_string_b64``;
    ``get_missing`` / ``has_tensor_missing``: the error class of ``get_tensor`` and the result of
    ``has_tensor`` for a name the checkpoint does not hold.
``savedmodel`` (an export directory)
    ``tag_sets``; ``per_tags`` (keyed by the tags joined with ","): ``proto_signatures_b64`` (each SignatureDef
    serialized), ``v1_loader`` (the signatures as ``tf.compat.v1.saved_model.loader.load`` returned them, or
    its error), ``tf2_load`` (the input and output keys of ``tf.saved_model.load(...).signatures``, or its
    error); ``variables``: the names ``tf.train.list_variables(<export_dir>/variables/variables)`` lists, or
    its error.
``meta`` (a ``.meta`` file)
    ``meta_graph_b64``: the MetaGraphDef read, serialized.
``state`` (a directory with a ``checkpoint`` state file)
    ``state``: ``tf.train.get_checkpoint_state`` (``ITEM`` stands for the item's directory);
    ``latest_checkpoint``; ``load_checkpoint_dir``: the sorted names of ``tf.train.load_checkpoint(dir)``, or
    its error.

Where TensorFlow fails, fastckpt raises the ``fastckpt.errors`` class of the same name (and, where
TensorFlow raises ValueError, an error that is also a ValueError). Where fastckpt is deliberately better
than TensorFlow, the rule is written out below (``resolved_in_dir``, ``expected_dir_checkpoint``,
``v1_shards_of``), never skipped.
"""

import base64
import functools
import hashlib
import json
import os
from pathlib import Path

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from fastckpt.protos import CheckpointState, MetaGraphDef, SignatureDef
from google.protobuf import text_format
from helpers.paths import TF_TESTDATA

DATA = TF_TESTDATA

if not DATA.is_dir():
    pytest.skip(f"TensorFlow's test data is not at {DATA}", allow_module_level=True)

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
INIT_OP_SIGNATURE_KEY = "__saved_model_init_op"
MISSING = "fastckpt_test/no/such/tensor"


@functools.lru_cache(maxsize=None)
def _answers(item: str) -> dict:
    return json.loads((DATA / item / "tf_answers.json").read_text(encoding="utf-8"))


TARGETS = {kind: [] for kind in ("ckpt", "savedmodel", "meta", "state")}
for _item_dir in sorted(DATA.iterdir()):
    if (_item_dir / "tf_answers.json").is_file():
        for _kind, _path in _answers(_item_dir.name)["targets"]:
            TARGETS[_kind].append(pytest.param(_item_dir.name, _path, id=f"{_item_dir.name}:{_path}"))


def answer(item: str, kind: str, path: str):
    return _answers(item)["answers"][f"{kind}:{path}"]


def at(item: str, path: str) -> str:
    """The file system path of ``path`` in ``item``, as a string (``.`` is the item's directory)."""
    return os.path.normpath(os.path.join(str(DATA / item), path))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def encode(value) -> dict:
    """A value as the answers encode it: its Python type, numpy dtype and shape, and its bytes (numbers) or
    its elements (strings: each element of ``np.asarray(value)``, whose ``|S`` scalars drop trailing NULs
    while the dtype keeps the length, so the encoding is still exact)."""
    array = np.asarray(value)
    encoded = {"kind": type(value).__name__, "np_dtype": str(array.dtype), "shape": list(array.shape)}
    if array.dtype.kind in "OSU":
        elements = list(array.flat)
        encoded["elem_types"] = sorted({type(e).__name__ for e in elements})
        encoded["strings_b64"] = [_b64(bytes(e)) for e in elements]
    else:
        encoded["bytes_b64"] = _b64(array.tobytes())
    return encoded


def sha256_of_encoding(value) -> str:
    return hashlib.sha256(json.dumps(encode(value), sort_keys=True).encode("utf-8")).hexdigest()


def raises_as_tensorflow(error: str):
    """``pytest.raises`` of fastckpt's error named as TensorFlow's. For TensorFlow's ValueError, fastckpt's
    error must be a ValueError too (NotACheckpointError, InvalidCheckpointStateError are)."""
    if error == "ValueError":
        return pytest.raises(ValueError)
    return pytest.raises(getattr(errors, error))


# ---------------------------------------------------------------------------------------------------------
# The rules where fastckpt finds more than TensorFlow does.


def resolved_in_dir(path: str, directory: str) -> str:
    """A path a state file names, as fastckpt resolves it (README): relative paths against the directory, as
    TensorFlow does; an absolute path that is no checkpoint (written on another machine, or before the
    directory moved) by its base name inside the directory, when a checkpoint is there. TensorFlow keeps the
    absolute path, so its latest_checkpoint returns None where fastckpt's finds the checkpoint."""
    if not os.path.isabs(path):
        return os.path.join(directory, path)
    local = os.path.join(directory, os.path.basename(path))
    if not fastckpt.checkpoint_exists(path) and fastckpt.checkpoint_exists(local):
        return local
    return path


def v1_shards_of(prefix: str):
    """The V1 checkpoint saved sharded under ``prefix`` (``prefix-00000-of-00001``...). fastckpt opens it from
    its prefix (``variables/variables`` of the SavedModels of late 2016); TensorFlow 2.21 finds no file
    named ``prefix`` and raises NotFoundError."""
    directory, name = os.path.split(prefix)
    if not os.path.isdir(directory):
        return []
    return sorted(f for f in os.listdir(directory) if f.startswith(name + "-") and f[len(name) :].count("-of-") == 1)


def expected_dir_checkpoint(directory: str):
    """What fastckpt opens for a directory: its SavedModel variables when they exist, else the latest
    checkpoint of its state file (resolved as ``resolved_in_dir``), else nothing (NotACheckpointError)."""
    variables = os.path.join(directory, "variables", "variables")
    if fastckpt.checkpoint_exists(variables):
        return variables
    state_file = os.path.join(directory, "checkpoint")
    if os.path.isfile(state_file):
        state = text_format.Parse(Path(state_file).read_text(encoding="utf-8"), CheckpointState())
        latest = resolved_in_dir(state.model_checkpoint_path, directory)
        if fastckpt.checkpoint_exists(latest):
            return latest
    return None


def ckpt_answer_for(path: str):
    """TensorFlow's ckpt answer for the checkpoint at ``path`` (any item), if it was asked about."""
    for param in TARGETS["ckpt"]:
        item, target = param.values
        if at(item, target) == os.path.normpath(path):
            return answer(item, "ckpt", target)
    return None


# ---------------------------------------------------------------------------------------------------------


def test_the_data_is_all_there():
    assert len([d for d in DATA.iterdir() if (d / "tf_answers.json").is_file()]) == 94
    counts = {kind: len(params) for kind, params in TARGETS.items()}
    assert counts == {"ckpt": 92, "savedmodel": 73, "meta": 12, "state": 11}, counts


@pytest.mark.parametrize("item, path", TARGETS["ckpt"])
def test_checkpoint_reads_as_tensorflow_reads_it(item, path):
    tf = answer(item, "ckpt", path)
    assert tf["open"] == "ok"
    prefix = at(item, path)
    reader = fastckpt.NewCheckpointReader(prefix)

    assert [[name, shape] for name, shape in fastckpt.list_variables(prefix)] == tf["list_variables"]
    assert reader.get_variable_to_shape_map() == tf["shapes"]
    assert {name: dtype.name for name, dtype in reader.get_variable_to_dtype_map().items()} == tf["dtypes"]

    all_at_once = reader.get_tensors()
    assert sorted(all_at_once) == sorted(tf["tensors"])
    for name, expected in tf["tensors"].items():
        assert encode(reader.get_tensor(name)) == expected, name
        assert encode(all_at_once[name]) == expected, name
        if "bytes_b64" in expected:  # a zero-copy view (or the read it falls back to), and a partial read
            assert np.asarray(reader.view(name)).tobytes() == base64.b64decode(expected["bytes_b64"]), name
            assert np.asarray(reader.get_slice(name)[...]).tobytes() == base64.b64decode(expected["bytes_b64"]), name
    for name, expected in tf["load_variable"].items():
        assert sha256_of_encoding(fastckpt.load_variable(prefix, name)) == expected["sha256_of_encoding"], name

    assert reader.has_tensor(MISSING) == tf["has_tensor_missing"]
    with raises_as_tensorflow(tf["get_missing"]) as info:
        reader.get_tensor(MISSING)
    assert MISSING in str(info.value)


@pytest.mark.parametrize("item, path", TARGETS["ckpt"])
def test_debug_string_as_tensorflow_prints_it(item, path):
    tf = base64.b64decode(answer(item, "ckpt", path)["debug_string_b64"])
    reader = fastckpt.NewCheckpointReader(at(item, path))
    ours = reader.debug_string()
    if reader.format == "v1":
        # TensorFlow prints a V1 checkpoint's tensors in the iteration order of the std::unordered_map its
        # TensorSliceReader keeps them in (an artifact of its C++ library's hashing: for two tensors, the
        # reverse of their order in the file); fastckpt prints them in name order, as for V2. The lines are the
        # same.
        assert sorted(ours.splitlines()) == sorted(tf.splitlines())
        assert ours.splitlines() == sorted(ours.splitlines())
        return
    assert ours == tf


@pytest.mark.parametrize("item, path", TARGETS["ckpt"])
def test_object_paths_spell_the_checkpoint_keys(item, path):
    """A TF2 checkpoint's keys are its objects' paths from the root (local names escaped, "." as ".." and
    "/" as ".S"), then ``.ATTRIBUTES/<attribute>``; a slot variable's key is its variable's path,
    ``.OPTIMIZER_SLOT``, the optimizer's path and the slot name. ``object_paths`` gives each key of the
    checkpoint its object's path. Keys the object graph names but the checkpoint does not hold (variables
    saved uninitialized: ``c_api_UninitializedVariable``, which tf.saved_model.load fails to restore, "Key ...
    not found in checkpoint") are left out."""
    reader = fastckpt.NewCheckpointReader(at(item, path))
    graph = reader.object_graph()
    if OBJECT_GRAPH_KEY not in tf_names(item, path):
        assert graph is None and reader.object_paths() == {}
        return
    assert graph is not None and graph.nodes
    paths = reader.object_paths()
    names = set(reader.get_variable_to_shape_map())
    assert set(paths) == {n for n in names if "/.ATTRIBUTES/" in n}
    named = {attribute.checkpoint_key for node in graph.nodes for attribute in node.attributes}
    assert named >= set(paths)
    for key, object_path in paths.items():
        owner_key, attribute = key.rsplit("/.ATTRIBUTES/", 1)
        if (
            "/.OPTIMIZER_SLOT/" in owner_key
        ):  # <variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>: <variable>/<optimizer>/<slot>
            assert attribute == "VARIABLE_VALUE", key
            assert escaped(object_path) == owner_key.replace("/.OPTIMIZER_SLOT/", "/", 1), (key, object_path)
            continue
        owner = object_path if attribute == "VARIABLE_VALUE" else object_path[: -len(attribute) - 1]
        assert escaped(owner) == owner_key, (key, object_path)


def escaped(object_path: str) -> str:
    """An object path as TensorFlow spells it in checkpoint keys: each local name with "." as ".." and "/" as
    ".S" (the paths here have no "/" inside a local name)."""
    return "/".join(part.replace(".", "..").replace("/", ".S") for part in object_path.split("/"))


def tf_names(item, path):
    return [name for name, _ in answer(item, "ckpt", path)["list_variables"]]


def signature_as_v1_loader_returns_it(signature: "SignatureDef") -> dict:
    def info(tensor_info):
        shape = tensor_info.tensor_shape
        if not tensor_info.HasField("tensor_shape"):
            shape = None
        else:
            shape = "unknown" if shape.unknown_rank else [d.size for d in shape.dim]
        return {"dtype": tensor_info.dtype, "name": tensor_info.name, "shape": shape}

    return {
        "inputs": {key: info(value) for key, value in signature.inputs.items()},
        "method_name": signature.method_name,
        "outputs": {key: info(value) for key, value in signature.outputs.items()},
    }


@pytest.mark.parametrize("item, path", TARGETS["savedmodel"])
def test_saved_model_reads_as_tensorflow_reads_it(item, path):
    tf = answer(item, "savedmodel", path)
    export_dir = at(item, path)
    assert fastckpt.saved_model.tag_sets(export_dir) == tf["tag_sets"]
    assert sorted(tf["per_tags"]) == sorted(",".join(tags) for tags in tf["tag_sets"])

    for tags, per_tags in tf["per_tags"].items():
        model = fastckpt.saved_model.load(export_dir, tags=tags.split(","))
        assert sorted(model.tags) == sorted(tags.split(","))
        serialized = {key: s.SerializeToString(deterministic=True) for key, s in model.signatures.items()}
        assert serialized == {key: base64.b64decode(b) for key, b in per_tags["proto_signatures_b64"].items()}
        # TensorFlow's loaders fail on some of these graphs (ops or versions TensorFlow 2.21 no longer takes,
        # fuzzed graphs, missing variables); fastckpt reads a SavedModel as data and runs no graph, so its
        # signatures are those of the file, which the loaders return wherever they succeed.
        if "error" not in per_tags["v1_loader"]:
            as_v1 = {key: signature_as_v1_loader_returns_it(s) for key, s in model.signatures.items()}
            assert as_v1 == per_tags["v1_loader"]
        if "error" not in per_tags["tf2_load"]:
            # tf.saved_model.load leaves the init op out of the signatures of a TF2 SavedModel.
            tf2 = model.object_graph is not None
            as_tf2 = {
                key: {"inputs": sorted(s.inputs), "outputs": sorted(s.outputs)}
                for key, s in model.signatures.items()
                if not (tf2 and key == INIT_OP_SIGNATURE_KEY)
            }
            assert as_tf2 == per_tags["tf2_load"]
        check_saved_model_variables(export_dir, tf["variables"], model)


def check_saved_model_variables(export_dir, tf_variables, model):
    prefix = os.path.join(export_dir, "variables", "variables")
    if isinstance(tf_variables, dict):
        assert tf_variables["error"] == "NotFoundError"
        shards = v1_shards_of(prefix)
        if not shards:
            with raises_as_tensorflow(tf_variables["error"]):
                fastckpt.list_variables(prefix)
            assert dict(model.variables) == {} and model.variables.reader is None
            return
        # Better than TensorFlow: the sharded V1 variables open from their prefix.
        pattern = ckpt_answer_for(f"{prefix}-?????-of-{shards[0].rsplit('-of-', 1)[1]}")
        assert pattern is not None, shards
        tf_variables = [name for name, _ in pattern["list_variables"]]
    expected = [name for name in tf_variables if name != OBJECT_GRAPH_KEY]
    assert sorted(model.variables) == expected
    assert len(model.variables) == len(expected)
    assert OBJECT_GRAPH_KEY not in model.variables
    with pytest.raises(KeyError):
        model.variables[OBJECT_GRAPH_KEY]
    if OBJECT_GRAPH_KEY in tf_variables:  # kept out of the variables, still there as the object graph
        assert model.variables.reader.object_graph() is not None
        assert set(model.object_paths()) == {name for name in expected if "/.ATTRIBUTES/" in name}
    values = ckpt_answer_for(model.variables.reader.path)
    if values is not None:
        for name in expected:
            assert encode(model.variables[name]) == values["tensors"][name], name
    # The directory's checkpoint is the same one.
    assert sorted(fastckpt.load_checkpoint(export_dir).get_variable_to_shape_map()) == sorted(tf_variables)


@pytest.mark.parametrize("item, path", TARGETS["savedmodel"])
def test_saved_model_directory_checkpoint(item, path):
    """``load_checkpoint`` of a SavedModel directory opens its variables, else its state file's latest
    checkpoint; with neither it raises NotACheckpointError (a ValueError, as TensorFlow's "Couldn't find
    'checkpoint' file or checkpoints in given directory"), naming the directory."""
    export_dir = at(item, path)
    expected = expected_dir_checkpoint(export_dir)
    if expected is None:
        with pytest.raises(errors.NotACheckpointError) as info:
            fastckpt.load_checkpoint(export_dir)
        assert isinstance(info.value, ValueError)
        assert export_dir in str(info.value)
        return
    reader = fastckpt.load_checkpoint(export_dir)
    assert reader.get_variable_to_shape_map() == fastckpt.NewCheckpointReader(expected).get_variable_to_shape_map()


@pytest.mark.parametrize("item, path", TARGETS["meta"])
def test_meta_graph_reads_as_tensorflow_reads_it(item, path):
    tf = answer(item, "meta", path)
    meta = fastckpt.read_meta_graph(at(item, path))
    assert meta.SerializeToString(deterministic=True) == base64.b64decode(tf["meta_graph_b64"])
    assert meta == MetaGraphDef.FromString(base64.b64decode(tf["meta_graph_b64"]))


@pytest.mark.parametrize("item, path", TARGETS["state"])
def test_state_file_reads_as_tensorflow_reads_it(item, path):
    tf = answer(item, "state", path)
    directory = at(item, path)

    def in_item(p):  # the answers write the item's directory as ITEM
        return p if p is None or not p.startswith("ITEM/") else str(DATA / item) + p[len("ITEM") :]

    state = fastckpt.get_checkpoint_state(directory)
    assert state is not None
    expected_paths = [resolved_in_dir(in_item(p), directory) for p in tf["state"]["all_model_checkpoint_paths"]]
    assert state.model_checkpoint_path == resolved_in_dir(in_item(tf["state"]["model_checkpoint_path"]), directory)
    assert list(state.all_model_checkpoint_paths) == expected_paths

    latest = fastckpt.latest_checkpoint(directory)
    if tf["latest_checkpoint"] is not None:
        assert latest == in_item(tf["latest_checkpoint"])
    else:  # TensorFlow finds nothing; fastckpt finds the checkpoint by its base name, if it is there
        resolved = state.model_checkpoint_path
        assert latest == (resolved if fastckpt.checkpoint_exists(resolved) else None)

    expected = expected_dir_checkpoint(directory)
    if isinstance(tf["load_checkpoint_dir"], list):
        assert expected is not None
        assert sorted(fastckpt.load_checkpoint(directory).get_variable_to_shape_map()) == tf["load_checkpoint_dir"]
    elif expected is None:
        with raises_as_tensorflow(tf["load_checkpoint_dir"]["error"]) as info:
            fastckpt.load_checkpoint(directory)
        assert isinstance(info.value, errors.NotACheckpointError)
        assert directory in str(info.value)
    else:  # better than TensorFlow: fastckpt opens the checkpoint it found, as latest_checkpoint names it
        assert tf["load_checkpoint_dir"]["error"] == "ValueError"
        assert expected == latest or expected == os.path.join(directory, "variables", "variables")
        reader = fastckpt.load_checkpoint(directory)
        tf_ckpt = ckpt_answer_for(expected)
        assert tf_ckpt is not None, expected
        assert [[n, s] for n, s in sorted(reader.get_variable_to_shape_map().items())] == tf_ckpt["list_variables"]


@pytest.mark.parametrize(
    "contents", ["", 'all_model_checkpoint_paths: "model.ckpt-46900"\n'], ids=["empty", "no_model_checkpoint_path"]
)
def test_state_file_naming_no_checkpoint(tmp_path, contents):
    """TensorFlow 2.21 raises ValueError("Invalid checkpoint state loaded from <dir>") from get_checkpoint_state,
    latest_checkpoint and load_checkpoint of a directory whose state file is empty or has no
    model_checkpoint_path; fastckpt raises InvalidCheckpointStateError, a DataLossError and a ValueError."""
    source = DATA / "tensorrt_model_ckpt_46900"
    for name in os.listdir(source):
        if name.startswith("model.ckpt-46900."):
            (tmp_path / name).write_bytes((source / name).read_bytes())
    (tmp_path / "checkpoint").write_text(contents)
    for call in (fastckpt.get_checkpoint_state, fastckpt.latest_checkpoint, fastckpt.load_checkpoint):
        with pytest.raises(errors.InvalidCheckpointStateError) as info:
            call(str(tmp_path))
        assert isinstance(info.value, ValueError) and isinstance(info.value, errors.DataLossError)
        assert str(tmp_path / "checkpoint") in str(info.value)
