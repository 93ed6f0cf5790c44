"""The Keras 2 config a SavedModel holds, as Keras 3 builds a model from it.

tf.keras 2 kept each object's class name and config as JSON: in ``keras_metadata.pb`` (TensorFlow 2.5 and
later), before that in the ``SavedUserObject.metadata`` of ``saved_model.pb``. Keras 3 still reads Keras 2
configs of layers (``batch_input_shape``, inbound nodes as lists) through its legacy deserializer; what it does
not take is translated here:

- tuples and shapes, which Keras 2 wrote as ``{"class_name": "__tuple__", "items": [...]}``;
- arguments Keras 3 dropped, where they hold Keras 2's default or only described the build: ``groups`` of
  ``DepthwiseConv2D``, ``query_shape``/``key_shape``/``value_shape`` and ``softmax_robust_masking=False`` of
  ``MultiHeadAttention``, ``time_major=False`` of recurrent layers;
- layers nested in wrappers (``Bidirectional``, ``TimeDistributed``), which Keras 3 deserializes in its own
  format: they get the ``module`` it looks them up by;
- a nested ``Sequential`` built on an ``Input``: Keras 2 counted the node its input made as node 0 of the
  model, Keras 3 makes no such node, so references to its nodes shift down by one;
- calls that took tensors as keyword arguments (``MultiHeadAttention()(query, value=v)``), whose tensors Keras 3
  resolves only in its own format of inbound nodes;
- the input shape Keras 2 repeated on layers after a model's ``InputLayer`` (Keras 3 warns of it).

Any other argument Keras 3 does not know makes Keras 3 raise, and that error is passed on: nothing is dropped
silently.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Dict, Iterator

# Arguments Keras 3 does not take, with the value they may hold to be dropped (_ANY: any value, as they
# only recorded shapes the layer was built with).
_ANY = object()
_DROPPED_ARGUMENTS: Dict[str, Dict[str, Any]] = {
    "DepthwiseConv1D": {"groups": 1},
    "DepthwiseConv2D": {"groups": 1},
    "MultiHeadAttention": {
        "query_shape": _ANY,
        "key_shape": _ANY,
        "value_shape": _ANY,
        "softmax_robust_masking": False,
    },
    "LSTM": {"time_major": False},
    "GRU": {"time_major": False},
    "SimpleRNN": {"time_major": False},
}
_WRAPPERS = {"Bidirectional": ("layer", "backward_layer"), "TimeDistributed": ("layer",)}
_MODELS = {"Functional", "Model", "Sequential"}


def decode(metadata: str) -> Dict[str, Any]:
    """The JSON of a Keras 2 object's metadata, with its encoded tuples and shapes as tuples."""

    def hook(value: Dict[str, Any]):
        if value.get("class_name") in ("__tuple__", "TensorShape") and "items" in value:
            return None if value["items"] is None else tuple(value["items"])
        if value.get("class_name") == "__ellipsis__":
            return Ellipsis
        return value

    return json.loads(metadata, object_hook=hook)


def translate(layer: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of the Keras 2 ``{"class_name": ..., "config": ...}`` of a model or layer, as Keras 3 takes it."""
    layer = copy.deepcopy(layer)
    _translate(layer)
    return layer


def _translate(layer: Dict[str, Any]) -> None:
    class_name, config = layer.get("class_name"), layer.get("config")
    if not isinstance(config, dict):
        return
    layer.pop("shared_object_id", None)
    for name, default in _DROPPED_ARGUMENTS.get(class_name, {}).items():
        if name in config and (default is _ANY or config[name] == default):
            del config[name]
    for name in _WRAPPERS.get(class_name, ()):
        nested = config.get(name)
        if isinstance(nested, dict):
            _translate(nested)
            nested.setdefault("module", "keras.layers")
            nested.setdefault("registered_name", None)
    if class_name in _MODELS and isinstance(config.get("layers"), list):
        for nested in config["layers"]:
            _translate(nested)
        _translate_graph(config)


def _built_on_input(layer: Dict[str, Any]) -> bool:
    """Whether a Keras 2 layer config is a Sequential whose first layer is an InputLayer."""
    config = layer.get("config")
    layers = config.get("layers") if isinstance(config, dict) else None
    return layer.get("class_name") == "Sequential" and bool(layers) and layers[0].get("class_name") == "InputLayer"


def _is_reference(value, names) -> bool:
    """Whether ``value`` is a Keras 2 reference to a tensor: ``[layer name, node index, tensor index]`` (and,
    in an inbound node, the call's keyword arguments)."""
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and value[0] in names
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    )


def _references(value, names) -> Iterator[list]:
    """Every tensor reference in ``value`` (an inbound node, a call's keyword arguments, a list of outputs)."""
    if _is_reference(value, names):
        yield value
        if len(value) == 4:
            yield from _references(value[3], names)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item, names)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item, names)


def _translate_graph(config: Dict[str, Any]) -> None:
    """The layers' connections in a Functional or Sequential config, as Keras 3 reads them."""
    layers = config["layers"]
    names = {layer.get("name") for layer in layers}
    if layers and layers[0].get("class_name") == "InputLayer":
        # The input layer gives the shape; Keras 3 warns of shapes given to the other layers.
        for layer in layers[1:]:
            if isinstance(layer.get("config"), dict):
                layer["config"].pop("batch_input_shape", None)
    shifted = {layer.get("name") for layer in layers if _built_on_input(layer)}
    for layer in layers:
        nodes = layer.get("inbound_nodes", [])
        for reference in _references(nodes, names):
            if reference[0] in shifted and reference[1] > 0:
                reference[1] -= 1
        layer["inbound_nodes"] = [_with_tensor_arguments(node, names) for node in nodes]
    for key in ("input_layers", "output_layers"):
        for reference in _references(config.get(key), names):
            if reference[0] in shifted and reference[1] > 0:
                reference[1] -= 1


def _with_tensor_arguments(node, names):
    """A Keras 2 inbound node whose call took tensors as keyword arguments (``attention(query, value=v)``) in
    Keras 3's own format, ``{"args": ..., "kwargs": ...}``, whose tensors Keras 3 resolves (it passes those of
    Keras 2's format on as lists). Other nodes as they are."""
    if not isinstance(node, list) or not node or not all(_is_reference(item, names) for item in node):
        return node
    keywords = node[-1][3] if len(node[-1]) == 4 else {}
    if not any(True for _ in _references(keywords, names)):
        return node

    def tensors(value):
        if _is_reference(value, names):
            history = value[:3]
            return {"class_name": "__keras_tensor__", "config": {"shape": [], "dtype": None, "keras_history": history}}
        if isinstance(value, list):
            return [tensors(item) for item in value]
        if isinstance(value, dict):
            return {key: tensors(item) for key, item in value.items()}
        return value

    inputs = [tensors(item[:3]) for item in node]
    return {"args": [inputs[0] if len(inputs) == 1 else inputs], "kwargs": tensors(keywords)}
