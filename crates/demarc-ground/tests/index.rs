//! Building, reopening and querying real indexes on disk, over the example documents and
//! over awkward files written into temporary folders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use demarc_ground::{
    GroundError, GroundingIndex, IndexBuilder, Limits, Source, WarningKind, format_context,
};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/grounding")
}

/// The example sources with the groups the example estate gives them.
fn example_sources() -> Vec<Source> {
    vec![
        Source::new("hr-policies", examples().join("hr"))
            .unwrap()
            .readable_by(["staff"])
            .unwrap(),
        Source::new("credit-policies", examples().join("credit"))
            .unwrap()
            .readable_by(["lending", "credit-risk"])
            .unwrap(),
        Source::new("security-standards", examples().join("security"))
            .unwrap()
            .readable_by(["technology", "security"])
            .unwrap(),
    ]
}

const EVERY_GROUP: [&str; 5] = ["staff", "lending", "credit-risk", "technology", "security"];

fn build_examples() -> (tempfile::TempDir, GroundingIndex) {
    let dir = tempfile::tempdir().unwrap();
    let (index, report) = GroundingIndex::build(&example_sources(), dir.path()).unwrap();
    assert_eq!(report.documents, 8, "{report:?}");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    (dir, index)
}

#[test]
fn the_expected_passage_ranks_first_for_policy_questions() {
    let (_dir, index) = build_examples();
    let cases = [
        (
            "what is the hotel limit per night in London?",
            "hr-policies",
            "travel-and-expenses.md",
            "Hotels",
        ),
        (
            "how many days of annual leave can I carry over",
            "hr-policies",
            "annual-leave.txt",
            "CARRY OVER",
        ),
        (
            "what gifts may I accept",
            "hr-policies",
            "code-of-conduct.html",
            "Gifts and hospitality",
        ),
        (
            "maximum loan to value for new-build flats",
            "credit-policies",
            "retail-lending-standard.md",
            "Loan-to-value",
        ),
        (
            "leverage covenant net debt to EBITDA",
            "credit-policies",
            "commercial-credit-policy.html",
            "Financial covenants",
        ),
        (
            "are meeting note-taking bots approved",
            "security-standards",
            "genai-acceptable-use.md",
            "Approved tools",
        ),
        (
            "how long are call recordings kept",
            "security-standards",
            "data-classification-standard.html",
            "Retention",
        ),
        (
            "how often must API keys be rotated",
            "security-standards",
            "access-and-authentication-standard.txt",
            "Service accounts",
        ),
    ];
    for (question, source, document, heading) in cases {
        let passages = index.retrieve(question, &EVERY_GROUP, 3).unwrap();
        let first = passages
            .first()
            .unwrap_or_else(|| panic!("no passage for {question:?}"));
        assert_eq!(
            (first.source.as_str(), first.document.as_str()),
            (source, document),
            "{question:?}: {first:#?}"
        );
        assert!(
            first.heading.contains(heading),
            "{question:?}: heading {:?}",
            first.heading
        );
        assert!(
            passages.windows(2).all(|w| w[0].score >= w[1].score),
            "best first"
        );
    }
}

#[test]
fn citations_point_at_the_bytes_the_passage_came_from() {
    let (_dir, index) = build_examples();
    for passage in index
        .retrieve("hotel nightly limit London", &EVERY_GROUP, 10)
        .unwrap()
    {
        let root = example_sources()
            .into_iter()
            .find(|s| s.id() == passage.source)
            .unwrap();
        let bytes = fs::read(root.root().join(&passage.document)).unwrap();
        let (start, end) = (passage.start as usize, passage.end as usize);
        assert!(start < end && end <= bytes.len(), "{passage:?}");
        let cited = String::from_utf8_lossy(&bytes[start..end]);
        if passage.document.ends_with(".md") || passage.document.ends_with(".txt") {
            assert!(
                cited.starts_with(passage.text.split("\n\n").next().unwrap()),
                "{cited:?}"
            );
        } else {
            // HTML: the cited bytes hold the passage's first words, with their markup.
            let first_word = passage.text.split_whitespace().next().unwrap();
            assert!(cited.contains(first_word), "{cited:?} lacks {first_word:?}");
        }
    }
}

