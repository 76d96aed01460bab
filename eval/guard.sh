#!/usr/bin/env bash
# Quality of the guard detectors: prompt-injection TPR/FPR on the public corpus (tune half and
# held-out report half, fixed-seed split), on our own hard negatives and attack set, and
# precision/recall per PII/secret kind on the labelled fixtures.
# Usage: eval/guard.sh [--show-misses]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=../shared/data/injection/bastioncorpus-0.6.0-injections.jsonl
fixtures=crates/demarc-guard/tests/fixtures
if [ ! -f "$corpus" ]; then
  echo "eval: $corpus not found (see ../shared/data/injection/SOURCES.md)" >&2
  exit 2
fi
# The fixture file is generated deterministically; regenerate it if missing.
[ -f "$fixtures/pii_secrets.jsonl" ] || python3 eval/guard_fixtures.py
cargo run -q --release -p demarc-guard --example guard_eval -- "$corpus" "$fixtures" "$@"
