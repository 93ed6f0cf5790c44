"""``fastckpt.keras.load_weights``: the weights tf.keras 2 saved, into a Keras 3 model."""

from __future__ import annotations

import os
import warnings
from typing import List, Mapping, NoReturn, Optional, Union

import numpy as np

from .. import errors
from ..reading.reader import CheckpointReader
from .matching import Matching, match

PathLike = Union[str, "os.PathLike[str]"]
# How many mismatches an error lists before it says how many more there are.
_LISTED = 8


def load_weights(
    model,
    path: PathLike,
    *,
    skip_mismatch: bool = False,
    storage_options: Optional[Mapping[str, str]] = None,
) -> None:
    """Fills the built Keras 3 ``model`` (any backend) in place with the weights tf.keras 2 saved at ``path``.

    ``path`` is anything ``fastckpt.load_checkpoint`` opens, local or a URL: the prefix Keras 2's
    ``model.save_weights("w")`` (or ``ModelCheckpoint(save_weights_only=True)``) wrote, a
    ``tf.train.Checkpoint(model=model, optimizer=...)`` checkpoint (the model's part is found; the optimizer's
    state is left alone), a Keras 2 SavedModel directory (``model.save("dir")``), or a directory whose
    ``checkpoint`` state file names the latest.

    Variables are matched through the object graph the checkpoint keeps (``layer_with_weights-N``, nested
    models, sublayers such as ``Bidirectional``'s ``forward_layer/cell`` or ``MultiHeadAttention``'s
    ``_query_dense``, a subclassed model's attributes) against the model's own structure, never by Keras'
    generated layer names; Keras 2 weights Keras 3 renamed (``DepthwiseConv2D``'s ``depthwise_kernel``, now
    ``kernel``) are followed. Every pair is checked (shape and dtype) and every variable of the model must be filled before anything is
    assigned. Integers may change width where every value fits (Keras 2 counted ``Normalization``'s examples
    in int64, Keras 3 on jax in int32); floating dtypes must be the same.

    >>> import keras, fastckpt.keras                                     # doctest: +SKIP
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])  # doctest: +SKIP
    >>> fastckpt.keras.load_weights(model, "ckpt/w")                     # doctest: +SKIP

    Raises:
        fastckpt.errors.InvalidArgumentError: (also a ``ValueError``) the checkpoint does not fit the model: a
            variable of either without a partner, or a pair whose shapes or dtypes differ; the message names
            both sides. Nothing is assigned. With ``skip_mismatch=True`` the pairs that fit are assigned and
            the rest are listed in a warning.
        fastckpt.errors.NotACheckpointError, DataLossError: as ``load_checkpoint`` raises them.
    """
    reader = CheckpointReader(path, storage_options=storage_options)
    assign(model, reader, skip_mismatch=skip_mismatch)


def assign(model, reader: CheckpointReader, *, skip_mismatch: bool = False) -> int:
    """``load_weights`` from an open checkpoint; returns how many variables were assigned."""
    if not model.weights:
        raise errors.InvalidArgumentError(
            f"model {model.name!r} has no weights yet: build it first (call it on an input, or model.build(shape)) "
            f"before loading {reader.path}",
            reader.path,
        )
    graph = reader.object_graph()
    if graph is None:
        raise errors.InvalidArgumentError(
            f"{reader.path} has no object graph, so nothing says which layer each variable belongs to: it was "
            "written by a name-based saver (tf.compat.v1.train.Saver), not by Keras 2 or tf.train.Checkpoint. "
            "Read its tensors by name (fastckpt.load_checkpoint(path).get_tensors()) and assign them yourself",
            reader.path,
        )
    matching = match(graph, model, reader)
    stored = _Stored(reader)
    problems = _mismatches(stored, matching)
    if problems and not skip_mismatch:
        _refuse(reader, model, matching, problems)
    fitting = [(found, target) for found, target, _ in matching.pairs if stored.fits(found.key, target)]
    values = reader.get_tensors([found.key for found, _ in fitting])
    # Integers stored wider than the model keeps them (Keras 2's int64 counters, int32 in Keras 3 on jax)
    # are checked to fit before anything is assigned.
    overflowing = [
        (found, target)
        for found, target in fitting
        if values[found.key].dtype != np.dtype(target.dtype) and not _fits_in(values[found.key], target.dtype)
    ]
    if overflowing:
        problems += [
            f"{_describe(found)} holds values outside the {target.dtype} of model variable {target.path}"
            for found, target in overflowing
        ]
        if not skip_mismatch:
            _refuse(reader, model, matching, problems)
        fitting = [pair for pair in fitting if pair not in overflowing]
    for found, target in fitting:
        target.assign(values[found.key].astype(target.dtype, copy=False))
    assigned = {id(target) for _, target in fitting}
    _finalize(model, {id(owner): owner for _, target, owner in matching.pairs if id(target) in assigned}.values())
    if problems:
        warnings.warn(
            f"fastckpt.keras.load_weights: {len(problems)} mismatches between {reader.path} and model "
            f"{model.name!r} skipped:\n  " + "\n  ".join(problems),
            stacklevel=3,
        )
    return len(fitting)