#[test]
fn a_restricted_source_never_leaks_to_other_groups() {
    let (_dir, index) = build_examples();
    // Questions aimed squarely at each restricted source.
    let questions = [
        "hotel limit London travel expenses",
        "loan to value mortgage underwriter authority",
        "data classification restricted generative AI",
        "",
        "the a of",
    ];
    for question in questions {
        for (groups, readable) in [
            (vec![], vec![]),
            (vec!["staff"], vec!["hr-policies"]),
            (vec!["credit-risk"], vec!["credit-policies"]),
            (vec!["security", "nobody"], vec!["security-standards"]),
            (vec!["Staff", "*", "STAFF", " staff"], vec![]),
        ] {
            for passage in index.retrieve(question, &groups, 50).unwrap() {
                assert!(
                    readable.contains(&passage.source.as_str()),
                    "{groups:?} read {}",
                    passage.source
                );
            }
        }
    }
    // And the readable source does answer.
    let passages = index
        .retrieve("mortgage loan to value", &["lending"], 5)
        .unwrap();
    assert!(!passages.is_empty());
    assert!(passages.iter().all(|p| p.source == "credit-policies"));
}

#[test]
fn an_open_source_is_readable_by_every_caller() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [Source::new("handbook", examples().join("hr")).unwrap()];
    let (index, _) = GroundingIndex::build(&sources, dir.path()).unwrap();
    let none: [&str; 0] = [];
    assert!(
        !index
            .retrieve("annual leave entitlement", &none, 3)
            .unwrap()
            .is_empty()
    );
    assert!(
        !index
            .retrieve("annual leave entitlement", &["anyone"], 3)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn reopening_gives_the_same_answers_and_the_context_cites_them() {
    let (dir, index) = build_examples();
    let question = "premium economy flights longer than six hours";
    let built = index.retrieve(question, &["staff"], 3).unwrap();
    drop(index);
    let reopened = GroundingIndex::open(dir.path()).unwrap();
    assert_eq!(reopened.retrieve(question, &["staff"], 3).unwrap(), built);
    assert_eq!(reopened.sources(), example_sources().as_slice());
    let context = format_context(&built);
    assert!(context.contains("[1] hr-policies/travel-and-expenses.md § Travel and Expenses Policy > 3. Rail and air travel"), "{context}");
    assert!(context.contains("Premium economy may be booked"));
}

#[test]
fn rebuilding_in_place_rereads_only_what_changed() {
    let docs = tempfile::tempdir().unwrap();
    let index_dir = tempfile::tempdir().unwrap();
    fs::write(docs.path().join("a.md"), "# A\n\nAlpha apples.\n").unwrap();
    fs::write(docs.path().join("b.md"), "# B\n\nBravo bananas.\n").unwrap();
    fs::write(docs.path().join("c.txt"), "Charlie cherries.\n").unwrap();
    let sources = [Source::new("docs", docs.path()).unwrap()];

    let (_, first) = GroundingIndex::build(&sources, index_dir.path()).unwrap();
    assert_eq!((first.indexed, first.unchanged, first.removed), (3, 0, 0));

    fs::write(docs.path().join("b.md"), "# B\n\nBravo blueberries.\n").unwrap();
    fs::remove_file(docs.path().join("c.txt")).unwrap();
    let (index, second) = GroundingIndex::build(&sources, index_dir.path()).unwrap();
    assert_eq!(
        (
            second.indexed,
            second.unchanged,
            second.removed,
            second.documents
        ),
        (1, 1, 1, 2)
    );
    let none: [&str; 0] = [];
    assert!(
        index.retrieve("bananas", &none, 5).unwrap().is_empty(),
        "old text is gone"
    );
    assert!(
        index.retrieve("cherries", &none, 5).unwrap().is_empty(),
        "deleted document is gone"
    );
    assert_eq!(index.retrieve("blueberries", &none, 5).unwrap().len(), 1);
    assert_eq!(
        index.retrieve("apples", &none, 5).unwrap().len(),
        1,
        "unchanged document kept once"
    );
    assert_eq!(index.passage_count(), 2);

    // Restricting the source changes every document's readers: all are re-read.
    let restricted = [Source::new("docs", docs.path())
        .unwrap()
        .readable_by(["fruit"])
        .unwrap()];
    let (index, third) = GroundingIndex::build(&restricted, index_dir.path()).unwrap();
    assert_eq!((third.indexed, third.unchanged), (2, 0));
    assert!(index.retrieve("apples", &none, 5).unwrap().is_empty());
    assert_eq!(index.retrieve("apples", &["fruit"], 5).unwrap().len(), 1);

    // Other limits split differently: everything is re-read into a clean index.
    let limits = Limits {
        max_passage_bytes: 100,
        ..Limits::default()
    };
    let (index, fourth) = IndexBuilder::new(&restricted)
        .limits(limits)
        .build(index_dir.path())
        .unwrap();
    assert_eq!((fourth.indexed, fourth.unchanged), (2, 0));
    assert_eq!(index.passage_count(), 2);
}

#[test]
fn awkward_files_are_skipped_or_survived_with_warnings() {
    let docs = tempfile::tempdir().unwrap();
    let d = docs.path();
    fs::write(d.join("empty.md"), "").unwrap();
    fs::write(d.join("blank.txt"), "  \n\n\t\n").unwrap();
    fs::write(
        d.join("tags-only.html"),
        "<html><body><div></div></body></html>",
    )
    .unwrap();
    fs::write(
        d.join("image.md"),
        [0x89, b'P', b'N', b'G', 0, 0, 0, 13, b'I', b'H', b'D', b'R'],
    )
    .unwrap();
    fs::write(d.join("latin1.txt"), b"caf\xe9 au lait").unwrap();
    fs::write(d.join("big.txt"), "overflow ".repeat(200)).unwrap();
    fs::write(d.join("ignored.pdf"), "%PDF-1.7 not read").unwrap();
    fs::write(d.join(".hidden.md"), "secret hidden words").unwrap();
    fs::write(
        d.join("broken.html"),
        "<html><h1>Broken <b>page</h2><p class=\"x>unterminated quote</p><script>never closed \
         <p>zebra after script</p>",
    )
    .unwrap();
    fs::write(
        d.join("broken2.html"),
        "<p>quokka &amp visible &#xZZ; text <!-- comment never closed",
    )
    .unwrap();
    fs::create_dir(d.join("nested")).unwrap();
    fs::write(d.join("nested/unicode.md"), "# Überblick — データ\n\nDie Kündigungsfrist beträgt drei Monate. 個人データは暗号化する。 Café.\n").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", d.join("link-out")).unwrap();

    let sources = [Source::new("awkward", d).unwrap()];
    let index_dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_file_bytes: 1000,
        ..Limits::default()
    };
    let (index, report) = IndexBuilder::new(&sources)
        .limits(limits)
        .build(index_dir.path())
        .unwrap();

    let kind_of = |name: &str| {
        report
            .warnings
            .iter()
            .find(|w| w.path.ends_with(name))
            .map(|w| w.kind.clone())
    };
    assert_eq!(kind_of("empty.md"), Some(WarningKind::Empty));
    assert_eq!(kind_of("blank.txt"), Some(WarningKind::Empty));
    assert_eq!(kind_of("tags-only.html"), Some(WarningKind::Empty));
    assert_eq!(kind_of("image.md"), Some(WarningKind::Binary));
    assert_eq!(kind_of("latin1.txt"), Some(WarningKind::NotUtf8));
    assert_eq!(
        kind_of("big.txt"),
        Some(WarningKind::TooLarge {
            size: 1800,
            limit: 1000
        })
    );
    assert_eq!(report.warnings.len(), 6, "{:?}", report.warnings);
    let message = report
        .warnings
        .iter()
        .find(|w| w.path.ends_with("big.txt"))
        .unwrap()
        .to_string();
    assert!(
        message.contains("big.txt") && message.contains("1000-byte limit"),
        "{message}"
    );
    assert_eq!(
        report.documents, 3,
        "broken.html, broken2.html, nested/unicode.md: {report:?}"
    );

    let none: [&str; 0] = [];
    // Text after an unclosed <script> is script, not document text.
    assert!(index.retrieve("zebra", &none, 5).unwrap().is_empty());
    assert!(
        index
            .retrieve("hidden secret", &none, 5)
            .unwrap()
            .is_empty(),
        "hidden files are not read"
    );
    let quokka = index.retrieve("quokka", &none, 5).unwrap();
    assert_eq!(quokka.len(), 1);
    assert!(
        quokka[0].text.contains("&amp visible &#xZZ; text"),
        "{:?}",
        quokka[0].text
    );
    // Unicode: German with accents folded, Japanese as whole runs.
    for question in [
        "kundigungsfrist",
        "Kündigungsfrist",
        "cafe",
        "個人データは暗号化する",
    ] {
        let found = index.retrieve(question, &none, 5).unwrap();
        assert_eq!(found.len(), 1, "{question}");
        assert_eq!(found[0].document, "nested/unicode.md");
        assert_eq!(found[0].heading, "Überblick — データ");
    }
}

