#!/usr/bin/env bash
# Runs every test of fastckpt on a fresh machine: the Rust tests, then the Python tests.
# The Python side runs in a virtual environment of its own, .test-env/ inside the checkout (ignored by git),
# into which fastckpt and its test dependencies are installed (TensorFlow among them, as the oracle of the
# interop tests): the environment you installed fastckpt into stays as it was.
# Arguments are passed to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

env_dir=.test-env
if [ ! -x "$env_dir/bin/python" ]; then
    python3 -m venv "$env_dir"
fi
python="$env_dir/bin/python"
"$python" -m pip install --quiet --disable-pip-version-check ".[test]"
cargo test --package fastckpt --locked
"$python" -m pytest tests "$@"
