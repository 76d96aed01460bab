#!/usr/bin/env bash
# Retrain the guard's learned tier (crates/demarc-guard/model/injection.bin) from public data.
# Reproducible: pinned wheels (checked by SHA-256), a fixed-seed shuffle, no floating-point
# nondeterminism (single thread). Sources, licences and sizes: eval/SOURCES.md.
# Usage: eval/train.sh            (downloads the pinned wheels once into eval/build/wheels)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 eval/datasets.py
cargo run -q --release -p demarc-guard --example learned -- \
  train eval/build/corpus.jsonl crates/demarc-guard/model/injection.bin
sha256sum crates/demarc-guard/model/injection.bin
