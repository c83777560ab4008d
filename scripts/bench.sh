#!/usr/bin/env bash
# Throughput benchmarks, each run side by side with its reference.
#   scripts/bench.sh [dense|int8|e2e|bm25|languages|milvus|milvus-real|kafka|kafka-avro|backfill|eval|incremental|import|all]   (default: all)
#   BENCH_SENTENCES=2000 BENCH_MILVUS_ROWS=20000 BENCH_ROWS=1000000 BENCH_BM25_ROWS=100000
#   BENCH_DENSE_BACKFILL_ROWS=50000 BENCH_E2E_TEXTS=2000 BENCH_LANGUAGE_ROWS=20000 BENCH_AVRO_ROWS=200000 BENCH_EVAL_DOCS=5000 BENCH_INCREMENTAL_DOCS=20000
#   control the sizes.
# Work files go to ${BENCH_DIR:-target/bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
cargo build --release --quiet
vecpipe="$PWD/target/release/vecpipe"
python="$PWD/.venv/bin/python"
# Absolute, since paths in a pipeline file are relative to the file.
dir="$(realpath -m "${BENCH_DIR:-target/bench}")"
mkdir -p "$dir"
what="${1:-all}"

# Peak RSS (MiB) and wall seconds of a command, from /usr/bin/time -v.
timed() {
  local log="$dir/time.log"
  /usr/bin/time -v "$@" > "$dir/last.out" 2> "$log" || { cat "$log" >&2; exit 1; }
  rss_mib=$(awk '/Maximum resident set size/ {printf "%.0f", $6/1024}' "$log")
  wall=$(awk '/Elapsed \(wall clock\)/ {n=split($8,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$log")
}

median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }

bench_dense() {
  # fp32 parity: vecpipe (Parquet → dense → Parquet, whole run: process
  # start, model load and output included) vs the best plain Python a user
  # would write (dense_onnxruntime.py: same model.onnx, 2 intra-op threads,
  # the whole file sorted by length, batches of 64, output written; timed
  # from its model load, Python's start excluded), at three length mixes;
  # the two commands alternated 3 times, medians.
  local threads=2 model="$PWD/models/all-MiniLM-L6-v2" mix
  for mix in short:4000:6:18 medium:1500:40:90 long:600:150:260; do
    local name n lo hi
    IFS=: read -r name n lo hi <<< "$mix"
    local texts="$dir/texts-$name-$n.parquet"
    [[ -f "$texts" ]] || "$python" scripts/bench/gen_texts.py "$n" "$texts" "$lo" "$hi"
    cat > "$dir/dense-$name.yaml" <<YAML
name: bench-dense-$name
source: { type: parquet, path: $texts, id_field: id }
stages:
  - { type: dense, model: $model, threads: $threads }
sinks:
  - { type: arrow, path: $dir/dense-$name-out.parquet }
YAML
    local ours=() ref=() ours_rss=() ref_rss=() tokens secs
    for _ in 1 2 3; do
      timed "$vecpipe" run "$dir/dense-$name.yaml"; ours+=("$wall"); ours_rss+=("$rss_mib")
      timed "$python" scripts/bench/dense_onnxruntime.py "$model" "$texts" "$threads" "$dir/dense-$name-ref.parquet"
      read -r _ tokens secs < "$dir/last.out"; ref+=("$secs"); ref_rss+=("$rss_mib")
    done
    awk -v s="$name" -v n="$n" -v t="$tokens" -v a="$(median "${ours[@]}")" -v b="$(median "${ref[@]}")" \
      -v ra="$(median "${ours_rss[@]}")" -v rb="$(median "${ref_rss[@]}")" 'BEGIN {
      printf "dense fp32 %s (%d texts, %.0f tokens each, medians of 3): vecpipe %.0f tokens/s, %d MiB peak (whole run) | onnxruntime (Python, sorted, batches of 64) %.0f tokens/s, %d MiB peak | ratio %.2fx\n",
        s, n, t/n, t/a, ra, t/b, rb, b/a }'
  done
}

bench_bm25() {
  # vecpipe's bm25 stage (JSONL → bm25 → Parquet, whole run) vs pymilvus.model
  # encode_documents (encoding only: file read and analyzer set-up excluded),
  # same corpus and params, English analysis (word tokenizer, lowercase,
  # Snowball stemmer, stop words; see bm25_pymilvus.py); alternated 3 times,
  # medians.
  local rows="${BENCH_BM25_ROWS:-100000}"
  local corpus="$dir/ref-$rows.jsonl"
  [[ -f "$corpus" ]] || "$python" scripts/bench/gen_corpus.py "$rows" "$corpus"
  "$vecpipe" bm25 fit --input "$corpus" --out "$dir/ref-bm25.json" > /dev/null
  cat > "$dir/ref.yaml" <<YAML
name: bench-bm25
source: { type: jsonl, path: $corpus, id_field: id }
stages:
  - { type: bm25, params: $dir/ref-bm25.json }
sinks:
  - { type: arrow, path: $dir/ref-out.parquet }
YAML
  local ours=() ref=() ours_rss ref_rss
  for _ in 1 2 3; do
    timed "$vecpipe" run "$dir/ref.yaml"; ours+=("$wall"); ours_rss=$rss_mib
    timed "$python" scripts/bench/bm25_pymilvus.py "$dir/ref-bm25.json" "$corpus"
    ref+=("$(cut -d' ' -f2 "$dir/last.out")"); ref_rss=$rss_mib
  done
  awk -v n="$rows" -v a="$(median "${ours[@]}")" -v b="$(median "${ref[@]}")" -v ra="$ours_rss" -v rb="$ref_rss" 'BEGIN {
    printf "bm25 (%d docs, English analyzer, medians of 3): vecpipe %.0f docs/s (whole run, %d MiB peak) | pymilvus.model %.0f docs/s (encode_documents only, %d MiB peak) | ratio %.1fx\n", n, n/a, ra, n/b, rb, b/a }'
}

