//! End-to-end tests: each module drives the real `demarc` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod catalogs;
mod compare;
mod crosswalk;
mod discover;
mod gateway;
mod ground;
mod guard;
mod history;
mod hostile;
mod interchange;
mod model;
mod replicas;
mod snapshots_model;
mod store;
mod validate;
mod verdicts;
