"""Graphs as data: meta graphs, GraphDefs, freezing and SavedModels, on TensorFlow-written files."""

import fastckpt
import numpy as np
import pytest
from fastckpt import errors
from fastckpt.graphs import make_tensor_proto, tensor_proto_to_numpy
from fastckpt.protos import TensorProto
from helpers.checkpoints import FIXTURES, Expected, assert_same_value


@pytest.mark.parametrize("kind", ["tf1_saver_resource", "tf1_saver_ref", "partitioned_axis0"])
def test_meta_graph_round_trips_as_text_and_binary(kind, tmp_path):
    meta = fastckpt.read_meta_graph(FIXTURES / kind / "model.ckpt.meta")
    assert meta.saver_def.restore_op_name
    for as_text in (True, False):
        path = tmp_path / f"exported-{as_text}.meta"
        fastckpt.export_meta_graph(path, meta, as_text=as_text)
        again = fastckpt.read_meta_graph(path)
        assert again == meta


@pytest.mark.parametrize("kind", ["tf1_saver_resource", "tf1_saver_ref", "partitioned_axis1"])
def test_import_meta_graph_restores_the_graph_variables(kind):
    expected = Expected(kind)
    saver = fastckpt.import_meta_graph(FIXTURES / kind / "model.ckpt.meta")
    assert saver.meta_graph_def.graph_def.node
    restored = saver.restore(expected.path)
    assert sorted(restored) == sorted(expected.tensors)
    for name, value in restored.items():
        assert_same_value(value, expected.value(name), name)


def test_graph_files(tmp_path):
    graph = fastckpt.read_meta_graph(FIXTURES / "tf1_saver_ref" / "model.ckpt.meta").graph_def
    path = fastckpt.write_graph(graph, str(tmp_path / "logs"), "graph.pbtxt")
    assert fastckpt.read_graph(path) == graph
    path = fastckpt.write_graph(graph, str(tmp_path / "logs"), "graph.pb", as_text=False)
    assert fastckpt.read_graph(path) == graph
    (tmp_path / "junk.pb").write_bytes(b"\xff\xfe not a graph")
    with pytest.raises(errors.DataLossError):
        fastckpt.read_graph(tmp_path / "junk.pb")
    with pytest.raises(errors.NotFoundError):
        fastckpt.read_graph(tmp_path / "missing.pb")


def test_tensor_protos_round_trip():
    for value in [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([b"a", b""], dtype=object),
        np.int64(3),
        np.array([True, False]),
    ]:
        assert_same_value(tensor_proto_to_numpy(make_tensor_proto(value)), np.asarray(value))


def test_freeze_ref_variables_graph():
    expected = Expected("tf1_saver_ref")
    graph = fastckpt.read_meta_graph(FIXTURES / "tf1_saver_ref" / "model.ckpt.meta").graph_def
    variable = next(node.name for node in graph.node if node.op == "VariableV2")
    frozen = fastckpt.convert_variables_to_constants(graph, expected.path, [f"{variable}/read"])
    nodes = {node.name: node for node in frozen.node}
    assert set(nodes) == {variable, f"{variable}/read"}
    assert nodes[variable].op == "Const"
    assert_same_value(tensor_proto_to_numpy(nodes[variable].attr["value"].tensor), expected.value(variable))
    with pytest.raises(errors.InvalidArgumentError):
        fastckpt.convert_variables_to_constants(graph, expected.path, ["no_such_node"])
    kept = fastckpt.convert_variables_to_constants(
        graph, expected.path, [f"{variable}/read"], variable_names_blacklist=[variable]
    )
    assert {node.op for node in kept.node} == {"VariableV2", "Identity"}


@pytest.mark.parametrize("kind", ["savedmodel_tf1", "savedmodel_tf2"])
def test_load_tensorflow_saved_models(kind):
    expected = Expected(kind)
    model = fastckpt.saved_model.load(FIXTURES / kind, tags=["serve"])
    assert "serving_default" in model.signatures
    signature = model.signatures["serving_default"]
    assert signature.inputs and signature.outputs
    # The TF2 object graph is stored as a tensor, but is no variable.
    variables = sorted(name for name in expected.tensors if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert sorted(model.variables) == variables and len(model.variables) == len(variables)
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in model.variables
    for name in variables:
        assert_same_value(model.variables[name], expected.value(name), name)
    if kind == "savedmodel_tf2":
        assert model.variables.reader.object_graph() is not None
        assert model.object_graph is not None and model.object_graph.nodes
        assert set(model.object_paths().values()) == {"w", "b"}
    with pytest.raises(errors.NotFoundError):
        fastckpt.saved_model.load(FIXTURES / kind, tags=["train"])


def test_builder_round_trip(tmp_path):
    export_dir = str(tmp_path / "export")
    builder = fastckpt.saved_model.Builder(export_dir)
    signature = fastckpt.saved_model.build_signature_def(
        outputs={"w": fastckpt.saved_model.build_tensor_info("w/read:0", "float32", [2])}
    )
    builder.add_meta_graph_and_variables(
        {"w": np.array([1.0, 2.0], np.float32)}, ["serve"], {"serving_default": signature}
    )
    builder.add_meta_graph(["train"])
    builder.save()
    assert sorted(fastckpt.saved_model.tag_sets(export_dir)) == [["serve"], ["train"]]
    model = fastckpt.saved_model.load(export_dir, tags=["serve"])
    np.testing.assert_array_equal(model.variables["w"], [1.0, 2.0])
    assert model.signatures["serving_default"].outputs["w"].name == "w/read:0"
    assert fastckpt.load_checkpoint(export_dir).get_variable_to_shape_map() == {"w": [2]}
    with pytest.raises(errors.InvalidArgumentError):
        fastckpt.saved_model.Builder(export_dir)
    with pytest.raises(errors.InvalidArgumentError):
        fastckpt.saved_model.load(export_dir)


def test_tensor_proto_values_decode_with_tensorflows_rule():
    """The last value fills the elements left, none means zeros; TensorFlow's make_ndarray agrees."""
    from helpers.tensorflow_oracle import tensorflow_or_skip

    cases = [
        TensorProto(dtype=1, float_val=[1.5, 2.5]),
        TensorProto(dtype=9, int64_val=[]),
        TensorProto(dtype=7, string_val=[b"a", b"b\0"]),
        TensorProto(dtype=8, scomplex_val=[1.0, -2.0]),
        TensorProto(dtype=19, half_val=[15360]),
        TensorProto(dtype=10, bool_val=[True]),
        TensorProto(dtype=3, tensor_content=np.arange(6, dtype="<i4").tobytes()),
    ]
    for proto in cases:
        proto.tensor_shape.dim.add(size=2)
        proto.tensor_shape.dim.add(size=3)
    values = [tensor_proto_to_numpy(proto) for proto in cases]
    assert values[0].tolist() == [[1.5, 2.5, 2.5], [2.5, 2.5, 2.5]]
    assert values[1].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert values[2].tolist() == [[b"a", b"b\0", b"b\0"], [b"b\0", b"b\0", b"b\0"]]
    too_many = TensorProto(dtype=1, float_val=[1.0, 2.0, 3.0])
    too_many.tensor_shape.dim.add(size=2)
    with pytest.raises(errors.DataLossError):
        tensor_proto_to_numpy(too_many)
    tf = tensorflow_or_skip()
    for proto, value in zip(cases, values):
        expected = tf.make_ndarray(tf.compat.v1.make_tensor_proto(0).FromString(proto.SerializeToString()))
        assert_same_value(value, expected, str(proto.dtype))
