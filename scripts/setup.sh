#!/usr/bin/env bash
# Installs what vecpipe needs on a fresh machine. Idempotent: a second run
# only checks. Usage: scripts/setup.sh [test]
#   (no argument)  what the quickstart needs: the Rust toolchain
#   test           also a Python venv (.venv) with pymilvus-model, the
#                  reference the BM25 interoperability test compares against
set -euo pipefail
cd "$(dirname "$0")/.."

need_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust with rustup (https://rustup.rs) and run this again" >&2
    exit 1
  fi
}

# Pinned: the versions the tests were written against.
PYTHON_REQUIREMENTS=(pymilvus-model==0.3.4 requests==2.34.2)
VENV=.venv
STAMP="$VENV/.vecpipe-requirements"

need_python_venv() {
  local wanted
  wanted="${PYTHON_REQUIREMENTS[*]}"
  if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]]; then
    return
  fi
  local python
  python="$(command -v python3 || true)"
  if [[ -z "$python" ]]; then
    echo "setup: python3 not found; install Python 3.9+ and run this again" >&2
    exit 1
  fi
  echo "setup: creating $VENV with ${wanted}" >&2
  "$python" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_REQUIREMENTS[@]}"
  echo "$wanted" > "$STAMP"
}

need_cargo
case "${1:-}" in
  "") ;;
  test) need_python_venv ;;
  *) echo "usage: scripts/setup.sh [test]" >&2; exit 2 ;;
esac