def _finalize(model, layers) -> None:
    """Lets the filled ``layers`` compute what they derive from their variables (Normalization's broadcast mean
    and variance), as Keras 3 has them do after its own loads."""
    finalized = [layer for layer in layers if callable(getattr(layer, "finalize_state", None))]
    for layer in finalized:
        layer.finalize_state()
    if finalized:
        # Functions Keras traced before hold the layers' old state as constants: traced again on next use, as
        # Keras does after changing a layer (quantize).
        for function in ("train_function", "test_function", "predict_function"):
            if hasattr(model, function):
                setattr(model, function, None)


def _refuse(reader: CheckpointReader, model, matching: Matching, problems: List[str]) -> NoReturn:
    shown = "\n  ".join(problems[:_LISTED])
    more = f"\n  ... and {len(problems) - _LISTED} more" if len(problems) > _LISTED else ""
    first = matching.unmatched[0].key if matching.unmatched else None
    raise errors.InvalidArgumentError(
        f"the checkpoint {reader.path} does not fit model {model.name!r} ({len(problems)} mismatches; nothing "
        f"was assigned; skip_mismatch=True loads the rest):\n  {shown}{more}",
        reader.path,
        first,
    )


def _fits_in(value: np.ndarray, dtype) -> bool:
    """Whether every element of the integer array ``value`` is representable in the integer ``dtype``."""
    limits = np.iinfo(np.dtype(dtype))
    return value.size == 0 or (limits.min <= value.min() and value.max() <= limits.max)


def _describe(found) -> str:
    full = f" ({found.full_name})" if found.full_name and found.full_name != found.path else ""
    return f"checkpoint variable {found.path}{full}"


class _Stored:
    """The dtype and shape of each tensor of a checkpoint, looked up once."""

    def __init__(self, reader: CheckpointReader):
        self._dtypes = reader.get_variable_to_dtype_map()
        self._shapes = reader.get_variable_to_shape_map()

    def describe(self, key: str) -> str:
        return f"{self._dtypes[key].name} {self._shapes[key]}"

    def fits(self, key: str, target) -> bool:
        """Same shape, and the same dtype or integers both (the values are checked once read)."""
        if tuple(self._shapes[key]) != tuple(target.shape):
            return False
        stored, wanted = self._dtypes[key].name, str(target.dtype)
        return stored == wanted or (_is_integer(stored) and _is_integer(wanted))


def _is_integer(dtype_name: str) -> bool:
    return dtype_name.startswith(("int", "uint")) and dtype_name not in ("int4", "uint4")


def _mismatches(stored: _Stored, matching: Matching) -> List[str]:
    """One line per mismatch: a pair whose shapes or dtypes differ, a checkpoint variable of the model without a
    partner, a model variable without one."""
    lines = [
        f"{_describe(found)} is {stored.describe(found.key)}, model variable {target.path} is "
        f"{target.dtype} {list(target.shape)}"
        for found, target, _ in matching.pairs
        if not stored.fits(found.key, target)
    ]
    lines += [
        f"{_describe(found)} ({stored.describe(found.key)}) has no variable in the model"
        for found in matching.unmatched
    ]
    lines += [
        f"model variable {weight.path} ({weight.dtype} {list(weight.shape)}) has no value in the checkpoint"
        for weight in matching.missing
    ]
    return lines
