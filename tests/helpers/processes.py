"""Processes a test starts."""

import json
import subprocess
import time

import pytest


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
