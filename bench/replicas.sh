#!/usr/bin/env bash
# Gateway replicas: the same offered load (RATE req/s, non-streamed chat completions with a
# 2 KB prompt, the default guard policy, a request limit that is never reached) served by
#   memory  one gateway, limits counted in its memory (no shared counters);
#   redis1  one gateway, limits counted in Redis (one script round trip per request);
#   redis2  two gateways, limits counted in Redis, each taking half the load;
#   store1  one gateway, limits counted in PostgreSQL (statements batch concurrent requests);
#   store2  two gateways, limits counted in PostgreSQL, each taking half the load;
# all on one PostgreSQL store (keys, audit), the fake upstream answering at once. Reports per
# setup: the served rate, p50/p99 latency (open loop, from each request's intended send time),
# the gateways' CPU per request, Redis's own CPU per request and the round trips to the shared
# counters per request (the gateways' metric); `redis1` against `memory` is the Redis round
# trip's share. ROUNDS alternates the setups (default 3; medians printed).
#
# Usage: bench/replicas.sh [RATE] [SECONDS]        (default 1000 req/s, 5 s)
#   env: REDIS_URL (default redis://127.0.0.1:6379), PG_ADMIN (default
#        postgres://postgres@127.0.0.1:5432/postgres), ROUNDS
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-1000}"; SECS="${2:-5}"; ROUNDS="${ROUNDS:-3}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}"
WORK="$(mktemp -d)"
PIDS=()
DBNAME="demarc_bench_$$"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p demarc-cli && cargo build --release -q -p demarc-gateway --example loadgen
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/demarc"; LOAD="$TARGET/release/examples/loadgen"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
REDIS_PID="$(pgrep -x redis-server | head -n1)"

psql -q "$PG_ADMIN" -c "CREATE DATABASE $DBNAME" >/dev/null
DB="${PG_ADMIN%/*}/$DBNAME"
"$BIN" fake-upstream --listen 127.0.0.1:0 > "$WORK/fake.url" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/fake.url" ] && break; sleep 0.1; done
UP="$(cat "$WORK/fake.url")"

# $1: setup name; $2: replicas; $3: `redis`, `store` or `memory`.
one() {
  local name="$1" replicas="$2" counted="$3" app="bench-$1-$RANDOM$RANDOM" cfg="$WORK/$1.yaml"
  {
    echo "db: $DB"
    [ "$counted" = redis ] && echo "redis: $REDIS_URL"
    [ "$counted" = store ] && echo "shared_limits: true"
    echo "upstreams: [{id: fake, base_url: $UP}]"
    echo "applications: [{id: $app, upstreams: [fake], limits: {requests_per_minute: 1000000000}}]"
  } > "$cfg"
  local key; key="$("$BIN" keys create "$app" --config "$cfg" --db "$DB" 2>/dev/null)"
  local gws=() ports=() i
  for i in $(seq "$replicas"); do
    local p; p="$(port)"
    "$BIN" gateway --config "$cfg" --listen "127.0.0.1:$p" 2>"$WORK/$name-$i.log" &
    gws+=($!); PIDS+=($!); ports+=("$p")
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
  done
  local before=0 r_before=0
  for g in "${gws[@]}"; do before="$(python3 -c "print($before + $(cpu_s "$g"))")"; done
  [ -n "$REDIS_PID" ] && r_before="$(cpu_s "$REDIS_PID")"
  local share; share="$(python3 -c "print($RATE / $replicas)")"
  local loads=()
  for i in $(seq "$replicas"); do
    "$LOAD" "http://127.0.0.1:${ports[$((i-1))]}/v1/chat/completions" "$share" "$SECS" --key "$key" > "$WORK/$name-$i.json" &
    loads+=($!)
  done
  for l in "${loads[@]}"; do wait "$l"; done
  local after=0 r_after=0
  for g in "${gws[@]}"; do after="$(python3 -c "print($after + $(cpu_s "$g"))")"; done
  [ -n "$REDIS_PID" ] && r_after="$(cpu_s "$REDIS_PID")"
  local trips=0
  for p in "${ports[@]}"; do
    local t; t="$(curl -sf "http://127.0.0.1:$p/metrics" | awk '$1 == "demarc_gateway_shared_limits_round_trips_total" {print $2}')"
    trips="$(python3 -c "print($trips + ${t:-0})")"
  done
  for g in "${gws[@]}"; do kill "$g" 2>/dev/null || true; wait "$g" 2>/dev/null || true; done
  python3 - "$name" "$trips" "$before" "$after" "$r_before" "$r_after" "$WORK/$name-"*.json <<'PY' >> "$WORK/results.tsv"
import json, sys
name, trips, b, a, rb, ra = sys.argv[1:7]
runs = [json.load(open(f)) for f in sys.argv[7:]]
n = sum(r["requests"] for r in runs) or 1
errors = sum(r["errors"] for r in runs)
rate = sum(r["rate"] for r in runs)
p50 = max(r["p50_ms"] for r in runs); p99 = max(r["p99_ms"] for r in runs)
cpu = (float(a) - float(b)) * 1e6 / n
redis = (float(ra) - float(rb)) * 1e6 / n
print(f"{name}\t{rate:.0f}\t{p50:.2f}\t{p99:.2f}\t{errors}\t{cpu:.0f}\t{redis:.1f}\t{float(trips) / n:.3f}")
PY
  rm -f "$WORK/$name-"*.json
}

echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), $RATE req/s for $SECS s, $ROUNDS rounds"
: > "$WORK/results.tsv"
for _ in $(seq "$ROUNDS"); do
  one memory 1 memory; one redis1 1 redis; one redis2 2 redis; one store1 1 store; one store2 2 store
done
python3 - "$WORK/results.tsv" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
print("| setup | served req/s | p50 ms | p99 ms (worst replica) | errors | gateway CPU µs/request | Redis CPU µs/request | counter round trips/request |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in ["memory", "redis1", "redis2", "store1", "store2"]:
    rs = [r for r in rows if r[0] == name]
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    print(f"| {name} | {med(1):.0f} | {med(2):.2f} | {med(3):.2f} | {sum(int(r[4]) for r in rs)} | {med(5):.0f} | {med(6):.1f} | {med(7):.2f} |")
for r in rows:
    print("#", " ".join(r), file=sys.stderr)
PY