#[test]
fn bad_sources_and_index_folders_are_clear_errors() {
    let missing = Path::new("/definitely/not/here");
    let error = GroundingIndex::build(
        &[Source::new("gone", missing).unwrap()],
        tempfile::tempdir().unwrap().path(),
    )
    .unwrap_err();
    assert!(matches!(error, GroundError::SourceFolder { .. }));
    assert_eq!(
        error.to_string(),
        "grounding source `gone`: folder `/definitely/not/here` does not exist"
    );

    let docs = tempfile::tempdir().unwrap();
    let file = docs.path().join("a.md");
    fs::write(&file, "# A\n\ntext\n").unwrap();
    let error =
        GroundingIndex::build(&[Source::new("file", &file).unwrap()], docs.path()).unwrap_err();
    assert!(error.to_string().ends_with("is not a folder"), "{error}");

    let twice = [
        Source::new("x", docs.path()).unwrap(),
        Source::new("x", docs.path()).unwrap(),
    ];
    let error = GroundingIndex::build(&twice, tempfile::tempdir().unwrap().path()).unwrap_err();
    assert!(
        matches!(error, GroundError::DuplicateSource { .. }),
        "{error}"
    );
    assert!(matches!(
        GroundingIndex::build(&[], docs.path()).unwrap_err(),
        GroundError::NoSources
    ));

    // A folder with other files in it is never written into.
    let occupied = tempfile::tempdir().unwrap();
    fs::write(occupied.path().join("notes.txt"), "mine").unwrap();
    let error = GroundingIndex::build(
        &[Source::new("docs", docs.path()).unwrap()],
        occupied.path(),
    )
    .unwrap_err();
    assert!(matches!(error, GroundError::NotEmpty { .. }), "{error}");
    assert_eq!(fs::read_dir(occupied.path()).unwrap().count(), 1);

    let error = GroundingIndex::open(Path::new("/no/such/index")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("holds no grounding index (no such folder)"),
        "{error}"
    );
    let error = GroundingIndex::open(occupied.path()).unwrap_err();
    assert!(matches!(error, GroundError::NotAnIndex { .. }), "{error}");
}

