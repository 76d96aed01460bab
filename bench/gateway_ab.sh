#!/usr/bin/env bash
# Two gateway binaries side by side on streamed answers (STREAM=0: whole answers): latency, the
# gateway's CPU time per request, its peak RSS and its write system calls per request (perf stat),
# with the fake upstream sending each answer at once (or each event PACE_MS apart); ROUNDS pairs
# (default 2).
#
#   bench/gateway_ab.sh OLD_DEMARC NEW_DEMARC [RATE] [SECONDS]     (default 300 req/s, 5 s)
#
# Build the old binary from a worktree beside the repository, e.g.
#   git worktree add ../old REV && (cd ../old && cargo build --release -p demarc-cli)
# The load generator is built here, into CARGO_TARGET_DIR when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD="$1"; NEW="$2"; RATE="${3:-300}"; SECS="${4:-5}"; PACE_MS="${PACE_MS:-0}"
STREAM_FLAG=--stream; [ "${STREAM:-1}" = 0 ] && STREAM_FLAG=""
cargo build --release -q -p demarc-gateway --example loadgen
LOAD="${CARGO_TARGET_DIR:-target}/release/examples/loadgen"
REPLY="$(python3 -c 'print(("The quarterly report shows approvals rose; risks remain in unsecured lending. ")*8, end="")')"
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

one() {
  local bin="$1" w gp fp up key before after
  w="$(mktemp -d)"
  "$NEW" fake-upstream --listen 127.0.0.1:0 --chunk-chars 4 --chunk-delay-ms "$PACE_MS" --reply "$REPLY" > "$w/fake.url" 2>/dev/null &
  fp=$!
  for _ in $(seq 50); do [ -s "$w/fake.url" ] && break; sleep 0.1; done
  up="$(cat "$w/fake.url")"
  local gw_port; gw_port="$(port)"
  printf 'listen: 127.0.0.1:%s\ndb: sqlite://%s/b.db\nupstreams:\n  - {id: fake, base_url: %s}\napplications:\n  - {id: bench, upstreams: [fake]}\n' \
    "$gw_port" "$w" "$up" > "$w/gw.yaml"
  # Builds before `keys create --config` take the application alone.
  key="$("$bin" keys create bench --config "$w/gw.yaml" --db "sqlite://$w/b.db" 2>/dev/null || "$bin" keys create bench --db "sqlite://$w/b.db" 2>/dev/null)"
  "$bin" gateway --config "$w/gw.yaml" 2>"$w/gw.log" &
  gp=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gw_port/readyz" >/dev/null && break; sleep 0.1; done
  before="$(cpu_s "$gp")"
  local stat=""
  if command -v perf >/dev/null; then
    perf stat -e syscalls:sys_enter_writev -p "$gp" -o "$w/stat.txt" -- sleep "$((SECS + 1))" >/dev/null 2>&1 &
    stat=$!
  fi
  "$LOAD" "http://127.0.0.1:$gw_port/v1/chat/completions" "$RATE" "$SECS" $STREAM_FLAG --key "$key" > "$w/out.json"
  after="$(cpu_s "$gp")"
  [ -n "$stat" ] && wait "$stat" || true
  local rss_kb; rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$gp/status")"
  local writes; writes="$(awk '/sys_enter_writev/ {gsub(",","",$1); print $1}' "$w/stat.txt" 2>/dev/null || true)"
  python3 - "$w/out.json" "$before" "$after" "${writes:-0}" "$bin" "$rss_kb" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); b, a, w = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rss = float(sys.argv[6]) / 1024
n = max(d["requests"], 1)
print(f"{sys.argv[5]}: {d['rate']:.0f} req/s p50 {d['p50_ms']:.2f} ms p99 {d['p99_ms']:.2f} ms, errors {d['errors']}, "
      f"TTFT p50 {d['ttft_p50_ms']:.2f} ms, gateway CPU {(a-b)*1e6/n:.0f} us/request, peak RSS {rss:.0f} MiB, writev {w/n:.0f}/request")
PY
  kill "$gp" "$fp" 2>/dev/null || true
  wait "$gp" 2>/dev/null || true
  rm -rf "$w"
}
echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), pace ${PACE_MS} ms, ${STREAM_FLAG:-not streamed}"
for _ in $(seq "${ROUNDS:-2}"); do one "$OLD"; one "$NEW"; done
