#!/usr/bin/env bash
# Whole-program assessment benchmark: `demarc assess ESTATE --format json --db STORE` on a
# generated estate of N applications x 3 components (default 10,000) with the seed catalog,
# reading observations from a SQLite store that holds 1,000,000 gateway audit events over the
# last 30 days (spread over every application) and the gateway's latest observations of each
# application. Target: under 1 s wall time and under 256 MB peak RSS.
#
#   bench/assess.sh [APPS]           # BENCH_RUNS=N timed runs (default 10)
#                                    # BENCH_EVENTS=N audit events (default 1000000)
#                                    # BENCH_NO_STORE=1: the estate alone, no store (as before)
#
# Reports the median wall time (hyperfine when installed, else /usr/bin/time runs) and the
# peak RSS of one run (/usr/bin/time -v). The store is filled once, untimed, through the
# store's own append (10 transactions of 100,000 hash-chained events).
set -euo pipefail
cd "$(dirname "$0")/.."

apps="${1:-10000}"
runs="${BENCH_RUNS:-10}"
events="${BENCH_EVENTS:-1000000}"

if [ ! -x /usr/bin/time ]; then
  echo "bench: installing GNU time" >&2
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

cargo build --release -q -p demarc-cli
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A private copy of the binary, from CARGO_TARGET_DIR when set: a shared target folder may
# be rebuilt by another build while the runs go on.
cp "${CARGO_TARGET_DIR:-$PWD/target}/release/demarc" "$work/demarc"
demarc="$work/demarc"
export XDG_DATA_HOME="$work/data"
estate="$work/estate.yaml"
python3 bench/gen-estate.py --apps "$apps" > "$estate"
db_args=()
if [ -z "${BENCH_NO_STORE:-}" ]; then
  db="sqlite://$work/store.db"
  batch=100000
  [ "$events" -lt "$batch" ] && batch="$events"
  start_fill=$(date +%s.%N)
  "$demarc" audit write-test-events --db "$db" --chain "gateway@bench:8080:1" \
    --batches $((events / batch)) --size "$batch" --applications "$apps" --days 30 > /dev/null
  end_fill=$(date +%s.%N)
  echo "store: $(awk -v a="$start_fill" -v b="$end_fill" 'BEGIN {printf "%.1f", b - a}') s to fill, $(du -h "$work/store.db" | cut -f1)"
  "$demarc" db status --db "$db" | grep -E 'audit_events|audit_traffic|^evidence' | sed 's/^/  /'
  db_args=(--db "$db")
fi
cmd="$demarc assess $estate --format json ${db_args[*]}"

echo "estate: $apps applications x 3 components, $(wc -c < "$estate") bytes, $(wc -l < "$estate") lines"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: demarc assess ESTATE --format json ${db_args[*]:+--db STORE} > /dev/null"

# Exit status 0 or 1 both mean the report was produced (1: a check failed; none is asked here).
"$demarc" assess "$estate" --format json "${db_args[@]}" > "$work/report.json"
echo "report: $(wc -c < "$work/report.json") bytes of JSON"

/usr/bin/time -v "$demarc" assess "$estate" --format json "${db_args[@]}" 2> "$work/time.txt" > /dev/null
rss_kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")"
echo "peak RSS: $((rss_kb / 1024)) MiB ($rss_kb KB, /usr/bin/time -v)"

if command -v hyperfine >/dev/null 2>&1; then
  hyperfine --warmup 2 --runs "$runs" --export-json "$work/hf.json" --output=null "$cmd" >&2
  python3 - "$work/hf.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("wall: median %.3f s, mean %.3f s +- %.3f, min %.3f s, max %.3f s (hyperfine, %d runs)"
      % (r["median"], r["mean"], r["stddev"], r["min"], r["max"], len(r["times"])))
# On a shared machine CPU time moves less with the load than wall time does.
print("cpu: user %.3f s + system %.3f s (means)" % (r["user"], r["system"]))
EOF
else
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e" "$demarc" assess "$estate" --format json "${db_args[@]}" 2>> "$work/walls.txt" > /dev/null
  done
  sort -n "$work/walls.txt" | awk '{a[NR]=$1} END {printf "wall: median %.3f s, min %.3f s, max %.3f s (/usr/bin/time, %d runs)\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1], a[NR], NR}'
fi
