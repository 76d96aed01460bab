//! One module per subcommand. Each exposes `Args` (clap) and `run(args) -> anyhow::Result<Outcome>`.
pub mod assess;
pub mod catalogs;
pub mod common;
pub mod explain;
pub mod init;
pub mod matrix;
pub mod schema;
pub mod validate;
pub mod what_if;
pub mod audit;
pub mod db;
pub mod history;
pub mod ground;
pub mod fake_upstream;
pub mod gateway;
pub mod keys;
pub mod scan;
