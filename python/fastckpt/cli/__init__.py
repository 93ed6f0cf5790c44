"""The ``fastckpt`` command line (also ``python -m fastckpt``).

    fastckpt inspect PATH [--tensor NAME] [--all]   names, dtypes, shapes and sizes; values on request
    fastckpt inspect --example                      the example checkpoint shipped with fastckpt
    fastckpt diff A B [--atol X] [--rtol Y]         per-tensor differences of two checkpoints
    fastckpt convert SRC DST [--skip-optimizer ...] checkpoint <-> .safetensors / .npz / .pt, chosen by DST;
                                                    a Keras 2 SavedModel -> .keras (Keras 3)
    fastckpt freeze --meta M --checkpoint C --outputs a,b -o out.pb
    fastckpt saved-model show DIR [--tag-set serve] [--all]
    fastckpt --version

PATH, A, B and SRC are anything ``fastckpt.NewCheckpointReader`` opens: a checkpoint prefix, a V1 file, a
directory with a ``checkpoint`` state file, or a SavedModel directory (``convert`` also reads .safetensors,
.npz and .pt); any path may be the URL of an object store (``s3://bucket/run``), configured by the cloud's
variables and by ``--storage-option KEY=VALUE`` (repeatable, before or after the command: object_store's
keys such as ``aws_endpoint``, ``aws_region``, as the API's ``storage_options``). Exit status: 0 on success, 1 when ``diff`` finds differences, 2 on bad input or a failure, with a
one-line message on stderr.

On a terminal, commands that read or write more than 100 MiB of tensors (``convert``, ``diff``, ``freeze``,
``inspect --all`` or ``--tensor``) draw a progress bar on stderr: bytes done, rate and time left. Nothing of
it is written when stderr is not a terminal.
"""

from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional, Tuple

from .. import __version__, errors, mapping
from . import commands as run

__all__ = ["build_parser", "main"]


def _rename_rule(text: str) -> Tuple[str, str]:
    pattern, equals, replacement = text.partition("=")
    if not equals or not pattern:
        raise argparse.ArgumentTypeError(f"--rename takes PATTERN=REPLACEMENT, not {text!r}")
    return pattern, replacement


def _storage_option(text: str) -> Tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key.strip(), value


# Where --storage-option given after the command goes (the command's parser would otherwise replace the
# values given before it).
_STORAGE_OPTIONS_AFTER = "storage_options_after_command"


def _add_storage_option(parser: argparse.ArgumentParser, dest: str, default) -> None:
    parser.add_argument(
        "--storage-option",
        action="append",
        type=_storage_option,
        dest=dest,
        default=default,
        metavar="KEY=VALUE",
        help="configure object stores (object_store's keys such as aws_endpoint, aws_region, aws_allow_http; "
        "repeatable)",
    )


