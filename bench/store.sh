#!/usr/bin/env bash
# Store benchmark: batched audit append into SQLite and PostgreSQL (events/s) and
# `verify` over 1,000,000 events. Needs PostgreSQL on 127.0.0.1:5432 (or
# DEMARC_TEST_PG; BENCH_SKIP_PG=1 to skip it). See crates/demarc-store/benches/store.rs
# for the knobs (BENCH_APPEND_EVENTS, BENCH_BATCH, BENCH_VERIFY_EVENTS, BENCH_RUNS).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p demarc-store --bench store "$@"
