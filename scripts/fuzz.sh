#!/usr/bin/env bash
# Fuzzes the decoders of untrusted Kafka input (not part of the test suite):
# the Confluent wire-format header, Avro and JSON Schema records, Debezium
# change events and JSON records with nested field paths (src/fuzzing.rs).
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (600) each
#   scripts/fuzz.sh avro debezium   some of them
# Needs the nightly toolchain (rustup toolchain install nightly); installs
# cargo-fuzz (pinned) into .tools/cargo-fuzz. Corpora grow in fuzz/corpus/
# (not committed); a crash leaves its input in fuzz/artifacts/ and exits 1.
# Prints, per target, the executions, the corpus size and whether it crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH="${FUZZ_SECONDS:-600}"
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(wire_format avro protobuf json_schema debezium json_record)

if [[ ! -x .tools/cargo-fuzz/bin/cargo-fuzz ]]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --quiet --locked --root .tools/cargo-fuzz cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
export PATH="$PWD/.tools/cargo-fuzz/bin:$PATH"
rustup run nightly rustc --version >/dev/null 2>&1 || {
  echo "fuzz: the nightly toolchain is missing; run: rustup toolchain install nightly" >&2; exit 1; }

# Seeds: one good input per target.
seed() { # target, file name, bytes (printf format)
  mkdir -p "fuzz/corpus/$1"
  # shellcheck disable=SC2059
  printf "$3" > "fuzz/corpus/$1/$2"
}
seed wire_format framed '\x00\x00\x00\x00\x01\x02'
seed avro record '\x02\x01\x06abc\x00\x00\x00\x00\x00\x00\xf0\x3f\x04\x00\x00\x00\x00\x01\x02x\x00\x02\x02a\x04\x00\x00\x00\x00\x00\x00\x00\x02\x02\x02\x00\x00\x02\x04\x02\x02t'
seed protobuf doc '\x02\x02\x08\x07\x12\x02hi\x1a\x03\x0a\x01t'
seed json_schema doc '{"id": 1, "body": "text", "meta": {"title": "t"}, "tags": ["a"]}'
seed debezium update '{"schema": {}, "payload": {"op": "u", "before": {"id": 1}, "after": {"id": 1, "body": "new", "meta": {"title": "t"}}}}'
seed json_record nested '{"id": "a", "body": "text", "meta": {"title": "t"}, "tags": ["x"]}'

status=0
summary=()
for target in "${TARGETS[@]}"; do
  log="fuzz/$target.log"
  echo "fuzz: $target for ${SECONDS_EACH}s (log: $log)" >&2
  if cargo +nightly fuzz run --sanitizer none "$target" "fuzz/corpus/$target" -- \
      -max_total_time="$SECONDS_EACH" -print_final_stats=1 > "$log" 2>&1; then
    outcome="no crash"
  else
    outcome="CRASHED (see $log and fuzz/artifacts/$target/)"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
  summary+=("$target: ${runs:-?} executions in ${SECONDS_EACH}s, corpus $corpus inputs, $outcome")
done
printf '%s\n' "${summary[@]}"
exit $status
