"""The commands of the command line, one function each, taking the parsed arguments and returning the exit
status."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Tuple

import numpy as np

from .. import _fastckpt, _paths, conversion, errors, examples
from ..conversion import tensor_sizes
from ..conversion.destinations import destination_kind
from ..reading.reader import CheckpointReader
from .progress import Progress, format_bytes

__all__ = ["convert", "diff", "freeze", "inspect", "saved_model_show"]


def inspect(args: argparse.Namespace) -> int:
    if args.example:
        path = examples.model_dir()
    elif args.path:
        path = args.path
    else:
        raise errors.InvalidArgumentError("give a checkpoint PATH, or --example")
    reader = CheckpointReader(path, storage_options=args.storage_options)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    sizes = tensor_sizes(reader)
    print(f"checkpoint: {reader.path} ({reader.format}, {len(shapes)} tensors)")
    width = max([len(name) for name in shapes] + [6])
    for name in sorted(shapes):
        size_text = format_bytes(sizes[name]) if dtypes[name].size else "-"
        print(f"  {name:<{width}}  {dtypes[name].name:<10} {str(shapes[name]):<20} {size_text:>10}")
    print(f"total: {format_bytes(sum(sizes.values()))} in fixed-size tensors")
    names = sorted(shapes) if args.all else args.tensor or []
    sys.stdout.flush()
    with (
        np.printoptions(threshold=args.threshold),
        Progress("reading", sum(sizes.get(n, 0) for n in names), "rchar") as progress,
    ):
        for name in names:
            value = reader.get_tensor(name)
            progress.advance(sizes.get(name, 0))
            progress.print(f"\ntensor: {name}")
            progress.print(value)
    return 0


# diff ------------------------------------------------------------------------------------------------------


def _compare(a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> Tuple[bool, str]:
    if a.dtype == object or b.dtype == object:
        same = np.asarray(a).tolist() == np.asarray(b).tolist()
        return same, "equal" if same else "strings differ"
    if a.tobytes() == b.tobytes():
        return True, "equal"
    wide_a, wide_b = (
        a.astype(np.complex128 if a.dtype.kind == "c" else np.float64),
        b.astype(np.complex128 if b.dtype.kind == "c" else np.float64),
    )
    with np.errstate(invalid="ignore"):
        difference = np.abs(wide_a - wide_b)
        max_abs = float(np.nanmax(difference)) if difference.size else 0.0
        close = bool(np.allclose(wide_a, wide_b, atol=atol, rtol=rtol, equal_nan=True))
    changed = int(np.count_nonzero(~np.isclose(wide_a, wide_b, atol=0, rtol=0, equal_nan=True)))
    return close, f"{changed} of {a.size} elements differ, max |a-b| = {max_abs:.6g}"


def diff(args: argparse.Namespace) -> int:
    a = CheckpointReader(args.a, storage_options=args.storage_options)
    b = CheckpointReader(args.b, storage_options=args.storage_options)
    shapes_a, shapes_b = a.get_variable_to_shape_map(), b.get_variable_to_shape_map()
    dtypes_a, dtypes_b = a.get_variable_to_dtype_map(), b.get_variable_to_dtype_map()
    different = 0
    for name in sorted(set(shapes_a) - set(shapes_b)):
        print(f"only in A: {name} {dtypes_a[name].name} {shapes_a[name]}")
        different += 1
    for name in sorted(set(shapes_b) - set(shapes_a)):
        print(f"only in B: {name} {dtypes_b[name].name} {shapes_b[name]}")
        different += 1
    common = sorted(set(shapes_a) & set(shapes_b))
    comparable = [name for name in common if (dtypes_a[name], shapes_a[name]) == (dtypes_b[name], shapes_b[name])]
    sizes_a, sizes_b = tensor_sizes(a), tensor_sizes(b)
    sys.stdout.flush()
    with Progress("comparing", sum(sizes_a[n] + sizes_b[n] for n in comparable), "rchar") as progress:
        for name in common:
            if (dtypes_a[name], shapes_a[name]) != (dtypes_b[name], shapes_b[name]):
                progress.print(
                    f"changed: {name} {dtypes_a[name].name} {shapes_a[name]} -> {dtypes_b[name].name} {shapes_b[name]}"
                )
                different += 1
                continue
            value_a, value_b = a.get_arrays([name])[name], b.get_arrays([name])[name]
            progress.advance(sizes_a[name] + sizes_b[name])
            same, detail = _compare(value_a, value_b, args.atol, args.rtol)
            del value_a, value_b
            if not same:
                progress.print(f"differs: {name}: {detail}")
                different += 1
            elif args.verbose:
                progress.print(f"same: {name}: {detail}")
    print(f"{different} difference(s) in {len(set(shapes_a) | set(shapes_b))} tensors")
    return 1 if different else 0


# convert ---------------------------------------------------------------------------------------------------


def convert(args: argparse.Namespace) -> int:
    count = conversion.convert(
        args.src,
        args.dst,
        Progress,
        names=args.names,
        rename=args.rename,
        skip=args.skip,
        skip_optimizer=args.skip_optimizer,
        transpose=args.transpose,
        dtype=args.dtype,
        max_shard_size=args.max_shard_size,
        storage_options=args.storage_options,
    )
    if destination_kind(args.dst, args.max_shard_size) == "checkpoint":
        files = ", ".join(_checkpoint_files(args.dst, _paths.stores(args.storage_options)))
        print(f"wrote {count} tensors to the checkpoint {args.dst}: {files}")
    else:
        print(f"wrote {count} tensors to {args.dst}")
    return 0


def _checkpoint_files(prefix: str, stores) -> List[str]:
    """The files of the V2 checkpoint ``prefix`` (its index and data files), as found in its directory."""
    directory, name = os.path.split(prefix)
    listing = stores.list_directory(directory or os.curdir)
    return [os.path.join(directory, entry) for entry in listing if _fastckpt.bundle_prefix_of(entry) == name]


# freeze ----------------------------------------------------------------------------------------------------


def freeze(args: argparse.Namespace) -> int:
    from ..graphs import convert_variables_to_constants, extract_sub_graph, read_meta_graph, write_graph

    meta = read_meta_graph(args.meta, storage_options=args.storage_options)
    outputs = [name.strip() for name in args.outputs.split(",") if name.strip()]
    reader = CheckpointReader(args.checkpoint, storage_options=args.storage_options)
    sizes = tensor_sizes(reader)
    needed = {node.name for node in extract_sub_graph(meta.graph_def, outputs).node}
    with Progress("freezing", sum(size for name, size in sizes.items() if name in needed), "rchar") as progress:
        read = reader.get_tensor

        def get_tensor(name: str):  # counts the bytes of each variable read
            value = read(name)
            progress.advance(sizes.get(name, 0))
            return value

        reader.get_tensor = get_tensor  # type: ignore[method-assign]
        frozen = convert_variables_to_constants(meta.graph_def, reader, outputs)
    directory, name = os.path.split(args.output)
    as_text = args.output.endswith(".pbtxt")
    with Progress("writing", frozen.ByteSize(), "wchar"):
        write_graph(frozen, directory, name, as_text=as_text, storage_options=args.storage_options)
    constants = sum(1 for node in frozen.node if node.op == "Const")
    print(f"wrote {args.output}: {len(frozen.node)} nodes, {constants} constants")
    return 0


# saved-model show ------------------------------------------------------------------------------------------


def _show_tensor_info(key: str, info) -> str:
    from ..dtypes import as_dtype

    dtype = as_dtype(info.dtype).name if info.dtype else "unknown"
    if info.tensor_shape.unknown_rank:
        shape = "unknown_rank"
    else:
        shape = (
            "("
            + ", ".join(str(d.size) for d in info.tensor_shape.dim)
            + ("," if len(info.tensor_shape.dim) == 1 else "")
            + ")"
        )
    return f"    {key}: dtype {dtype}, shape {shape}, name {info.name or info.WhichOneof('encoding')}"


def saved_model_show(args: argparse.Namespace) -> int:
    from .. import saved_model

    tag_sets = saved_model.tag_sets(args.dir, storage_options=args.storage_options)
    if not args.tag_set and not args.all:
        print("tag sets of this SavedModel:")
        for tags in tag_sets:
            print("  " + ",".join(tags))
        return 0
    selected = [args.tag_set.split(",")] if args.tag_set else tag_sets
    for tags in selected:
        model = saved_model.load(args.dir, tags=tags, storage_options=args.storage_options)
        print(f"tag set: {','.join(tags)}")
        for key in sorted(model.signatures):
            if args.signature_def and key != args.signature_def:
                continue
            signature = model.signatures[key]
            print(f"  signature {key!r} ({signature.method_name or 'no method name'}):")
            print("   inputs:")
            for name in sorted(signature.inputs):
                print(_show_tensor_info(name, signature.inputs[name]))
            print("   outputs:")
            for name in sorted(signature.outputs):
                print(_show_tensor_info(name, signature.outputs[name]))
    return 0


# main ------------------------------------------------------------------------------------------------------
