"""TensorFlow checkpoints to and from PyTorch: ``load`` (as ``safetensors.torch.load_file``), ``load_into`` (an
``nn.Module`` or a state dict, filled in place, renamed and transposed on the way) and ``save``.

torch is imported by this module only (``import fastckpt`` does not import it). Tensors are read straight into
the memory of the torch tensors returned or filled, in parallel, with checksums verified: no second copy; or,
with ``load(..., mmap=True)``, mapped copy-on-write and read only when used.

>>> import fastckpt, fastckpt.torch
>>> tensors = fastckpt.torch.load(fastckpt.examples.model_path())
>>> tensors
{'v1': tensor([1.]), 'v2': tensor([2.])}

Filling a module from a TF1 checkpoint of a Keras-style ``dense`` layer (``kernel`` is ``[in, out]``, a
``Linear``'s ``weight`` is ``[out, in]``):

>>> import os, tempfile, torch
>>> prefix = os.path.join(tempfile.mkdtemp(), "model.ckpt")
>>> _ = fastckpt.torch.save({"dense/kernel": torch.ones(3, 2), "dense/bias": torch.zeros(2)}, prefix)
>>> layer = torch.nn.Linear(3, 2)
>>> fastckpt.torch.load_into(layer, prefix, rename=[(r"^dense/", ""), ("kernel", "weight")], transpose=["weight"])
IncompatibleKeys(missing_keys=[], unexpected_keys=[])
>>> layer.weight.shape, bool((layer.weight == 1).all())
(torch.Size([2, 3]), True)
"""

from __future__ import annotations

import mmap as memory_map
import os
import warnings
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Set, Tuple, Union

import numpy as np

from . import _optional, errors, mapping
from .reading.batching import batches
from .reading.reader import CheckpointReader
from .saving.writer import CheckpointWriter
from .torch_arrays import bytes_of, numpy_view, tensor_to_numpy, torch_dtype

torch = _optional.require("torch", "fastckpt.torch")

__all__ = ["IncompatibleKeys", "load", "load_into", "numpy_view", "save", "tensor_to_numpy", "torch_dtype"]

PathLike = Union[str, "os.PathLike[str]"]

# Temporaries (reads into tensors that cannot be read into directly) are made and copied this much at a time.
_BATCH_BYTES = 256 << 20


class IncompatibleKeys(NamedTuple):
    """What ``load_into`` did not match, as ``torch.nn.Module.load_state_dict`` reports it: ``missing_keys``,
    the target's tensors the checkpoint did not fill, and ``unexpected_keys``, the checkpoint's (planned) names
    the target has no tensor for."""

    missing_keys: List[str]
    unexpected_keys: List[str]


def _device(device) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


def _buffer(shape, dtype: torch.dtype, for_device: torch.device) -> torch.Tensor:
    """A CPU tensor to read into: pinned when it is to be copied to a CUDA device (a faster, asynchronous copy)."""
    pin = for_device.type == "cuda" and torch.cuda.is_available()
    return torch.empty(tuple(shape), dtype=dtype, pin_memory=pin)


