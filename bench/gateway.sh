#!/usr/bin/env bash
# Gateway benchmark: the fake upstream, the gateway (default policy) and an open-loop load
# generator on this machine. Measures, side by side in one run:
#   - added latency at RATE req/s (default 1000), non-streaming and streaming, 2 KB prompts,
#     against calling the fake upstream directly (p50/p99 from the intended send time);
#   - time to first token added by output scanning (default policy vs policy off, streaming),
#     with the fake answering at once and with it paced like a model (PACE_MS per event);
#   - the highest sustained rate (no errors, p99 < 100 ms, >= 98% of the asked rate),
#     direct and through the gateway;
#   - RSS of the gateway idle and under load;
#   - optionally (LITELLM=1) LiteLLM's proxy in front of the same fake upstream.
# Usage: bench/gateway.sh [SECONDS_PER_RUN]
#   env: RATE, SRATE (streaming), PRATE and PACE_MS (paced streaming), SKIP_SUSTAIN=1, LITELLM=1,
#        REPEAT (added-latency runs, direct and gateway alternately; medians are reported)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
RATE="${RATE:-1000}"
SRATE="${SRATE:-$RATE}"   # rate for the streaming runs
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release -q -p demarc-cli && cargo build --release -q -p demarc-gateway --example loadgen
BIN=target/release/demarc
LOAD=target/release/examples/loadgen

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# A 600-character answer streamed 4 characters (about one token) per event.
REPLY="$(python3 -c 'print(("The quarterly report shows approvals rose; risks remain in unsecured lending. ")*8, end="")')"
"$BIN" fake-upstream --listen 127.0.0.1:0 --chunk-chars 4 --reply "$REPLY" > "$WORK/fake.url" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/fake.url" ] && break; sleep 0.1; done
UP="$(cat "$WORK/fake.url")"

# The same answer paced like a model (one event every PACE_MS ms, ~50 tokens/s by default): a
# stream scanner that holds text back shows here as added time to first token.
PACE_MS="${PACE_MS:-20}"
"$BIN" fake-upstream --listen 127.0.0.1:0 --chunk-chars 4 --chunk-delay-ms "$PACE_MS" --reply "$REPLY" > "$WORK/paced.url" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/paced.url" ] && break; sleep 0.1; done
PACED="$(cat "$WORK/paced.url")"

GW_PORT="$(port)"
DB="sqlite://$WORK/bench.db"
cat > "$WORK/gateway.yaml" <<YAML
listen: 127.0.0.1:$GW_PORT
db: $DB
upstreams:
  - {id: fake, base_url: '$UP', timeouts: {first_byte_ms: 30000, total_ms: 60000}}
  - {id: paced, base_url: '$PACED', timeouts: {first_byte_ms: 30000, total_ms: 60000}}
applications:
  - {id: bench-default, upstreams: [fake]}
  - {id: bench-off, upstreams: [fake], policy: 'off'}
  - {id: paced-default, upstreams: [paced]}
  - {id: paced-off, upstreams: [paced], policy: 'off'}
YAML
KEY_DEFAULT="$("$BIN" keys create bench-default --config "$WORK/gateway.yaml" --db "$DB" 2>/dev/null)"
KEY_OFF="$("$BIN" keys create bench-off --config "$WORK/gateway.yaml" --db "$DB" 2>/dev/null)"
KEY_PACED_DEFAULT="$("$BIN" keys create paced-default --config "$WORK/gateway.yaml" --db "$DB" 2>/dev/null)"
KEY_PACED_OFF="$("$BIN" keys create paced-off --config "$WORK/gateway.yaml" --db "$DB" 2>/dev/null)"
"$BIN" gateway --config "$WORK/gateway.yaml" 2>"$WORK/gateway.log" &
GW_PID=$!
PIDS+=($GW_PID)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GW_PORT/readyz" >/dev/null && break; sleep 0.1; done
sleep 1
RSS_IDLE="$(rss_kb $GW_PID)"

