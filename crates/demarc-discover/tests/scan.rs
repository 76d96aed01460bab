#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The scan against generated logs with known ground truth, the real Zeek logs in
//! `../shared/data/logs`, and bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use demarc_discover::loggen::{GenFormat, GenOptions, generate};
use demarc_discover::{Catalog, Format, Input, Progress, Report, ScanOptions, scan};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/logs")
        .join(rel);
    p.exists().then_some(p)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Input {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    Input::Path(path)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Every generated format, read with 1 and 3 threads and small blocks (so lines straddle
/// block boundaries), gives exactly the generator's ground truth.
#[test]
fn generated_logs_match_ground_truth() {
    let catalog = Catalog::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in GenFormat::ALL {
        let mut log = Vec::new();
        let options = GenOptions {
            format,
            size: 400_000,
            seed: 7,
            users: 50,
            genai_per_mille: 200,
        };
        let truth = generate(&catalog, &options, &mut log).unwrap();
        let input = write(dir.path(), format.name(), &log);
        for threads in [1, 3] {
            // The generator's truth counts every DNS lookup: no deduplication here (see
            // `dns_lookups_are_deduplicated_per_client_and_name`).
            let opts = ScanOptions {
                threads,
                block_size: 4096,
                dns_window: 0,
                ..ScanOptions::default()
            };
            let result = scan(
                std::slice::from_ref(&input),
                &catalog,
                &opts,
                &Progress::default(),
            );
            assert_eq!(
                result.malformed, 0,
                "{format:?}: {:?}",
                result.malformed_examples
            );
            assert!(result.errors.is_empty(), "{:?}", result.errors);
            assert_eq!(result.records, truth.records, "{format:?}");
            for (id, t) in &truth.services {
                let index = catalog.services().iter().position(|s| &s.id == id).unwrap();
                let got = &result.usage.services[index].merged();
                assert_eq!(got.total.requests, t.requests, "{format:?} {id}");
                assert_eq!(got.total.use_requests, t.use_requests, "{format:?} {id}");
                assert_eq!(got.total.sent, t.bytes_sent, "{format:?} {id}");
                assert_eq!(got.total.received, t.bytes_received, "{format:?} {id}");
                assert_eq!(got.total.large_uploads, t.large_uploads, "{format:?} {id}");
                let users = got.users.iter().filter(|(_, u)| u.use_requests > 0).count();
                assert_eq!(users, t.users.len(), "{format:?} {id}");
            }
            let found = result
                .usage
                .services
                .iter()
                .filter(|s| s.merged().total.requests > 0)
                .count();
            assert_eq!(
                found,
                truth.services.len(),
                "{format:?}: services found that the generator never wrote"
            );
        }
    }
}

#[test]
fn gzip_zstd_and_many_files_add_up() {
    let catalog = Catalog::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    let truth = generate(
        &catalog,
        &GenOptions {
            format: GenFormat::Squid,
            size: 100_000,
            ..GenOptions::default()
        },
        &mut log,
    )
    .unwrap();
    let plain = write(dir.path(), "a.log", &log);
    let gz = write(dir.path(), "a.log.gz", &gzip(&log));
    let zst = write(
        dir.path(),
        "a.log.zst",
        &ruzstd::encoding::compress_to_vec(&log[..], ruzstd::encoding::CompressionLevel::Fastest),
    );
    let result = scan(
        &[plain, gz, zst],
        &catalog,
        &ScanOptions {
            threads: 2,
            ..ScanOptions::default()
        },
        &Progress::default(),
    );
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!(result.records, 3 * truth.records);
    assert_eq!(
        result
            .files
            .iter()
            .map(|f| f.compression.name())
            .collect::<Vec<_>>(),
        ["none", "gzip", "zstd"]
    );
}

#[test]
fn real_zeek_logs_are_read_by_their_fields_header() {
    let catalog = Catalog::builtin().unwrap();
    let Some(dns) = shared("zeek-wrccdc/zeek-default__dns.log.gz") else {
        return;
    };
    let Some(ssl) = shared("zeek-wrccdc/zeek-json__ssl.json.gz") else {
        return;
    };
    let result = scan(
        &[Input::Path(dns), Input::Path(ssl)],
        &catalog,
        &ScanOptions {
            threads: 2,
            ..ScanOptions::default()
        },
        &Progress::default(),
    );
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!(result.files[0].format, Some(Format::Zeek));
    assert_eq!(result.files[1].format, Some(Format::ZeekJson));
    // Data rows (lines not starting with `#`), counted with `zcat | grep -vc '^#'`.
    assert_eq!(result.files[0].records, 53_615);
    assert_eq!(result.files[1].records, 49_474);
    assert_eq!(result.malformed, 0, "{:?}", result.malformed_examples);
}

#[test]
fn btest_zeek_logs_with_canonified_timestamps() {
    // Zeek's test baselines replace timestamps by `XXXXXXXXXX.XXXXXX`: those records are kept
    // without a time and counted as such (not dropped); with real times they parse.
    let catalog = Catalog::builtin().unwrap();
    let Some(path) =
        shared("zeek/scripts.base.files.x509.disable-certificate-events-known-certs__ssl.log")
    else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let raw = scan(
        &[Input::Path(path)],
        &catalog,
        &ScanOptions::default(),
        &Progress::default(),
    );
    assert_eq!((raw.records, raw.malformed, raw.untimed), (8, 0, 8));
    assert_eq!(raw.files[0].untimed, 8);
    let fixed = write(
        dir.path(),
        "ssl.log",
        text.replace("XXXXXXXXXX.XXXXXX", "1521911720.865716")
            .replace("www.google.com", "gemini.google.com")
            .as_bytes(),
    );
    let ok = scan(
        &[fixed],
        &catalog,
        &ScanOptions::default(),
        &Progress::default(),
    );
    assert_eq!((ok.records, ok.malformed), (8, 0));
    let report = Report::build(&catalog, &ok, &[]);
    assert_eq!(report.services.len(), 1);
    assert_eq!(report.services[0].id, "gemini");
    assert_eq!(report.services[0].requests, 4);
    assert_eq!(report.services[0].top_users[0].user, "167.71.55.249");
}

#[test]
fn conn_log_without_host_field_is_reported() {
    let catalog = Catalog::builtin().unwrap();
    let Some(path) = shared("zeek/Files.zeek-cut-logs__conn.log") else {
        return;
    };
    let result = scan(
        &[Input::Path(path)],
        &catalog,
        &ScanOptions::default(),
        &Progress::default(),
    );
    assert!(
        result
            .errors
            .iter()
            .any(|e| e.message.contains("no host field")),
        "{:?}",
        result.errors
    );
    assert!(result.malformed > 0);
    assert_eq!(result.records, 0);
}

#[test]
fn bad_input_is_counted_and_the_scan_goes_on() {
    let catalog = Catalog::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = "1700000000.000    10 10.0.0.1 TCP_TUNNEL/200 100 CONNECT claude.ai:443 alice HIER_DIRECT/1.1.1.1 -\n";
    let mut mixed = Vec::new();
    mixed.extend_from_slice(good.as_bytes());
    mixed.extend_from_slice(b"1700000001.000    10 10.0.0.1 TCP_TUNNEL/200 1\n"); // truncated (line 2)
    mixed.extend_from_slice(b"{\"query_name\":\"claude.ai.\",\"srcaddr\":\"10.0.0.2\"}\n"); // another format (line 3)
    mixed.extend_from_slice(b"1700000002.000 10 10.0.0.1 TCP_TUNNEL/200 1 CONNECT \xff\xfe.ai:443 bob HIER_DIRECT/1.1.1.1 -\n"); // invalid UTF-8, still a record
    mixed.extend_from_slice(good.as_bytes());
    mixed.extend_from_slice(b"1700000003.000    10 10.0.0.1 TCP_TUN"); // cut off, no newline (line 6)
    let mut cut_gzip = gzip(good.repeat(2000).as_bytes());
    cut_gzip.truncate(cut_gzip.len() / 2);
    let inputs = [
        write(dir.path(), "mixed.log", &mixed),
        write(dir.path(), "empty.log", b""),
        write(dir.path(), "cut.log.gz", &cut_gzip),
        Input::Path(dir.path().join("missing.log")),
        write(dir.path(), "prose.txt", b"hello, world\n"),
    ];
    let result = scan(
        &inputs,
        &catalog,
        &ScanOptions::default(),
        &Progress::default(),
    );
    assert_eq!(result.files[0].records, 3);
    assert_eq!(result.files[0].malformed, 3);
    let lines: Vec<u64> = result
        .malformed_examples
        .iter()
        .filter(|m| m.file.ends_with("mixed.log"))
        .map(|m| m.line)
        .collect();
    assert_eq!(lines, [2, 3, 6]);
    let messages: Vec<String> = result
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.file, e.message))
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("empty.log: empty file")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("cut.log.gz: gzip stream ends early")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("missing.log: cannot open")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("prose.txt: log format not recognised")),
        "{messages:?}"
    );
    // The part of the cut gzip stream before the cut was read.
    assert!(result.files[2].records > 100, "{:?}", result.files[2]);

    let strict = scan(
        &inputs[..1],
        &catalog,
        &ScanOptions {
            strict: true,
            ..ScanOptions::default()
        },
        &Progress::default(),
    );
    assert!(strict.stopped);
    assert_eq!(strict.malformed_examples[0].line, 2);
}

