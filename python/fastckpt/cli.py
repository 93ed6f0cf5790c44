"""The ``fastckpt`` command line (also ``python -m fastckpt``).

    fastckpt inspect PATH [--tensor NAME] [--all]   names, dtypes, shapes and sizes; values on request
    fastckpt inspect --example                      the example checkpoint shipped with fastckpt
    fastckpt diff A B [--atol X] [--rtol Y]         per-tensor differences of two checkpoints
    fastckpt convert SRC DST                        checkpoint <-> .safetensors / .npz, chosen by DST
    fastckpt freeze --meta M --checkpoint C --outputs a,b -o out.pb
    fastckpt saved-model show DIR [--tag-set serve] [--all]
    fastckpt --version

PATH, A, B and SRC are anything ``fastckpt.NewCheckpointReader`` opens: a checkpoint prefix, a V1 file, a
directory with a ``checkpoint`` state file, or a SavedModel directory (``convert`` also reads .safetensors
and .npz). Exit status: 0 on success, 1 when ``diff`` finds differences, 2 on bad input or a failure, with a
one-line message on stderr.

On a terminal, commands that read or write more than 100 MiB of tensors (``convert``, ``diff``, ``freeze``,
``inspect --all`` or ``--tensor``) draw a progress bar on stderr: bytes done, rate and time left. Nothing of
it is written when stderr is not a terminal.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import warnings
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import errors, examples
from .reader import CheckpointReader

# Key prefix, in safetensors metadata, of string tensors (which safetensors cannot hold).
_STRING_METADATA_PREFIX = "fastckpt.string:"
# The ml_dtypes types .npz cannot hold, and the standard types that hold their values exactly.
_NPZ_WIDENED = {
    "bfloat16": "float32", "float8_e4m3fn": "float32", "float8_e4m3fnuz": "float32", "float8_e4m3b11fnuz": "float32",
    "float8_e5m2": "float32", "float8_e5m2fnuz": "float32", "int4": "int8", "uint4": "uint8",
}
# The numpy dtypes safetensors holds; tensors of other dtypes are skipped with a warning.
_SAFETENSORS_DTYPES = {
    "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32",
    "float64", "bfloat16", "float8_e4m3fn", "float8_e5m2", "complex64",
}


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


def _sizes(reader: CheckpointReader) -> Dict[str, int]:
    """``{name: bytes}`` of every tensor of a checkpoint (0 for strings, whose size the index does not give)."""
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    return {name: int(np.prod(shape, dtype=np.int64)) * dtypes[name].size for name, shape in shapes.items()}


def _nbytes(array: np.ndarray) -> int:
    return 0 if array.dtype == object else int(array.nbytes)


def _batches(names: List[str], sizes: Dict[str, int], batch_bytes: int) -> Iterator[List[str]]:
    """``names`` in consecutive batches of about ``batch_bytes`` (a tensor larger than that on its own)."""
    batch: List[str] = []
    size = 0
    for name in names:
        batch.append(name)
        size += sizes.get(name, 0)
        if size >= batch_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _batch_bytes(total: int) -> int:
    """Batch size for reading or writing ``total`` bytes in parts: large enough that each part keeps every core
    busy, small enough that a progress bar moves (at least 50 parts of a large checkpoint)."""
    return max(64 << 20, total // 50)


# inspect ---------------------------------------------------------------------------------------------------

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
    sizes = _sizes(reader)
    print(f"checkpoint: {reader.path} ({reader.format}, {len(shapes)} tensors)")
    width = max([len(name) for name in shapes] + [6])
    for name in sorted(shapes):
        size_text = _format_bytes(sizes[name]) if dtypes[name].size else "-"
        print(f"  {name:<{width}}  {dtypes[name].name:<10} {str(shapes[name]):<20} {size_text:>10}")
    print(f"total: {_format_bytes(sum(sizes.values()))} in fixed-size tensors")
    names = sorted(shapes) if args.all else args.tensor or []
    sys.stdout.flush()
    with np.printoptions(threshold=args.threshold), _Progress("reading", sum(sizes.get(n, 0) for n in names), "rchar") as progress:
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
    wide_a, wide_b = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), b.astype(np.complex128 if b.dtype.kind == "c" else np.float64)
    with np.errstate(invalid="ignore"):
        difference = np.abs(wide_a - wide_b)
        max_abs = float(np.nanmax(difference)) if difference.size else 0.0
        close = bool(np.allclose(wide_a, wide_b, atol=atol, rtol=rtol, equal_nan=True))
    changed = int(np.count_nonzero(~np.isclose(wide_a, wide_b, atol=0, rtol=0, equal_nan=True)))
    return close, f"{changed} of {a.size} elements differ, max |a-b| = {max_abs:.6g}"


def _diff(args: argparse.Namespace) -> int:
    a, b = CheckpointReader(args.a), CheckpointReader(args.b)
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
    sizes_a, sizes_b = _sizes(a), _sizes(b)
    sys.stdout.flush()
    with _Progress("comparing", sum(sizes_a[n] + sizes_b[n] for n in comparable), "rchar") as progress:
        for name in common:
            if (dtypes_a[name], shapes_a[name]) != (dtypes_b[name], shapes_b[name]):
                progress.print(f"changed: {name} {dtypes_a[name].name} {shapes_a[name]} -> {dtypes_b[name].name} {shapes_b[name]}")
                different += 1
                continue
            value_a, value_b = _as_array(a.get_tensor(name)), _as_array(b.get_tensor(name))
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

def _read_tensors(src: str) -> Dict[str, np.ndarray]:
    """All tensors of a checkpoint, .safetensors or .npz file."""
    if src.endswith(".safetensors"):
        _import_safetensors()
        from safetensors import safe_open

        if not os.path.isfile(src):
            raise errors.NotFoundError(f"no such file: {src}", src)
        tensors = {}
        with safe_open(src, "np") as f, _Progress("reading", os.path.getsize(src)) as progress:
            metadata = f.metadata() or {}
            names = list(f.keys())
            if any(f.get_slice(name).get_dtype() == "BF16" for name in names):
                import ml_dtypes  # noqa: F401 - safetensors' numpy loader needs numpy to know "bfloat16"
            for name in names:
                try:
                    tensors[name] = f.get_tensor(name)
                except AttributeError:  # safetensors' numpy loader lacks the float8 types
                    tensors[name] = _read_safetensors_float8(src, name)
                progress.advance(_nbytes(tensors[name]))
        for key, value in metadata.items():
            if key.startswith(_STRING_METADATA_PREFIX):
                stored = json.loads(value)
                strings = np.empty(len(stored["values"]), dtype=object)
                strings[:] = [base64.b64decode(s) for s in stored["values"]]
                tensors[key[len(_STRING_METADATA_PREFIX):]] = strings.reshape(stored["shape"])
        return tensors
    if src.endswith(".npz"):
        if not os.path.isfile(src):
            raise errors.NotFoundError(f"no such file: {src}", src)
        tensors = {}
        with np.load(src, allow_pickle=False) as npz:
            total = sum(info.file_size for info in npz.zip.infolist())
            with _Progress("reading", total, "rchar") as progress:
                for name in npz.files:
                    tensors[name] = npz[name]
                    progress.advance(_nbytes(tensors[name]))
        return tensors
    reader = CheckpointReader(src)
    sizes = _sizes(reader)
    total = sum(sizes.values())
    tensors = {}
    # In batches, each read in parallel by get_tensors, so that the bar moves.
    with _Progress("reading", total, "rchar") as progress:
        for batch in _batches(sorted(sizes), sizes, _batch_bytes(total)):
            for name, value in reader.get_tensors(batch).items():
                tensors[name] = _as_array(value)
            progress.advance(sum(sizes[name] for name in batch))
    return tensors


def _as_array(value) -> np.ndarray:
    """A tensor value as an array; a string scalar (bytes) as a 0-d object array, keeping its NUL bytes."""
    if isinstance(value, bytes):
        array = np.empty((), dtype=object)
        array[()] = value
        return array
    return np.asarray(value)


def _read_safetensors_float8(path: str, name: str) -> np.ndarray:
    """One float8 tensor of a .safetensors file, read from the offsets its header gives."""
    import ml_dtypes

    dtypes = {"F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2}
    with open(path, "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        info = json.loads(f.read(header_size))[name]
        if info["dtype"] not in dtypes:
            raise errors.UnimplementedError(f"cannot read {info['dtype']} tensor {name!r} from {path}", path, name)
        start, end = info["data_offsets"]
        f.seek(8 + header_size + start)
        data = f.read(end - start)
    return np.frombuffer(data, dtype=dtypes[info["dtype"]]).reshape(info["shape"])


def _import_safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise errors.InvalidArgumentError("converting to or from .safetensors needs the safetensors package (pip install safetensors)") from None
    return safetensors.numpy


def _convert(args: argparse.Namespace) -> int:
    tensors = _read_tensors(args.src)
    dst = args.dst
    if dst.endswith(".safetensors"):
        safetensors_numpy = _import_safetensors()
        arrays, metadata = {}, {}
        for name, value in tensors.items():
            if value.dtype == object:
                metadata[_STRING_METADATA_PREFIX + name] = json.dumps(
                    {"shape": list(value.shape), "values": [base64.b64encode(s).decode() for s in value.reshape(-1)]}
                )
            elif value.dtype.name in _SAFETENSORS_DTYPES:
                arrays[name] = np.require(value, requirements="C")
            else:
                warnings.warn(f"skipping {name!r}: safetensors cannot hold {value.dtype.name}")
        with _Progress("writing", sum(map(_nbytes, arrays.values())), "wchar"):
            safetensors_numpy.save_file(arrays, dst, metadata=metadata or None)
        if metadata:
            print(f"{len(metadata)} string tensor(s) stored in the safetensors metadata", file=sys.stderr)
    elif dst.endswith(".npz"):
        arrays = {}
        for name, value in tensors.items():
            if value.dtype == object:
                # npz holds strings only as fixed-width bytes, which drop trailing NULs.
                if any(s.endswith(b"\0") for s in value.reshape(-1)):
                    warnings.warn(f"skipping string tensor {name!r}: an element ends with a NUL byte, which .npz drops")
                    continue
                value = value.astype(bytes)
            elif value.dtype.name in _NPZ_WIDENED:
                wider = _NPZ_WIDENED[value.dtype.name]
                warnings.warn(f"{name!r}: .npz cannot hold {value.dtype.name}; stored exactly as {wider}")
                value = value.astype(wider)
            arrays[name] = value
        with _Progress("writing", sum(map(_nbytes, arrays.values())), "wchar"):
            np.savez(dst, **arrays)
    else:
        from .writer import CheckpointWriter

        for name, value in tensors.items():
            if value.dtype.kind == "S":
                tensors[name] = value.astype(object)
        sizes = {name: _nbytes(value) for name, value in tensors.items()}
        total = sum(sizes.values())
        # In batches, each written by add_tensors (in parallel, without the GIL), so that the bar moves.
        with _Progress("writing", total, "wchar") as progress, CheckpointWriter(dst) as writer:
            for batch in _batches(sorted(tensors), sizes, _batch_bytes(total)):
                writer.add_tensors([(name, tensors[name]) for name in batch])
                progress.advance(sum(sizes[name] for name in batch))
    print(f"wrote {len(tensors)} tensors to {dst}")
    return 0


# freeze ----------------------------------------------------------------------------------------------------

def _freeze(args: argparse.Namespace) -> int:
    from .graphs import convert_variables_to_constants, extract_sub_graph, read_meta_graph, write_graph

    meta = read_meta_graph(args.meta)
    outputs = [name.strip() for name in args.outputs.split(",") if name.strip()]
    reader = CheckpointReader(args.checkpoint)
    sizes = _sizes(reader)
    needed = {node.name for node in extract_sub_graph(meta.graph_def, outputs).node}
    with _Progress("freezing", sum(size for name, size in sizes.items() if name in needed), "rchar") as progress:
        read = reader.get_tensor

        def get_tensor(name: str):  # counts the bytes of each variable read
            value = read(name)
            progress.advance(sizes.get(name, 0))
            return value

        reader.get_tensor = get_tensor  # type: ignore[method-assign]
        frozen = convert_variables_to_constants(meta.graph_def, reader, outputs)
    directory, name = os.path.split(os.path.abspath(args.output))
    as_text = args.output.endswith(".pbtxt")
    with _Progress("writing", frozen.ByteSize(), "wchar"):
        write_graph(frozen, directory, name, as_text=as_text)
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
        shape = "(" + ", ".join(str(d.size) for d in info.tensor_shape.dim) + ("," if len(info.tensor_shape.dim) == 1 else "") + ")"
    return f"    {key}: dtype {dtype}, shape {shape}, name {info.name or info.WhichOneof('encoding')}"


def _saved_model_show(args: argparse.Namespace) -> int:
    from . import saved_model

    tag_sets = saved_model.tag_sets(args.dir)
    if not args.tag_set and not args.all:
        print("tag sets of this SavedModel:")
        for tags in tag_sets:
            print("  " + ",".join(tags))
        return 0
    selected = [args.tag_set.split(",")] if args.tag_set else tag_sets
    for tags in selected:
        model = saved_model.load(args.dir, tags=tags)
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

class _VersionAction(argparse.Action):
    """``--version``: the version is looked up only when asked for (importlib.metadata is slow to import)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__

        print(f"fastckpt {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastckpt", description="TensorFlow checkpoints, graphs and SavedModels without TensorFlow.")
    parser.add_argument("--version", action=_VersionAction, help="print the version of fastckpt and exit")
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser("inspect", help="list the tensors of a checkpoint, and values on request")
    inspect.add_argument("path", nargs="?", help="checkpoint prefix, V1 file, checkpoint directory or SavedModel")
    inspect.add_argument("--example", action="store_true", help="inspect the example checkpoint shipped with fastckpt")
    inspect.add_argument("--tensor", action="append", metavar="NAME", help="print the value of NAME (repeatable)")
    inspect.add_argument("--all", action="store_true", help="print the values of all tensors")
    inspect.add_argument("--threshold", type=int, default=1000, help="elements printed in full before numpy elides")
    inspect.set_defaults(run=_inspect)

    diff = commands.add_parser("diff", help="per-tensor differences of two checkpoints (exit status 1 if any)")
    diff.add_argument("a")
    diff.add_argument("b")
    diff.add_argument("--atol", type=float, default=0.0, help="absolute tolerance for numeric tensors")
    diff.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numeric tensors")
    diff.add_argument("-v", "--verbose", action="store_true", help="also list the tensors that are the same")
    diff.set_defaults(run=_diff)

    convert = commands.add_parser("convert", help="checkpoint to or from .safetensors / .npz, chosen by DST")
    convert.add_argument("src", help="a checkpoint (any path inspect takes), a .safetensors or a .npz file")
    convert.add_argument("dst", help="a .safetensors or .npz file, or a checkpoint prefix to write")
    convert.set_defaults(run=_convert)

    freeze = commands.add_parser("freeze", help="turn a graph's variables into constants from a checkpoint")
    freeze.add_argument("--meta", required=True, help="the .meta MetaGraphDef (binary or text)")
    freeze.add_argument("--checkpoint", required=True, help="the checkpoint holding the values")
    freeze.add_argument("--outputs", required=True, help="comma-separated output node names")
    freeze.add_argument("-o", "--output", required=True, help="the frozen GraphDef to write (.pb, or .pbtxt for text)")
    freeze.set_defaults(run=_freeze)

    saved_model = commands.add_parser("saved-model", help="SavedModel commands")
    saved_model_commands = saved_model.add_subparsers(dest="saved_model_command", required=True)
    show = saved_model_commands.add_parser("show", help="tag sets, signatures, inputs and outputs")
    show.add_argument("dir", help="the SavedModel directory")
    show.add_argument("--tag-set", "--tag_set", help="comma-separated tags of one meta graph")
    show.add_argument("--signature-def", "--signature_def", help="show only this signature")
    show.add_argument("--all", action="store_true", help="show every tag set and signature")
    show.set_defaults(run=_saved_model_show)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        return 0
    except (errors.OpError, OSError) as err:
        print(f"fastckpt: error: {err}", file=sys.stderr)
        return 2
