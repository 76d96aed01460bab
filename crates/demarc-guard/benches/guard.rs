//! Criterion benchmarks of the guard's hot paths (Throughput::Bytes):
//! whole-text scanning with the default policy (input and output), incremental scanning of the
//! same text in 4 KiB and 64 KiB chunks, and a 4 KB prompt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use demarc_guard::{Direction, Guard, Policy};

#[path = "corpus.rs"]
mod corpus;

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bench(c: &mut Criterion) {
    let text = corpus::build(&repo(), 4 << 20);
    let guard = Guard::new(&Policy::default()).unwrap();
    let mut group = c.benchmark_group("guard");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    for (name, dir) in [("input", Direction::Input), ("output", Direction::Output)] {
        group.bench_function(BenchmarkId::new("whole", name), |b| {
            b.iter(|| guard.scan(&text, dir))
        });
    }
    for chunk in [4096usize, 65536] {
        group.bench_function(BenchmarkId::new("stream_input", chunk), |b| {
            b.iter(|| {
                let mut s = guard.stream(Direction::Input);
                for piece in corpus::chunks(&text, chunk) {
                    std::hint::black_box(s.push(piece));
                }
                s.finish()
            })
        });
    }
    group.finish();

    let prompt = corpus::prompt_4k(&text);
    let mut group = c.benchmark_group("prompt");
    group.throughput(Throughput::Bytes(prompt.len() as u64));
    group.bench_function("4k_default_input", |b| {
        b.iter(|| guard.scan(&prompt, Direction::Input))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
