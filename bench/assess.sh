#!/usr/bin/env bash
# Whole-program assessment benchmark: `demarc assess ESTATE --format json` on a generated
# estate of N applications x 3 components (default 10,000) with the seed catalog.
# Target: under 1 s wall time and under 256 MB peak RSS.
#
#   bench/assess.sh [APPS]           # BENCH_RUNS=N sets the number of timed runs (default 10)
#
# Reports the median wall time (hyperfine when installed, else /usr/bin/time runs) and the
# peak RSS of one run (/usr/bin/time -v). The store is left out: the run gets an empty data
# home, as on a fresh machine, so no SQLite file is opened.
set -euo pipefail
cd "$(dirname "$0")/.."

apps="${1:-10000}"
runs="${BENCH_RUNS:-10}"

if [ ! -x /usr/bin/time ]; then
  echo "bench: installing GNU time" >&2
  apt-get install -y -qq time >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
fi

cargo build --release -q -p demarc-cli
demarc="$PWD/target/release/demarc"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME="$work/data"
estate="$work/estate.yaml"
python3 bench/gen-estate.py --apps "$apps" > "$estate"
cmd="$demarc assess $estate --format json"

echo "estate: $apps applications x 3 components, $(wc -c < "$estate") bytes, $(wc -l < "$estate") lines"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: demarc assess ESTATE --format json > /dev/null"

# Exit status 0 or 1 both mean the report was produced (1: a check failed; none is asked here).
"$demarc" assess "$estate" --format json > "$work/report.json"
echo "report: $(wc -c < "$work/report.json") bytes of JSON"

/usr/bin/time -v "$demarc" assess "$estate" --format json 2> "$work/time.txt" > /dev/null
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
    /usr/bin/time -f "%e" "$demarc" assess "$estate" --format json 2>> "$work/walls.txt" > /dev/null
  done
  sort -n "$work/walls.txt" | awk '{a[NR]=$1} END {printf "wall: median %.3f s, min %.3f s, max %.3f s (/usr/bin/time, %d runs)\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[1], a[NR], NR}'
fi
