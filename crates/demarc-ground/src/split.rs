//! Passages out of extracted documents: paragraphs gathered under their headings up to a
//! size bound, long paragraphs cut at sentence or word boundaries.

use std::ops::Range;

use crate::extract::{Extracted, trim_range};

/// Separator between the headings of a passage's heading path.
pub const HEADING_SEPARATOR: &str = " > ";

/// The longest heading kept (bytes); longer ones are cut at a character boundary.
const MAX_HEADING_BYTES: usize = 200;

/// A passage before it is indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The heading path above the passage (`Policy > Hotels`), empty when there is none.
    pub heading: String,
    /// The passage's text: its paragraphs separated by blank lines.
    pub text: String,
    /// The bytes of the original document the passage came from.
    pub source_range: Range<usize>,
}

/// The passages of a document, and whether `max_passages` cut the document short.
///
/// `max_bytes` bounds each passage's text (a paragraph is cut only when it alone is
/// longer); values below 64 are raised to 64.
pub fn split(extracted: &Extracted, max_bytes: usize, max_passages: usize) -> (Vec<Split>, bool) {
    let max_bytes = max_bytes.max(64);
    let text = extracted.text.as_str();
    let mut headings: [Option<Range<usize>>; 6] = Default::default();
    let mut passages = Vec::new();
    let mut pieces: Vec<Range<usize>> = Vec::new();
    let mut size = 0;

    let flush = |pieces: &mut Vec<Range<usize>>,
                 headings: &[Option<Range<usize>>; 6],
                 passages: &mut Vec<Split>| {
        let (Some(first), Some(last)) = (pieces.first(), pieces.last()) else {
            return;
        };
        let source_range = extracted.source_range(first.start..last.end);
        let body: Vec<&str> = pieces.iter().filter_map(|p| text.get(p.clone())).collect();
        passages.push(Split {
            heading: heading_path(text, headings),
            text: body.join("\n\n"),
            source_range,
        });
        pieces.clear();
    };

    for block in &extracted.blocks {
        if passages.len() >= max_passages {
            return (passages, true);
        }
        let range = trim_range(text, block.range.clone());
        if range.is_empty() {
            continue;
        }
        if let Some(level) = block.heading {
            flush(&mut pieces, &headings, &mut passages);
            size = 0;
            let level = usize::from(level.clamp(1, 6));
            headings[level - 1] = Some(range);
            headings[level..]
                .iter_mut()
                .for_each(|deeper| *deeper = None);
            continue;
        }
        if range.len() > max_bytes {
            flush(&mut pieces, &headings, &mut passages);
            size = 0;
            for chunk in chunks(text, range, max_bytes) {
                if passages.len() >= max_passages {
                    return (passages, true);
                }
                pieces.push(chunk);
                flush(&mut pieces, &headings, &mut passages);
            }
            continue;
        }
        if !pieces.is_empty() && size + 2 + range.len() > max_bytes {
            flush(&mut pieces, &headings, &mut passages);
            size = 0;
        }
        size += if pieces.is_empty() {
            range.len()
        } else {
            2 + range.len()
        };
        pieces.push(range);
    }
    if passages.len() >= max_passages && !pieces.is_empty() {
        return (passages, true);
    }
    flush(&mut pieces, &headings, &mut passages);
    (passages, false)
}

fn heading_path(text: &str, headings: &[Option<Range<usize>>; 6]) -> String {
    let parts: Vec<&str> = headings
        .iter()
        .flatten()
        .filter_map(|r| text.get(r.clone()))
        .map(shorten)
        .collect();
    parts.join(HEADING_SEPARATOR)
}

fn shorten(heading: &str) -> &str {
    heading
        .get(..floor_char_boundary(heading, MAX_HEADING_BYTES))
        .unwrap_or(heading)
}

/// Cut `range` of `text` into trimmed pieces of at most `max` bytes, preferring to cut
/// after a sentence, then at whitespace, then anywhere on a character boundary.
fn chunks(text: &str, range: Range<usize>, max: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let remaining = trim_range(text, start..range.end);
        if remaining.is_empty() {
            break;
        }
        start = remaining.start;
        if remaining.len() <= max {
            out.push(remaining);
            break;
        }
        let hard = floor_char_boundary(text, start + max);
        let low = ceil_char_boundary(text, start + max / 2).min(hard);
        let window = text.get(low..hard).unwrap_or_default();
        let cut = window
            .rfind(". ")
            .map(|at| at + 1)
            .or_else(|| window.rfind(char::is_whitespace))
            .map_or(hard, |at| low + at);
        // `hard` can only fall back to `start` for `max` below one character; always progress.
        let cut = if cut <= start {
            ceil_char_boundary(text, start + 1)
        } else {
            cut
        };
        let piece = trim_range(text, start..cut);
        if !piece.is_empty() {
            out.push(piece);
        }
        start = cut;
    }
    out
}

/// The largest character boundary of `text` at or below `at`.
pub(crate) fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn ceil_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{Format, extract};

    #[test]
    fn paragraphs_gather_under_their_heading_path() {
        let doc = "# Policy\n\nIntro.\n\n## Hotels\n\nFirst.\n\nSecond.\n\n### London\n\nMore.\n\n## Meals\n\nFood.\n";
        let (passages, capped) = split(&extract(doc, Format::Markdown), 1000, 100);
        assert!(!capped);
        let got: Vec<(&str, &str)> = passages
            .iter()
            .map(|p| (p.heading.as_str(), p.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Policy", "Intro."),
                ("Policy > Hotels", "First.\n\nSecond."),
                ("Policy > Hotels > London", "More."),
                ("Policy > Meals", "Food."),
            ]
        );
        let hotels = &passages[1];
        assert_eq!(&doc[hotels.source_range.clone()], "First.\n\nSecond.");
    }

    #[test]
    fn long_paragraphs_are_cut_at_sentences_within_the_bound() {
        let sentence = "Employees must book travel through the approved agency. ";
        let doc = sentence.repeat(40);
        let (passages, _) = split(&extract(&doc, Format::Text), 300, 100);
        assert!(passages.len() > 5);
        for passage in &passages {
            assert!(passage.text.len() <= 300, "{}", passage.text.len());
            assert!(passage.text.ends_with('.'), "{:?}", passage.text);
            assert_eq!(&doc[passage.source_range.clone()], passage.text);
        }
    }

    #[test]
    fn text_without_spaces_is_cut_on_character_boundaries() {
        let doc = "데이터".repeat(100);
        let (passages, _) = split(&extract(&doc, Format::Text), 64, 1000);
        let joined: String = passages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined, doc);
        assert!(passages.iter().all(|p| p.text.len() <= 64));
    }

    #[test]
    fn the_passage_cap_reports_truncation() {
        let doc = "# A\n\none\n\n# B\n\ntwo\n\n# C\n\nthree\n";
        let (passages, capped) = split(&extract(doc, Format::Markdown), 1000, 2);
        assert_eq!(passages.len(), 2);
        assert!(capped);
    }
}
