//! Grounding extraction and splitting on arbitrary documents: never a panic; every block
//! and passage range lies inside the text or the document, and passages keep their bound.
#![no_main]

use demarc_ground::extract::{Format, extract};
use demarc_ground::split::split;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The indexer reads only UTF-8 documents; the first byte picks the format and bound.
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(document) = std::str::from_utf8(rest) else {
        return;
    };
    let format = match first % 3 {
        0 => Format::Html,
        1 => Format::Markdown,
        _ => Format::Text,
    };
    let max_bytes = 64 + usize::from(first) * 4;
    let extracted = extract(document, format);
    for block in &extracted.blocks {
        assert!(extracted.text.get(block.range.clone()).is_some());
        let source = extracted.source_range(block.range.clone());
        assert!(source.start <= source.end && source.end <= document.len());
    }
    let (passages, _) = split(&extracted, max_bytes, 10_000);
    for passage in &passages {
        let range = &passage.source_range;
        assert!(range.start <= range.end && range.end <= document.len());
        assert!(passage.text.len() <= max_bytes);
    }
});
