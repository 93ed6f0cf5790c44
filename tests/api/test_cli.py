"""The command line on real files, and on missing or broken ones."""

import io
import os
import pty
import re
import subprocess
import sys
import tempfile

import fastckpt
import numpy as np
import pytest
from helpers.checkpoints import FIXTURES, Expected, assert_same_value
from helpers.processes import run_cli


def assert_one_line_error(result):
    assert result.returncode == 2, result
    assert result.stderr.startswith("fastckpt: error:") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_inspect_fixtures():
    result = run_cli("inspect", FIXTURES / "all_dtypes" / "ckpt")
    assert result.returncode == 0, result.stderr
    assert "bfloat16" in result.stdout and "string" in result.stdout
    result = run_cli("inspect", FIXTURES / "savedmodel_tf1", "--all")
    assert result.returncode == 0 and "dense/kernel" in result.stdout


def test_diff(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    fastckpt.Saver().save({"same": [1.0, 2.0], "changed": [1.0, 2.0], "gone": [0], "s": "x"}, a, write_meta_graph=False)
    fastckpt.Saver().save({"same": [1.0, 2.0], "changed": [1.0, 2.5], "new": [0], "s": "x"}, b, write_meta_graph=False)
    result = run_cli("diff", a, b)
    assert result.returncode == 1
    assert "only in A: gone" in result.stdout and "only in B: new" in result.stdout
    assert "differs: changed: 1 of 2 elements differ, max |a-b| = 0.5" in result.stdout
    assert "same" not in result.stdout.replace("difference", "")
    assert run_cli("diff", a, a).returncode == 0
    assert run_cli("diff", a, b, "--atol", "1").stdout.count("differs") == 0
    assert_one_line_error(run_cli("diff", a, tmp_path / "missing"))


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_convert_round_trip(tmp_path, suffix):
    pytest.importorskip("safetensors") if suffix == ".safetensors" else None
    expected = Expected("all_dtypes")
    converted = tmp_path / f"model{suffix}"
    result = run_cli("convert", expected.path, converted)
    assert result.returncode == 0, result.stderr
    back = tmp_path / "back"
    result = run_cli("convert", converted, back)
    assert result.returncode == 0, result.stderr
    reader = fastckpt.load_checkpoint(str(back))
    for name in expected.tensors:
        original = np.asarray(expected.value(name))
        if suffix == ".npz" and original.dtype.name.startswith(("bfloat16", "float8")):
            original = original.astype(np.float32)
        if suffix == ".npz" and original.dtype.name in ("int4", "uint4"):
            original = original.astype(original.dtype.name[:-1] + "8")
        if suffix == ".npz" and original.dtype == object and any(s.endswith(b"\0") for s in original.reshape(-1)):
            assert name not in reader
            continue
        if suffix == ".safetensors" and original.dtype.name in (
            "int4",
            "uint4",
            "float8_e4m3b11fnuz",
            "float8_e4m3fnuz",
            "float8_e5m2fnuz",
            "complex128",
        ):
            assert name not in reader  # safetensors has no such dtype: skipped with a warning
            continue
        assert_same_value(reader.get_tensor(name), original, name)


def test_convert_errors(tmp_path):
    assert_one_line_error(run_cli("convert", tmp_path / "missing.npz", tmp_path / "out"))
    assert_one_line_error(run_cli("convert", tmp_path / "missing", tmp_path / "out.npz"))


# The command line in a fresh interpreter where FRAMEWORK cannot be imported, as where it is not installed.
_WITHOUT = """
import sys
sys.modules[sys.argv[1]] = None  # import raises ImportError
from fastckpt.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_cli_without(framework, *args):
    return subprocess.run([sys.executable, "-c", _WITHOUT, framework, *map(str, args)], capture_output=True, text=True)


def test_convert_says_what_to_install_for_a_framework_it_lacks(tmp_path):
    example = fastckpt.examples.model_path()
    result = run_cli_without("torch", "convert", example, tmp_path / "out.pt")
    assert_one_line_error(result)
    assert f"writing {tmp_path / 'out.pt'}, a torch state dict, needs torch" in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith("pip install 'fastckpt[torch]'"), result.stderr
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "weights.pt")
    result = run_cli_without("torch", "convert", tmp_path / "weights.pt", tmp_path / "out.npz")
    assert_one_line_error(result)
    assert f"reading {tmp_path / 'weights.pt'}, a torch file, needs torch" in result.stderr, result.stderr
    result = run_cli_without("keras", "convert", fastckpt.examples.model_dir(), tmp_path / "model.keras")
    assert_one_line_error(result)
    assert "pip install 'fastckpt[keras]'" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]  # nothing written
    # The error is also the ImportError that importing the framework raises, for code that catches that.
    from fastckpt import _optional

    with pytest.raises(ImportError) as info:
        _optional.require("no_such_framework", "this")
    assert isinstance(info.value, fastckpt.errors.MissingDependencyError)


def test_convert_to_a_prefix_names_the_files_written(tmp_path):
    out = tmp_path / "converted"
    result = run_cli("convert", fastckpt.examples.model_path(), out)
    assert result.returncode == 0, result.stderr
    written = [f"{out}.data-00000-of-00001", f"{out}.index"]
    assert result.stdout == f"wrote 2 tensors to the checkpoint {out}: {', '.join(written)}\n"
    assert sorted(str(p) for p in tmp_path.iterdir()) == written
    # Relative to the working directory, as given.
    result = run_cli("convert", fastckpt.examples.model_path(), "again", cwd=tmp_path)
    assert result.stdout == "wrote 2 tensors to the checkpoint again: again.data-00000-of-00001, again.index\n"


def test_inspect_of_a_truncated_data_file_is_an_error(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    fastckpt.Saver().save({"a": np.zeros(100, np.float32), "b": np.ones(50, np.float32)}, prefix)
    with open(prefix + ".data-00000-of-00001", "r+b") as f:
        f.truncate(500)
    result = run_cli("inspect", prefix)
    assert_one_line_error(result)
    assert result.stdout == ""
    for words in ("holds 500 bytes, but the index needs 600", 'tensor "b"', ".data-00000-of-00001"):
        assert words in result.stderr, result.stderr


def test_freeze(tmp_path):
    expected = Expected("tf1_saver_ref")
    meta = FIXTURES / "tf1_saver_ref" / "model.ckpt.meta"
    graph = fastckpt.read_meta_graph(meta).graph_def
    variable = next(node.name for node in graph.node if node.op == "VariableV2")
    out = tmp_path / "frozen.pb"
    result = run_cli(
        "freeze", "--meta", meta, "--checkpoint", expected.path, "--outputs", f"{variable}/read", "-o", out
    )
    assert result.returncode == 0, result.stderr
    frozen = fastckpt.read_graph(out)
    assert {node.op for node in frozen.node} == {"Const", "Identity"}
    assert_one_line_error(
        run_cli("freeze", "--meta", meta, "--checkpoint", expected.path, "--outputs", "nope", "-o", out)
    )


def test_saved_model_show():
    result = run_cli("saved-model", "show", FIXTURES / "savedmodel_tf2")
    assert result.returncode == 0 and "serve" in result.stdout
    result = run_cli("saved-model", "show", FIXTURES / "savedmodel_tf2", "--tag_set", "serve")
    assert result.returncode == 0, result.stderr
    assert (
        "signature 'serving_default'" in result.stdout
        and "inputs:" in result.stdout
        and "dtype float32" in result.stdout
    )
    assert_one_line_error(run_cli("saved-model", "show", FIXTURES / "savedmodel_tf2", "--tag_set", "train"))
    assert_one_line_error(run_cli("saved-model", "show", FIXTURES / "tf1_saver_ref"))


def test_version_and_help():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout == f"fastckpt {fastckpt.__version__}\n", result
    result = run_cli("--help")
    assert result.returncode == 0 and "--version" in result.stdout and "convert" in result.stdout


# Progress bars -------------------------------------------------------------------------------------------


def run_on_terminal(*args):
    """Runs the command line with stderr on a pseudo-terminal and stdout piped; returns (status, stdout,
    what the terminal received)."""
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "fastckpt", *map(str, args)], stdin=subprocess.DEVNULL, stdout=stdout, stderr=slave
        )
        os.close(slave)
        received = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            received += chunk
        os.close(master)
        status = process.wait(timeout=300)
        stdout.seek(0)
        return status, stdout.read().decode(), received.decode()


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory):
    """A checkpoint of 112 MiB (more than the 100 MiB from which progress shows), with a string tensor."""
    prefix = str(tmp_path_factory.mktemp("big") / "model.ckpt")
    rng = np.random.default_rng(0)
    with fastckpt.CheckpointWriter(prefix) as writer:
        writer.add_tensors({f"layer_{i}/kernel": rng.standard_normal((1024, 4096), dtype=np.float32) for i in range(7)})
        writer.add("names", np.array([b"a", b"b"], dtype=object))
    return prefix


def drawn(terminal, label):
    """The lines drawn on the terminal for the bar called ``label``, in order (each redraw is one)."""
    lines = [line.replace("\x1b[K", "") for line in re.split(r"[\r\n]+", terminal)]
    return [line for line in lines if line.startswith(label + " [")]


def assert_progress(terminal, label, total="112.0 MiB"):
    lines = drawn(terminal, label)
    assert lines, terminal
    assert re.fullmatch(rf"{label} \[#{{10,30}}\] {total} in \d+\.\d s, [\d.]+ [KMG]iB/s", lines[-1]), lines[-1]
    for line in lines[:-1]:  # redraws while it ran
        assert re.fullmatch(
            rf"{label} \[[#.]{{10,30}}\] [\d.]+ (B|[KMG]iB) / {total}  [\d.]+ (B|[KMG]iB)/s( +\d+:\d\d left)?", line
        ), line


@pytest.mark.parametrize("suffix", ["", ".npz", ".safetensors"])
def test_convert_shows_progress_on_a_terminal(big_checkpoint, tmp_path, suffix):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    out = tmp_path / f"out{suffix}"
    status, stdout, terminal = run_on_terminal("convert", big_checkpoint, out)
    assert status == 0, terminal
    assert stdout.startswith(f"wrote 8 tensors to {'the checkpoint ' if suffix == '' else ''}{out}")
    assert_progress(terminal, "converting")
    if suffix == "":
        assert run_cli("diff", big_checkpoint, out).returncode == 0
    # Back from the converted file, and again piped: no progress text at all.
    back = tmp_path / "back"
    status, stdout, terminal = run_on_terminal("convert", out, back)
    assert status == 0, terminal
    assert_progress(terminal, "converting")
    result = run_cli("convert", big_checkpoint, tmp_path / f"piped{suffix}")
    note = "1 string tensor(s) stored in the safetensors metadata\n" if suffix == ".safetensors" else ""
    assert result.returncode == 0 and result.stderr == note, result.stderr
    assert result.stdout.startswith(f"wrote 8 tensors to {'the checkpoint ' if suffix == '' else ''}{tmp_path}")


def test_diff_inspect_and_freeze_show_progress_on_a_terminal(big_checkpoint, tmp_path):
    status, stdout, terminal = run_on_terminal("diff", big_checkpoint, big_checkpoint)
    assert status == 0 and stdout == "0 difference(s) in 8 tensors\n", (stdout, terminal)
    assert_progress(terminal, "comparing", "224.0 MiB")
    assert run_cli("diff", big_checkpoint, big_checkpoint).stderr == ""

    status, stdout, terminal = run_on_terminal("inspect", big_checkpoint, "--all", "--threshold", "4")
    assert status == 0 and stdout.count("\ntensor: ") == 8, stdout
    assert_progress(terminal, "reading")
    result = run_cli("inspect", big_checkpoint, "--all", "--threshold", "4")
    assert result.stdout == stdout and result.stderr == ""

    saved = str(tmp_path / "train" / "model.ckpt")
    values = fastckpt.load_checkpoint(big_checkpoint).get_tensors()
    fastckpt.Saver().save({k: v for k, v in values.items() if k != "names"}, saved)
    frozen = tmp_path / "frozen.pb"
    outputs = ",".join(f"layer_{i}/kernel/read" for i in range(7))
    status, stdout, terminal = run_on_terminal(
        "freeze", "--meta", saved + ".meta", "--checkpoint", saved, "--outputs", outputs, "-o", frozen
    )
    assert status == 0, terminal
    assert_progress(terminal, "freezing")
    assert drawn(terminal, "writing")
    assert stdout.startswith(f"wrote {frozen}: ")


def test_no_progress_below_100_mib_or_on_error(tmp_path):
    status, stdout, terminal = run_on_terminal("inspect", "--example", "--all")
    assert status == 0 and "tensor: v1" in stdout and terminal == "", terminal
    status, stdout, terminal = run_on_terminal("inspect", tmp_path / "missing")
    assert status == 2 and terminal.startswith("fastckpt: error:") and terminal.count("\n") == 1, terminal


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line(monkeypatch):
    from fastckpt import cli

    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = cli.progress.Progress("reading", 200 << 20)
    progress._stop.set()  # no redraws from the thread: the line is drawn here, at a chosen moment
    progress._thread.join()
    progress._start -= 2.0
    progress.advance(100 << 20)
    line = progress._line(progress._done_now(), final=False)
    match = re.fullmatch(r"reading \[(#+)(\.+)\] 100.0 MiB / 200.0 MiB  (4\d\.\d|50\.0) MiB/s  0:02 left", line)
    assert match and len(match[1]) == (len(match[1]) + len(match[2])) // 2 and len(line) < 80, (
        line
    )  # half done, on 80 columns
    progress._stop.clear()
    progress.close()
    assert re.search(r"\rreading \[#+\] 200.0 MiB in 2.0 s, (9\d\.\d|100\.0) MiB/s\x1b\[K\n$", terminal.getvalue()), (
        terminal.getvalue()
    )
    assert cli.progress.Progress("reading", 99 << 20).enabled is False
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert cli.progress.Progress("reading", 1 << 30).enabled is False