bench_languages() {
  # Per-language BM25 (language: on the analyzer) vs pymilvus.model's
  # build_default_analyzer for the same language: vecpipe's whole run
  # (JSONL → bm25 → Parquet) vs encode_documents only, same corpus and
  # params; documents of 2-6 sentences of the interop tests' real text;
  # alternated 3 times per language, medians.
  local rows="${BENCH_LANGUAGE_ROWS:-20000}" code ref_code
  for code in en de fr ru es it pt zh; do
    ref_code=$code; [[ $code == es ]] && ref_code=sp
    local corpus="$dir/lang-$code-$rows.jsonl"
    [[ -f "$corpus" ]] || "$python" scripts/bench/gen_language_corpus.py "$code" "$rows" "$corpus"
    "$vecpipe" bm25 fit --input "$corpus" --language "$code" --out "$dir/lang-$code.json" > /dev/null
    cat > "$dir/lang-$code.yaml" <<YAML
name: bench-lang-$code
source: { type: jsonl, path: $corpus, id_field: id }
stages:
  - { type: bm25, params: $dir/lang-$code.json, analyzer: { language: $code } }
sinks:
  - { type: arrow, path: $dir/lang-$code-out.parquet }
YAML
    local ours=() ref=()
    for _ in 1 2 3; do
      timed "$vecpipe" run "$dir/lang-$code.yaml"; ours+=("$wall")
      timed "$python" scripts/bench/bm25_pymilvus.py "$dir/lang-$code.json" "$corpus" "language=$ref_code"
      ref+=("$(cut -d' ' -f2 "$dir/last.out")")
    done
    awk -v c="$code" -v n="$rows" -v a="$(median "${ours[@]}")" -v b="$(median "${ref[@]}")" 'BEGIN {
      printf "bm25 %s (%d docs, language: %s vs build_default_analyzer, medians of 3): vecpipe %.0f docs/s (whole run) | pymilvus.model %.0f docs/s (encode_documents only) | ratio %.1fx\n", c, n, c, n/a, n/b, b/a }'
  done
}

bench_kafka_avro() {
  # Decoding Avro from Kafka: vecpipe (daemon, format: avro, no stages, a
  # JSONL sink; from partition assignment to the last row written) vs the
  # plain Python consumer (confluent-kafka Consumer + AvroDeserializer, from
  # the first message to the last decoded); same topic (Tansu, 1 partition),
  # same Schema Registry (rivven-schema), records from confluent-kafka's
  # AvroSerializer; alternated 3 times, medians.
  local rows="${BENCH_AVRO_ROWS:-200000}" port registry_port
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  registry_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .tools/tansu broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ --silent > "$dir/tansu.log" 2>&1 &
  local tansu=$!
  .tools/rivven-schema/bin/rivven-schema serve --host 127.0.0.1 --port "$registry_port" --log-level warn > "$dir/registry.log" 2>&1 &
  local registry=$!
  local brokers="127.0.0.1:$port" url="http://127.0.0.1:$registry_port"
  until curl -sf "$url/" > /dev/null; do sleep 0.1; done
  until (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; do sleep 0.1; done
  local corpus="$dir/ref-$rows.jsonl" records="$dir/avro-$rows.jsonl"
  [[ -f "$corpus" ]] || "$python" scripts/bench/gen_corpus.py "$rows" "$corpus"
  "$python" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(json.dumps({"id": str(r["id"]), "text": r["text"], "title": "t" + str(r["id"])}))' "$corpus" > "$records"
  cat > "$dir/avro.avsc" <<'AVSC'
{"type": "record", "name": "Doc", "namespace": "bench", "fields": [
  {"name": "id", "type": "string"}, {"name": "text", "type": "string"},
  {"name": "title", "type": ["null", "string"], "default": null}]}
AVSC
  "$python" -c 'from confluent_kafka.admin import AdminClient, NewTopic; import sys
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
admin.create_topics([NewTopic("avro", 1)])["avro"].result(30)' "$brokers"
  "$python" tests/python/registry_produce.py "$brokers" avro "$url" "$dir/avro.avsc" "$records" > /dev/null
  local ours=() ref=() i
  for i in 1 2 3; do
    cat > "$dir/kafka-avro.yaml" <<YAML
name: bench-kafka-avro
source: { type: kafka, brokers: '$brokers', topics: [avro], group_id: bench-avro-$i, format: avro, schema_registry: { url: '$url' }, id_field: id, metadata: [title], batch_rows: 1024 }
sinks:
  - { type: jsonl, path: $dir/kafka-avro-out.jsonl }
YAML
    daemon_until "$dir/kafka-avro.yaml" "$rows"; ours+=("$wall")
    "$python" scripts/bench/kafka_avro_python.py "$brokers" avro "$url" "bench-avro-py-$i" "$rows" > "$dir/last.out"
    ref+=("$(cut -d' ' -f2 "$dir/last.out")")
  done
  kill "$tansu" "$registry"; wait "$tansu" "$registry" 2>/dev/null || true
  awk -v n="$rows" -v a="$(median "${ours[@]}")" -v b="$(median "${ref[@]}")" 'BEGIN {
    printf "kafka-avro (%d Avro records, 1 partition, Tansu, medians of 3): vecpipe %.0f records/s (daemon, decode + JSONL) | confluent-kafka AvroDeserializer %.0f records/s (decode only) | ratio %.1fx\n", n, n/a, n/b, b/a }'
}

