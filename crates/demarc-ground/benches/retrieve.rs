//! Retrieval latency, the per-request cost the gateway pays: BM25 top-k with the access
//! filter over indexes of a few thousand generated passages on disk, and rendering the
//! context. Run: `cargo bench -p demarc-ground --bench retrieve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use demarc_ground::{GroundingIndex, Source, format_context};

/// A small deterministic generator, so every run indexes the same corpus.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below
    }
}

/// A vocabulary of 3,000 made-up words with a Zipf-like draw: a few words are very common
/// (like "the" or "policy" in real documents), most are rare.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ren", "sto", "val", "der", "ix", "pa", "tor", "qu", "en", "sa", "bri",
        "mon", "te", "gar", "lu", "fe", "no",
    ];
    (0..3000)
        .map(|i| {
            format!(
                "{}{}{}",
                SYLLABLES[i % 20],
                SYLLABLES[(i / 20) % 20],
                SYLLABLES[(i / 400) % 20]
            )
        })
        .collect()
}

fn zipf(rng: &mut Lcg, n: usize) -> usize {
    // Square of a uniform draw skews towards low ranks.
    let u = rng.next(1 << 20) as f64 / f64::from(1 << 20);
    ((u * u) * n as f64) as usize
}

/// `documents` Markdown files of 8 sections (one passage each) in 4 sources.
fn write_corpus(root: &Path, documents: usize) -> Vec<Source> {
    let words = vocabulary();
    let mut rng = Lcg(42);
    let groups = [None, Some("staff"), Some("lending"), Some("security")];
    let mut sources = Vec::new();
    for (s, group) in groups.iter().enumerate() {
        let dir = root.join(format!("source-{s}"));
        std::fs::create_dir_all(&dir).unwrap();
        for d in 0..documents / groups.len() {
            let mut doc = format!("# Policy {s}-{d}\n\n");
            for section in 0..8 {
                let _ = write!(
                    doc,
                    "## Section {section} {}\n\n",
                    words[zipf(&mut rng, words.len())]
                );
                for w in 0..70 {
                    doc.push_str(&words[zipf(&mut rng, words.len())]);
                    doc.push(if w % 12 == 11 { '.' } else { ' ' });
                }
                doc.push_str("\n\n");
            }
            std::fs::write(dir.join(format!("doc-{d}.md")), doc).unwrap();
        }
        let source = Source::new(format!("source-{s}"), &dir).unwrap();
        sources.push(match group {
            Some(g) => source.readable_by([*g]).unwrap(),
            None => source,
        });
    }
    sources
}

/// Questions of 8 words drawn like the documents' words: common and rare terms mixed.
fn questions() -> Vec<String> {
    let words = vocabulary();
    let mut rng = Lcg(7);
    (0..64)
        .map(|_| {
            (0..8)
                .map(|_| words[zipf(&mut rng, words.len())].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The example policies (`examples/grounding`, 77 passages of real English) copied into
/// `copies` sources, with the example estate's groups: a realistic vocabulary.
fn copy_examples(root: &Path, copies: usize) -> Vec<Source> {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/grounding");
    let folders = [
        ("hr", "staff"),
        ("credit", "lending"),
        ("security", "technology"),
    ];
    let mut sources = Vec::new();
    for copy in 0..copies {
        for (folder, group) in folders {
            let dir = root.join(format!("{folder}-{copy}"));
            std::fs::create_dir_all(&dir).unwrap();
            for entry in std::fs::read_dir(examples.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
            let source = Source::new(format!("{folder}-{copy}"), &dir).unwrap();
            sources.push(source.readable_by([group]).unwrap());
        }
    }
    sources
}

const POLICY_QUESTIONS: [&str; 8] = [
    "What is the hotel limit per night in London?",
    "How many days of annual leave can I carry over to next year?",
    "What gifts may I accept from a supplier?",
    "What is the maximum loan to value for a new-build flat?",
    "Which leverage covenant applies to commercial term loans?",
    "Can I use a meeting note-taking bot or ChatGPT for bank work?",
    "How long does the bank keep call recordings?",
    "How often must API keys and client secrets be rotated?",
];

fn retrieval(c: &mut Criterion) {
    let questions = questions();
    let caller_groups = ["staff", "security", "engineering"];
    let mut group = c.benchmark_group("retrieve");
    for documents in [500usize, 2500] {
        let docs = tempfile::tempdir().unwrap();
        let index_dir = tempfile::tempdir().unwrap();
        let sources = write_corpus(docs.path(), documents);
        let (built, report) = GroundingIndex::build(&sources, index_dir.path()).unwrap();
        drop(built);
        let passages = report.passages;
        assert_eq!(passages, documents * 8);
        let index = GroundingIndex::open(index_dir.path()).unwrap();
        let mut next = 0;
        group.bench_function(
            BenchmarkId::new("k5", format!("{passages}-passages")),
            |b| {
                b.iter(|| {
                    next = (next + 1) % questions.len();
                    black_box(
                        index
                            .retrieve(black_box(&questions[next]), &caller_groups, 5)
                            .unwrap(),
                    )
                })
            },
        );
        group.bench_function(
            BenchmarkId::new("k5+context", format!("{passages}-passages")),
            |b| {
                b.iter(|| {
                    next = (next + 1) % questions.len();
                    let found = index
                        .retrieve(black_box(&questions[next]), &caller_groups, 5)
                        .unwrap();
                    black_box(format_context(&found))
                })
            },
        );
    }
    let docs = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    let sources = copy_examples(docs.path(), 50);
    let (built, report) = GroundingIndex::build(&sources, index_dir.path()).unwrap();
    drop(built);
    let index = GroundingIndex::open(index_dir.path()).unwrap();
    let mut next = 0;
    let label = format!("{}-passages", report.passages);
    group.bench_function(BenchmarkId::new("k5/example-policies", label), |b| {
        b.iter(|| {
            next = (next + 1) % POLICY_QUESTIONS.len();
            let question = black_box(POLICY_QUESTIONS[next]);
            black_box(
                index
                    .retrieve(question, &["staff", "technology"], 5)
                    .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, retrieval);
criterion_main!(benches);
