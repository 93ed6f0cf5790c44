"""Signatures and main ops for SavedModels, as ``tf.compat.v1.saved_model`` builds them."""

from __future__ import annotations

from typing import Optional, Sequence

from .. import errors, protos
from ..dtypes import as_dtype
from ..graphs.tensor_protos import make_tensor_proto

__all__ = ["build_main_op", "build_signature_def", "build_tensor_info"]


def build_main_op(control_inputs: Sequence[str] = (), name: str = "main_op") -> "protos.NodeDef":
    """A ``NoOp`` named ``name`` that runs the nodes ``control_inputs`` (as ``tf.group`` builds one), to pass
    as ``main_op`` to the Builder; with no inputs it does nothing, and gives a SavedModel with a main op.

    >>> build_main_op(["w/Assign"]).input
    ['^w/Assign']
    """
    node = protos.NodeDef(name=name, op="NoOp")
    node.input.extend("^" + control_input.lstrip("^") for control_input in control_inputs)
    return node


def build_tensor_info(tensor, dtype=None, shape: Optional[Sequence[Optional[int]]] = None) -> "protos.TensorInfo":
    """A TensorInfo for signatures, as ``tf.compat.v1.saved_model.build_tensor_info(tensor)`` builds it:
    ``tensor`` is the name of a graph tensor (``"w/read:0"``) with its ``dtype`` and ``shape`` (None for an
    unknown rank, None in it for an unknown size), or an object with ``name``, ``dtype`` and ``shape`` (a
    TensorFlow tensor).

    >>> build_tensor_info("w/read:0", "float32", [None, 3])
    name: "w/read:0"
    dtype: DT_FLOAT
    tensor_shape {
      dim {
        size: -1
      }
      dim {
        size: 3
      }
    }
    <BLANKLINE>
    """
    if not isinstance(tensor, str):
        name = tensor.name
        dtype = getattr(tensor.dtype, "as_datatype_enum", tensor.dtype)
        dims = getattr(tensor.shape, "rank", 0) is not None
        shape = [getattr(size, "value", size) for size in tensor.shape] if dims else None
    else:
        name = tensor
        if dtype is None:
            raise errors.InvalidArgumentError(f"build_tensor_info({tensor!r}) needs the tensor's dtype")
    info = protos.TensorInfo(name=name, dtype=as_dtype(dtype).as_datatype_enum)
    if shape is None:
        info.tensor_shape.unknown_rank = True
    else:
        info.tensor_shape.SetInParent()
        for size in shape:
            info.tensor_shape.dim.add(size=-1 if size is None else int(size))
    return info


def build_signature_def(
    inputs=None, outputs=None, method_name: Optional[str] = None, defaults=None
) -> "protos.SignatureDef":
    """A SignatureDef, as ``tf.compat.v1.saved_model.build_signature_def`` builds it: ``inputs`` and
    ``outputs`` are ``{key: TensorInfo}`` (``build_tensor_info``), ``method_name`` is for example
    ``PREDICT_METHOD_NAME``, and ``defaults`` gives inputs default values (``{key: value or TensorProto}``).

    >>> from fastckpt.saved_model import signature_constants as keys
    >>> signature = build_signature_def(
    ...     inputs={keys.PREDICT_INPUTS: build_tensor_info("x:0", "float32", [None, 3])},
    ...     outputs={keys.PREDICT_OUTPUTS: build_tensor_info("y:0", "float32", [None])},
    ...     method_name=keys.PREDICT_METHOD_NAME)
    >>> signature.method_name, sorted(signature.inputs), signature.outputs["outputs"].name
    ('tensorflow/serving/predict', ['inputs'], 'y:0')
    """
    signature = protos.SignatureDef()
    for key, info in (inputs or {}).items():
        signature.inputs[key].CopyFrom(protos.as_message(info, protos.TensorInfo))
    for key, info in (outputs or {}).items():
        signature.outputs[key].CopyFrom(protos.as_message(info, protos.TensorInfo))
    if method_name is not None:
        signature.method_name = method_name
    for key, value in (defaults or {}).items():
        is_proto = getattr(getattr(value, "DESCRIPTOR", None), "full_name", None) == "tensorflow.TensorProto"
        signature.defaults[key].CopyFrom(
            protos.as_message(value, protos.TensorProto) if is_proto else make_tensor_proto(value)
        )
    return signature