# Starts a Milvus Lite server on a free loopback port; sets lite_pid and lite_uri.
start_lite() {
  local data="$1" port
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -rf "$data"
  .venv/bin/milvus-lite server --data-dir "$data" --host 127.0.0.1 --port "$port" > "$data.log" 2>&1 &
  lite_pid=$!
  lite_uri="http://127.0.0.1:$port"
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    sleep 0.1
  done
  echo "Milvus Lite did not start: $(cat "$data.log")" >&2; exit 1
}

stop_lite() { kill -TERM "$lite_pid"; wait "$lite_pid" 2>/dev/null || true; }

# CPU seconds (user + system) the running Milvus Lite has used since it had used $1.
lite_cpu() { awk -v hz="$(getconf CLK_TCK)" -v since="${1:-0}" '{print ($14 + $15) / hz - since}' "/proc/$lite_pid/stat"; }

bench_milvus() {
  # vecpipe's Milvus sink (Parquet with vectors → milvus, whole run, ending
  # with a flush) vs a bare pymilvus insert of the same rows plus a flush
  # (inserts and flush only), each into a fresh Milvus Lite; alternated 3
  # times, medians.
  local rows="${BENCH_MILVUS_ROWS:-20000}" data="$dir/milvus-rows-${BENCH_MILVUS_ROWS:-20000}.parquet"
  [[ -f "$data" ]] || "$python" scripts/bench/milvus_data.py "$rows" "$data"
  local ours=() ref=() inserts=() rss=() lite_ours=() lite_ref=() before
  for _ in 1 2 3; do
    start_lite "$dir/lite-ref"
    before=$(lite_cpu)
    "$python" scripts/bench/milvus_pymilvus.py "$lite_uri" "$data" > "$dir/last.out"
    lite_ref+=("$(lite_cpu "$before")")
    stop_lite
    local insert_secs flush_secs
    read -r _ insert_secs flush_secs < "$dir/last.out"
    inserts+=("$insert_secs"); ref+=("$(awk -v a="$insert_secs" -v b="$flush_secs" 'BEGIN {print a+b}')")
    start_lite "$dir/lite-ours"
    cat > "$dir/milvus.yaml" <<YAML
name: bench-milvus
source: { type: parquet, path: $data, id_field: id, metadata: [dense, sparse], batch_rows: 4096 }
sinks:
  - { type: milvus, uri: "$lite_uri", collection: vecpipe, batch_rows: 1000 }
YAML
    before=$(lite_cpu)
    timed "$vecpipe" run "$dir/milvus.yaml"
    lite_ours+=("$(lite_cpu "$before")")
    stop_lite
    ours+=("$wall"); rss+=("$rss_mib")
  done
  awk -v n="$rows" -v a="$(median "${ours[@]}")" -v b="$(median "${ref[@]}")" -v i="$(median "${inserts[@]}")" -v r="$(median "${rss[@]}")" \
    -v la="$(median "${lite_ours[@]}")" -v lb="$(median "${lite_ref[@]}")" 'BEGIN {
    printf "milvus sink (%d rows, 384-d dense + sparse, Milvus Lite, medians of 3): vecpipe %.0f rows/s (whole run with flush, %d MiB peak) | pymilvus insert + flush %.0f rows/s (inserts alone %.0f rows/s) | ratio %.2fx | Milvus Lite CPU: %.1f s in vecpipe'"'"'s %.1f s run, %.1f s serving pymilvus\n", n, n/a, r, n/b, n/i, b/a, la, a, lb }'
}

# Starts the real Milvus 2.3.5 server (scripts/milvus_server.py) on a free
# port with a fresh data directory; sets real_pid, real_uri and real_data.
start_real() {
  local port
  real_data="$1"
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rm -rf "$real_data"
  "$python" scripts/milvus_server.py --root .tools/milvus --data "$real_data" --port "$port" > "$real_data.log" 2>&1 &
  real_pid=$!
  real_uri="http://127.0.0.1:$port"
  for _ in $(seq 900); do
    "$python" -c 'import sys; from pymilvus import MilvusClient; MilvusClient(sys.argv[1]).list_collections()' "$real_uri" 2>/dev/null && return
    kill -0 "$real_pid" 2>/dev/null || { echo "Milvus did not start: $(tail -5 "$real_data.log")" >&2; exit 1; }
    sleep 0.1
  done
  echo "Milvus did not start within 90 s" >&2; exit 1
}

# Stops it (SIGINT; killed when its graceful stop hangs).
stop_real() {
  kill -INT "$real_pid"
  for _ in $(seq 150); do kill -0 "$real_pid" 2>/dev/null || { wait "$real_pid" 2>/dev/null || true; return; }; sleep 0.1; done
  kill -KILL "$real_pid"; wait "$real_pid" 2>/dev/null || true
}

