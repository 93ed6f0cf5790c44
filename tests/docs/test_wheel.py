"""fastckpt as a wheel: installed into fresh virtual environments of the oldest and the newest Python it supports,
with no Rust on the PATH, it runs the README's first command as the checkout does.

The wheel is the one FASTCKPT_WHEEL names (built before, as the release workflow builds them), or one built here
from the checkout by pip, as ``pip install .`` builds (release mode, into target/): after scripts/test.sh's
install only its packaging is left to do, a few seconds. Each Python is found as pyenv's or as python3.X on the
PATH; a test whose Python is missing skips, and fails in CI (CI=true). Installing needs the package index (for
numpy, protobuf and ml_dtypes, as wheels).
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
from helpers.object_stores import in_ci
from helpers.paths import ROOT
from helpers.processes import run_cli

# The oldest Python pyproject.toml's requires-python allows, and the newest the test machines have (pyenv's).
PYTHONS = ["3.9", "3.13"]
INSTALL_TIMEOUT = 600  # seconds to install the wheel and its dependencies into a fresh environment
BUILD_TIMEOUT = 3600  # seconds to build the wheel: a cold build compiles every crate (minutes on 2 cores)


def _readme_first_command() -> list:
    """The first ``fastckpt`` command of the README's shell blocks, as its words."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            for command in line.split("&&"):
                words = shlex.split(command, comments=True)
                if words[:1] == ["fastckpt"]:
                    return words
    raise AssertionError("README.md has no fastckpt command in a ```sh block")


def _interpreter(version: str) -> Optional[str]:
    """A Python ``version`` that makes virtual environments: pyenv's, else python<version> on the PATH."""
    pyenv_versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(str(path) for path in pyenv_versions.glob(f"{version}.*/bin/python{version}"))
    candidates.append(shutil.which(f"python{version}"))
    for candidate in filter(None, candidates):
        probe = [candidate, "-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"]
        done = subprocess.run(probe, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    return None


def _environment_without_rust(bin_dir: Path) -> dict:
    """This process's environment with ``bin_dir`` first on a PATH that has no cargo or rustc, and nothing
    (PYTHONPATH, a virtual environment) that would import fastckpt from elsewhere than the installed wheel."""
    rust = ("cargo", "rustc", "cargo.exe", "rustc.exe")
    folders = [
        f for f in os.environ.get("PATH", "").split(os.pathsep) if f and not any(Path(f, n).exists() for n in rust)
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(bin_dir), *folders])
    assert shutil.which("cargo", path=env["PATH"]) is None and shutil.which("rustc", path=env["PATH"]) is None
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """FASTCKPT_WHEEL's wheel, or one pip builds from the checkout."""
    given = os.environ.get("FASTCKPT_WHEEL")
    if given:
        assert Path(given).is_file(), f"FASTCKPT_WHEEL={given}: no such wheel"
        return Path(given)
    out = tmp_path_factory.mktemp("wheel")
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--disable-pip-version-check",
        "-w",
        str(out),
        str(ROOT),
    ]
    done = subprocess.run(build, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    (built,) = out.glob("fastckpt-*.whl")
    return built


@pytest.mark.parametrize("version", PYTHONS)
def test_the_wheel_runs_the_readmes_first_command_without_rust(version, wheel, tmp_path):
    python = _interpreter(version)
    if python is None:
        reason = f"no Python {version} (pyenv's, or python{version} on the PATH) to install the wheel into"
        if in_ci():
            pytest.fail(reason + " (CI=true)")
        pytest.skip(reason)
    # The wheel is for every Python from 3.9 on: one abi3 wheel, not one per version.
    assert re.fullmatch(r"fastckpt-[^-]+-cp39-abi3-[^-]+\.whl", wheel.name), wheel.name
    venv = tmp_path / f"venv{version}"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=INSTALL_TIMEOUT)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = _environment_without_rust(bin_dir)
    # Wheels only: nothing may compile (there is no Rust to compile with).
    install = [bin_dir / "python", "-m", "pip", "install", "--disable-pip-version-check", "--only-binary=:all:", wheel]
    done = subprocess.run(install, capture_output=True, text=True, env=env, timeout=INSTALL_TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    command = _readme_first_command()
    program = shutil.which(command[0], path=env["PATH"])  # the environment's, as its PATH finds it
    ran = subprocess.run([program, *command[1:]], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert ran.returncode == 0, ran.stderr
    # What the checkout's fastckpt prints, its example checkpoint being the one the wheel installed.
    expected = run_cli(*command[1:], cwd=tmp_path, timeout=120)
    assert expected.returncode == 0, expected.stderr
    installed = re.search(r"^checkpoint: (\S+)", ran.stdout, flags=re.M).group(1)
    assert Path(installed).resolve().is_relative_to(venv.resolve()), installed
    checkout = re.search(r"^checkpoint: (\S+)", expected.stdout, flags=re.M).group(1)
    assert ran.stdout == expected.stdout.replace(checkout, installed)
