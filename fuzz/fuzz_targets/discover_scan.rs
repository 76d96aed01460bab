//! The whole scan over one input file (detection, gzip/zstd by magic bytes, block splitting
//! with small blocks, every reader): nothing may panic and the counts stay consistent.
#![no_main]
use demarc_discover::{Catalog, Input, Progress, ScanOptions, scan};
use libfuzzer_sys::fuzz_target;

/// Parsing the built-in catalog takes milliseconds: do it once, not per input.
static CATALOG: std::sync::OnceLock<Option<Catalog>> = std::sync::OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(catalog) = CATALOG.get_or_init(|| Catalog::builtin().ok()) else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("log");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let options = ScanOptions {
        threads: 2,
        block_size: 4096,
        ..ScanOptions::default()
    };
    let result = scan(
        &[Input::Path(path)],
        catalog,
        &options,
        &Progress::default(),
    );
    let lines: u64 = result.files.iter().map(|f| f.lines).sum();
    assert!(result.records + result.malformed <= lines);
});
