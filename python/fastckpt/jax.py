"""TensorFlow checkpoints to and from JAX: ``load`` gives ``{name: jax.Array}``, ``save`` writes jax arrays.

jax is imported by this module only (``import fastckpt`` does not import it). Tensors are read in parallel with
checksums verified into numpy arrays of their own dtype (bfloat16, the float8 types, int4 and uint4 as ml_dtypes'
types, which jax shares) and put on the device with ``jax.device_put``.

>>> import fastckpt, fastckpt.jax
>>> tensors = fastckpt.jax.load(fastckpt.examples.model_path())
>>> {name: value.tolist() for name, value in tensors.items()}
{'v1': [1.0], 'v2': [2.0]}
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

import numpy as np

from . import _optional, errors, mapping
from .dtypes import as_dtype
from .reading.reader import CheckpointReader
from .saving.writer import CheckpointWriter

jax = _optional.require("jax", "fastckpt.jax")

__all__ = ["load", "save"]

PathLike = Union[str, "os.PathLike[str]"]

# The dtypes jax holds only with 64-bit types enabled (jax_enable_x64); without, device_put narrows them.
_X64 = {"int64", "uint64", "float64", "complex128"}


def _x64_enabled() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def load(
    path: PathLike,
    *,
    names: Union[None, str, Iterable[str]] = None,
    device: Any = None,
    storage_options: Optional[Mapping[str, str]] = None,
) -> Dict[str, jax.Array]:
    """``{name: jax.Array}`` of the numeric tensors of a checkpoint (any path ``fastckpt.CheckpointReader``
    opens), each of its own dtype, bit for bit: bfloat16, the float8 types, int4 and uint4 stay what they are;
    quantized types are their integers, as TensorFlow's reader returns them. String tensors are left out.

    jax holds int64, uint64, float64 and complex128 only with 64-bit types enabled
    (``jax.config.update("jax_enable_x64", True)``); without, ``jax.device_put`` narrows them to 32 bits, and a
    warning names the tensors that were narrowed.

    ``names``: which tensors, and under which names: ``None`` (every tensor, under its checkpoint key),
    ``"key"``, ``"object"`` or ``"full"`` (every tensor, under that name: see ``fastckpt.mapping.names_of``), or
    an iterable of checkpoint keys (those tensors, under their keys; a string tensor among them is an error).
    ``device``: where ``jax.device_put`` puts them (a ``jax.Device`` or a sharding; None: jax's default device).
    ``storage_options``: configuration of object stores (see README "Object stores").

    Raises:
        fastckpt.errors.NotFoundError: a key in ``names`` the checkpoint does not hold.
        fastckpt.errors.InvalidArgumentError: ``names`` is a string other than those three, or lists a string
            tensor.
    """
    reader = CheckpointReader(path, storage_options=storage_options)
    asked = names is not None and not isinstance(names, str)
    selected = mapping.select(reader, names)
    dtypes = reader.get_variable_to_dtype_map()
    wanted = {}
    for name, key in selected.items():
        dtype = dtypes[key]
        if dtype.is_string or dtype.name in ("resource", "variant"):
            if asked:
                raise errors.InvalidArgumentError(
                    f"cannot load {dtype.name} tensor {key!r} of {reader.path} into jax: jax has no "
                    f"{'strings' if dtype.is_string else dtype.name}",
                    reader.path,
                    key,
                )
            continue
        wanted[name] = key
    narrowed: List[str] = []
    if not _x64_enabled():
        narrowed = [f"{key!r} ({dtypes[key].name})" for key in wanted.values() if dtypes[key].numpy_dtype.name in _X64]
    values = reader.get_tensors(list(dict.fromkeys(wanted.values())))
    if narrowed:
        warnings.warn(
            f"jax_enable_x64 is off, so jax narrows {len(narrowed)} 64-bit tensor(s) of {reader.path} to 32 bits: "
            + ", ".join(narrowed)
            + '. jax.config.update("jax_enable_x64", True) before loading keeps them exactly.',
            stacklevel=2,
        )
    with warnings.catch_warnings():
        if narrowed:  # said above, once: not numpy's "overflow encountered in cast" of each narrowed tensor
            warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
        # Each numpy array is let go once on the device (where device_put copied it).
        return {name: jax.device_put(np.asarray(values.pop(key)), device) for name, key in wanted.items()}


def save(tensors: Mapping[str, Any], prefix: PathLike, *, storage_options: Optional[Mapping[str, str]] = None) -> str:
    """Writes ``{name: jax.Array}`` (numpy arrays and Python values too, as ``fastckpt.CheckpointWriter.add``
    takes them) as a TensorFlow checkpoint (V2: ``prefix.index`` and its data file, read by
    ``tf.train.load_checkpoint``) and returns ``prefix``. Dtypes are kept (bfloat16, the float8 types, int4 and
    uint4 among them); arrays on other devices, or sharded over several, are fetched whole first.
    ``storage_options``: configuration of object stores (see README "Object stores").

    >>> import os, tempfile, jax.numpy as jnp, fastckpt, fastckpt.jax
    >>> prefix = fastckpt.jax.save({"w": jnp.ones((2, 2), jnp.bfloat16)}, os.path.join(tempfile.mkdtemp(), "t"))
    >>> fastckpt.load_variable(prefix, "w").dtype
    dtype(bfloat16)

    Raises:
        fastckpt.errors.InvalidArgumentError: an array of a dtype checkpoints lack (the message names it).
    """
    prefix = os.fspath(prefix)
    arrays = {}
    for name, value in tensors.items():
        if isinstance(value, jax.Array):
            try:
                value = np.asarray(jax.device_get(value))
            except Exception as err:  # a deleted array, or one not fully addressable from this process
                raise errors.InvalidArgumentError(f"cannot save {name!r} to {prefix}: {err}", prefix, name) from None
            try:
                as_dtype(value.dtype)
            except (TypeError, ValueError):
                raise errors.InvalidArgumentError(
                    f"cannot save {name!r} to {prefix}: TensorFlow checkpoints have no {value.dtype}", prefix, name
                ) from None
        arrays[name] = value
    with CheckpointWriter(prefix, storage_options=storage_options) as writer:
        writer.add_tensors(arrays)
    return prefix