# CPU seconds (user + system) and peak RSS (MiB) of the running real server.
real_cpu() { awk -v hz="$(getconf CLK_TCK)" -v since="${1:-0}" '{print ($14 + $15) / hz - since}' "/proc/$real_pid/stat"; }
real_rss() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$real_pid/status"; }

bench_milvus_real() {
  # The Milvus sink against the real Milvus 2.3.5 server: vecpipe (Parquet
  # with vectors → milvus, dense only, whole run ending with a flush) vs a
  # bare pymilvus insert of the same rows in batches of 1,000 plus a flush,
  # each into a fresh server; alternated 3 times, medians. Then end to end:
  # Parquet → dense → the real server, vecpipe vs the plain Python script
  # (e2e_python.py without BM25).
  local rows="${BENCH_MILVUS_ROWS:-20000}" data="$dir/milvus-rows-${BENCH_MILVUS_ROWS:-20000}.parquet"
  [[ -f "$data" ]] || "$python" scripts/bench/milvus_data.py "$rows" "$data"
  cat > "$dir/milvus-real.yaml" <<YAML
name: bench-milvus-real
source: { type: parquet, path: $data, id_field: id, metadata: [dense], batch_rows: 4096 }
sinks:
  - { type: milvus, uri: "REAL_URI", collection: vecpipe, batch_rows: 1000 }
YAML
  local ours=() ref=() inserts=() rss=() cpu_ours=() cpu_ref=() srv_rss=() before
  for _ in 1 2 3; do
    start_real "$dir/real-ref"
    before=$(real_cpu)
    "$python" scripts/bench/milvus_pymilvus.py "$real_uri" "$data" dense > "$dir/last.out"
    cpu_ref+=("$(real_cpu "$before")")
    stop_real
    local insert_secs flush_secs
    read -r _ insert_secs flush_secs < "$dir/last.out"
    inserts+=("$insert_secs"); ref+=("$(awk -v a="$insert_secs" -v b="$flush_secs" 'BEGIN {print a+b}')")
    start_real "$dir/real-ours"
    sed "s|REAL_URI|$real_uri|" "$dir/milvus-real.yaml" > "$dir/milvus-real-now.yaml"
    before=$(real_cpu)
    timed "$vecpipe" run "$dir/milvus-real-now.yaml"
    cpu_ours+=("$(real_cpu "$before")"); srv_rss+=("$(real_rss)")
    stop_real
    ours+=("$wall"); rss+=("$rss_mib")
  done
  awk -v n="$rows" -v a="$(median "${ours[@]}")" -v b="$(median "${ref[@]}")" -v i="$(median "${inserts[@]}")" -v r="$(median "${rss[@]}")" \
    -v ca="$(median "${cpu_ours[@]}")" -v cb="$(median "${cpu_ref[@]}")" -v sr="$(median "${srv_rss[@]}")" 'BEGIN {
    printf "milvus sink, real Milvus 2.3.5 (%d rows, 384-d dense, medians of 3): vecpipe %.0f rows/s (whole run with flush, %d MiB peak) | pymilvus insert + flush %.0f rows/s (inserts alone %.0f rows/s) | ratio %.2fx | server: %.1f s CPU in vecpipe'"'"'s %.1f s run, %.1f s serving pymilvus, %d MiB peak RSS\n", n, n/a, r, n/b, n/i, b/a, ca, a, cb, sr }'

  local n="${BENCH_E2E_TEXTS:-2000}" model="$PWD/models/all-MiniLM-L6-v2"
  local texts="$dir/texts-e2e-$n.parquet"
  [[ -f "$texts" ]] || "$python" scripts/bench/gen_texts.py "$n" "$texts" 40 90
  cat > "$dir/e2e-real.yaml" <<YAML
name: bench-e2e-real
source: { type: parquet, path: $texts, id_field: id }
stages:
  - { type: dense, model: $model, threads: 2 }
sinks:
  - { type: milvus, uri: "REAL_URI", collection: e2e }
YAML
  local e2e_ref=() e2e_ours=() e2e_rss=()
  for _ in 1 2 3; do
    start_real "$dir/real-e2e"
    "$python" scripts/bench/e2e_python.py "$model" none "$texts" 2 "$real_uri" > "$dir/last.out"
    e2e_ref+=("$(cut -d' ' -f2 "$dir/last.out")")
    stop_real
    start_real "$dir/real-e2e"
    sed "s|REAL_URI|$real_uri|" "$dir/e2e-real.yaml" > "$dir/e2e-real-now.yaml"
    timed "$vecpipe" run "$dir/e2e-real-now.yaml"
    e2e_ours+=("$wall"); e2e_rss+=("$rss_mib")
    stop_real
  done
  awk -v n="$n" -v r="$(median "${e2e_ref[@]}")" -v a="$(median "${e2e_ours[@]}")" -v ra="$(median "${e2e_rss[@]}")" 'BEGIN {
    printf "end to end, real Milvus 2.3.5 (%d texts of ~68 tokens, Parquet → dense → Milvus, whole runs, medians of 3): plain Python %.1f s | vecpipe fp32 %.1f s (%d MiB peak): %.2fx\n", n, r, a, ra, r/a }'
}

