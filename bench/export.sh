#!/usr/bin/env bash
# Whole-program OSCAL export benchmark: `demarc export oscal --estate ESTATE --out-dir DIR` on
# a generated estate of N applications x 3 components (default 10,000) with the seed catalog:
# the estate parsed and checked once, then the catalog, the component definition, the system
# security plan and the assessment results (an assessment of the estate alone) written as
# four JSON files. Target (issue 17): under 2 s median wall time.
#
#   bench/export.sh [APPS]           # BENCH_RUNS=N timed runs (default 10)
#
# Reports the median wall time of BENCH_RUNS runs (/usr/bin/time), the peak RSS of one run
# (/usr/bin/time -v) and the documents' sizes, with the SSP alone to stdout beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

apps="${1:-10000}"
runs="${BENCH_RUNS:-10}"

if [ ! -x /usr/bin/time ]; then
  echo "bench: installing GNU time" >&2
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

cargo build --release -q -p demarc-cli
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A private copy of the binary: a shared target folder may be rebuilt during the runs.
cp "${CARGO_TARGET_DIR:-$PWD/target}/release/demarc" "$work/demarc"
demarc="$work/demarc"
estate="$work/estate.yaml"
python3 bench/gen-estate.py --apps "$apps" > "$estate"
out="$work/oscal"

echo "estate: $apps applications x 3 components, $(wc -c < "$estate") bytes"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: demarc export oscal --estate ESTATE --date 2026-11-26 --out-dir DIR"

"$demarc" export oscal --estate "$estate" --date 2026-11-26 --out-dir "$out" 2> "$work/stderr"
for f in "$out"/*.json; do echo "  $(basename "$f"): $(wc -c < "$f") bytes"; done

/usr/bin/time -v "$demarc" export oscal --estate "$estate" --date 2026-11-26 --out-dir "$out" 2> "$work/time.txt"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
timed() {
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e' "$@" 2>&1 >/dev/null | tail -1
  done | median
}
all_s=$(timed "$demarc" export oscal --estate "$estate" --date 2026-11-26 --out-dir "$out")
ssp_s=$(timed "$demarc" export oscal --estate "$estate" --date 2026-11-26 --document ssp)
echo "export oscal (4 documents): median ${all_s} s over $runs runs, peak RSS $((rss_kb / 1024)) MiB"
echo "export oscal --document ssp (stdout): median ${ssp_s} s"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