def load(
    path: PathLike,
    *,
    names: Union[None, str, Iterable[str]] = None,
    device: Union[str, "torch.device"] = "cpu",
    mmap: bool = False,
    storage_options: Optional[Mapping[str, str]] = None,
) -> Dict[str, torch.Tensor]:
    """``{name: torch.Tensor}`` of the numeric tensors of a checkpoint (any path ``fastckpt.CheckpointReader``
    opens), as ``safetensors.torch.load_file`` returns a file's.

    Each tensor keeps its dtype, bit for bit (bfloat16 stays ``torch.bfloat16``, never through float32; the
    float8 types and uint16/32/64 where the installed torch has them; quantized types as their integers, as
    TensorFlow's reader returns them), and is read straight into the memory of the tensor returned, all of them
    in parallel with checksums verified. String tensors are left out; a tensor of a dtype torch lacks (int4,
    uint4, float8_e4m3b11fnuz) is left out with a warning naming it.

    ``names``: which tensors, and under which names:

    * ``None`` (the default): every tensor, under its checkpoint key;
    * ``"key"``, ``"object"`` or ``"full"``: every tensor, under its checkpoint key, its object path (TF2) or its
      full name (TF2: ``sequential/dense/kernel``), as ``fastckpt.mapping.names_of`` names them;
    * an iterable of checkpoint keys: those tensors (a string tensor or a dtype torch lacks among them is an
      error), under their keys.

    ``device``: where the tensors go; other than the CPU, each is read into (pinned, for CUDA) CPU memory and
    copied there (asynchronously from pinned memory). ``storage_options``: configuration of object stores (see
    README "Object stores").

    ``mmap=True``: the tensors are views of a copy-on-write map of the data files, as
    ``safetensors.torch.load_file``'s are of its file: nothing is read until a tensor is used, and checksums are
    not verified (as with ``CheckpointReader.view``); writing to a tensor changes the process's copy of its
    pages, never the file. Tensors that cannot be used as stored (V1 files, partitioned tensors, the other byte
    order, an offset in the file that is not a multiple of the dtype's size, object stores) are read as
    without it. With another ``device``, each mapped tensor is copied there.

    >>> import fastckpt, fastckpt.torch
    >>> fastckpt.torch.load(fastckpt.examples.model_path(), mmap=True)["v2"]
    tensor([2.])

    Raises:
        fastckpt.errors.NotFoundError: a key in ``names`` the checkpoint does not hold.
        fastckpt.errors.InvalidArgumentError: ``names`` is a string other than those three, or a key it lists is
            a string tensor or of a dtype torch lacks.
    """
    reader = CheckpointReader(path, storage_options=storage_options)
    device = _device(device)
    asked = names is not None and not isinstance(names, str)
    wanted = _loadable(reader, mapping.select(reader, names), asked)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    nbytes = {key: dtypes[key].nbytes(shapes[key]) for _, key, _ in wanted}
    out: Dict[str, torch.Tensor] = {}
    if mmap:
        mapped = _mapped_tensors(reader, wanted, shapes)
        for name, tensor in mapped.items():
            out[name] = tensor if device.type == "cpu" else tensor.to(device)
        wanted = [entry for entry in wanted if entry[0] not in mapped]
    if device.type == "cpu":
        out.update(_read_on_cpu(reader, wanted, shapes, nbytes))
        return out
    # Another device: through CPU buffers, a batch at a time, so that the CPU holds one batch, not the checkpoint.
    for batch in batches(wanted, [nbytes[key] for _, key, _ in wanted], _BATCH_BYTES):
        buffers = {key: _buffer(shapes[key], target, device) for _, key, target in batch}
        reader.read_bytes_into({key: bytes_of(t) for key, t in buffers.items()})
        for name, key, _ in batch:
            buffer = buffers[key]
            out[name] = buffer.to(device, non_blocking=buffer.is_pinned())
    return out


def _loadable(reader: CheckpointReader, selected: Mapping[str, str], asked: bool) -> List[Tuple[str, str, torch.dtype]]:
    """``(name, key, torch dtype)`` of the ``selected`` tensors (``{name: key}``) torch can hold. Those it cannot
    are an error when ``asked`` for by key, else left out, with a warning for the numeric ones."""
    dtypes = reader.get_variable_to_dtype_map()
    wanted: List[Tuple[str, str, torch.dtype]] = []
    lacking = []
    for name, key in selected.items():
        dtype = dtypes[key]
        target = torch_dtype(dtype)
        if target is None:
            if asked:
                raise errors.InvalidArgumentError(
                    f"cannot load {dtype.name} tensor {key!r} of {reader.path} into torch: torch has no "
                    f"{'strings' if dtype.is_string else dtype.name}",
                    reader.path,
                    key,
                )
            if not dtype.is_string:
                lacking.append(f"{key!r} ({dtype.name})")
            continue
        wanted.append((name, key, target))
    if lacking:
        warnings.warn(
            f"left out {len(lacking)} tensor(s) of {reader.path} whose dtype torch {torch.__version__} lacks: "
            + ", ".join(lacking),
            stacklevel=3,
        )
    return wanted


