#!/usr/bin/env bash
# Guard throughput and latency, and the side-by-side with detect-secrets and Presidio.
#
#   bench/guard.sh [MB] [--no-compare]      (default: 16 MB corpus)
#
# 1. Builds release binaries and writes the mixed corpus (prose, code, logs; see
#    crates/demarc-guard/benches/corpus.rs) to bench-out/guard/.
# 2. In-process figures (examples/guard_bench.rs): whole-text MB/s with the default policy on
#    input and output, incremental (stream) MB/s in 4 KiB and 64 KiB chunks, 4 KB prompt median.
# 3. Whole program: `demarc scan CORPUS` wall and CPU time and peak RSS (/usr/bin/time -v).
# 4. Unless --no-compare: installs detect-secrets and presidio-analyzer into a virtualenv under
#    bench-out/guard/venv and runs bench/guard_compare.py (speed ratio and recall on fixtures).
# For the careful per-function numbers run `cargo bench -p demarc-guard`.
set -euo pipefail
cd "$(dirname "$0")/.."

MB="${1:-16}"
COMPARE=1
for a in "$@"; do [ "$a" = "--no-compare" ] && COMPARE=0; done
OUT=bench-out/guard
mkdir -p "$OUT"
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null 2>&1 || true

cargo build --release -q -p demarc-cli && cargo build --release -q -p demarc-guard --example guard_bench
BIN=target/release
"$BIN/examples/guard_bench" --mb "$MB" --write-corpus "$OUT/corpus.txt"
echo "## in-process (guard_bench, $MB MB corpus)"
"$BIN/examples/guard_bench" --mb "$MB"

echo
echo "## whole program: demarc scan (default policy, input), 3 runs"
for i in 1 2 3; do
  /usr/bin/time -f "wall %e s  user %U s  sys %S s  max RSS %M KiB" \
    "$BIN/demarc" scan "$OUT/corpus.txt" --format json > "$OUT/scan.json" 2> "$OUT/time.txt" || true
  # exit 1 is expected: the code part of the corpus quotes prompt injections (test data).
  bytes=$(stat -c %s "$OUT/corpus.txt")
  wall=$(grep wall "$OUT/time.txt" | awk '{print $2}')
  user=$(grep wall "$OUT/time.txt" | awk '{print $5}')
  echo "$(grep wall "$OUT/time.txt")  => $(awk -v b="$bytes" -v w="$wall" -v u="$user" 'BEGIN{printf "%.0f MB/s wall, %.0f MB/s user CPU", b/w/1e6, b/u/1e6}')"
done

if [ "$COMPARE" = 1 ]; then
  echo
  echo "## side by side (bench/guard_compare.py)"
  if [ ! -x "$OUT/venv/bin/python" ]; then
    python3 -m venv "$OUT/venv"
  fi
  "$OUT/venv/bin/pip" install -q detect-secrets==1.5.0 presidio-analyzer==2.2.366
  "$OUT/venv/bin/python" bench/guard_compare.py "$OUT/corpus.txt" crates/demarc-guard/tests/fixtures/pii_secrets.jsonl "$BIN/demarc" "$OUT"
fi
