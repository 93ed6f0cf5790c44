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
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import __version__, conversion, errors, examples, mapping
from .conversion import as_array, tensor_sizes
from .reading.reader import CheckpointReader


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# Work that moves at least this many bytes shows a progress bar, when stderr is a terminal.
_PROGRESS_MIN_BYTES = 100 * 1024 * 1024


def _format_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _io_counter(field: str) -> Optional[int]:
    """The process's ``rchar`` or ``wchar`` (bytes passed to read or write system calls, by every thread,
    the extension's included), or None where /proc/self/io is missing."""
    try:
        with open("/proc/self/io", "rb") as f:
            for line in f:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class _Progress:
    """A progress bar on stderr for work that moves ``total`` bytes: bytes done, rate and time left.

    Drawn only when stderr is a terminal and ``total`` is at least _PROGRESS_MIN_BYTES; otherwise every
    method does nothing but ``print``. The caller counts bytes with ``advance`` as each piece is done; in
    between (one large tensor, one ``save_file`` call) the bar follows the process's I/O counter ``io``
    (``"rchar"`` or ``"wchar"``), redrawn by a thread while the extension works without the GIL. As a
    context manager it ends with the full bar, or on an error erases itself, so that the one-line error
    message stands alone."""

    INTERVAL = 0.1  # seconds between redraws

    def __init__(self, label: str, total: int, io: Optional[str] = None):
        self.label, self.total = label, max(int(total), 0)
        self.enabled = self.total >= _PROGRESS_MIN_BYTES and _is_terminal(sys.stderr)
        self._done = 0
        self._drawn = False
        if not self.enabled:
            return
        import threading

        self._io = io
        self._io_start = _io_counter(io) if io else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._tick, name="fastckpt-progress", daemon=True)
        self._thread.start()

    def advance(self, nbytes: int) -> None:
        self._done += nbytes

    def print(self, *values, **kwargs) -> None:
        """``print`` to stdout, with the bar moved out of the way (and redrawn below) when stdout is a
        terminal too."""
        if not self.enabled:
            print(*values, **kwargs)
            return
        with self._lock:
            if _is_terminal(sys.stdout):
                self._erase()
            print(*values, **kwargs)
            sys.stdout.flush()

    def _done_now(self) -> int:
        done = self._done
        if self._io_start is not None:
            now = _io_counter(self._io)
            if now is not None:
                done = max(done, now - self._io_start)
        return min(done, self.total)

    def _line(self, done: int, final: bool) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = done / elapsed
        if final:
            tail = f"{_format_bytes(self.total)} in {elapsed:.1f} s, {_format_bytes(rate)}/s"
        else:
            left = _format_duration((self.total - done) / rate) + " left" if done and elapsed > 0.3 else ""
            tail = f"{_format_bytes(done)} / {_format_bytes(self.total)}  {_format_bytes(rate)}/s  {left}".rstrip()
        try:
            columns = os.get_terminal_size(sys.stderr.fileno()).columns or 80
        except (OSError, ValueError):
            columns = 80
        # The bar keeps one width as the figures after it change: the room left by the longest of them.
        width = max(10, min(30, columns - 1 - len(self.label) - 4 - len(self._LONGEST_TAIL)))
        filled = width * done // self.total if self.total else width
        return f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {tail}"

    _LONGEST_TAIL = "1023.9 MiB / 1023.9 MiB  1023.9 MiB/s  1:00:00 left"

    def _draw(self, final: bool = False) -> None:
        line = self._line(self.total if final else self._done_now(), final)
        sys.stderr.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        sys.stderr.flush()
        self._drawn = not final

    def _erase(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._drawn = False

    def _tick(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            with self._lock:
                self._draw()

    def close(self, completed: bool = True) -> None:
        if not self.enabled or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        with self._lock:
            if completed:
                self._draw(final=True)
            else:
                self._erase()

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(completed=exc_type is None)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# inspect ---------------------------------------------------------------------------------------------------


def _inspect(args: argparse.Namespace) -> int:
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
        size_text = _format_bytes(sizes[name]) if dtypes[name].size else "-"
        print(f"  {name:<{width}}  {dtypes[name].name:<10} {str(shapes[name]):<20} {size_text:>10}")
    print(f"total: {_format_bytes(sum(sizes.values()))} in fixed-size tensors")
    names = sorted(shapes) if args.all else args.tensor or []
    sys.stdout.flush()
    with (
        np.printoptions(threshold=args.threshold),
        _Progress("reading", sum(sizes.get(n, 0) for n in names), "rchar") as progress,
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


def _diff(args: argparse.Namespace) -> int:
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
    with _Progress("comparing", sum(sizes_a[n] + sizes_b[n] for n in comparable), "rchar") as progress:
        for name in common:
            if (dtypes_a[name], shapes_a[name]) != (dtypes_b[name], shapes_b[name]):
                progress.print(
                    f"changed: {name} {dtypes_a[name].name} {shapes_a[name]} -> {dtypes_b[name].name} {shapes_b[name]}"
                )
                different += 1
                continue
            value_a, value_b = as_array(a.get_tensor(name)), as_array(b.get_tensor(name))
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


def _rename_rule(text: str) -> Tuple[str, str]:
    pattern, equals, replacement = text.partition("=")
    if not equals or not pattern:
        raise argparse.ArgumentTypeError(f"--rename takes PATTERN=REPLACEMENT, not {text!r}")
    return pattern, replacement


def _convert(args: argparse.Namespace) -> int:
    count = conversion.convert(
        args.src,
        args.dst,
        _Progress,
        names=args.names,
        rename=args.rename,
        skip=args.skip,
        skip_optimizer=args.skip_optimizer,
        transpose=args.transpose,
        dtype=args.dtype,
        max_shard_size=args.max_shard_size,
        storage_options=args.storage_options,
    )
    print(f"wrote {count} tensors to {args.dst}")
    return 0


# freeze ----------------------------------------------------------------------------------------------------


def _freeze(args: argparse.Namespace) -> int:
    from .graphs import convert_variables_to_constants, extract_sub_graph, read_meta_graph, write_graph

    meta = read_meta_graph(args.meta, storage_options=args.storage_options)
    outputs = [name.strip() for name in args.outputs.split(",") if name.strip()]
    reader = CheckpointReader(args.checkpoint, storage_options=args.storage_options)
    sizes = tensor_sizes(reader)
    needed = {node.name for node in extract_sub_graph(meta.graph_def, outputs).node}
    with _Progress("freezing", sum(size for name, size in sizes.items() if name in needed), "rchar") as progress:
        read = reader.get_tensor

        def get_tensor(name: str):  # counts the bytes of each variable read
            value = read(name)
            progress.advance(sizes.get(name, 0))
            return value

        reader.get_tensor = get_tensor  # type: ignore[method-assign]
        frozen = convert_variables_to_constants(meta.graph_def, reader, outputs)
    directory, name = os.path.split(args.output)
    as_text = args.output.endswith(".pbtxt")
    with _Progress("writing", frozen.ByteSize(), "wchar"):
        write_graph(frozen, directory, name, as_text=as_text, storage_options=args.storage_options)
    constants = sum(1 for node in frozen.node if node.op == "Const")
    print(f"wrote {args.output}: {len(frozen.node)} nodes, {constants} constants")
    return 0


# saved-model show ------------------------------------------------------------------------------------------


def _show_tensor_info(key: str, info) -> str:
    from .dtypes import as_dtype

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


def _saved_model_show(args: argparse.Namespace) -> int:
    from . import saved_model

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
    inspect.set_defaults(run=_inspect)

    diff = commands.add_parser(
        "diff", help="per-tensor differences of two checkpoints (exit status 1 if any)", parents=[after]
    )
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for numeric tensors")
    diff.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numeric tensors")
    diff.add_argument("-v", "--verbose", action="store_true", help="also list the tensors that are the same")
    diff.set_defaults(run=_diff)

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
    convert.set_defaults(run=_convert)

    freeze = commands.add_parser(
        "freeze", help="turn a graph's variables into constants from a checkpoint", parents=[after]
    )
    freeze.add_argument("--meta", required=True, help="the .meta MetaGraphDef (binary or text)")
    freeze.add_argument("--checkpoint", required=True, help="the checkpoint holding the values")
    freeze.add_argument("--outputs", required=True, help="comma-separated output node names")
    freeze.add_argument("-o", "--output", required=True, help="the frozen GraphDef to write (.pb, or .pbtxt for text)")
    freeze.set_defaults(run=_freeze)

    saved_model = commands.add_parser("saved-model", help="SavedModel commands")
    saved_model_commands = saved_model.add_subparsers(dest="saved_model_command", required=True)
    show = saved_model_commands.add_parser("show", help="tag sets, signatures, inputs and outputs", parents=[after])
    show.add_argument("dir", help="the SavedModel directory")
    show.add_argument("--tag-set", "--tag_set", help="comma-separated tags of one meta graph")
    show.add_argument("--signature-def", "--signature_def", help="show only this signature")
    show.add_argument("--all", action="store_true", help="show every tag set and signature")
    show.set_defaults(run=_saved_model_show)
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