# One load run; also prints the gateway's CPU time per request during it (the part of the
# 2 cores the gateway itself needs, whatever the load generator and fake upstream take).
run() {
  local before after n
  before="$(cpu_s "$GW_PID")"
  "$LOAD" "$@" | tee "$WORK/last.json"
  after="$(cpu_s "$GW_PID")"
  n="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$WORK/last.json")"
  python3 -c 'import sys; b,a,n=map(float,sys.argv[1:]); print(f"  gateway CPU: {(a-b)*1e6/max(n,1):.0f} us per request ({a-b:.2f} s for {n:.0f})")' "$before" "$after" "$n" >&2
}
GW="http://127.0.0.1:$GW_PORT/v1/chat/completions"
DIRECT="$UP/chat/completions"

echo "# machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ), ${SECS}s per run, rate $RATE/s (streaming $SRATE/s)"
echo "# idle gateway RSS: $((RSS_IDLE / 1024)) MB"
echo "## added latency at $RATE req/s (non-streaming, 2 KB prompt)"
REPEAT="${REPEAT:-1}"
for i in $(seq "$REPEAT"); do
  run "$DIRECT" "$RATE" "$SECS" | tee "$WORK/direct.$i.json"
  run "$GW" "$RATE" "$SECS" --key "$KEY_DEFAULT" | tee "$WORK/gw.$i.json"
done
RSS_LOAD="$(hwm_kb $GW_PID)"
echo "## added latency at $SRATE req/s (streaming)"
for i in $(seq "$REPEAT"); do
  run "$DIRECT" "$SRATE" "$SECS" --stream | tee "$WORK/direct_s.$i.json"
  run "$GW" "$SRATE" "$SECS" --stream --key "$KEY_DEFAULT" | tee "$WORK/gw_s.$i.json"
done
echo "## time to first token added by output scanning (streaming, policy off vs default)"
run "$GW" "$SRATE" "$SECS" --stream --key "$KEY_OFF" | tee "$WORK/gw_off_s.json"
run "$GW" "$SRATE" "$SECS" --stream --key "$KEY_DEFAULT" | tee "$WORK/gw_def_s.json"
PRATE="${PRATE:-100}"
echo "## time to first token with a paced upstream (one event per ${PACE_MS} ms), $PRATE req/s, policy off vs default"
run "$GW" "$PRATE" "$SECS" --stream --key "$KEY_PACED_OFF" | tee "$WORK/paced_off.json"
run "$GW" "$PRATE" "$SECS" --stream --key "$KEY_PACED_DEFAULT" | tee "$WORK/paced_def.json"
RSS_LOAD2="$(hwm_kb $GW_PID)"

