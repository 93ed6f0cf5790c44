"""The object graph of TF2 checkpoints (``tf.train.Checkpoint``), which names what each checkpoint key holds:
``model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`` is the variable at the object path
``model/layer_with_weights-0/kernel``.
"""

from __future__ import annotations

from typing import Container, Dict

from .. import protos

__all__ = ["OBJECT_GRAPH_KEY", "full_names", "object_paths"]

# The key under which TF2 checkpoints store their TrackableObjectGraph; it is no variable.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def object_paths(graph: "protos.TrackableObjectGraph", stored: Container[str]) -> Dict[str, str]:
    """``{checkpoint_key: object path}`` of the keys of ``graph`` that are in ``stored`` (a variable saved
    uninitialized is in the object graph without a value): a variable's value under its path, an optimizer
    slot ``.../.OPTIMIZER_SLOT/optimizer/m`` under ``<variable path>/optimizer/m``, other attributes under
    ``<path>/<attribute name>``."""
    paths = {0: ""}
    queue = [0]
    while queue:
        node_id = queue.pop(0)
        for child in graph.nodes[node_id].children:
            if child.node_id not in paths and child.node_id < len(graph.nodes):
                parent = paths[node_id]
                paths[child.node_id] = f"{parent}/{child.local_name}" if parent else child.local_name
                queue.append(child.node_id)
    for node_id in list(paths):
        for slot in graph.nodes[node_id].slot_variables:
            if slot.original_variable_node_id in paths and slot.slot_variable_node_id < len(graph.nodes):
                paths.setdefault(
                    slot.slot_variable_node_id,
                    f"{paths[slot.original_variable_node_id]}/{paths[node_id]}/{slot.slot_name}",
                )
    keys = {}
    for node_id, path in paths.items():
        for attribute in graph.nodes[node_id].attributes:
            if attribute.checkpoint_key in stored:
                keys[attribute.checkpoint_key] = (
                    path if attribute.name == "VARIABLE_VALUE" else f"{path}/{attribute.name}"
                )
    return keys


def full_names(graph: "protos.TrackableObjectGraph", stored: Container[str]) -> Dict[str, str]:
    """``{checkpoint_key: full name}`` of the keys of ``graph`` that are in ``stored`` and have a full name: the
    name the variable had in TensorFlow (``sequential/dense/kernel``, what ``tf.compat.v1.train.Saver`` would
    have saved it as), which TF2 checkpoints keep only in the object graph (the ``full_name`` of each
    ``SerializedTensor``). Keys saved without one (a name-less attribute) are left out."""
    names = {}
    for node in graph.nodes:
        for attribute in node.attributes:
            if attribute.full_name and attribute.checkpoint_key in stored:
                names.setdefault(attribute.checkpoint_key, attribute.full_name)
    return names