bench_import() {
  # Bulk import vs upserts into the real Milvus 2.3.5 server: the same
  # Parquet rows with precomputed 384-d vectors (passed through as
  # `metadata: [dense]`, so no model is timed) into a fresh server each.
  # Whole runs: upserts end with the flush; an import run ends when its job
  # completed and the collection counts its rows. Alternated 3 times,
  # medians; with the server's CPU seconds and peak RSS and vecpipe's peak
  # RSS on each side. Beside them, the same rows imported by plain pymilvus
  # (import_pymilvus.py: pyarrow writes the file, then the job and the wait
  # until the rows count): its job and wait are the server's own times,
  # which bound what any client's import reaches on this server.
  local rows="${BENCH_IMPORT_ROWS:-200000}" data="$dir/milvus-rows-${BENCH_IMPORT_ROWS:-200000}.parquet"
  [[ -f "$data" ]] || "$python" scripts/bench/milvus_data.py "$rows" "$data"
  local up=() imp=() up_rss=() imp_rss=() up_cpu=() imp_cpu=() up_srv=() imp_srv=() py=() py_write=() py_job=() py_visible=() before mode extra
  for _ in 1 2 3; do
    for mode in upsert import pymilvus; do
      start_real "$dir/real-import"
      if [[ "$mode" == pymilvus ]]; then
        "$python" scripts/bench/import_pymilvus.py "$real_uri" "$data" "$dir/import-files" > "$dir/last.out"
        local write_s job_s visible_s
        read -r _ write_s job_s visible_s < "$dir/last.out"
        py_write+=("$write_s"); py_job+=("$job_s"); py_visible+=("$visible_s")
        py+=("$(awk -v a="$write_s" -v b="$job_s" -v c="$visible_s" 'BEGIN {print a+b+c}')")
        stop_real
        continue
      fi
      extra=""
      [[ "$mode" == import ]] && extra=", mode: import, import_dir: $dir/import-files"
      cat > "$dir/import-$mode.yaml" <<YAML
name: bench-import-$mode
source: { type: parquet, path: $data, id_field: id, metadata: [dense], batch_rows: 4096 }
sinks:
  - { type: milvus, uri: "$real_uri", collection: vecpipe, batch_rows: 1000$extra }
YAML
      rm -f "$dir/import-$mode.state"
      before=$(real_cpu)
      timed "$vecpipe" run "$dir/import-$mode.yaml" --state "$dir/import-$mode.state"
      if [[ "$mode" == import ]]; then
        imp+=("$wall"); imp_rss+=("$rss_mib"); imp_cpu+=("$(real_cpu "$before")"); imp_srv+=("$(real_rss)")
      else
        up+=("$wall"); up_rss+=("$rss_mib"); up_cpu+=("$(real_cpu "$before")"); up_srv+=("$(real_rss)")
      fi
      stop_real
    done
  done
  awk -v n="$rows" -v u="$(median "${up[@]}")" -v i="$(median "${imp[@]}")" \
    -v ur="$(median "${up_rss[@]}")" -v ir="$(median "${imp_rss[@]}")" \
    -v uc="$(median "${up_cpu[@]}")" -v ic="$(median "${imp_cpu[@]}")" \
    -v us="$(median "${up_srv[@]}")" -v is="$(median "${imp_srv[@]}")" \
    -v p="$(median "${py[@]}")" -v pw="$(median "${py_write[@]}")" -v pj="$(median "${py_job[@]}")" -v pv="$(median "${py_visible[@]}")" 'BEGIN {
    printf "bulk import, real Milvus 2.3.5 (%d rows, 384-d dense precomputed, whole runs, medians of 3): import %.0f rows/s (%.1f s; vecpipe %d MiB peak; server %.1f s CPU, %d MiB peak RSS) | upserts %.0f rows/s (%.1f s; vecpipe %d MiB peak; server %.1f s CPU, %d MiB peak RSS) | ratio %.2fx | plain pymilvus import %.0f rows/s (%.1f s: pyarrow write %.1f s, job %.1f s, until counted %.1f s; the job and the wait alone: %.2fx upserts)\n", n, n/i, i, ir, ic, is, n/u, u, ur, uc, us, u/i, n/p, p, pw, pj, pv, u/(pj+pv) }'
}

# Runs the daemon on $1 until its sinks have written $2 records; sets wall,
# timed from the moment the consumer has its partitions (/health is 200), so
# the consumer-group join is not counted.
daemon_until() {
  local pipeline="$1" records="$2" port start
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$vecpipe" daemon "$pipeline" --metrics-addr "127.0.0.1:$port" > "$dir/daemon.out" 2> "$dir/daemon.err" &
  local pid=$!
  until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/daemon.err" >&2; exit 1; }
    sleep 0.05
  done
  start=$(date +%s.%N)
  while :; do
    local seen
    seen=$({ curl -s "http://127.0.0.1:$port/metrics" || true; } | awk '/^vecpipe_records_in_total\{node="(arrow|milvus|jsonl)"\}/ {s+=$2} END {print s+0}')
    [[ "${seen:-0}" -ge "$records" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/daemon.err" >&2; exit 1; }
    sleep 0.2
  done
  wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b-a}')
  kill -TERM "$pid"; wait "$pid" || true
}

bench_kafka() {
  # Kafka → daemon → Arrow (BM25 only), Milvus Lite (BM25 only), Milvus Lite (dense + BM25).
  local rows="${BENCH_KAFKA_ROWS:-20000}" dense_rows="${BENCH_KAFKA_DENSE_ROWS:-2000}"
  cargo build --release --quiet --example produce_jsonl
  local produce="$PWD/target/release/examples/produce_jsonl"
  local port
  port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  .tools/tansu broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ --silent > "$dir/tansu.log" 2>&1 &
  local tansu=$!
  sleep 0.5
  local brokers="127.0.0.1:$port"
  local corpus="$dir/kafka-$rows.jsonl" small="$dir/kafka-dense-$dense_rows.jsonl"
  [[ -f "$corpus" ]] || "$python" scripts/bench/gen_corpus.py "$rows" "$corpus"
  head -n "$dense_rows" "$corpus" > "$small"
  "$produce" "$brokers" docs 4 "$corpus" 2> /dev/null
  "$produce" "$brokers" docs-small 4 "$small" 2> /dev/null
  "$vecpipe" bm25 fit --input "$corpus" --out "$dir/kafka-bm25.json" > /dev/null
  local variant topic n sinks stages
  for variant in milvus-bm25 arrow milvus-dense; do
    topic=docs; n=$rows; stages="  - { type: bm25, params: $dir/kafka-bm25.json }"
    case "$variant" in
      arrow) sinks="  - { type: arrow, path: $dir/kafka-out.parquet }" ;;
      milvus-bm25) start_lite "$dir/lite-kafka"; sinks="  - { type: milvus, uri: '$lite_uri', collection: kafka }" ;;
      milvus-dense)
        start_lite "$dir/lite-kafka"; topic=docs-small; n=$dense_rows
        stages="  - { type: dense, threads: 2 }
