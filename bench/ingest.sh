#!/usr/bin/env bash
# Discovery over HTTP: a generated Squid log of SIZE bytes posted to `demarc serve`'s
# `POST /api/v1/discovery/ingest` in batches of BATCH bytes (cut between lines, posted by PAR
# curl processes at once, as a shipper with that many requests in flight), against `demarc
# discover FILE --record` of the same file. Reports both wall times and throughputs, the runs
# the batches were gathered into, whether a re-sent batch was a duplicate, and whether `demarc
# discover report` of the two stores is the same (it must be: exit 1 if not).
# Usage: bench/ingest.sh [SIZE] [BATCH] [PAR]   (default 1G, 8M, 4; sizes as `split -C` takes)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${1:-1G}"; BATCH="${2:-8M}"; PAR="${3:-4}"
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release -q -p demarc-cli -p demarc-discover --bins
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/demarc"; GEN="$TARGET/release/demarc-loggen"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bytes="$(numfmt --from=iec "$SIZE")"
"$GEN" squid "$bytes" --seed 5 > "$WORK/all.log"
split -C "$BATCH" -d -a 6 "$WORK/all.log" "$WORK/batch."
batches=("$WORK"/batch.*)
ESTATE=examples/bank-estate.yaml
echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ); $(stat -c %s "$WORK/all.log") bytes in ${#batches[@]} batches of at most $BATCH"

# Over HTTP.
DB_HTTP="sqlite://$WORK/http.db"
P="$(port)"
TOKEN="$("$BIN" tokens create --role ingest --label bench --db "$DB_HTTP" 2>/dev/null)"
"$BIN" serve --estate "$ESTATE" --listen "127.0.0.1:$P" --db "$DB_HTTP" 2>"$WORK/serve.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P/healthz" >/dev/null && break; sleep 0.1; done
start=$(date +%s.%N)
send() {
  local code
  code="$(curl -s -o "$1.answer" -w '%{http_code}' -X POST \
    "http://127.0.0.1:$P/api/v1/discovery/ingest?sensor=bench&batch=$(basename "$1")" \
    -H "authorization: Bearer $TOKEN" -H 'content-type: text/plain' --data-binary "@$1")"
  [ "$code" = 201 ] || { echo "batch $1: HTTP $code: $(cat "$1.answer")" >&2; exit 1; }
}
export -f send; export P TOKEN
printf '%s\n' "${batches[@]}" | xargs -P "$PAR" -I{} bash -c 'send {}'
http_s="$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")"
retry="$(curl -s -X POST "http://127.0.0.1:$P/api/v1/discovery/ingest?sensor=bench&batch=retry" \
  -H "authorization: Bearer $TOKEN" --data-binary "@${batches[0]}")"

# The same file read by `demarc discover`.
DB_FILE="sqlite://$WORK/file.db"
start=$(date +%s.%N)
"$BIN" discover "$WORK/all.log" --estate "$ESTATE" --record --sensor bench --db "$DB_FILE" --format json > /dev/null 2>"$WORK/discover.log"
file_s="$(python3 -c "import time; print(f'{time.time() - $start:.2f}')")"

"$BIN" discover report --format json --db "$DB_HTTP" > "$WORK/http.json" 2>/dev/null
"$BIN" discover report --format json --db "$DB_FILE" > "$WORK/file.json" 2>/dev/null
runs="$("$BIN" discover runs --format json --db "$DB_HTTP" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
python3 - "$WORK/all.log" "$http_s" "$file_s" "$runs" "$retry" "$WORK/http.json" "$WORK/file.json" <<'PY'
import json, os, sys
size = os.path.getsize(sys.argv[1]) / 1e6
http_s, file_s, runs = float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
retry = json.loads(sys.argv[5])
same = json.load(open(sys.argv[6])) == json.load(open(sys.argv[7]))
print(f"| over HTTP, gathered into {runs} runs | {http_s:.2f} s | {size / http_s:.0f} MB/s |")
print(f"| `demarc discover --record` | {file_s:.2f} s | {size / file_s:.0f} MB/s |")
print(f"re-sent batch: duplicate={retry.get('duplicate')}; reports identical: {same}")
sys.exit(0 if same and retry.get("duplicate") else 1)
PY
