#!/usr/bin/env bash
# The quickstart, end to end: install, build, fit BM25 on the sample corpus,
# run pipelines/quickstart.yaml into an embedded Milvus Lite collection (and a
# Parquet file), then search it. Outputs land in ./out/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
vecpipe=target/release/vecpipe
"$vecpipe" validate --no-environment pipelines/quickstart.yaml
"$vecpipe" bm25 fit --pipeline pipelines/quickstart.yaml
# Now that the params exist: the source, models, params and Milvus Lite too.
"$vecpipe" validate pipelines/quickstart.yaml
"$vecpipe" run pipelines/quickstart.yaml
echo
echo '$ vecpipe search pipelines/quickstart.yaml "Where was Turing born?" --limit 3'
"$vecpipe" search pipelines/quickstart.yaml "Where was Turing born?" --limit 3
