#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! In-process cost of the assessment pipeline on a generated estate: parse + check, and
//! assess, per application. The estate comes from `bench/gen-estate.py` (the same file the
//! whole-program benchmark `bench/assess.sh` uses); `DEMARC_BENCH_APPS` sets its size
//! (default 10,000 applications x 3 components).
//!
//!     cargo bench -p demarc-model --bench assess

use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use demarc_model::assess::{AssessOptions, assess};
use demarc_model::{CheckedCatalog, CheckedEstate, Date};

fn generated_estate(apps: usize) -> Vec<u8> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/gen-estate.py");
    let out = Command::new("python3")
        .args([script, "--apps", &apps.to_string()])
        .output()
        .expect("python3 runs bench/gen-estate.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn bench(c: &mut Criterion) {
    let apps: usize = std::env::var("DEMARC_BENCH_APPS").map_or(10_000, |v| v.parse().unwrap());
    let bytes = generated_estate(apps);
    let catalog = CheckedCatalog::default_catalog().unwrap();
    let today: Date = "2026-11-26".parse().unwrap();
    let options = AssessOptions::new(today);

    let mut group = c.benchmark_group("assess");
    group.sample_size(10);
    group.throughput(Throughput::Elements(apps as u64));
    group.bench_function("parse+check", |b| {
        b.iter(|| CheckedEstate::from_bytes("estate.yaml", &bytes, &catalog).unwrap())
    });
    let checked = CheckedEstate::from_bytes("estate.yaml", &bytes, &catalog).unwrap();
    assert!(checked.warnings.is_empty(), "{}", checked.warnings);
    group.bench_function("assess", |b| {
        b.iter(|| assess(&checked.estate, &catalog, &options))
    });
    let report = assess(&checked.estate, &catalog, &options);
    group.bench_function("to_json", |b| {
        b.iter(|| serde_json::to_string_pretty(&report).unwrap())
    });
    group.bench_function("all", |b| {
        b.iter(|| {
            let checked = CheckedEstate::from_bytes("estate.yaml", &bytes, &catalog).unwrap();
            let report = assess(&checked.estate, &catalog, &options);
            serde_json::to_string_pretty(&report).unwrap().len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