def _read_on_cpu(
    reader: CheckpointReader,
    wanted: List[Tuple[str, str, torch.dtype]],
    shapes: Mapping[str, List[int]],
    nbytes: Mapping[str, int],
) -> Dict[str, torch.Tensor]:
    """``{name: tensor}`` of ``wanted``, each read straight into the memory of a new CPU tensor."""
    out: Dict[str, torch.Tensor] = {}
    targets = {}
    for name, key, target in wanted:
        if not nbytes[key]:  # (torch views no empty numpy array as another dtype)
            out[name] = torch.empty(tuple(shapes[key]), dtype=target)
            continue
        # The tensor's memory is a numpy array's: numpy asks the kernel for huge pages for large arrays
        # (madvise), which halves the cost of first writing a checkpoint's worth of new memory; torch.empty
        # does not.
        memory = np.empty(nbytes[key], np.uint8)
        out[name] = torch.from_numpy(memory).view(target).reshape(tuple(shapes[key]))
        targets[key] = memory
    if targets:
        reader.read_bytes_into(targets)
    return out


def _not_matching(
    reader: CheckpointReader,
    what: str,
    planned: Mapping[str, "mapping.Mapped"],
    named: Mapping[str, str],
    missing: List[str],
    unexpected: List[str],
    names: str,
    skip_optimizer: bool,
) -> errors.InvalidArgumentError:
    """The error of a strict ``load_into`` whose checkpoint and target do not hold the same names, worded as
    torch's ``load_state_dict`` words it, with what would make them match."""
    lines = [f"Error(s) in loading {reader.path} into the {what}:"]
    if missing:
        lines.append(f"Missing key(s) in the {what}: {_quoted(missing)}.")
    if unexpected:
        described = [
            f'"{name}"' + ("" if planned[name].key == name else f" (checkpoint key {planned[name].key!r})")
            for name in unexpected
        ]
        lines.append(f"Unexpected key(s) in the checkpoint: {', '.join(described)}.")
        if not skip_optimizer and any(
            mapping.is_optimizer_state(planned[n].key, named[planned[n].key]) for n in unexpected
        ):
            lines.append("skip_optimizer=True leaves out the optimizer's state.")
    if names == "key" and reader.full_names():
        lines.append('The checkpoint holds full names of its variables: names="full" names the tensors by them.')
    lines.append("strict=False fills what matches and returns the rest.")
    return errors.InvalidArgumentError(
        "\n\t".join(lines), reader.path, planned[unexpected[0]].key if unexpected else missing[0]
    )