#[test]
fn overlong_lines_are_skipped_not_buffered() {
    let catalog = Catalog::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = "1700000000.000    10 10.0.0.1 TCP_TUNNEL/200 100 CONNECT claude.ai:443 alice HIER_DIRECT/1.1.1.1 -\n";
    let mut log = good.repeat(3);
    log.push_str(&"x".repeat(20_000));
    log.push('\n');
    log.push_str(&good.repeat(2));
    let input = write(dir.path(), "long.log", log.as_bytes());
    let result = scan(
        &[input],
        &catalog,
        &ScanOptions {
            block_size: 4096,
            ..ScanOptions::default()
        },
        &Progress::default(),
    );
    assert_eq!((result.records, result.malformed), (5, 1));
    assert_eq!(result.malformed_examples[0].line, 4);
}

#[test]
fn zeek_fields_change_mid_file() {
    let catalog = Catalog::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::from(
        "#separator \\x09\n#fields\tts\tid.orig_h\tserver_name\n1700000000.0\t10.0.0.1\tclaude.ai\n",
    );
    log.push_str("#fields\tserver_name\tid.orig_h\tts\nchatgpt.com\t10.0.0.2\t1700000001.0\n");
    let input = write(dir.path(), "ssl.log", log.as_bytes());
    let result = scan(
        &[input],
        &catalog,
        &ScanOptions::default(),
        &Progress::default(),
    );
    assert_eq!(
        (result.records, result.malformed),
        (2, 0),
        "{:?}",
        result.malformed_examples
    );
    let report = Report::build(&catalog, &result, &[]);
    let ids: Vec<&str> = report.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"claude") && ids.contains(&"chatgpt"));
}

