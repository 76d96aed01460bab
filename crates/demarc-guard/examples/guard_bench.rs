//! Quick side-by-side timing of the guard (used by `bench/guard.sh`; criterion has the careful
//! numbers). Usage: guard_bench [--write-corpus FILE | --corpus FILE] [--mb N] [--profile-whole]
//! Prints whole-text and incremental throughput (median of runs) and the 4 KB prompt median.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use demarc_guard::{Direction, Guard, Policy};

#[path = "../benches/corpus.rs"]
mod corpus;

/// CPU time this thread has run, in seconds (Linux `schedstat`): on a shared, loaded machine
/// wall time includes waiting for a core, CPU time does not. Falls back to wall time.
struct Clock {
    wall: Instant,
    cpu: Option<f64>,
}

fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

impl Clock {
    fn start() -> Clock {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }
    /// (wall seconds, CPU seconds)
    fn stop(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, thread_cpu()) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => wall,
        };
        (wall, cpu)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb: usize = args
        .iter()
        .position(|a| a == "--mb")
        .map_or(16, |i| args[i + 1].parse().unwrap());
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // `--corpus FILE`: a corpus written by `--write-corpus`, so that two builds measure the
    // same bytes (the built corpus samples this repository's sources).
    let text = match args.iter().position(|a| a == "--corpus") {
        Some(i) => std::fs::read_to_string(&args[i + 1]).unwrap(),
        None => corpus::build(&repo, mb << 20),
    };
    if let Some(i) = args.iter().position(|a| a == "--write-corpus") {
        std::fs::write(&args[i + 1], &text).unwrap();
        std::fs::write(format!("{}.prompt", args[i + 1]), corpus::prompt_4k(&text)).unwrap();
        return;
    }
    let guard = Guard::new(&Policy::default()).unwrap();
    // The same policy without the learned tier, measured side by side for its cost.
    let mut heuristics_only = Policy::default();
    heuristics_only.injection.learned = false;
    let no_learned = Guard::new(&heuristics_only).unwrap();
    let mbs = |secs: f64| text.len() as f64 / secs / 1e6;
    if args.iter().any(|a| a == "--profile-whole") {
        // For `perf record`: whole-text input scans only, nothing else in the profile.
        for _ in 0..10 {
            std::hint::black_box(guard.scan(&text, Direction::Input));
        }
        return;
    }
    if args.iter().any(|a| a == "--learned-only") {
        let model = demarc_guard::learned::Model::builtin();
        let mut v = Vec::new();
        for _ in 0..7 {
            let t = Clock::start();
            std::hint::black_box(model.score(&text));
            v.push(mbs(t.stop().1));
        }
        println!("learned tier alone: {:.0} MB/s", median(v));
        let ascii: String = text.chars().filter(char::is_ascii).collect();
        let mut v = Vec::new();
        for _ in 0..7 {
            let t = Clock::start();
            std::hint::black_box(model.score(&ascii));
            v.push(ascii.len() as f64 / t.stop().1 / 1e6);
        }
        println!("learned tier alone, ASCII text: {:.0} MB/s", median(v));
        return;
    }
    let runs = 7;
    let mut whole_in = Vec::new();
    let mut whole_out = Vec::new();
    let mut stream_4k = Vec::new();
    let mut stream_64k = Vec::new();
    let mut findings = 0;
    let mut whole_in_wall = Vec::new();
    let mut whole_in_plain = Vec::new();
    for _ in 0..runs {
        let t = Clock::start();
        std::hint::black_box(no_learned.scan(&text, Direction::Input));
        whole_in_plain.push(mbs(t.stop().1));
        let t = Clock::start();
        findings = guard.scan(&text, Direction::Input).findings.len();
        let (wall, cpu) = t.stop();
        whole_in.push(mbs(cpu));
        whole_in_wall.push(mbs(wall));
        let t = Clock::start();
        std::hint::black_box(guard.scan(&text, Direction::Output));
        whole_out.push(mbs(t.stop().1));
        for (chunk, out) in [(4096usize, &mut stream_4k), (65536, &mut stream_64k)] {
            let t = Clock::start();
            let mut s = guard.stream(Direction::Input);
            for piece in corpus::chunks(&text, chunk) {
                std::hint::black_box(s.push(piece));
            }
            std::hint::black_box(s.finish());
            out.push(mbs(t.stop().1));
        }
    }
    // Output streamed as a model sends it (4-byte tokens): throughput, and how much text is
    // held back after each token (what delays the client's view of the answer).
    let tokens = &text[..text.len().min(4 << 20)];
    let mut token_mbs = Vec::new();
    let mut held = Vec::new();
    let whole_tokens = {
        let t = Clock::start();
        std::hint::black_box(guard.scan(tokens, Direction::Output));
        tokens.len() as f64 / t.stop().1 / 1e6
    };
    for run in 0..3 {
        let t = Clock::start();
        let mut s = guard.stream(Direction::Output);
        for piece in corpus::chunks(tokens, 4) {
            let out = s.push(piece);
            if run == 0 {
                held.push(s.held() as f64);
            }
            std::hint::black_box(out);
        }
        std::hint::black_box(s.finish());
        token_mbs.push(tokens.len() as f64 / t.stop().1 / 1e6);
    }
    let prompt = corpus::prompt_4k(&text);
    let mut lat = Vec::new();
    let mut lat_plain = Vec::new();
    for _ in 0..2000 {
        let t = Clock::start();
        std::hint::black_box(guard.scan(&prompt, Direction::Input));
        lat.push(t.stop().0 * 1e6); // latency is wall-clock
        let t = Clock::start();
        std::hint::black_box(no_learned.scan(&prompt, Direction::Input));
        lat_plain.push(t.stop().0 * 1e6);
    }
    let (wi, wo, s4, s64) = (
        median(whole_in),
        median(whole_out),
        median(stream_4k),
        median(stream_64k),
    );
    println!(
        "corpus: {:.1} MB (prose, code, logs), {} findings (default policy, input)",
        text.len() as f64 / 1e6,
        findings
    );
    println!(
        "(MB/s per core from thread CPU time; wall-clock input figure: {:.0} MB/s)",
        median(whole_in_wall)
    );
    println!("whole-text input policy:  {wi:.0} MB/s (median of {runs})");
    println!(
        "whole-text input policy without the learned tier: {:.0} MB/s",
        median(whole_in_plain)
    );
    println!("whole-text output policy: {wo:.0} MB/s");
    println!(
        "incremental input, 4 KiB chunks:  {s4:.0} MB/s ({:.0}% of whole-text)",
        100.0 * s4 / wi
    );
    println!(
        "incremental input, 64 KiB chunks: {s64:.0} MB/s ({:.0}% of whole-text)",
        100.0 * s64 / wi
    );
    let tm = median(token_mbs);
    held.sort_by(f64::total_cmp);
    println!(
        "output streamed in 4-byte tokens ({:.1} MB): {tm:.0} MB/s ({:.0}% of whole-text output)",
        tokens.len() as f64 / 1e6,
        100.0 * tm / whole_tokens
    );
    println!(
        "held back after each token: median {:.0} B, p90 {:.0} B, p99 {:.0} B (most possible: {} B)",
        held[held.len() / 2],
        held[held.len() * 9 / 10],
        held[held.len() * 99 / 100],
        guard.hold(Direction::Output)
    );
    println!(
        "4 KB prompt ({} bytes), default input policy: median {:.1} us, p99 {:.1} us",
        prompt.len(),
        median(lat.clone()),
        {
            let mut l = lat;
            l.sort_by(f64::total_cmp);
            l[l.len() * 99 / 100]
        }
    );
    println!(
        "4 KB prompt without the learned tier: median {:.1} us",
        median(lat_plain)
    );
}
