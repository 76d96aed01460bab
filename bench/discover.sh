#!/usr/bin/env bash
# Discovery throughput and memory, side by side with ripgrep and cat, on generated logs.
#
#   bench/discover.sh [SIZE] [RUNS]      (defaults: 2G and 3)
#
# Generates a Zeek ssl.log and a Squid access.log of SIZE into a temporary directory (never
# in the repository), warms the page cache, then for each file and each round runs, in
# turn: `cat FILE > /dev/null`, `rg -c -F -f DOMAINS FILE` (DOMAINS = every catalog domain)
# with -j1 and -j2, and `demarc discover --threads N` with N = 1 and 2, which parses every
# record and attributes it. Wall time and peak RSS come from /usr/bin/time -v; medians are
# printed as a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE="${1:-2G}"
RUNS="${2:-3}"

command -v rg >/dev/null || { apt-get install -y ripgrep >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y ripgrep >/dev/null); }
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null
cargo build --release -q -p demarc-cli -p demarc-discover
BIN=target/release

TMP="$(mktemp -d "${TMPDIR:-/tmp}/demarc-discover-bench.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
"$BIN/demarc-loggen" domains > "$TMP/domains.txt"
"$BIN/demarc-loggen" zeek-ssl "$SIZE" --seed 1 > "$TMP/ssl.log"
"$BIN/demarc-loggen" squid "$SIZE" --seed 2 > "$TMP/access.log"

# Run a command under /usr/bin/time -v; print "wall_seconds cpu_seconds max_rss_kib".
# CPU time (user + system) is reported beside wall time because the machine is shared:
# wall time includes waiting for a core, CPU time does not.
measure() {
  /usr/bin/time -v "$@" > /dev/null 2> "$TMP/cmd.err" || true
  local out wall user sys rss
  out="$(cat "$TMP/cmd.err")"
  wall="$(grep 'Elapsed (wall clock)' <<<"$out" | awk '{print $NF}')"
  user="$(grep 'User time' <<<"$out" | awk '{print $NF}')"
  sys="$(grep 'System time' <<<"$out" | awk '{print $NF}')"
  rss="$(grep 'Maximum resident set size' <<<"$out" | awk '{print $NF}')"
  # m:ss.cc -> seconds
  awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN { n = split(w, p, ":"); t = 0; for (i = 1; i <= n; i++) t = t * 60 + p[i]; printf "%.2f %.2f %d\n", t, u + s, r }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(rg --version | head -1); date $(date -u +%F)"
for file in ssl.log access.log; do
  path="$TMP/$file"
  bytes=$(stat -c %s "$path")
  cat "$path" > /dev/null
  declare -A times=() cpu=() rss=()
  for round in $(seq "$RUNS"); do
    for tool in cat wc-l rg-j1 rg-j2 demarc-t1 demarc-t2; do
      case "$tool" in
        cat) r=$(measure sh -c "cat '$path' > /dev/null") ;;
        wc-l) r=$(measure wc -l "$path") ;;
        rg-j1) r=$(measure rg -j1 -c -F -f "$TMP/domains.txt" "$path") ;;
        rg-j2) r=$(measure rg -j2 -c -F -f "$TMP/domains.txt" "$path") ;;
        demarc-t1) r=$(measure "$BIN/demarc" discover --threads 1 --format json "$path") ;;
        demarc-t2) r=$(measure "$BIN/demarc" discover --threads 2 --format json "$path") ;;
      esac
      read -r w c m <<<"$r"
      times[$tool]+="$w "
      cpu[$tool]+="$c "
      rss[$tool]+="$m "
    done
  done
  "$BIN/demarc" discover --threads 2 --format json "$path" > "$TMP/report.json" 2>/dev/null
  records=$(grep -m1 '"records"' "$TMP/report.json" | tr -dc 0-9)
  echo
  echo "### $file: $((bytes / 1048576)) MiB, $records records, median of $RUNS"
  echo
  echo "| command | threads | wall s | MiB/s | CPU s | rg time / this (same threads) | cat time / this | peak RSS |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  cat_s=$(tr ' ' '\n' <<<"${times[cat]}" | grep . | median)
  for tool in cat wc-l rg-j1 rg-j2 demarc-t1 demarc-t2; do
    s=$(tr ' ' '\n' <<<"${times[$tool]}" | grep . | median)
    c=$(tr ' ' '\n' <<<"${cpu[$tool]}" | grep . | median)
    m=$(tr ' ' '\n' <<<"${rss[$tool]}" | grep . | median)
    case "$tool" in cat | wc-l) threads=1 ;; *) threads=${tool##*[tj]} ;; esac
    rg_s=$(tr ' ' '\n' <<<"${times[rg-j$threads]}" | grep . | median)
    awk -v t="$tool" -v th="$threads" -v s="$s" -v cpu="$c" -v b="$bytes" -v rg="$rg_s" -v c="$cat_s" -v m="$m" 'BEGIN {
      rate = (s > 0) ? b / 1048576 / s : 0
      printf "| %s | %s | %.2f | %.0f | %.2f | %.2fx | %.2fx | %.1f MiB |\n", t, th, s, rate, cpu, (s > 0 ? rg / s : 0), (s > 0 ? c / s : 0), m / 1024 }'
  done
done
