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

/// The RFC 3339 reader before issue 15 (hand-written calendar arithmetic), kept as the
/// baseline that BENCHMARKS.md compares the `time`-based reader against.
mod before {
    fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(m);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn digits(s: &[u8]) -> Option<u32> {
        if s.is_empty() || s.len() > 9 {
            return None;
        }
        let mut n = 0u32;
        for &b in s {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(b - b'0');
        }
        Some(n)
    }

    fn from_parts(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        Some((days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000)
    }

    pub fn parse_rfc3339(s: &[u8]) -> Option<i64> {
        if s.len() < 19
            || s[4] != b'-'
            || s[7] != b'-'
            || !matches!(s[10], b'T' | b't' | b' ')
            || s[13] != b':'
            || s[16] != b':'
        {
            return None;
        }
        let y = i64::from(digits(&s[0..4])?);
        let base = from_parts(
            y,
            digits(&s[5..7])?,
            digits(&s[8..10])?,
            digits(&s[11..13])?,
            digits(&s[14..16])?,
            digits(&s[17..19])?,
        )?;
        let mut rest = &s[19..];
        let mut micros = 0i64;
        if let Some((&b'.', frac)) = rest.split_first() {
            let end = frac
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(frac.len());
            let mut scale = 100_000;
            for &b in &frac[..end] {
                micros += i64::from(b - b'0') * scale;
                scale /= 10;
            }
            rest = &frac[end..];
        }
        let offset = match rest {
            b"" | b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), hh1, hh2, b':', mm1, mm2]
            | [sign @ (b'+' | b'-'), hh1, hh2, mm1, mm2] => {
                let minutes =
                    i64::from(digits(&[*hh1, *hh2])?) * 60 + i64::from(digits(&[*mm1, *mm2])?);
                if *sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        Some(base + micros - offset * 60_000_000)
    }
}

/// Log timestamps: the reader (`time`'s calendar) against the reader before issue 15 and
/// against `time`'s own RFC 3339 parser, on the same 10,000 stamps.
fn timestamps(c: &mut Criterion) {
    use demarc_discover::time::{format_rfc3339, parse_rfc3339};
    let stamps: Vec<Vec<u8>> = (0..10_000i64)
        .map(|i| {
            let t = 1_700_000_000_000_000 + i * 7_919_123_457;
            let text = format_rfc3339(t);
            // Every third stamp with an offset, as zeek-json and Cloudflare logs write them.
            if i % 3 == 0 {
                text.replace('Z', "+01:00").into_bytes()
            } else {
                text.into_bytes()
            }
        })
        .collect();
    let time_crate = |s: &[u8]| {
        let text = std::str::from_utf8(s).ok()?;
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
    };
    for s in &stamps {
        assert_eq!(parse_rfc3339(s), before::parse_rfc3339(s));
        assert_eq!(parse_rfc3339(s), time_crate(s));
    }
    let mut group = c.benchmark_group("timestamps");
    group.throughput(Throughput::Elements(stamps.len() as u64));
    group.bench_function("rfc3339_reader", |b| {
        b.iter(|| stamps.iter().filter_map(|s| parse_rfc3339(s)).sum::<i64>())
    });
    group.bench_function("rfc3339_before", |b| {
        b.iter(|| {
            stamps
                .iter()
                .filter_map(|s| before::parse_rfc3339(s))
                .sum::<i64>()
        })
    });
    group.bench_function("rfc3339_time_crate", |b| {
        b.iter(|| stamps.iter().filter_map(|s| time_crate(s)).sum::<i64>())
    });
    group.finish();
}

criterion_group!(discover, benches, timestamps);
criterion_main!(discover);