$stages"
        sinks="  - { type: milvus, uri: '$lite_uri', collection: kafka }" ;;
    esac
    cat > "$dir/kafka-$variant.yaml" <<YAML
name: bench-kafka-$variant
source: { type: kafka, brokers: '$brokers', topics: [$topic], group_id: bench-$variant, id_field: id, batch_rows: 1024 }
stages:
$stages
sinks:
$sinks
YAML
    daemon_until "$dir/kafka-$variant.yaml" "$n"
    [[ "$variant" == arrow ]] || stop_lite
    awk -v n="$n" -v s="$wall" -v v="$variant" 'BEGIN { printf "kafka → %s (%d records, 4 partitions, Tansu): %.0f records/s\n", v, n, n/s }'
  done
  kill "$tansu"; wait "$tansu" 2>/dev/null || true
}

bench_backfill() {
  # A Parquet backfill: chunk + BM25 → Parquet, peak RSS must stay bounded.
  local rows="${BENCH_ROWS:-1000000}"
  local jsonl="$dir/backfill-$rows.jsonl" parquet="$dir/backfill-$rows/corpus.parquet"
  if [[ ! -f "$parquet" ]]; then
    [[ -f "$jsonl" ]] || "$python" scripts/bench/gen_corpus.py "$rows" "$jsonl"
    cat > "$dir/to-parquet.yaml" <<YAML
name: to-parquet
source: { type: jsonl, path: $jsonl, id_field: id, metadata: [title], batch_rows: 4096 }
sinks:
  - { type: arrow, path: $parquet }
YAML
    "$vecpipe" run "$dir/to-parquet.yaml" > /dev/null
  fi
  cat > "$dir/backfill.yaml" <<YAML
name: bench-backfill
source: { type: parquet, path: $parquet, id_field: id, metadata: [title], batch_rows: 2048 }
stages:
  - { type: chunk, max_chars: 500, overlap: 50 }
  - { type: bm25, params: $dir/backfill-bm25.json }
sinks:
  - { type: arrow, path: $dir/backfill-out.parquet }
YAML
  timed "$vecpipe" bm25 fit --pipeline "$dir/backfill.yaml"
  echo "bm25 fit ($rows docs, chunked, default analyzer): ${wall} s, $(awk -v n="$rows" -v s="$wall" 'BEGIN {printf "%.0f", n/s}') docs/s, ${rss_mib} MiB peak"
  timed "$vecpipe" run "$dir/backfill.yaml"
  echo "backfill ($rows docs): $(cat "$dir/last.out")"
  echo "backfill ($rows docs): ${wall} s wall, ${rss_mib} MiB peak RSS, input $(du -m "$parquet" | cut -f1) MiB parquet"
  # The same with the int8 dense model too, on the first DENSE_ROWS documents.
  local dense_rows="${BENCH_DENSE_BACKFILL_ROWS:-50000}"
  local dense_jsonl="$dir/backfill-dense-$dense_rows.jsonl"
  head -n "$dense_rows" "$jsonl" > "$dense_jsonl"
  cat > "$dir/backfill-dense.yaml" <<YAML
name: bench-backfill-dense
source: { type: jsonl, path: $dense_jsonl, id_field: id, metadata: [title] }
stages:
  - { type: chunk, max_chars: 500, overlap: 50 }
  - { type: dense, model: all-MiniLM-L6-v2-int8, threads: 2 }
  - { type: bm25, params: $dir/backfill-bm25.json }
sinks:
  - { type: arrow, path: $dir/backfill-dense-out.parquet }
YAML
  timed "$vecpipe" run "$dir/backfill-dense.yaml"
  echo "backfill with dense int8 ($dense_rows docs): $(cat "$dir/last.out")"
  echo "backfill with dense int8 ($dense_rows docs): ${wall} s wall, ${rss_mib} MiB peak RSS"
}

