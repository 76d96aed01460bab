//! Versioned migrations, one list per backend. A migration is never edited once
//! released; a change is a new version appended to both lists.

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = 7;

/// Statements of each version for SQLite, oldest first (index 0 is version 1).
/// (Public for the migration tests, which build a store of an older version.)
#[doc(hidden)]
pub const SQLITE: &[&[&str]] = &[
    // Version 1.
    &[
        "CREATE TABLE estates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        imported_at_ms INTEGER NOT NULL,
        UNIQUE (name, content_sha256))",
        "CREATE TABLE assessment_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        estate_id INTEGER NOT NULL REFERENCES estates (id),
        at_ms INTEGER NOT NULL)",
        "CREATE TABLE duty_results (
        run_id INTEGER NOT NULL REFERENCES assessment_runs (id) ON DELETE CASCADE,
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        accountable TEXT NOT NULL,
        owner_team TEXT,
        control_status TEXT NOT NULL,
        evidence_status TEXT NOT NULL,
        covered BOOLEAN NOT NULL)",
        "CREATE INDEX duty_results_run_app ON duty_results (run_id, application)",
        "CREATE TABLE discovery_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        at_ms INTEGER NOT NULL)",
        "CREATE TABLE discovery_findings (
        run_id INTEGER NOT NULL REFERENCES discovery_runs (id) ON DELETE CASCADE,
        service TEXT NOT NULL,
        user_name TEXT NOT NULL,
        requests INTEGER NOT NULL,
        bytes_sent INTEGER NOT NULL,
        bytes_received INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL)",
        "CREATE INDEX discovery_findings_run ON discovery_findings (run_id)",
        "CREATE INDEX discovery_findings_last_seen ON discovery_findings (last_seen_ms)",
        "CREATE TABLE evidence (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        source TEXT NOT NULL,
        observed_at_ms INTEGER NOT NULL,
        summary TEXT NOT NULL,
        expires_at_ms INTEGER)",
        "CREATE INDEX evidence_app_area ON evidence (application, area, observed_at_ms)",
        "CREATE TABLE audit_events (
        chain TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        payload TEXT NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (chain, seq)) WITHOUT ROWID",
        "CREATE TABLE audit_chains (
        chain TEXT PRIMARY KEY,
        head_seq INTEGER NOT NULL,
        head_hash BLOB NOT NULL)",
        "CREATE TABLE audit_checkpoints (
        chain TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        pruned_at_ms INTEGER NOT NULL,
        prev_seal BLOB NOT NULL,
        seal BLOB NOT NULL,
        PRIMARY KEY (chain, seq))",
        "CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        application TEXT NOT NULL,
        key_hash BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER)",
        "CREATE TABLE rate_counters (
        key TEXT NOT NULL,
        window_start_ms INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (key, window_start_ms))",
    ],
    // Version 2: evidence keeps its observation kind and is bounded (the latest per
    // application x area x kind, plus one row per day); gateway traffic per day, derived
    // from the audit trail at append time (backfilled in `Store::migrate`).
    &[
        "ALTER TABLE evidence RENAME TO evidence_v1",
        "CREATE TABLE evidence (
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        observed_at_ms INTEGER NOT NULL,
        summary TEXT NOT NULL,
        expires_at_ms INTEGER,
        PRIMARY KEY (application, area, kind))",
        "CREATE TABLE evidence_days (
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        kind TEXT NOT NULL,
        day INTEGER NOT NULL,
        observations INTEGER NOT NULL,
        first_observed_ms INTEGER NOT NULL,
        last_observed_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        summary TEXT NOT NULL,
        expires_at_ms INTEGER,
        PRIMARY KEY (application, area, kind, day))",
        "CREATE INDEX evidence_days_day ON evidence_days (day)",
        // Rows of version 1 did not say which fact they showed: they keep their history
        // under the kind `unclassified`, which no catalog maps to an area.
        "INSERT INTO evidence_days (application, area, kind, day, observations,
        first_observed_ms, last_observed_ms, source, summary, expires_at_ms)
     SELECT application, area, 'unclassified', day, n, first_ms, observed_at_ms, source,
        summary, expires_at_ms
     FROM (SELECT application, area, source, observed_at_ms, summary, expires_at_ms,
             observed_at_ms / 86400000 AS day,
             ROW_NUMBER() OVER (PARTITION BY application, area, observed_at_ms / 86400000
                                ORDER BY observed_at_ms DESC, id DESC) AS rn,
             COUNT(*) OVER (PARTITION BY application, area, observed_at_ms / 86400000) AS n,
             MIN(observed_at_ms) OVER (PARTITION BY application, area, observed_at_ms / 86400000)
                AS first_ms
           FROM evidence_v1) t
     WHERE rn = 1",
        "INSERT INTO evidence (application, area, kind, source, observed_at_ms, summary,
        expires_at_ms)
     SELECT application, area, 'unclassified', source, observed_at_ms, summary, expires_at_ms
     FROM (SELECT application, area, source, observed_at_ms, summary, expires_at_ms,
             ROW_NUMBER() OVER (PARTITION BY application, area
                                ORDER BY observed_at_ms DESC, id DESC) AS rn
           FROM evidence_v1) t
     WHERE rn = 1",
        "DROP TABLE evidence_v1",
        "CREATE TABLE audit_traffic (
        application TEXT NOT NULL,
        chain TEXT NOT NULL,
        day INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        served INTEGER NOT NULL,
        blocked INTEGER NOT NULL,
        refused INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        PRIMARY KEY (application, chain, day)) WITHOUT ROWID",
        // Clustered by application (SQLite: without rowid), so that summing a window per
        // application and chain reads the table in order; by day for pruning.
        "CREATE INDEX audit_traffic_day ON audit_traffic (day)",
    ],
    // Version 3: an assessment run keeps the date it assessed for (`--today`), and a duty
    // result the component it was resolved from.
    &[
        "ALTER TABLE assessment_runs ADD COLUMN assessed_on TEXT",
        "ALTER TABLE duty_results ADD COLUMN component TEXT",
    ],
    // Version 4: a discovery finding keeps what the estate said of it (the applications that
    // cover it, its status), the tenant host, the kind of identity, the host roles seen and
    // the proxy's verdicts, so that `assess` can read contradictions and unlisted services.
    &[
        "ALTER TABLE discovery_findings ADD COLUMN applications TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN status TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN tenant TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN user_kind TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN host_kinds TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE discovery_findings ADD COLUMN allowed INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX discovery_findings_first_seen ON discovery_findings (first_seen_ms)",
    ],
    // Version 5: canaries the gateway generates and injects into an application's system
    // context; a retired one stays blocked for a grace period after its rotation.
    &[
        "CREATE TABLE canaries (
        id TEXT PRIMARY KEY,
        application TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL,
        retired_at_ms INTEGER)",
        "CREATE INDEX canaries_app ON canaries (application, created_at_ms)",
    ],
    // Version 6: access tokens of `demarc serve` (only their hashes), the browser sessions a
    // login exchanges a token for, and redactions and latency in the daily traffic summary.
    &[
        "CREATE TABLE serve_tokens (
        id TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        label TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER)",
        "CREATE TABLE serve_sessions (
        session_hash BLOB PRIMARY KEY,
        token_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL)",
        "CREATE INDEX serve_sessions_token ON serve_sessions (token_id)",
        // The daily traffic summary also keeps redactions and latency (a total and how
        // many requests it sums), for the dashboard's gateway activity.
        "ALTER TABLE audit_traffic ADD COLUMN redactions INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE audit_traffic ADD COLUMN timed INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE audit_traffic ADD COLUMN latency_us_total INTEGER NOT NULL DEFAULT 0",
    ],
    // Version 7: a discovery run names the sensor that read its logs, and keeps the
    // SHA-256 of each input it read, unique across runs, so the same log is never counted
    // twice.
    &[
        "ALTER TABLE discovery_runs ADD COLUMN sensor TEXT",
        // Requests to the service's ui, api or auth hosts: an identity with none reached it
        // incidentally. Kept for every identity so that runs merge exactly.
        "ALTER TABLE discovery_findings ADD COLUMN use_requests INTEGER",
        "CREATE TABLE discovery_inputs (
        run_id INTEGER NOT NULL REFERENCES discovery_runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 BLOB NOT NULL,
        bytes INTEGER NOT NULL)",
        "CREATE UNIQUE INDEX discovery_inputs_sha256 ON discovery_inputs (sha256)",
        "CREATE INDEX discovery_inputs_run ON discovery_inputs (run_id)",
    ],
];

