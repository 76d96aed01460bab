//! End-to-end tests: each module drives the real `demarc` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod ground;
mod model;
mod store;
mod snapshots_model;
mod guard;
mod gateway;
mod discover;
