#!/usr/bin/env bash
# Builds the Python wheel of vecpipe (maturin, `bindings = "bin"`: the binary
# plus the runtime dependencies pyproject.toml declares) into target/wheels/.
#   scripts/wheel.sh                  the release wheel (`vecpipe --version` says so)
#   scripts/wheel.sh --profile dev    a quick one (what tests/wheel.sh installs)
#   WHEEL_OUT=DIR                     where to put it (default target/wheels)
# Reproducible: Cargo.lock is enforced (--locked) and maturin is pinned. The
# platform tag is the newest manylinux policy the binary meets (maturin
# audits its glibc symbols; it links only libc, libm and libgcc_s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh wheel > /dev/null
# The release profile unless a --profile is given (maturin's own default is dev).
profile=(--release)
for arg in "$@"; do
  [[ "$arg" == --profile* ]] && profile=()
done
.venv/bin/maturin build --locked --strip "${profile[@]}" --out "${WHEEL_OUT:-target/wheels}" "$@"