# A BEIR-like corpus of $1 documents in $2, a Milvus Lite server, and a
# pipeline $2/p.yaml (dense + BM25 → collection $3) with fitted params.
dense_bm25_to_lite() {
  local docs="$1" work="$2" collection="$3"
  mkdir -p "$work"
  "$python" scripts/bench/eval_data.py "$docs" "$work"
  start_lite "$dir/lite-$collection"
  cat > "$work/p.yaml" <<YAML
name: $collection
source: { type: jsonl, path: $work/corpus.jsonl, id_field: _id }
stages:
  - { type: dense, model: all-MiniLM-L6-v2, threads: 2 }
  - { type: bm25, params: $work/bm25.json }
sinks:
  - { type: milvus, uri: "$lite_uri", collection: $collection }
YAML
  "$vecpipe" bm25 fit --pipeline "$work/p.yaml" > /dev/null
}

bench_eval() {
  # `vecpipe eval` over 200 queries (models loaded once, batches of 32): queries/s
  # per mode; and one `vecpipe search` (process start to exit, model load
  # included) vs the same dense query in plain Python (onnxruntime + pymilvus),
  # alternated 3 times, medians. One Milvus Lite collection of DOCS documents.
  local docs="${BENCH_EVAL_DOCS:-5000}" work="$dir/eval" model="$PWD/models/all-MiniLM-L6-v2"
  local query="Which birds cannot fly and live in Antarctica?"
  dense_bm25_to_lite "$docs" "$work" bench_eval
  "$vecpipe" run "$work/p.yaml" > /dev/null
  "$vecpipe" eval "$work/p.yaml" --queries "$work/queries.jsonl" --qrels "$work/qrels.tsv" --json > "$work/report.json"
  "$python" -c 'import json, sys
for run in json.load(open(sys.argv[1]))["runs"]:
    print("eval (%s docs, 200 queries, Milvus Lite): %s %.1f queries/s (%.1f ms/query)" % (sys.argv[2], run["mode"], run["queries_per_second"], run["ms_per_query"]))' "$work/report.json" "$docs"
  local ours_dense=() ours_hybrid=() reference=()
  for _ in 1 2 3; do
    timed "$vecpipe" search "$work/p.yaml" "$query" --mode dense; ours_dense+=("$wall")
    timed "$python" scripts/bench/search_pymilvus.py "$model" "$lite_uri" bench_eval "$query" 2; reference+=("$wall")
    timed "$vecpipe" search "$work/p.yaml" "$query" --mode hybrid; ours_hybrid+=("$wall")
  done
  stop_lite
  awk -v d="$(median "${ours_dense[@]}")" -v h="$(median "${ours_hybrid[@]}")" -v r="$(median "${reference[@]}")" -v n="$docs" 'BEGIN {
    printf "one query (%d docs, Milvus Lite, medians of 3, process start to exit): vecpipe search dense %.2f s, hybrid %.2f s | plain Python (onnxruntime + pymilvus) dense %.2f s | ratio %.2fx\n", n, d, h, r, r/d }'
}

bench_e2e() {
  # Parquet → dense + BM25 → Milvus Lite, whole runs: vecpipe with the fp32
  # model and with the int8 one vs the plain Python script a user writes
  # (e2e_python.py: same fp32 model file, 2 threads, sorted batches of 64,
  # pymilvus.model BM25 with the same params, MilvusClient.insert, flush).
  # Each run gets a fresh Milvus Lite; the three alternated 3 times, medians.
  local n="${BENCH_E2E_TEXTS:-2000}" model="$PWD/models/all-MiniLM-L6-v2"
  local texts="$dir/texts-e2e-$n.parquet"
  [[ -f "$texts" ]] || "$python" scripts/bench/gen_texts.py "$n" "$texts" 40 90
  "$vecpipe" bm25 fit --input "$texts" --out "$dir/e2e-bm25.json" > /dev/null
  local variant
  for variant in fp32:all-MiniLM-L6-v2 int8:all-MiniLM-L6-v2-int8; do
    cat > "$dir/e2e-${variant%%:*}.yaml" <<YAML
name: bench-e2e-${variant%%:*}
source: { type: parquet, path: $texts, id_field: id }
stages:
  - { type: dense, model: ${variant#*:}, threads: 2 }
  - { type: bm25, params: $dir/e2e-bm25.json }
sinks:
  - { type: milvus, uri: "LITE_URI", collection: e2e }
YAML
  done
  local ref=() fp32=() int8=() rss32=() rss8=()
  for _ in 1 2 3; do
    start_lite "$dir/lite-e2e"
    "$python" scripts/bench/e2e_python.py "$model" "$dir/e2e-bm25.json" "$texts" 2 "$lite_uri" > "$dir/last.out"
    ref+=("$(cut -d' ' -f2 "$dir/last.out")")
    stop_lite
    for variant in fp32 int8; do
      start_lite "$dir/lite-e2e"
      sed "s|LITE_URI|$lite_uri|" "$dir/e2e-$variant.yaml" > "$dir/e2e-$variant-now.yaml"
      timed "$vecpipe" run "$dir/e2e-$variant-now.yaml"
      stop_lite
      if [[ $variant == fp32 ]]; then fp32+=("$wall"); rss32+=("$rss_mib"); else int8+=("$wall"); rss8+=("$rss_mib"); fi
    done
  done
  awk -v n="$n" -v r="$(median "${ref[@]}")" -v a="$(median "${fp32[@]}")" -v b="$(median "${int8[@]}")" \
    -v ra="$(median "${rss32[@]}")" -v rb="$(median "${rss8[@]}")" 'BEGIN {
    printf "end to end (%d texts of ~68 tokens, Parquet → dense + BM25 → Milvus Lite, whole runs, medians of 3): plain Python %.1f s | vecpipe fp32 %.1f s (%d MiB peak): %.2fx | vecpipe int8 %.1f s (%d MiB peak): %.2fx\n", n, r, a, ra, r/a, b, rb, r/b }'
}

bench_incremental() {
  # The same corpus through dense + BM25 into Milvus Lite three times: the
  # first run, a second over the unchanged corpus (every document skipped),
  # and a third with 1 % of the documents edited. Whole runs, wall time.
  local docs="${BENCH_INCREMENTAL_DOCS:-20000}" work="$dir/incremental"
  dense_bm25_to_lite "$docs" "$work" bench_incremental
  timed "$vecpipe" run "$work/p.yaml"; local first="$wall" first_rss="$rss_mib"
  timed "$vecpipe" run "$work/p.yaml"; local second="$wall" second_out
  second_out=$(cat "$dir/last.out")
  # Every hundredth document edited.
  "$python" -c 'import json, sys
path = sys.argv[1]
docs = [json.loads(l) for l in open(path)]
for d in docs[::100]:
    d["text"] += " Edited."
open(path, "w").writelines(json.dumps(d) + "\n" for d in docs)' "$work/corpus.jsonl"
  timed "$vecpipe" run "$work/p.yaml"; local third="$wall" third_out
  third_out=$(cat "$dir/last.out")
  stop_lite
  echo "incremental ($docs docs, dense + BM25 → Milvus Lite): second run: $second_out"
  echo "incremental ($docs docs): 1 % edited: $third_out"
  awk -v n="$docs" -v a="$first" -v b="$second" -v c="$third" -v r="$first_rss" 'BEGIN {
    printf "incremental (%d docs, dense + BM25 → Milvus Lite): first run %.1f s (%d MiB peak) | unchanged corpus %.1f s: %.1fx faster | 1 %% edited %.1f s: %.1fx faster\n", n, a, r, b, a/b, c, a/c }'
}