/// Statements of each version for PostgreSQL, oldest first.
#[doc(hidden)]
pub const POSTGRES: &[&[&str]] = &[
    // Version 1.
    &[
        "CREATE TABLE estates (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        imported_at_ms BIGINT NOT NULL,
        UNIQUE (name, content_sha256))",
        "CREATE TABLE assessment_runs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        estate_id BIGINT NOT NULL REFERENCES estates (id),
        at_ms BIGINT NOT NULL)",
        "CREATE TABLE duty_results (
        run_id BIGINT NOT NULL REFERENCES assessment_runs (id) ON DELETE CASCADE,
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        accountable TEXT NOT NULL,
        owner_team TEXT,
        control_status TEXT NOT NULL,
        evidence_status TEXT NOT NULL,
        covered BOOLEAN NOT NULL)",
        "CREATE INDEX duty_results_run_app ON duty_results (run_id, application)",
        "CREATE TABLE discovery_runs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source TEXT NOT NULL,
        at_ms BIGINT NOT NULL)",
        "CREATE TABLE discovery_findings (
        run_id BIGINT NOT NULL REFERENCES discovery_runs (id) ON DELETE CASCADE,
        service TEXT NOT NULL,
        user_name TEXT NOT NULL,
        requests BIGINT NOT NULL,
        bytes_sent BIGINT NOT NULL,
        bytes_received BIGINT NOT NULL,
        first_seen_ms BIGINT NOT NULL,
        last_seen_ms BIGINT NOT NULL)",
        "CREATE INDEX discovery_findings_run ON discovery_findings (run_id)",
        "CREATE INDEX discovery_findings_last_seen ON discovery_findings (last_seen_ms)",
        "CREATE TABLE evidence (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        source TEXT NOT NULL,
        observed_at_ms BIGINT NOT NULL,
        summary TEXT NOT NULL,
        expires_at_ms BIGINT)",
        "CREATE INDEX evidence_app_area ON evidence (application, area, observed_at_ms)",
        "CREATE TABLE audit_events (
        chain TEXT NOT NULL,
        seq BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        payload TEXT NOT NULL,
        prev_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        PRIMARY KEY (chain, seq))",
        "CREATE TABLE audit_chains (
        chain TEXT PRIMARY KEY,
        head_seq BIGINT NOT NULL,
        head_hash BYTEA NOT NULL)",
        "CREATE TABLE audit_checkpoints (
        chain TEXT NOT NULL,
        seq BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        pruned_at_ms BIGINT NOT NULL,
        prev_seal BYTEA NOT NULL,
        seal BYTEA NOT NULL,
        PRIMARY KEY (chain, seq))",
        "CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        application TEXT NOT NULL,
        key_hash BYTEA NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        revoked_at_ms BIGINT)",
        "CREATE TABLE rate_counters (
        key TEXT NOT NULL,
        window_start_ms BIGINT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (key, window_start_ms))",
    ],
    // Version 2: evidence keeps its observation kind and is bounded (the latest per
    // application x area x kind, plus one row per day); gateway traffic per day, derived
    // from the audit trail at append time (backfilled in `Store::migrate`).
    &[
        "ALTER TABLE evidence RENAME TO evidence_v1",
        "CREATE TABLE evidence (
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        observed_at_ms BIGINT NOT NULL,
        summary TEXT NOT NULL,
        expires_at_ms BIGINT,
        PRIMARY KEY (application, area, kind))",
        "CREATE TABLE evidence_days (
        application TEXT NOT NULL,
        area TEXT NOT NULL,
        kind TEXT NOT NULL,
        day BIGINT NOT NULL,
        observations BIGINT NOT NULL,
        first_observed_ms BIGINT NOT NULL,
        last_observed_ms BIGINT NOT NULL,
        source TEXT NOT NULL,
        summary TEXT NOT NULL,
        expires_at_ms BIGINT,
        PRIMARY KEY (application, area, kind, day))",
        "CREATE INDEX evidence_days_day ON evidence_days (day)",
        // Rows of version 1 did not say which fact they showed: they keep their history
        // under the kind `unclassified`, which no catalog maps to an area.
        "INSERT INTO evidence_days (application, area, kind, day, observations,
        first_observed_ms, last_observed_ms, source, summary, expires_at_ms)
     SELECT application, area, 'unclassified', day, n, first_ms, observed_at_ms, source,
        summary, expires_at_ms
     FROM (SELECT application, area, source, observed_at_ms, summary, expires_at_ms,
             observed_at_ms / 86400000 AS day,
             ROW_NUMBER() OVER (PARTITION BY application, area, observed_at_ms / 86400000
                                ORDER BY observed_at_ms DESC, id DESC) AS rn,
             COUNT(*) OVER (PARTITION BY application, area, observed_at_ms / 86400000) AS n,
             MIN(observed_at_ms) OVER (PARTITION BY application, area, observed_at_ms / 86400000)
                AS first_ms
           FROM evidence_v1) t
     WHERE rn = 1",
        "INSERT INTO evidence (application, area, kind, source, observed_at_ms, summary,
        expires_at_ms)
     SELECT application, area, 'unclassified', source, observed_at_ms, summary, expires_at_ms
     FROM (SELECT application, area, source, observed_at_ms, summary, expires_at_ms,
             ROW_NUMBER() OVER (PARTITION BY application, area
                                ORDER BY observed_at_ms DESC, id DESC) AS rn
           FROM evidence_v1) t
     WHERE rn = 1",
        "DROP TABLE evidence_v1",
        "CREATE TABLE audit_traffic (
        application TEXT NOT NULL,
        chain TEXT NOT NULL,
        day BIGINT NOT NULL,
        requests BIGINT NOT NULL,
        served BIGINT NOT NULL,
        blocked BIGINT NOT NULL,
        refused BIGINT NOT NULL,
        failed BIGINT NOT NULL,
        first_ms BIGINT NOT NULL,
        last_ms BIGINT NOT NULL,
        PRIMARY KEY (application, chain, day))",
        // Clustered by application (SQLite: without rowid), so that summing a window per
        // application and chain reads the table in order; by day for pruning.
        "CREATE INDEX audit_traffic_day ON audit_traffic (day)",
    ],
    // Version 3: an assessment run keeps the date it assessed for (`--today`), and a duty
    // result the component it was resolved from.
    &[
        "ALTER TABLE assessment_runs ADD COLUMN assessed_on TEXT",
        "ALTER TABLE duty_results ADD COLUMN component TEXT",
    ],
    // Version 4: a discovery finding keeps what the estate said of it (the applications that
    // cover it, its status), the tenant host, the kind of identity, the host roles seen and
    // the proxy's verdicts, so that `assess` can read contradictions and unlisted services.
    &[
        "ALTER TABLE discovery_findings ADD COLUMN applications TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN status TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN tenant TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN user_kind TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN host_kinds TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN blocked BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE discovery_findings ADD COLUMN allowed BIGINT NOT NULL DEFAULT 0",
        "CREATE INDEX discovery_findings_first_seen ON discovery_findings (first_seen_ms)",
    ],
    // Version 5: canaries the gateway generates and injects into an application's system
    // context; a retired one stays blocked for a grace period after its rotation.
    &[
        "CREATE TABLE canaries (
        id TEXT PRIMARY KEY,
        application TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        created_at_ms BIGINT NOT NULL,
        retired_at_ms BIGINT)",
        "CREATE INDEX canaries_app ON canaries (application, created_at_ms)",
    ],
    // Version 6: access tokens of `demarc serve` (only their hashes), the browser sessions a
    // login exchanges a token for, and redactions and latency in the daily traffic summary.
    &[
        "CREATE TABLE serve_tokens (
        id TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        label TEXT NOT NULL,
        token_hash BYTEA NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        revoked_at_ms BIGINT)",
        "CREATE TABLE serve_sessions (
        session_hash BYTEA PRIMARY KEY,
        token_id TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL)",
        "CREATE INDEX serve_sessions_token ON serve_sessions (token_id)",
        // The daily traffic summary also keeps redactions and latency (a total and how
        // many requests it sums), for the dashboard's gateway activity.
        "ALTER TABLE audit_traffic ADD COLUMN redactions BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE audit_traffic ADD COLUMN timed BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE audit_traffic ADD COLUMN latency_us_total BIGINT NOT NULL DEFAULT 0",
    ],
    // Version 7: see SQLite's.
    &[
        "ALTER TABLE discovery_runs ADD COLUMN sensor TEXT",
        "ALTER TABLE discovery_findings ADD COLUMN use_requests BIGINT",
        "CREATE TABLE discovery_inputs (
        run_id BIGINT NOT NULL REFERENCES discovery_runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        sha256 BYTEA NOT NULL,
        bytes BIGINT NOT NULL)",
        "CREATE UNIQUE INDEX discovery_inputs_sha256 ON discovery_inputs (sha256)",
        "CREATE INDEX discovery_inputs_run ON discovery_inputs (run_id)",
    ],
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_define_every_version() {
        assert_eq!(SQLITE.len() as i64, SCHEMA_VERSION);
        assert_eq!(POSTGRES.len() as i64, SCHEMA_VERSION);
        for (s, p) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!(
                s.len(),
                p.len(),
                "same statements per version on both backends"
            );
        }
    }
}
