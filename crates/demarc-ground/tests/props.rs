//! Property tests: extraction and splitting take any input without panicking, and every
//! range they produce lies inside the document.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_ground::Source;
use demarc_ground::extract::{Format, extract};
use demarc_ground::split::split;
use proptest::prelude::*;

/// Strings made of HTML-ish pieces: tags (well-formed or not), entities, comments,
/// quotes, whitespace and arbitrary text, including multi-byte characters.
fn htmlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "<[a-zA-Z/!?]{0,4}",
        Just(">".to_string()),
        "&[a-z#x0-9]{0,7};?",
        "[ \n\t\r]{1,3}",
        "\\PC{0,8}",
        "[\"'=]",
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just("<![CDATA[".to_string()),
        "</?(script|style|title|pre|p|li|td|tr|h[1-7]|div|br)( [a-z]+=(\"[^\"]{0,5}\"?|'x'))?/?>?",
    ];
    prop::collection::vec(piece, 0..80).prop_map(|pieces| pieces.concat())
}

/// Strings made of Markdown-ish lines.
fn markdownish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "#{1,7}[ ]?\\PC{0,12}",
        "[=-]{1,5}",
        "(```|~~~)[a-z]{0,3}",
        "[ ]{0,5}\\PC{0,30}",
        Just(String::new()),
        "\u{feff}?[A-Z ]{0,20}",
    ];
    prop::collection::vec(line, 0..40).prop_map(|lines| lines.join("\n"))
}

fn check(document: &str, format: Format, max_bytes: usize) {
    let extracted = extract(document, format);
    for block in &extracted.blocks {
        assert!(block.range.start <= block.range.end && block.range.end <= extracted.text.len());
        assert!(
            extracted.text.get(block.range.clone()).is_some(),
            "block on a char boundary"
        );
        let source = extracted.source_range(block.range.clone());
        assert!(
            source.start <= source.end && source.end <= document.len(),
            "{source:?} in {}",
            document.len()
        );
    }
    let (passages, _) = split(&extracted, max_bytes, 1000);
    for passage in &passages {
        let range = &passage.source_range;
        assert!(
            range.start <= range.end && range.end <= document.len(),
            "{range:?} in {}",
            document.len()
        );
        assert!(!passage.text.trim().is_empty());
        assert!(
            passage.text.len() <= max_bytes.max(64),
            "{} > {max_bytes}",
            passage.text.len()
        );
        if format != Format::Html {
            // Markdown and text map byte for byte: the cited bytes are the passage's ends.
            let cited = document.get(range.clone()).expect("char boundaries");
            let first = passage.text.split("\n\n").next().unwrap();
            let last = passage.text.rsplit("\n\n").next().unwrap();
            assert!(
                cited.starts_with(first) && cited.ends_with(last),
                "{cited:?} vs {:?}",
                passage.text
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn html_extraction_and_splitting_stay_inside_the_document(doc in htmlish(), max in 0usize..400) {
        check(&doc, Format::Html, max);
    }

    #[test]
    fn any_text_as_html_markdown_or_text_never_panics(doc in "\\PC{0,300}", max in 0usize..200) {
        check(&doc, Format::Html, max);
        check(&doc, Format::Markdown, max);
        check(&doc, Format::Text, max);
    }

    #[test]
    fn markdown_and_text_splitting_stay_inside_the_document(doc in markdownish(), max in 0usize..300) {
        check(&doc, Format::Markdown, max);
        check(&doc, Format::Text, max);
    }

    #[test]
    fn source_specs_parse_or_fail_without_panicking(spec in "\\PC{0,40}") {
        if let Ok(source) = spec.parse::<Source>() {
            prop_assert!(!source.id().is_empty());
        }
    }
}
