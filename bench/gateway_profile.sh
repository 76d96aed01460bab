#!/usr/bin/env bash
# Where a gateway build spends its CPU on streamed answers: `perf record` (no call graphs, so
# the sampling barely slows it) of the gateway for 4 s of 1,000 streamed chat completions per
# second from the fake upstream (150 events, sent at once), then the samples per symbol.
# Run it for two builds and compare the listings (sample counts are comparable: same load).
#
#   FAKE=target/release/demarc bench/gateway_profile.sh DEMARC_BINARY [RATE] > symbols.txt
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$1"; RATE="${2:-1000}"; FAKE="${FAKE:-$BIN}"
cargo build --release -q -p demarc-gateway --example loadgen
LOAD="${CARGO_TARGET_DIR:-target}/release/examples/loadgen"
REPLY="$(python3 -c 'print(("The quarterly report shows approvals rose; risks remain in unsecured lending. ")*8, end="")')"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
w="$(mktemp -d)"
trap 'kill "$gp" "$fp" 2>/dev/null; rm -rf "$w"' EXIT
"$FAKE" fake-upstream --listen 127.0.0.1:0 --chunk-chars 4 --reply "$REPLY" > "$w/fake.url" 2>/dev/null &
fp=$!
for _ in $(seq 50); do [ -s "$w/fake.url" ] && break; sleep 0.1; done
gw_port="$(port)"
printf 'listen: 127.0.0.1:%s\ndb: sqlite://%s/b.db\nupstreams:\n  - {id: fake, base_url: %s}\napplications:\n  - {id: bench, upstreams: [fake]}\n' \
  "$gw_port" "$w" "$(cat "$w/fake.url")" > "$w/gw.yaml"
key="$("$BIN" keys create bench --config "$w/gw.yaml" --db "sqlite://$w/b.db" 2>/dev/null || "$BIN" keys create bench --db "sqlite://$w/b.db" 2>/dev/null)"
"$BIN" gateway --config "$w/gw.yaml" 2>"$w/gw.log" &
gp=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$gw_port/readyz" >/dev/null && break; sleep 0.1; done
perf record -F 4000 -p "$gp" -o "$w/perf.data" -- sleep 4 >/dev/null 2>&1 &
pp=$!
"$LOAD" "http://127.0.0.1:$gw_port/v1/chat/completions" "$RATE" 5 --stream --key "$key" > /dev/null
wait "$pp" || true
echo "# $BIN, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), samples per symbol" >&2
perf report -i "$w/perf.data" -n --no-children --sort symbol --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | sed -E 's/ +/ /g; s/( -)+ *$//'