python3 - "$WORK" <<'PY'
import json, sys, os, glob, statistics
w = sys.argv[1]
j = lambda n: json.load(open(os.path.join(w, n + ".json")))
def med(name):
    """Median p50 and p99, and total errors, over the repeated runs of one kind."""
    runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(w, name + ".*.json")))]
    return {"p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(r["errors"] for r in runs), "n": len(runs)}
d, g, ds, gs = med("direct"), med("gw"), med("direct_s"), med("gw_s")
off, de = j("gw_off_s"), j("gw_def_s")
print(f"## summary (added latency: medians over {d['n']} alternating runs each)")
print(f"non-streaming added latency: p50 {g['p50_ms']-d['p50_ms']:.3f} ms, p99 {g['p99_ms']-d['p99_ms']:.3f} ms (direct {d['p50_ms']:.3f} / {d['p99_ms']:.3f}); errors direct {d['errors']} gateway {g['errors']}")
print(f"streaming added latency:     p50 {gs['p50_ms']-ds['p50_ms']:.3f} ms, p99 {gs['p99_ms']-ds['p99_ms']:.3f} ms (direct {ds['p50_ms']:.3f} / {ds['p99_ms']:.3f}); errors direct {ds['errors']} gateway {gs['errors']}")
print(f"time to first token, policy off: p50 {off['ttft_p50_ms']:.3f} ms, p99 {off['ttft_p99_ms']:.3f} ms; default: p50 {de['ttft_p50_ms']:.3f} ms, p99 {de['ttft_p99_ms']:.3f} ms")
print(f"TTFT added by output scanning: p50 {de['ttft_p50_ms']-off['ttft_p50_ms']:.3f} ms, p99 {de['ttft_p99_ms']-off['ttft_p99_ms']:.3f} ms")
po, pd = j("paced_off"), j("paced_def")
print(f"paced upstream, TTFT policy off: p50 {po['ttft_p50_ms']:.3f} ms, p99 {po['ttft_p99_ms']:.3f} ms; default: p50 {pd['ttft_p50_ms']:.3f} ms, p99 {pd['ttft_p99_ms']:.3f} ms")
print(f"paced upstream, TTFT added by output scanning: p50 {pd['ttft_p50_ms']-po['ttft_p50_ms']:.3f} ms, p99 {pd['ttft_p99_ms']-po['ttft_p99_ms']:.3f} ms; whole stream added p50 {pd['p50_ms']-po['p50_ms']:.3f} ms, p99 {pd['p99_ms']-po['p99_ms']:.3f} ms")
PY
echo "peak gateway RSS under load: $((RSS_LOAD2 / 1024)) MB (after non-streaming run: $((RSS_LOAD / 1024)) MB)"

echo "## highest sustained rate (no errors, p99 < 100 ms, >= 98% of asked rate), 2 KB non-streaming"
sustain() {
  local url="$1" key="$2" best=0
  for r in ${LADDER:-1000 1500 2000 2500 3000 4000 5000 6000 8000}; do
    out="$("$LOAD" "$url" "$r" 5 --key "$key" ${STREAM_FLAG:-})"
    ok="$(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(int(d['errors']==0 and d['p99_ms']<100 and d['achieved_rate']>=0.98*d['rate']))" "$out")"
    echo "  $r/s: $out" >&2
    [ "$ok" = 1 ] || break
    best=$r
  done
  echo "$best"
}
if [ "${SKIP_SUSTAIN:-0}" != 1 ]; then
  echo "direct:  $(sustain "$DIRECT" none) req/s"
  echo "gateway: $(sustain "$GW" "$KEY_DEFAULT") req/s"
  echo "## highest sustained rate, streaming (150 events per answer)"
  SLADDER="${SLADDER:-200 400 600 800 1000 1200 1500 2000}"
  echo "direct:  $(LADDER="$SLADDER" STREAM_FLAG=--stream sustain "$DIRECT" none) req/s"
  echo "gateway: $(LADDER="$SLADDER" STREAM_FLAG=--stream sustain "$GW" "$KEY_DEFAULT") req/s"
  echo "peak gateway RSS after the ladders (the last step overloads it): $(($(hwm_kb $GW_PID) / 1024)) MB"
fi

if [ "${LITELLM:-0}" = 1 ]; then
  echo "## LiteLLM proxy in front of the same fake upstream"
  VENV="${LITELLM_VENV:-$WORK/venv}"   # reuse an existing virtualenv with LITELLM_VENV
  [ -x "$VENV/bin/litellm" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q 'litellm[proxy]'; }
  LP="$(port)"
  cat > "$WORK/litellm.yaml" <<YAML
model_list:
  - model_name: bench
    litellm_params: {model: openai/bench, api_base: '$UP', api_key: none}
YAML
  LITELLM_MASTER_KEY=sk-bench-1234567890abcdef "$VENV/bin/litellm" --config "$WORK/litellm.yaml" --port "$LP" >"$WORK/litellm.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$LP/health/liveliness" >/dev/null && break; sleep 0.2; done
  LL="http://127.0.0.1:$LP/v1/chat/completions"
  for r in ${LITELLM_RATES:-100 200 500 1000}; do
    echo "litellm at $r req/s:"; run "$LL" "$r" "$SECS" --model bench --key sk-bench-1234567890abcdef
    echo "gateway at $r req/s:"; run "$GW" "$r" "$SECS" --key "$KEY_DEFAULT"
  done
fi
