#!/usr/bin/env bash
# Runs every test of fastckpt on a fresh machine: installs the package with its test dependencies
# (TensorFlow among them, as the oracle of the interop tests), then the Rust tests, then the Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check ".[test]"
cargo test --package fastckpt --locked
python3 -m pytest tests "$@"
