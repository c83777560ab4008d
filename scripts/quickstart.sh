#!/usr/bin/env bash
# The quickstart, end to end: install, build, fit BM25 on the sample corpus,
# run pipelines/quickstart.yaml. Outputs land in ./out/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --quiet
vecpipe=target/release/vecpipe
"$vecpipe" validate pipelines/quickstart.yaml
"$vecpipe" bm25 fit --pipeline pipelines/quickstart.yaml
"$vecpipe" run pipelines/quickstart.yaml
echo "outputs:" && ls -l "${VECPIPE_OUT:-out}/quickstart/"
