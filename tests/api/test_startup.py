"""What ``import fastckpt`` loads: no ml_dtypes (slower to import than numpy) until a tensor needs it, and no
machine learning framework at all. Each check runs in a fresh interpreter, whose modules are its own."""

import fastckpt
import ml_dtypes
import numpy as np
import pytest
from helpers.checkpoints import FIXTURES
from helpers.processes import run_python

HEAVY = ["ml_dtypes", "torch", "jax", "tensorflow", "keras", "tf_keras"]
# Not imported either: protobuf (imported on first use of a message class or a text format), and
# importlib.metadata (the version comes from the extension).
ON_FIRST_USE = ["google.protobuf", "importlib.metadata"]


def loaded(modules) -> str:
    return f"json.dumps([m for m in {list(modules)!r} if m in sys.modules])"


def test_import_loads_no_ml_dtypes_and_no_framework():
    assert run_python(f"import json, sys, fastckpt; print({loaded(HEAVY + ON_FIRST_USE)})") == []


def test_command_line_loads_no_ml_dtypes():
    # Listing a checkpoint of every dtype (bfloat16 and float8 among them) needs their sizes, not their types.
    code = f"""
import contextlib, io, json, sys
from fastckpt import cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    status = cli.main(["inspect", {str(FIXTURES / "all_dtypes" / "ckpt")!r}])
assert status == 0 and "bfloat16" in out.getvalue(), out.getvalue()
print({loaded(HEAVY)})
"""
    assert run_python(code) == []


@pytest.fixture(scope="module")
def ml_checkpoint(tmp_path_factory):
    """A checkpoint of bfloat16 and float8 tensors, written from ml_dtypes arrays."""
    prefix = str(tmp_path_factory.mktemp("ml_dtypes") / "model.ckpt")
    values = {
        "bf16": np.array([[1.5, -2.0, 3.25], [0.0, 1e30, -7.0]], ml_dtypes.bfloat16),
        "f8": np.array([0.5, -1.0, 448.0], ml_dtypes.float8_e4m3fn),
        "i4": np.array([-8, 7, 0], ml_dtypes.int4),
        "plain": np.arange(4, dtype=np.float32),
    }
    with fastckpt.CheckpointWriter(prefix) as writer:
        for name, value in values.items():
            writer.add(name, value)
    return prefix, values


@pytest.mark.parametrize("how", ["get_tensor", "get_tensors", "get_tensors_named", "view", "get_slice"])
def test_bfloat16_reads_after_a_lazy_import(ml_checkpoint, how):
    prefix, values = ml_checkpoint
    read = {
        "get_tensor": "{n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}",
        "get_tensors": "reader.get_tensors()",
        "get_tensors_named": "reader.get_tensors(['bf16', 'f8', 'i4', 'plain'])",
        "view": "reader.views()",
        "get_slice": "{n: reader.get_slice(n)[...] for n in reader.get_variable_to_shape_map()}",
    }[how]
    code = f"""
import json, sys
import fastckpt
assert "ml_dtypes" not in sys.modules
reader = fastckpt.load_checkpoint({prefix!r})
dtypes = {{n: d.name for n, d in reader.get_variable_to_dtype_map().items()}}
assert "ml_dtypes" not in sys.modules, "listing dtypes imported ml_dtypes"
values = {read}
print(json.dumps({{
    "dtypes": dtypes,
    "numpy": {{n: str(v.dtype) for n, v in values.items()}},
    "values": {{n: v.astype("float64").tolist() for n, v in values.items()}},
    "loaded": "ml_dtypes" in sys.modules,
}}))
"""
    result = run_python(code)
    assert result["dtypes"] == {"bf16": "bfloat16", "f8": "float8_e4m3fn", "i4": "int4", "plain": "float32"}
    assert result["numpy"] == {"bf16": "bfloat16", "f8": "float8_e4m3fn", "i4": "int4", "plain": "float32"}
    assert result["values"] == {n: v.astype(np.float64).tolist() for n, v in values.items()}
    assert result["loaded"]


def test_dtype_table_resolves_ml_dtypes_on_first_use():
    code = """
import json, sys
import numpy as np
import fastckpt
d = fastckpt.dtypes
out = {"sizes": [d.bfloat16.size, d.float8_e5m2.size, d.int4.size], "before": "ml_dtypes" in sys.modules}
out["as_numpy_dtype"] = d.bfloat16.as_numpy_dtype.__module__ + "." + d.bfloat16.as_numpy_dtype.__name__
out["numpy_dtype"] = str(d.as_dtype("float8_e4m3fn").numpy_dtype)
import ml_dtypes
out["as_dtype"] = [d.as_dtype(ml_dtypes.bfloat16).name, d.as_dtype(np.dtype(ml_dtypes.uint4)).name]
out["equal"] = d.bfloat16 == ml_dtypes.bfloat16
print(json.dumps(out))
"""
    assert run_python(code) == {
        "sizes": [2, 1, 1],
        "before": False,
        "as_numpy_dtype": "ml_dtypes.bfloat16",
        "numpy_dtype": "float8_e4m3fn",
        "as_dtype": ["bfloat16", "uint4"],
        "equal": True,
    }


def test_as_dtype_of_ml_dtypes_imported_first():
    # ml_dtypes imported by the user before fastckpt, and no fastckpt DType used before as_dtype.
    code = """
import json
import ml_dtypes
import fastckpt
print(json.dumps([fastckpt.as_dtype(ml_dtypes.float8_e4m3b11fnuz).name, fastckpt.as_dtype("bfloat16").name]))
"""
    assert run_python(code) == ["float8_e4m3b11fnuz", "bfloat16"]


def test_unknown_numpy_dtype_still_fails():
    with pytest.raises(ValueError, match="no TensorFlow dtype"):
        fastckpt.as_dtype(np.dtype("datetime64[s]"))


def test_protos_made_on_first_use_are_the_classes_of_one_pool():
    from fastckpt import protos

    assert sorted(set(protos.__all__) - set(dir(protos))) == []
    assert protos.DataType.Name(14) == "DT_BFLOAT16"
    meta = protos.MetaGraphDef()
    meta.graph_def.CopyFrom(protos.GraphDef(node=[protos.NodeDef(name="a")]))
    assert protos.MetaGraphDef.DESCRIPTOR.file.pool is protos.POOL is protos.GraphDef.DESCRIPTOR.file.pool
    assert protos.message_class("tensorflow.SaverDef") is protos.SaverDef
    with pytest.raises(AttributeError):
        _ = protos.NoSuchMessage


def test_version():
    assert fastckpt.__version__ and fastckpt.__version__ != "0+unknown"
    with pytest.raises(AttributeError):
        _ = fastckpt.no_such_attribute


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_a_framework_module_without_its_framework_says_what_to_install(framework):
    code = f"""
import json, sys
sys.modules[{framework!r}] = None  # as if not installed: importing it raises ImportError
import fastckpt
try:
    import fastckpt.{framework}
except ImportError as error:
    print(json.dumps([type(error).__name__, isinstance(error, fastckpt.errors.OpError), str(error)]))
"""
    name, is_fastckpt_error, message = run_python(code)
    assert name == "MissingDependencyError" and is_fastckpt_error
    assert message.startswith(f"fastckpt.{framework} needs {framework}") and f"'fastckpt[{framework}]'" in message
