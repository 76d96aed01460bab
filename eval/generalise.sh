#!/usr/bin/env bash
# Generalisation of the injection detector: leave-one-source-out (for each source, the learned
# tier is trained without it and the source is scored by heuristics, learned tier and both),
# then the held-out set (eval/sets/heldout-*, never used for training or tuning) by family,
# category and language. SHOW_MISSES=1 lists held-out misses and false positives on stderr.
# Usage: eval/generalise.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python3 eval/datasets.py
cargo run -q --release -p demarc-guard --example learned -- eval eval/build/corpus.jsonl
