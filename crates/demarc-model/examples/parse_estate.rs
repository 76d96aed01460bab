//! Parse + check of one estate file against the seed catalog, timed in process: the YAML
//! loader's share of `demarc assess`, without the rest. Prints seconds and applications.
//!
//!     python3 bench/gen-estate.py --apps 10000 > /tmp/estate.yaml
//!     cargo run --release -p demarc-model --example parse_estate -- /tmp/estate.yaml

use std::process::ExitCode;
use std::time::Instant;

use demarc_model::{CheckedCatalog, CheckedEstate};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: parse_estate ESTATE");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(2);
        }
    };
    let catalog = match CheckedCatalog::default_catalog() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    match CheckedEstate::from_bytes(&path, &bytes, &catalog) {
        Ok(checked) => {
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "{seconds:.3} s, {} applications, {} bytes",
                checked.estate.applications().len(),
                bytes.len()
            );
            ExitCode::SUCCESS
        }
        Err(d) => {
            eprintln!("{d}");
            ExitCode::FAILURE
        }
    }
}
