"""Processes a test starts: Python code in a fresh interpreter with its arguments, a helper module run as a
program, the command line, a group of processes that work together on a free port."""

import json
import socket
import subprocess
import sys
import time

import pytest

from helpers.paths import HELPERS


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now (the server that takes it may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_command(code: str, *args) -> list:
    """The command that runs ``code`` in a fresh interpreter of this Python, ``args`` (each as a string) being its
    ``sys.argv[1:]``."""
    return [sys.executable, "-c", code, *map(str, args)]


def run_python(code: str, *args):
    """Runs ``code`` in a fresh interpreter (``args`` its ``sys.argv[1:]``); it ends by printing one JSON value,
    which is returned."""
    done = subprocess.run(python_command(code, *args), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_helper(script: str, *args, env=None, timeout=None) -> None:
    """Runs ``tests/helpers/<script>`` as a program of its own, ``args`` (each as a string) its arguments; it must
    succeed (the end of its stderr says why not)."""
    done = subprocess.run(
        [sys.executable, str(HELPERS / script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-5000:]


def run_cli(*args, **options) -> subprocess.CompletedProcess:
    """``fastckpt ARGS`` (``python -m fastckpt``, each argument as a string), its output captured as text;
    ``options`` go to subprocess.run (env, cwd, timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "fastckpt", *map(str, args)], capture_output=True, text=True, **options
    )


def run_processes(commands, timeout, what, env=None):
    """Runs ``commands`` (argument lists: processes that work together, as the ranks of a group) at once and
    returns each one's ``(exit code, report, stderr)``, the report being the JSON of its ``REPORT `` line (None
    without one). If they are not all done within ``timeout`` seconds, all are killed and the test fails with
    their stderr: a hung group never hangs the tests."""
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for command in commands
    ]
    results = []
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            try:
                out, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                for other in processes:
                    other.kill()
                errors = [other.communicate()[1][-3000:] for other in processes]
                pytest.fail(f"{what} hung for {timeout} s; stderr of each process:\n" + "\n---\n".join(errors))
            report = [json.loads(line[len("REPORT ") :]) for line in out.splitlines() if line.startswith("REPORT ")]
            results.append((process.returncode, report[0] if report else None, err[-5000:]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def run_worker_group(worker: str, directory, world: int, argument: str, timeout, what, env=None):
    """Runs the Python code ``worker`` in ``world`` processes that work as one group, meeting on a free port of
    loopback: each one's ``sys.argv[1:]`` is ``directory rank world port argument``. Returns each one's
    ``(exit code, report, stderr)`` (see run_processes)."""
    port = free_port()
    commands = [python_command(worker, directory, rank, world, port, argument) for rank in range(world)]
    return run_processes(commands, timeout, what, env)
