#!/usr/bin/env bash
# `demarc serve` benchmark: latency of each page and endpoint over a seeded SQLite store (the
# bank estate, 30 recorded assessment runs, a year of gateway traffic for 11 applications in
# the per-day summary), the first request after the estate changed (a fresh assessment)
# against a cached one, throughput with 4 concurrent clients, and the server's peak RSS.
#
#   bench/serve.sh            # REQUESTS=300 per path; DEMARC_BIN to skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS="${REQUESTS:-300}"
if [ -z "${DEMARC_BIN:-}" ]; then
  cargo build --release -q -p demarc-cli
  DEMARC_BIN="${CARGO_TARGET_DIR:-target}/release/demarc"
fi
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export DEMARC_DB="sqlite://$work/store.db"
cp examples/bank-estate.yaml "$work/estate.yaml"
cp -r examples/evidence "$work/evidence" 2>/dev/null || true

echo "seeding: 30 assessment runs, 365 days x 11 applications of gateway traffic" >&2
for i in $(seq 1 30); do
  day="$(date -u -d "2026-11-26 -$(( (30 - i) * 7 )) days" +%F)"
  "$DEMARC_BIN" assess "$work/estate.yaml" --record --today "$day" >/dev/null 2>&1
done
python3 - "$work/store.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
apps = ["colleague-assistant", "complaints-llm", "m365-copilot", "crm-einstein", "policy-finder",
        "github-copilot", "servicenow-now-assist", "payments-agent", "claude-research",
        "consumer-chatgpt", "otter-notes"]
today = int(time.time()) // 86400
rows = []
for d in range(today - 364, today + 1):
    for i, app in enumerate(apps):
        n = 200 + (d * 7 + i * 13) % 900
        rows.append((app, "gw-1", d, n, n - n // 20, n // 25, n // 100, 1, d * 86400000,
                     d * 86400000 + 1, n // 10, n, n * 180_000))
db.executemany("""INSERT INTO audit_traffic (application, chain, day, requests, served, blocked,
    refused, failed, first_ms, last_ms, redactions, timed, latency_us_total)
    VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""", rows)
db.commit()
PY
token="$("$DEMARC_BIN" tokens create --role auditor --label bench 2>/dev/null)"

port=$(( 20000 + RANDOM % 20000 ))
"$DEMARC_BIN" serve --estate "$work/estate.yaml" --listen "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

python3 - "$port" "$token" "$REQUESTS" "$work/estate.yaml" "$server" <<'PY'
import http.client, os, statistics, sys, threading, time
port, token, n, estate, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
headers = {"Authorization": f"Bearer {token}"}

def get(conn, path):
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status, body[:200])
    return (time.perf_counter() - t) * 1000, len(body)

conn = http.client.HTTPConnection("127.0.0.1", port)
print(f"{'path':40} {'median ms':>10} {'p95 ms':>8} {'bytes':>8}")
paths = ["/healthz", "/", "/matrix", "/applications", "/applications/payments-agent", "/teams",
         "/gateway", "/audit", "/api/v1/applications", "/api/v1/applications/payments-agent",
         "/api/v1/gateway/activity?days=365", "/api/v1/assessments?limit=1000",
         "/api/v1/openapi.json"]
for path in paths:
    get(conn, path)
    times = []
    for _ in range(n):
        ms, size = get(conn, path)
        times.append(ms)
    times.sort()
    print(f"{path:40} {statistics.median(times):10.2f} {times[int(len(times) * 0.95)]:8.2f} {size:8}")

# A fresh assessment: the first request after the estate file changed, against a cached one.
fresh, cached = [], []
for _ in range(20):
    os.utime(estate)
    fresh.append(get(conn, "/")[0])
    cached.append(get(conn, "/")[0])
print(f"{'/ after the estate changed (fresh)':40} {statistics.median(fresh):10.2f}")
print(f"{'/ right after (cached)':40} {statistics.median(cached):10.2f}")

# Throughput: 4 clients, each its own connection, for 5 s on the overview.
count = [0] * 4
stop = time.time() + 5
def client(i):
    c = http.client.HTTPConnection("127.0.0.1", port)
    while time.time() < stop:
        get(c, "/")
        count[i] += 1
threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(f"overview, 4 clients: {sum(count) / 5:.0f} pages/s")
for line in open(f"/proc/{pid}/status"):
    if line.startswith("VmHWM"):
        print("server peak RSS:", line.split(":")[1].strip())
PY