bench_int8() {
  # The same pipeline (JSONL → dense → Arrow, whole run) with the fp32 model
  # and the int8 one setup makes, same sentences (40 words), batch 64, 2
  # threads, commands alternated 3 times, median ratio; then the quality gate
  # on 10,000 real sentences (int8_quality.py).
  local n="${BENCH_SENTENCES:-2000}" corpus fp32=() int8=() model
  corpus="$dir/sentences-uniform-$n.jsonl"
  [[ -f "$corpus" ]] || "$python" scripts/bench/gen_sentences.py "$n" "$corpus" 40 40
  for model in all-MiniLM-L6-v2 all-MiniLM-L6-v2-int8; do
    cat > "$dir/int8-$model.yaml" <<YAML
name: bench-$model
source: { type: jsonl, path: $corpus, id_field: id, batch_rows: 1024 }
stages:
  - { type: dense, model: $model, batch_size: 64, threads: 2 }
sinks:
  - { type: arrow, path: $dir/int8-$model.arrow }
YAML
  done
  for _ in 1 2 3; do
    timed "$vecpipe" run "$dir/int8-all-MiniLM-L6-v2.yaml"; fp32+=("$wall")
    timed "$vecpipe" run "$dir/int8-all-MiniLM-L6-v2-int8.yaml"; int8+=("$wall")
  done
  local quality ceiling
  quality=$("$python" scripts/bench/int8_quality.py models/all-MiniLM-L6-v2 models/all-MiniLM-L6-v2-int8)
  ceiling=$("$python" scripts/bench/int8_ceiling.py models/all-MiniLM-L6-v2 "$corpus" 2)
  awk -v n="$n" -v a="$(median "${fp32[@]}")" -v b="$(median "${int8[@]}")" -v q="$quality" -v c="$ceiling" 'BEGIN {
    split(q, f, " "); split(c, g, " ")
    printf "int8 (%d sentences of 40 words, medians of 3, whole runs): fp32 %.1f s, int8 %.1f s | ratio %.2fx | quality on %d real sentences: mean cosine %.4f (min %.4f), top-10 overlap %.1f %%\n", n, a, b, a/b, f[1], f[2], f[3], f[4]*100
    printf "int8 ceiling on this CPU (int8_ceiling.py): weight products %.2fx faster in int8; the rest of the model %.1f %% of fp32 time and no faster; so at most %.2fx\n", g[1], g[2]*100, g[3] }'
}

case "$what" in
  dense) bench_dense ;;
  int8) bench_int8 ;;
  milvus) bench_milvus ;;
  milvus-real) bench_milvus_real ;;
  kafka) bench_kafka ;;
  bm25) bench_bm25 ;;
  languages) bench_languages ;;
  kafka-avro) bench_kafka_avro ;;
  backfill) bench_backfill ;;
  eval) bench_eval ;;
  incremental) bench_incremental ;;
  import) bench_import ;;
  e2e) bench_e2e ;;
  all) bench_dense; bench_int8; bench_e2e; bench_bm25; bench_languages; bench_milvus; bench_milvus_real; bench_kafka; bench_kafka_avro; bench_backfill; bench_eval; bench_incremental; bench_import ;;
  *) echo "usage: scripts/bench.sh [dense|int8|e2e|bm25|languages|milvus|milvus-real|kafka|kafka-avro|backfill|eval|incremental|all]" >&2; exit 2 ;;
esac