#[test]
fn in_memory_indexes_answer_like_disk_ones() {
    let (_dir, on_disk) = build_examples();
    let (in_ram, report) = GroundingIndex::build_in_ram(&example_sources()).unwrap();
    assert_eq!(report.documents, 8);
    assert!(in_ram.location().is_none());
    let question = "multi-factor authentication for administrators";
    assert_eq!(
        in_ram.retrieve(question, &["technology"], 5).unwrap(),
        on_disk.retrieve(question, &["technology"], 5).unwrap()
    );
}

#[test]
fn k_and_question_size_are_bounded() {
    let (_dir, index) = build_examples();
    assert!(
        index
            .retrieve("policy", &EVERY_GROUP, 0)
            .unwrap()
            .is_empty()
    );
    assert!(
        index
            .retrieve("policy", &EVERY_GROUP, 10_000)
            .unwrap()
            .len()
            <= demarc_ground::MAX_K
    );
    let huge = "hotel London limit ".repeat(100_000);
    let passages = index.retrieve(&huge, &["staff"], 1).unwrap();
    assert_eq!(passages[0].document, "travel-and-expenses.md");
}

#[test]
fn progress_counts_every_document() {
    let mut seen = Vec::new();
    let sources = example_sources();
    IndexBuilder::new(&sources)
        .on_progress(|p| seen.push((p.done, p.total)))
        .build_in_ram()
        .unwrap();
    assert_eq!(seen.len(), 8);
    assert_eq!(seen.last(), Some(&(8, 8)));
}

#[test]
fn better_matches_in_unreadable_sources_do_not_crowd_out_readable_ones() {
    let docs = tempfile::tempdir().unwrap();
    let secret = docs.path().join("secret");
    let open = docs.path().join("open");
    fs::create_dir_all(&secret).unwrap();
    fs::create_dir_all(&open).unwrap();
    for i in 0..20 {
        let strong =
            format!("# Merger {i}\n\nMerger merger merger: project falcon merger terms.\n");
        fs::write(secret.join(format!("m{i}.md")), strong).unwrap();
    }
    for i in 0..5 {
        let weak =
            format!("# Note {i}\n\nA merger was mentioned once among many other words here.\n");
        fs::write(open.join(format!("n{i}.md")), weak).unwrap();
    }
    let sources = [
        Source::new("secret", &secret)
            .unwrap()
            .readable_by(["board"])
            .unwrap(),
        Source::new("open", &open).unwrap(),
    ];
    let (index, _) = GroundingIndex::build_in_ram(&sources).unwrap();
    let none: [&str; 0] = [];
    let found = index.retrieve("merger", &none, 3).unwrap();
    assert_eq!(
        found.len(),
        3,
        "the filter runs inside the search, not after the top k"
    );
    assert!(found.iter().all(|p| p.source == "open"));
    let board = index.retrieve("merger", &["board"], 3).unwrap();
    assert!(
        board.iter().all(|p| p.source == "secret"),
        "stronger matches first for the board"
    );
}
