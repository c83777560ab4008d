#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then formatting,
# lints, unit and integration tests, then the Python wheel installed into a
# fresh venv and run (tests/wheel.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets
bash tests/wheel.sh