/// Repeated lookups of one name by one client within the window count once; another client,
/// another name or a lookup after the window counts again.
#[test]
fn dns_lookups_are_deduplicated_per_client_and_name() {
    let catalog = Catalog::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for (ts, client, name) in [
        ("1700000000.0", "10.0.0.1", "claude.ai"),
        ("1700000001.0", "10.0.0.1", "claude.ai"),
        ("1700000059.0", "10.0.0.1", "claude.ai"),
        ("1700000002.0", "10.0.0.2", "claude.ai"),
        ("1700000003.0", "10.0.0.1", "api.anthropic.com"),
        ("1700000061.0", "10.0.0.1", "claude.ai"),
    ] {
        log.push_str(&format!(
            "{{\"query_timestamp\":\"{ts}\",\"query_name\":\"{name}.\",\"srcaddr\":\"{client}\"}}\n"
        ));
    }
    let input = write(dir.path(), "r53.log", log.as_bytes());
    let claude = catalog
        .services()
        .iter()
        .position(|s| s.id == "claude")
        .unwrap();
    let run = |dns_window| {
        scan(
            std::slice::from_ref(&input),
            &catalog,
            &ScanOptions {
                dns_window,
                ..ScanOptions::default()
            },
            &Progress::default(),
        )
    };
    let deduped = run(60_000_000);
    let u = deduped.usage.services[claude].merged();
    // 10.0.0.1: claude.ai at 0 (counted), 1 and 59 (repeats), 61 (counted); 10.0.0.2:
    // claude.ai at 2. (api.anthropic.com is the Anthropic API, another service.)
    assert_eq!((u.total.requests, u.dns_repeats), (3, 2));
    let all = run(0).usage.services[claude].merged();
    assert_eq!((all.total.requests, all.dns_repeats), (5, 0));
    let report = Report::build(&catalog, &deduped, &[]);
    let s = &report.services[0];
    assert_eq!((s.users, s.identities.ip, s.dns_repeats), (0, 2, 2));
    assert_eq!((s.bytes_sent, s.bytes_received), (None, None));
}

/// Inputs scanned apart and added up with `ScanResult::absorb` report exactly what one scan
/// of all of them reports (how `demarc serve` gathers ingested batches into one run).
#[test]
fn scans_absorbed_into_one_report_as_one_scan_of_every_input() {
    let catalog = Catalog::builtin().unwrap();
    // Squid lines stand alone (a Zeek batch would need its own `#fields` header).
    for seed in [3u64, 4, 5] {
        let format = GenFormat::Squid;
        let mut log = Vec::new();
        generate(
            &catalog,
            &GenOptions {
                format,
                size: 60_000,
                seed,
                ..GenOptions::default()
            },
            &mut log,
        )
        .unwrap();
        // Cut at line ends into uneven batches.
        let mut batches: Vec<Input> = Vec::new();
        let mut rest = &log[..];
        let mut n = 0usize;
        while !rest.is_empty() {
            let want = (7_919 * (n + seed as usize)) % 20_000 + 1;
            let cut = rest
                .iter()
                .skip(want.min(rest.len() - 1))
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| want.min(rest.len() - 1) + p + 1);
            batches.push(Input::Bytes {
                name: format!("batch {n}"),
                data: rest[..cut].into(),
            });
            rest = &rest[cut..];
            n += 1;
        }
        assert!(batches.len() > 2, "{}", batches.len());
        let options = ScanOptions {
            threads: 1,
            ..ScanOptions::default()
        };
        let whole = scan(&batches, &catalog, &options, &Progress::default());
        let mut gathered = scan(&batches[..1], &catalog, &options, &Progress::default());
        for b in &batches[1..] {
            gathered.absorb(scan(
                std::slice::from_ref(b),
                &catalog,
                &options,
                &Progress::default(),
            ));
        }
        assert_eq!(gathered.files, whole.files);
        assert_eq!(gathered.records, whole.records);
        let report = |r| format!("{:?}", Report::build(&catalog, r, &[]).services);
        assert_eq!(report(&gathered), report(&whole), "seed {seed}");
    }
}