def _storage_options(args: argparse.Namespace) -> Optional[Dict[str, str]]:
    pairs = (args.storage_option or []) + getattr(args, _STORAGE_OPTIONS_AFTER, [])
    return dict(pairs) if pairs else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastckpt", description="TensorFlow checkpoints, graphs and SavedModels without TensorFlow."
    )
    parser.add_argument("--version", action="version", version=f"fastckpt {__version__}")
    _add_storage_option(parser, "storage_option", None)
    # Accepted after the command too: fastckpt inspect s3://bucket/run --storage-option aws_region=eu-west-1.
    after = argparse.ArgumentParser(add_help=False)
    _add_storage_option(after, _STORAGE_OPTIONS_AFTER, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser(
        "inspect", help="list the tensors of a checkpoint, and values on request", parents=[after]
    )
    inspect.add_argument("path", nargs="?", help="checkpoint prefix, V1 file, checkpoint directory or SavedModel")
    inspect.add_argument("--example", action="store_true", help="inspect the example checkpoint shipped with fastckpt")
    inspect.add_argument("--tensor", action="append", metavar="NAME", help="print the value of NAME (repeatable)")
    inspect.add_argument("--all", action="store_true", help="print the values of all tensors")
    inspect.add_argument("--threshold", type=int, default=1000, help="elements printed in full before numpy elides")
    inspect.set_defaults(run=run.inspect)

    diff = commands.add_parser(
        "diff", help="per-tensor differences of two checkpoints (exit status 1 if any)", parents=[after]
    )
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for numeric tensors")
    diff.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numeric tensors")
    diff.add_argument("-v", "--verbose", action="store_true", help="also list the tensors that are the same")
    diff.set_defaults(run=run.diff)

    convert = commands.add_parser(
        "convert",
        help="checkpoint to or from .safetensors / .npz / .pt, chosen by DST; a Keras 2 SavedModel to .keras",
        parents=[after],
        description="Converts SRC into DST, tensor by tensor (a large tensor in parts): the rules choose, name and "
        "shape the tensors as fastckpt.convert and fastckpt.torch.load_into apply them. A DST ending in .keras "
        "takes a Keras 2 SavedModel and writes the Keras 3 model file (needs Keras 3: pip install fastckpt[keras]).",
    )
    convert.add_argument(
        "src", help="a checkpoint (any path inspect takes), .safetensors (or its index .json), .npz or .pt file"
    )
    convert.add_argument(
        "dst",
        help="a .safetensors, .npz or .pt/.bin file, a directory (with --max-shard-size), a checkpoint prefix, or a "
        ".keras file (from a Keras 2 SavedModel)",
    )
    convert.add_argument(
        "--names", choices=mapping.NAMES, default="key", help="name tensors by checkpoint key, object path or full name"
    )
    convert.add_argument(
        "--rename",
        action="append",
        type=_rename_rule,
        metavar="PAT=REPL",
        help="rename by regular expression (repeatable, applied in order)",
    )
    convert.add_argument("--skip", action="append", metavar="PAT", help="leave out names matching PAT (repeatable)")
    convert.add_argument(
        "--skip-optimizer", action="store_true", help="leave out optimizer slots, global_step and bookkeeping"
    )
    convert.add_argument(
        "--transpose", action="append", metavar="PAT", help="transpose 2-D tensors whose new name matches PAT"
    )
    convert.add_argument("--dtype", help="cast floating tensors to this dtype (bfloat16, float16, float32)")
    convert.add_argument(
        "--max-shard-size", metavar="SIZE", help="write DST as a directory of safetensors shards of SIZE (e.g. 5GB)"
    )
    convert.set_defaults(run=run.convert)

    freeze = commands.add_parser(
        "freeze", help="turn a graph's variables into constants from a checkpoint", parents=[after]
    )
    freeze.add_argument("--meta", required=True, help="the .meta MetaGraphDef (binary or text)")
    freeze.add_argument("--checkpoint", required=True, help="the checkpoint holding the values")
    freeze.add_argument("--outputs", required=True, help="comma-separated output node names")
    freeze.add_argument("-o", "--output", required=True, help="the frozen GraphDef to write (.pb, or .pbtxt for text)")
    freeze.set_defaults(run=run.freeze)

    saved_model = commands.add_parser("saved-model", help="SavedModel commands")
    saved_model_commands = saved_model.add_subparsers(dest="saved_model_command", required=True)
    show = saved_model_commands.add_parser("show", help="tag sets, signatures, inputs and outputs", parents=[after])
    show.add_argument("dir", help="the SavedModel directory")
    show.add_argument("--tag-set", "--tag_set", help="comma-separated tags of one meta graph")
    show.add_argument("--signature-def", "--signature_def", help="show only this signature")
    show.add_argument("--all", action="store_true", help="show every tag set and signature")
    show.set_defaults(run=run.saved_model_show)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    args.storage_options = _storage_options(args)
    try:
        return args.run(args)
    except BrokenPipeError:
        return 0
    except (errors.OpError, OSError) as err:
        print(f"fastckpt: error: {err}", file=sys.stderr)
        return 2
