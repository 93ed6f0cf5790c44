"""``import_meta_graph``: a Saver for the variables of a meta graph, as ``tf.compat.v1.train.import_meta_graph``
returns one."""

from __future__ import annotations

from typing import Mapping, Optional

from .. import _paths
from ..graphs.meta_graph import import_scoped_meta_graph, prepend_name_scope
from ..graphs.saver_graph import restored_variables
from .saver import Saver

__all__ = ["import_meta_graph"]


def import_meta_graph(
    meta_graph_or_file,
    clear_devices: bool = False,
    import_scope: Optional[str] = None,
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> Optional[Saver]:
    """A Saver for the variables of a meta graph (a ``.meta`` file, or a MetaGraphDef), as
    ``tf.compat.v1.train.import_meta_graph`` returns: ``import_meta_graph("model.ckpt.meta").restore("model.ckpt")``
    returns ``{variable_name: value}``. The MetaGraphDef as TensorFlow's graph then holds it is attached as
    ``.meta_graph_def``; None is returned when the graph has no variables, as TensorFlow does.

    With ``import_scope``, the graph goes under that name scope: node names, inputs and colocation groups,
    and the names in the SaverDef and the collections (variables, savers, node lists, strings), exactly as
    TensorFlow imports it. The Saver restores each variable from the checkpoint under its name there, as
    TensorFlow's does: ``v1`` in the checkpoint is restored as ``tower/v1``. ``clear_devices`` empties the
    nodes' devices. ``storage_options`` (configuration of object stores, object_store's keys such as
    ``aws_endpoint``, ``aws_region``; see README "Object stores") reads the file and goes to the Saver.

    >>> import fastckpt
    >>> from fastckpt.graphs.saver_graph import saver_meta_graph
    >>> meta = saver_meta_graph({"v1": (fastckpt.float32, [1])}, fastckpt.Saver().saver_def)
    >>> saver = fastckpt.import_meta_graph(meta, import_scope="tower")
    >>> saver.meta_graph_def.saver_def.restore_op_name
    'tower/save/restore_all'
    >>> [node.input for node in saver.meta_graph_def.graph_def.node if node.name == "tower/v1/read"]
    [['tower/v1']]

    Raises:
        fastckpt.errors.NotFoundError, fastckpt.errors.DataLossError: the file is missing or no MetaGraphDef.
        fastckpt.errors.UnimplementedError: ``import_scope`` with a queue runner or control flow collection.
    """
    stores = _paths.stores(storage_options)
    meta, imported = import_scoped_meta_graph(meta_graph_or_file, import_scope, clear_devices, storage_options=stores)
    variables = restored_variables(meta)
    if not variables:
        return None
    names = {checkpoint_name: prepend_name_scope(name, import_scope) for checkpoint_name, name in variables.items()}
    settings = meta.saver_def
    saver = Saver(
        names,
        max_to_keep=settings.max_to_keep if meta.HasField("saver_def") else 5,
        keep_checkpoint_every_n_hours=settings.keep_checkpoint_every_n_hours or 10000.0,
        sharded=settings.sharded,
        storage_options=stores,
    )
    saver.meta_graph_def = imported
    return saver