def _mapped_tensors(
    reader: CheckpointReader, wanted: List[Tuple[str, str, torch.dtype]], shapes: Mapping[str, List[int]]
) -> Dict[str, torch.Tensor]:
    """``{name: tensor}`` over copy-on-write maps of the data files (one per file), of the tensors of ``wanted``
    whose stored bytes can be used as they are."""
    maps: Dict[str, memory_map.mmap] = {}
    out = {}
    for name, key, target in wanted:
        where = reader.stored_range(key)
        itemsize = target.itemsize
        if where is None or where[1] % itemsize or not where[2]:
            continue
        path, offset, length, size = where
        if path not in maps:
            with open(path, "rb") as file:
                # The path names the file the reader opened unless it was replaced since (by a save to the same
                # prefix): offsets into another file would give other bytes.
                if os.fstat(file.fileno()).st_size != size:
                    raise errors.AbortedError(
                        f"{path} changed while {reader.path} was being loaded (its size is no longer {size} bytes)",
                        path,
                        key,
                    )
                maps[path] = memory_map.mmap(file.fileno(), 0, access=memory_map.ACCESS_COPY)
        tensor = torch.frombuffer(maps[path], dtype=target, count=length // itemsize, offset=offset)
        out[name] = tensor.reshape(tuple(shapes[key]))
    return out


def _state_dict(target) -> Tuple[Dict[str, torch.Tensor], str]:
    """The tensors to fill, ``{name: tensor}`` (detached: they share the memory of the parameters), and what the
    target is called in messages."""
    if isinstance(target, torch.nn.Module):
        return dict(target.state_dict()), type(target).__name__
    if not isinstance(target, Mapping):
        raise errors.InvalidArgumentError(
            f"load_into fills a torch.nn.Module or a state dict ({{name: torch.Tensor}}), not a {type(target).__name__}"
        )
    tensors = {}
    for name, tensor in target.items():
        if not isinstance(tensor, torch.Tensor):
            raise errors.InvalidArgumentError(
                f"state dict entry {name!r} is a {type(tensor).__name__}, not a torch.Tensor", None, name
            )
        tensors[name] = tensor.detach()
    return tensors, "state dict"


def _kept_when_absent(target) -> Set[str]:
    """The names of a module's tensors that torch's own ``load_state_dict`` keeps as they are when a state dict
    lacks them, so that they are not missing here either: the ``num_batches_tracked`` counters of batch norms
    (TensorFlow and Keras have none)."""
    if not isinstance(target, torch.nn.Module):
        return set()
    return {
        f"{prefix}.num_batches_tracked" if prefix else "num_batches_tracked"
        for prefix, module in target.named_modules()
        if isinstance(module, torch.nn.modules.batchnorm._NormBase) and module.num_batches_tracked is not None
    }


def _alias_groups(tensors: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """``{name: first name}``: the first of the names of the same tensor (tied weights: the same memory, shape,
    strides and dtype), which filling one of them fills."""
    first: Dict[Any, str] = {}
    out = {}
    for name, tensor in tensors.items():
        if tensor.numel() == 0 or tensor.device.type == "meta":
            out[name] = name
            continue
        identity = (tensor.device, tensor.data_ptr(), tensor.dtype, tuple(tensor.shape), tensor.stride())
        out[name] = first.setdefault(identity, name)
    return out


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def load_into(
    module_or_state_dict: Union[torch.nn.Module, Mapping[str, torch.Tensor]],
    path: PathLike,
    *,
    names: str = "key",
    rename: Optional[mapping.Renames] = None,
    skip: Optional[mapping.Patterns] = None,
    skip_optimizer: bool = False,
    transpose: Optional[mapping.Patterns] = None,
    strict: bool = True,
    storage_options: Optional[Mapping[str, str]] = None,
) -> IncompatibleKeys:
    """Fills the tensors of a ``torch.nn.Module`` (its ``state_dict()``: parameters and persistent buffers) or of a
    state dict (``{name: torch.Tensor}``) in place from a checkpoint, as ``load_state_dict`` would from a torch
    one; returns ``IncompatibleKeys(missing_keys, unexpected_keys)`` as it does.

    The checkpoint's tensors are named by ``names`` (``"key"``, ``"object"`` or ``"full"``: see
    ``fastckpt.mapping.names_of``), then ``skip_optimizer``, ``skip``, ``rename`` and ``transpose`` apply in that
    order as ``fastckpt.mapping.plan`` applies them, and each resulting name fills the target's tensor of that
    name. String tensors are left out.

    Contiguous CPU tensors of the checkpoint's dtype are read straight into (no copy); transposed ones and those
    elsewhere (a GPU, non-contiguous views) are read into a CPU temporary and copied. Tied weights (names of the
    same tensor) are filled once, by whichever name the checkpoint holds.

    ``missing_keys`` are the target's names nothing filled, ``unexpected_keys`` the planned names the target
    lacks. With ``strict`` (the default), either being non-empty is an error, raised before anything is written.

    >>> import fastckpt, fastckpt.torch, torch
    >>> fastckpt.torch.load_into({"v1": torch.zeros(1)}, fastckpt.examples.model_path(), strict=False)
    IncompatibleKeys(missing_keys=[], unexpected_keys=['v2'])

    Raises:
        fastckpt.errors.InvalidArgumentError: with ``strict``, missing or unexpected names (all listed); a tensor
            whose shape or dtype does not fit its target (the message names the checkpoint key, the target's name
            and both shapes and dtypes); a transpose rule matching a tensor that is not 2-D; bad rules (see
            ``fastckpt.mapping.plan``). Nothing is written then.
    """
    reader = CheckpointReader(path, storage_options=storage_options)
    targets, what = _state_dict(module_or_state_dict)
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    named = {key: name for key, name in mapping.names_of(reader, names).items() if not dtypes[key].is_string}
    planned = mapping.plan(
        named, rename=rename, skip=skip, skip_optimizer=skip_optimizer, transpose=transpose, filename=reader.path
    )
    out_shapes = mapping.check_transpose(planned, shapes, filename=reader.path)

    for name, (key, _) in planned.items():
        if name in targets and targets[name].device.type == "meta":
            raise errors.InvalidArgumentError(
                f"cannot fill {name!r} of the {what}: it is on the meta device, which holds no data "
                "(materialize the module first, e.g. with to_empty(device='cpu'))",
                reader.path,
                key,
            )
    aliases = _alias_groups(targets)
    filled = {aliases[name] for name in planned if name in targets}
    optional = _kept_when_absent(module_or_state_dict)
    missing = [name for name in targets if aliases[name] not in filled and name not in optional]
    unexpected = [name for name in planned if name not in targets]
    if strict and (missing or unexpected):
        raise _not_matching(reader, what, planned, named, missing, unexpected, names, skip_optimizer)

    # Every tensor is checked before any is written.
    jobs: List[Tuple[str, str, torch.Tensor, bool]] = []
    mismatches: List[Tuple[str, str]] = []
    done = set()
    for name, (key, transposed) in planned.items():
        if name not in targets or aliases[name] in done:
            continue
        done.add(aliases[name])
        target = targets[name]
        dtype = dtypes[key]
        source_dtype = torch_dtype(dtype)
        if source_dtype != target.dtype or out_shapes[name] != tuple(target.shape):
            mismatches.append(
                (
                    key,
                    f"checkpoint tensor {key!r} ({dtype.name} {list(shapes[key])}"
                    + (f", transposed to {list(out_shapes[name])}" if transposed else "")
                    + f") does not fit {name!r} of the {what} ({str(target.dtype).replace('torch.', '')} "
                    f"{list(target.shape)})",
                )
            )
            continue
        jobs.append((name, key, target, transposed))
    if mismatches:
        raise errors.InvalidArgumentError(
            f"{len(mismatches)} tensor(s) of {reader.path} do not fit: " + "; ".join(m for _, m in mismatches),
            reader.path,
            mismatches[0][0],
        )

    direct = {}
    indirect = []
    for _, key, target, transposed in jobs:
        if (
            target.device.type == "cpu"
            and not transposed
            and target.is_contiguous()
            and not target.is_conj()
            and not target.is_neg()
        ):
            direct[key] = bytes_of(target)
        else:
            indirect.append((key, target, transposed))
    reader.read_bytes_into(direct)
    sizes = [target.numel() * target.element_size() for _, target, _ in indirect]
    with torch.no_grad():
        for batch in batches(indirect, sizes, _BATCH_BYTES):
            buffers = {key: _buffer(shapes[key], target.dtype, target.device) for key, target, _ in batch}
            reader.read_bytes_into({key: bytes_of(t) for key, t in buffers.items()})
            for key, target, transposed in batch:
                buffer = buffers[key]
                target.copy_(buffer.t() if transposed else buffer)
    return IncompatibleKeys(missing, unexpected)


def save(
    tensors: Mapping[str, torch.Tensor], prefix: PathLike, *, storage_options: Optional[Mapping[str, str]] = None
) -> str:
    """Writes ``{name: torch.Tensor}`` as a TensorFlow checkpoint (V2: ``prefix.index`` and its data file, read by
    ``tf.train.load_checkpoint``) and returns ``prefix``.

    Dtypes are kept (bfloat16 as bfloat16, the float8 types, uint16/32/64, complex); tensors are detached, and
    those on another device or not contiguous are copied to contiguous CPU memory first. Values that are not
    torch tensors are written as ``fastckpt.CheckpointWriter.add`` writes them. ``storage_options``:
    configuration of object stores (see README "Object stores").

    >>> import os, tempfile, torch, fastckpt, fastckpt.torch
    >>> prefix = fastckpt.torch.save({"w": torch.arange(4.0).reshape(2, 2).T}, os.path.join(tempfile.mkdtemp(), "t"))
    >>> fastckpt.load_variable(prefix, "w")
    array([[0., 2.],
           [1., 3.]], dtype=float32)

    Raises:
        fastckpt.errors.InvalidArgumentError: a tensor of a dtype checkpoints lack (quantized torch tensors,
            sub-byte integers, float8_e8m0fnu), sparse or on the meta device (the message names it).
    """
    prefix = os.fspath(prefix)
    with CheckpointWriter(prefix, storage_options=storage_options) as writer:
        writer.add_tensors(tensors)
    return prefix
