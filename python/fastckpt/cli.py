"""The ``fastckpt`` command line.

    fastckpt inspect PATH                 names, dtypes, shapes and sizes of every tensor
    fastckpt inspect PATH --tensor NAME   ... and the value of one tensor
    fastckpt inspect PATH --all           ... and the values of all tensors
    fastckpt inspect --example            the same, on the example checkpoint shipped with fastckpt

PATH is anything ``fastckpt.NewCheckpointReader`` opens: a checkpoint prefix, a V1 file, a directory with a
``checkpoint`` state file, or a SavedModel directory. On bad input the command prints one line to stderr and
exits with status 1.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import numpy as np

from . import errors, examples
from .reader import CheckpointReader


def _format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _inspect(args: argparse.Namespace) -> int:
    if args.example:
        path = examples.model_dir()
    elif args.path:
        path = args.path
    else:
        raise errors.InvalidArgumentError("give a checkpoint PATH, or --example")
    reader = CheckpointReader(path)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    print(f"checkpoint: {reader.path} ({reader.format}, {len(shapes)} tensors)")
    width = max([len(name) for name in shapes] + [6])
    total = 0
    for name in sorted(shapes):
        shape, dtype = shapes[name], dtypes[name]
        size = int(np.prod(shape, dtype=np.int64)) * dtype.size
        total += size
        size_text = _format_bytes(size) if dtype.size else "-"
        print(f"  {name:<{width}}  {dtype.name:<10} {str(shape):<20} {size_text:>10}")
    print(f"total: {_format_bytes(total)} in fixed-size tensors")
    names = sorted(shapes) if args.all else args.tensor or []
    with np.printoptions(threshold=args.threshold):
        for name in names:
            print(f"\ntensor: {name}")
            print(reader.get_tensor(name))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastckpt", description="Inspect TensorFlow checkpoints without TensorFlow.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="list the tensors of a checkpoint, and values on request")
    inspect.add_argument("path", nargs="?", help="checkpoint prefix, V1 file, checkpoint directory or SavedModel")
    inspect.add_argument("--example", action="store_true", help="inspect the example checkpoint shipped with fastckpt")
    inspect.add_argument("--tensor", action="append", metavar="NAME", help="print the value of NAME (repeatable)")
    inspect.add_argument("--all", action="store_true", help="print the values of all tensors")
    inspect.add_argument("--threshold", type=int, default=1000, help="elements printed in full before numpy elides")
    inspect.set_defaults(run=_inspect)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except errors.OpError as err:
        print(f"fastckpt: error: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
