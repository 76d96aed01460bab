#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Hot paths of discovery: host matching and line parsing, on generated logs.
//! `cargo bench -p demarc-discover`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use demarc_discover::formats::{Line, Parser, Scratch, ZeekSchema};
use demarc_discover::loggen::{GenFormat, GenOptions, generate};
use demarc_discover::matcher::Matcher;
use demarc_discover::{Catalog, Input, Progress, ScanOptions, scan};

fn log(catalog: &Catalog, format: GenFormat) -> Vec<u8> {
    let mut out = Vec::new();
    generate(
        catalog,
        &GenOptions {
            format,
            size: 8 << 20,
            ..GenOptions::default()
        },
        &mut out,
    )
    .unwrap();
    out
}

fn benches(c: &mut Criterion) {
    let catalog = Catalog::builtin().unwrap();
    let matcher = Matcher::new(&catalog);

    let ssl = log(&catalog, GenFormat::ZeekSsl);
    let squid = log(&catalog, GenFormat::Squid);
    let fields = ssl
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"#fields"))
        .unwrap();
    let zeek = Parser::Zeek(ZeekSchema::from_fields_line(fields));

    let mut group = c.benchmark_group("parse_and_match");
    for (name, parser, data) in [("zeek_ssl", &zeek, &ssl), ("squid", &Parser::Squid, &squid)] {
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            let mut scratch = Scratch::default();
            b.iter(|| {
                let mut hits = 0u64;
                for line in data.split(|&b| b == b'\n') {
                    if let Ok(Line::Record(r)) = parser.parse(line, &mut scratch) {
                        hits += u64::from(matcher.lookup(&r.host).is_some());
                    }
                }
                hits
            })
        });
    }
    group.finish();

    let hosts: Vec<&[u8]> = [
        &b"chatgpt.com"[..],
        b"api.openai.com",
        b"www.google.com",
        b"a.b.c.example.co.uk",
        b"gemini.google.com",
        b"outlook.office365.com",
    ]
    .to_vec();
    let mut group = c.benchmark_group("matcher");
    group.throughput(Throughput::Elements(hosts.len() as u64));
    group.bench_function("lookup", |b| {
        b.iter(|| hosts.iter().filter(|h| matcher.lookup(h).is_some()).count())
    });
    group.finish();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ssl.log");
    std::fs::write(&path, &ssl).unwrap();
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(ssl.len() as u64));
    group.sample_size(10);
    for threads in [1, 2] {
        group.bench_function(format!("zeek_ssl_{threads}_threads"), |b| {
            let options = ScanOptions {
                threads,
                ..ScanOptions::default()
            };
            b.iter(|| {
                scan(
                    &[Input::Path(path.clone())],
                    &catalog,
                    &options,
                    &Progress::default(),
                )
                .records
            })
        });
    }
    group.finish();
}

criterion_group!(discover, benches);
criterion_main!(discover);
