"""Which checkpoint variable fills which variable of a Keras 3 model: the object graph tf.keras 2 saved (its
checkpoints and SavedModels name each variable by the path of objects that held it) walked beside the Keras 3
model's own structure.

The edges of that path are what Keras 2 tracked:

- ``layer_with_weights-N`` and ``layer-N``: the N-th layer with weights, and the N-th layer, of a Functional
  or Sequential model, in the order of ``model.layers``, which Keras 3 computes as Keras 2 did (by depth,
  then by traversal from the outputs). Each layer with weights has both names; one numbering is followed,
  the one that fills more of the model: by weights is immune to weightless layers added or left out, by
  position to layers that had weights in Keras 2 and have none in Keras 3 (a ``TextVectorization``, whose
  Keras 2 lookup table counted as one);
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
_WEIGHTED = re.compile(r"layer_with_weights-(\d+)\Z")
_LAYER = re.compile(r"layer-(\d+)\Z")


class Variable(NamedTuple):
    """A variable of the checkpoint's object graph: its node, checkpoint key, full name (``dense/kernel``) and
    object path (``layer_with_weights-0/kernel``; ``model/layer_with_weights-0/kernel`` in a
    ``tf.train.Checkpoint(model=...)``)."""

    node_id: int
    key: str
    full_name: str
    path: str


class Matching(NamedTuple):
    """The outcome of matching a model against a checkpoint's object graph."""

    pairs: List[tuple]  # [(Variable, Keras variable, the Keras layer that owns it)]
    unmatched: List[Variable]  # the model's weights in the checkpoint with no variable of the model to fill
    missing: List[Any]  # variables of the model that nothing in the checkpoint fills


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


def _numbered_layers(model, by_position: bool) -> list:
    """The layers of a model as Keras 2 numbered them: all (``layer-N``), or those with weights
    (``layer_with_weights-N``)."""
    layers = list(getattr(model, "layers", []))
    return layers if by_position else [layer for layer in layers if layer.weights]


def _child(owner, name: str, numbered_layers) -> Any:
    """What ``owner`` (a Keras 3 layer, or a list or dict attribute of one) holds under the Keras 2 edge
    ``name``: a layer, a list or dict, or None. ``numbered_layers()`` gives the layers a numbered edge
    (``layer-N`` or ``layer_with_weights-N``) counts."""
    if isinstance(owner, (list, tuple)):
        return owner[int(name)] if name.isdigit() and int(name) < len(owner) else None
    if isinstance(owner, dict):
        return owner.get(name)
    numbered = _LAYER.match(name) or _WEIGHTED.match(name)
    if numbered:
        layers = numbered_layers()
        index = int(numbered.group(1))
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
        if child.local_name not in _NOT_WEIGHTS
        and not _LAYER.match(child.local_name)
        and not _WEIGHTED.match(child.local_name)
        and 0 < child.node_id < len(graph.nodes)
    ]
    best = None
    for node_id, path in candidates:
        for by_position in (False, True):
            found = _match_from(graph, node_id, model, stored, path, by_position)
            if best is None or _better(found, best):
                best = found
    return best


def _better(found: Matching, than: Matching) -> bool:
    """Whether one matching fills more of the model than another, or as much with fewer variables left over."""
    return (len(found.pairs), -len(found.unmatched)) > (len(than.pairs), -len(than.unmatched))


def _match_from(graph, root: int, model, stored, model_path: str, by_position: bool) -> Matching:
    pairs: List[tuple] = []
    checkpoint: Dict[int, Variable] = {}
    visited = set()

    def walk(node_id: int, owner, path: str) -> None:
        if (node_id, id(owner)) in visited:
            return
        visited.add((node_id, id(owner)))
        is_layer = owner is not None and _is_layer(owner)
        own = _own_variables(owner) if is_layer else {}
        renamed = _RENAMED.get(type(owner).__name__, {})
        layers: list = []

        def numbered_layers() -> list:
            if not layers and is_layer:
                layers.extend(_numbered_layers(owner, by_position))
            return layers

        for child in graph.nodes[node_id].children:
            name = child.local_name
            skipped = _WEIGHTED if by_position else _LAYER
            # Node 0 is the checkpoint's root, which Keras 2 also lists as its own child "root".
            if name in _NOT_WEIGHTS or skipped.match(name) or not 0 < child.node_id < len(graph.nodes):
                continue
            child_path = f"{path}/{name}" if path else name
            variable = _variable_key(graph.nodes[child.node_id])
            if variable is not None:
                key, full_name = variable
                if key not in stored:
                    continue
                found = Variable(child.node_id, key, full_name, child_path)
                checkpoint.setdefault(child.node_id, found)
                target = own.get(renamed.get(name, name))
                if target is not None:
                    pairs.append((found, target, owner))
                continue
            walk(child.node_id, None if owner is None else _child(owner, name, numbered_layers), child_path)

    walk(root, model, model_path)
    # A variable reached twice (a layer shared by two models) fills its model variable once.
    unique, filled, used = [], set(), set()
    for found, target, owner in pairs:
        if id(target) not in filled:
            unique.append((found, target, owner))
            filled.add(id(target))
            used.add(found.node_id)
    unmatched = [found for node_id, found in checkpoint.items() if node_id not in used]
    missing = [weight for weight in model.weights if id(weight) not in filled]
    return Matching(unique, unmatched, missing)
