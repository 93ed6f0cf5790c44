#!/usr/bin/env bash
# The code checks CI runs after the tests (scripts/test.sh, which makes .test-env/ with the tools used here):
# Rust formatting and clippy, Python lint (with a cap on functions' complexity, ruff's C901) and formatting under
# pyproject.toml's ruff settings, and the extension's type stub against the built extension.
set -euo pipefail
cd "$(dirname "$0")/.."

python=.test-env/bin/python
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
"$python" -m ruff check python tests benches scripts
"$python" -m ruff format --check python tests benches scripts
"$python" -m mypy.stubtest fastckpt._fastckpt
