//! Cost of the optional ONNX classifier on a 4 KB prompt (the guard bench's `prompt_4k`), with
//! the tiny model of tests/fixtures/onnx: what the plumbing costs (tokenizer, windows, one
//! ONNX Runtime call per window), not what a real model's inference costs.
//!
//!     ORT_DYLIB_PATH=.../libonnxruntime.so.1.x cargo bench -p demarc-guard --features onnx --bench onnx
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use demarc_guard::onnx::{OnnxClassifier, OnnxOptions};
use demarc_guard::{Classifier, Direction, Guard, Policy};

#[path = "corpus.rs"]
mod corpus;

fn bench(c: &mut Criterion) {
    if std::env::var_os("ORT_DYLIB_PATH").is_none_or(|v| v.is_empty()) {
        eprintln!("skipped: set ORT_DYLIB_PATH to libonnxruntime.so to benchmark the classifier");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = corpus::build(&root.join("../.."), 4 << 20);
    let prompt = corpus::prompt_4k(&text);
    let fixtures = root.join("tests/fixtures/onnx");
    let classifier = Arc::new(
        OnnxClassifier::load(
            &fixtures.join("model.onnx"),
            &fixtures.join("tokenizer.json"),
            OnnxOptions::default(),
        )
        .unwrap(),
    );
    eprintln!(
        "prompt: {} bytes, score {:.3}",
        prompt.len(),
        classifier.score(&prompt)
    );
    let plain = Guard::new(&Policy::default()).unwrap();
    let with = plain.clone().with_classifier(classifier.clone());

    let mut group = c.benchmark_group("prompt");
    group.throughput(Throughput::Bytes(prompt.len() as u64));
    group.bench_function("4k_classifier_score", |b| {
        b.iter(|| classifier.score(&prompt))
    });
    group.bench_function("4k_default_input", |b| {
        b.iter(|| plain.scan(&prompt, Direction::Input))
    });
    group.bench_function("4k_default_input_with_classifier", |b| {
        b.iter(|| with.scan(&prompt, Direction::Input))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
