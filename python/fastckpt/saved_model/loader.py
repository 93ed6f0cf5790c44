"""TensorFlow 1's ``tf.compat.v1.saved_model.loader``: ``load(sess, tags, export_dir)``, in that order, for code
written for it. fastckpt runs no graph, so there is no session to restore into: ``sess`` is None, and the
values are read from what ``load`` returns.

>>> import os, tempfile, numpy as np, fastckpt
>>> export_dir = os.path.join(tempfile.mkdtemp(), "model")
>>> builder = fastckpt.saved_model.Builder(export_dir)
>>> builder.add_meta_graph_and_variables({"w": np.ones(2, np.float32)}, tags=["serve"])
>>> path = builder.save()
>>> meta = fastckpt.saved_model.loader.load(None, ["serve"], export_dir)
>>> meta.meta_info_def.tags, meta.saver_def.restore_op_name  # what TensorFlow 1's MetaGraphDef says
(['serve'], 'save/restore_all')
>>> meta.variables["w"]  # what its session would hold
array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence

from .. import errors
from .loading import LoadedSavedModel
from .loading import load as load_saved_model

__all__ = ["load"]


def load(
    sess: None,
    tags: Sequence[str],
    export_dir: "str | os.PathLike[str]",
    *,
    storage_options: Optional[Mapping[str, str]] = None,
) -> LoadedSavedModel:
    """Reads the meta graph of ``export_dir`` tagged ``tags`` and its variables, as
    ``tf.compat.v1.saved_model.loader.load(sess, tags, export_dir)`` loads them; ``sess`` must be None.

    TensorFlow returns the MetaGraphDef and restores the variables into ``sess``. This returns the
    ``LoadedSavedModel`` that ``fastckpt.saved_model.load(export_dir, tags)`` returns: the MetaGraphDef's fields
    read through it (``.signature_def``, ``.collection_def``, ``.graph_def``, ...; the message itself is
    ``.meta_graph_def``), and ``.variables`` holds what the session would (``{checkpoint key: numpy array}``).
    ``storage_options``: configuration of object stores (object_store's keys such as ``aws_endpoint``,
    ``aws_region``; see README "Object stores").

    Raises:
        fastckpt.errors.InvalidTypeError: ``sess`` is not None.
        fastckpt.errors.MissingFileError, fastckpt.errors.UnparsableFileError, fastckpt.errors.MetaGraphNotFoundError:
            as ``fastckpt.saved_model.load`` (``OSError``, ``OSError``, ``RuntimeError``, as TensorFlow raises).
    """
    if sess is not None:
        raise errors.InvalidTypeError(
            f"fastckpt restores into no session: pass None for sess (got {type(sess).__name__}) and read the "
            f"values of {export_dir} from the result's .variables"
        )
    return load_saved_model(export_dir, tags, storage_options=storage_options)
