#!/usr/bin/env bash
# Whole-program comparison benchmark: `demarc compare ESTATE` under the four built-in
# catalogs at once (csa-genai-2023, cosai-srf-1.0, microsoft-ai-srm, aws-genai-scoping) on a
# generated estate of N applications x 3 components (default 10,000). The estate is parsed
# and checked once; each application is then resolved under every catalog and compared
# through the built-in crosswalks. Target (issue 16): under 2 s median wall time.
#
#   bench/compare.sh [APPS]          # BENCH_RUNS=N timed runs (default 10)
#                                    # BENCH_FORMAT=json|table|csv|markdown|html (default json)
#
# Reports the median wall time of BENCH_RUNS runs (/usr/bin/time) and the peak RSS of one run
# (/usr/bin/time -v), with the same comparison under two catalogs beside it for scale (the
# estate is parsed once either way; the difference is the per-catalog work and the output).
set -euo pipefail
cd "$(dirname "$0")/.."

apps="${1:-10000}"
runs="${BENCH_RUNS:-10}"
format="${BENCH_FORMAT:-json}"

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
catalogs=(--catalog csa-genai-2023 --catalog cosai-srf-1.0 --catalog microsoft-ai-srm --catalog aws-genai-scoping)

echo "estate: $apps applications x 3 components, $(wc -c < "$estate") bytes"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: demarc compare ESTATE ${catalogs[*]} --format $format > /dev/null"

"$demarc" compare "$estate" "${catalogs[@]}" --format "$format" > "$work/report" 2> "$work/stderr" || true
echo "report: $(wc -c < "$work/report") bytes"
tail -c 400 "$work/stderr" || true

/usr/bin/time -v "$demarc" compare "$estate" "${catalogs[@]}" --format "$format" 2> "$work/time.txt" > /dev/null
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")

median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
timed() {
  for _ in $(seq "$runs"); do
    /usr/bin/time -f '%e' "$@" 2>&1 >/dev/null | tail -1
  done | median
}
compare_s=$(timed "$demarc" compare "$estate" "${catalogs[@]}" --format "$format")
two_s=$(timed "$demarc" compare "$estate" --catalog csa-genai-2023 --catalog cosai-srf-1.0 --format "$format")
echo "compare (4 catalogs): median ${compare_s} s over $runs runs, peak RSS $((rss_kb / 1024)) MiB"
echo "compare (2 catalogs, for scale): median ${two_s} s"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
