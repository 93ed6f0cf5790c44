"""Which checkpoint variable fills which variable of a Keras 3 model: the object graph tf.keras 2 saved (its
checkpoints and SavedModels name each variable by the path of objects that held it) walked beside the Keras 3
model's own structure.

The edges of that path are what Keras 2 tracked:

- ``layer_with_weights-N``: the N-th layer with weights of a Functional or Sequential model, in the order of
  ``model.layers``, which Keras 3 computes as Keras 2 did (by depth, then by traversal from the outputs);
  ``layer-N`` names every layer (those with weights a second time) and is not followed;
- an attribute name: a sublayer (``forward_layer``, ``cell``, ``_query_dense``, a subclassed model's
  ``self.encoder``), an item of a list or dict attribute (``blocks/0``), or a variable by its weight name
  (``kernel``, ``moving_mean``), matched against the name of one of the Keras 3 layer's own variables;
- what Keras 2 added to checkpoints beside the model (``optimizer``, ``save_counter``) and to SavedModels for
  serving (``keras_api``, ``variables``, ``signatures``, ...): never weights, not followed.

Keras' auto-generated layer names (``dense_3``) play no part: they rarely agree between two programs.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, NamedTuple, Optional

from .. import protos

# Children of Keras 2 objects that hold no weights of the model (optimizer state, a SavedModel's serving
# functions and duplicate lists of the variables, compile metrics).
_NOT_WEIGHTS = {
    "optimizer",
    "save_counter",
    "keras_api",
    "variables",
    "trainable_variables",
    "non_trainable_variables",
    "regularization_losses",
    "signatures",
    "_default_save_signature",
    "__call__",
    "call_and_return_all_conditional_losses",
    "call_and_return_conditional_losses",
    "train_function",
    "train_tf_function",
    "test_function",
    "predict_function",
}
# Weights Keras 3 names otherwise than Keras 2 did: {Keras 3 class: {Keras 2 name: Keras 3 name}}.
_RENAMED = {
    "DepthwiseConv1D": {"depthwise_kernel": "kernel"},
    "DepthwiseConv2D": {"depthwise_kernel": "kernel"},
}
# State Keras 2 kept that Keras 3 layers do not have, and that nothing computes from: the number of examples
# a Normalization layer adapted to (Keras 3 keeps only the mean and variance).
_DROPPED = {"Normalization": {"count"}}
_WEIGHTED = re.compile(r"layer_with_weights-(\d+)\Z")
_LAYER = re.compile(r"layer-(\d+)\Z")


class Variable(NamedTuple):
    """A variable of the checkpoint's object graph: its node, checkpoint key, full name (``dense/kernel``) and
    object path from the model (``layer_with_weights-0/kernel``)."""

    node_id: int
    key: str
    full_name: str
    path: str


class Matching(NamedTuple):
    """The outcome of matching a model against a checkpoint's object graph."""

    pairs: List[tuple]  # [(Variable, Keras variable)]
    unmatched: List[Variable]  # the model's weights in the checkpoint with no variable of the model to fill
    missing: List[Any]  # variables of the model that nothing in the checkpoint fills
    model_path: str  # the object path of the model in the checkpoint ("" for the root, "model", ...)


def _variable_key(node: "protos.TrackableObjectGraph.TrackableObject") -> Optional[tuple]:
    for attribute in node.attributes:
        if attribute.name == "VARIABLE_VALUE":
            return attribute.checkpoint_key, attribute.full_name
    return None


def _own_variables(layer) -> Dict[str, Any]:
    """``{weight name: variable}`` of the variables a Keras 3 layer created itself (not its sublayers')."""
    own = list(getattr(layer, "_trainable_variables", [])) + list(getattr(layer, "_non_trainable_variables", []))
    return {variable.name: variable for variable in own}


def _is_layer(value) -> bool:
    import keras

    return isinstance(value, keras.layers.Layer)


def _child(owner, name: str):
    """What ``owner`` (a Keras 3 layer, or a list or dict attribute of one) holds under the Keras 2 edge
    ``name``: a layer, a list or dict, or None."""
    if isinstance(owner, (list, tuple)):
        return owner[int(name)] if name.isdigit() and int(name) < len(owner) else None
    if isinstance(owner, dict):
        return owner.get(name)
    weighted = _WEIGHTED.match(name)
    if weighted:
        layers = [layer for layer in getattr(owner, "layers", []) if layer.weights]
        index = int(weighted.group(1))
        return layers[index] if index < len(layers) else None
    try:
        value = getattr(owner, name, None)
    except Exception:  # noqa: BLE001 - a property that cannot be computed holds no layer
        return None
    return value if _is_layer(value) or isinstance(value, (list, tuple, dict)) else None


def match(graph: "protos.TrackableObjectGraph", model, stored) -> Matching:
    """Matches ``model`` (a built Keras 3 model) against the object ``graph`` of a checkpoint whose keys are
    ``stored``: the model's node is the root (``save_weights``, SavedModels) or the child of the root whose
    variables match most (``tf.train.Checkpoint(model=...)``)."""
    candidates = [(0, "")] + [
        (child.node_id, child.local_name)
        for child in graph.nodes[0].children
        if child.local_name not in _NOT_WEIGHTS and child.node_id < len(graph.nodes)
    ]
    best = None
    for node_id, path in candidates:
        found = _match_from(graph, node_id, model, stored, path)
        if best is None or len(found.pairs) > len(best.pairs):
            best = found
    return best


def _match_from(graph, root: int, model, stored, model_path: str) -> Matching:
    pairs: List[tuple] = []
    checkpoint: Dict[int, Variable] = {}
    visited = set()

    def walk(node_id: int, owner, path: str) -> None:
        if (node_id, id(owner)) in visited:
            return
        visited.add((node_id, id(owner)))
        own = _own_variables(owner) if owner is not None and _is_layer(owner) else {}
        renamed = _RENAMED.get(type(owner).__name__, {})
        dropped = _DROPPED.get(type(owner).__name__, set())
        for child in graph.nodes[node_id].children:
            name = child.local_name
            if name in _NOT_WEIGHTS or _LAYER.match(name) or child.node_id >= len(graph.nodes):
                continue
            child_path = f"{path}/{name}" if path else name
            variable = _variable_key(graph.nodes[child.node_id])
            if variable is not None:
                key, full_name = variable
                if key not in stored or name in dropped:
                    continue
                found = Variable(child.node_id, key, full_name, child_path)
                checkpoint.setdefault(child.node_id, found)
                target = own.get(renamed.get(name, name))
                if target is not None:
                    pairs.append((found, target))
                continue
            walk(child.node_id, None if owner is None else _child(owner, name), child_path)

    walk(root, model, "")
    # A variable reached twice (a layer shared by two models) fills its model variable once.
    unique, filled, used = [], set(), set()
    for found, target in pairs:
        if id(target) not in filled:
            unique.append((found, target))
            filled.add(id(target))
            used.add(found.node_id)
    unmatched = [found for node_id, found in checkpoint.items() if node_id not in used]
    missing = [weight for weight in model.weights if id(weight) not in filled]
    return Matching(unique, unmatched, missing, model_path)
