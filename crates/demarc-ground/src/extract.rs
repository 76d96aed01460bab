//! Text out of documents: Markdown, plain text and HTML become a sequence of heading and
//! paragraph blocks over one extracted string, plus a map from that string's byte offsets
//! back to the original document's, so every passage can cite the bytes it came from.
//!
//! Everything here is linear in the input, allocates at most a constant factor of it,
//! and never panics: input is outside data (property-tested and fuzzed).

use std::ops::Range;

/// The kinds of document the indexer reads, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.md`, `.markdown`: ATX (`#`) and setext headings, paragraphs split by blank lines.
    Markdown,
    /// `.txt`, `.text`: paragraphs split by blank lines; setext and ALL-CAPS headings.
    Text,
    /// `.html`, `.htm`, `.xhtml`: tags stripped, `h1`..`h6` as headings, block elements
    /// as paragraphs, `script`/`style` dropped, entities decoded.
    Html,
}

impl Format {
    /// The format for a file name's extension, or `None` for files the indexer ignores.
    pub fn from_extension(extension: &str) -> Option<Format> {
        match extension.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Text),
            "html" | "htm" | "xhtml" => Some(Format::Html),
            _ => None,
        }
    }
}

/// A heading (level 1..=6) or a paragraph, as a byte range of [`Extracted::text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// `Some(level)` for a heading, `None` for a paragraph.
    pub heading: Option<u8>,
    /// Where the block's text lies in [`Extracted::text`].
    pub range: Range<usize>,
}

/// A document's text, its blocks, and the way back to the document's bytes.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The extracted text (for Markdown and text: the document itself, less a BOM).
    pub text: String,
    /// Headings and paragraphs in document order; ranges lie inside `text`.
    pub blocks: Vec<Block>,
    map: OffsetMap,
}

impl Extracted {
    /// The byte range of the original document that `range` of [`Extracted::text`] came
    /// from. Always inside the document and never reversed, whatever `range` is.
    pub fn source_range(&self, range: Range<usize>) -> Range<usize> {
        self.map.source_range(range)
    }
}

/// Extract a document of the given format.
pub fn extract(source: &str, format: Format) -> Extracted {
    match format {
        Format::Markdown => lines(source, false),
        Format::Text => lines(source, true),
        Format::Html => html(source),
    }
}

/// A run of extracted text and the document bytes it came from. A verbatim run copies
/// the document byte for byte; any other run (an entity, a collapsed run of whitespace)
/// maps as a whole.
#[derive(Debug, Clone, Copy)]
struct Segment {
    out: usize,
    src_start: usize,
    src_end: usize,
    verbatim: bool,
}

#[derive(Debug, Clone, Default)]
struct OffsetMap {
    segments: Vec<Segment>,
    out_len: usize,
    src_len: usize,
}

impl OffsetMap {
    fn source_range(&self, range: Range<usize>) -> Range<usize> {
        if self.segments.is_empty() {
            return 0..0;
        }
        let start = self.source_offset(range.start, false);
        let end = self.source_offset(range.end.max(range.start), true);
        start.min(self.src_len)..end.max(start).min(self.src_len)
    }

    /// Where output offset `at` falls in the source. `at_end` maps a position as the end
    /// of a range: the end of a non-verbatim run covers the whole run.
    fn source_offset(&self, at: usize, at_end: bool) -> usize {
        let at = at.min(self.out_len);
        // The segment holding output byte `at` (or `at - 1` for an end).
        let probe = if at_end { at.saturating_sub(1) } else { at };
        let index = self
            .segments
            .partition_point(|s| s.out <= probe)
            .saturating_sub(1);
        let Some(segment) = self.segments.get(index) else {
            return 0;
        };
        let seg_out_end = self
            .segments
            .get(index + 1)
            .map_or(self.out_len, |next| next.out);
        if at_end && at >= seg_out_end {
            return segment.src_end;
        }
        if !segment.verbatim {
            return if at_end && at > segment.out {
                segment.src_end
            } else {
                segment.src_start
            };
        }
        (segment.src_start + at.saturating_sub(segment.out)).min(segment.src_end)
    }
}

// ---------------------------------------------------------------------------------------
// Markdown and plain text: line-oriented.

const UTF8_BOM: &str = "\u{feff}";

fn lines(source: &str, plain: bool) -> Extracted {
    let offset = if source.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    let text = source.get(offset..).unwrap_or_default().to_string();
    let map = OffsetMap {
        segments: vec![Segment {
            out: 0,
            src_start: offset,
            src_end: source.len(),
            verbatim: true,
        }],
        out_len: text.len(),
        src_len: source.len(),
    };
    let blocks = line_blocks(&text, plain);
    Extracted { text, blocks, map }
}

/// A paragraph being gathered: its range and how many lines it has.
struct Gathering {
    range: Range<usize>,
    lines: usize,
}

fn line_blocks(text: &str, plain: bool) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Option<Gathering> = None;
    // Inside a fenced code block: the fence's character and length.
    let mut fence: Option<(u8, usize)> = None;
    let mut start = 0;
    for raw in text.split_inclusive('\n') {
        let line_range = start..start + raw.len();
        start += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let content = line.trim();
        let content_range = trim_range(text, line_range.clone());

        if let Some((fence_char, fence_len)) = fence {
            extend(&mut paragraph, content_range);
            if fence_marker(line).is_some_and(|(c, n)| c == fence_char && n >= fence_len) {
                fence = None;
                close(&mut paragraph, &mut blocks, plain);
            }
            continue;
        }
        if content.is_empty() {
            close(&mut paragraph, &mut blocks, plain);
            continue;
        }
        if !plain {
            if let Some(marker) = fence_marker(line) {
                close(&mut paragraph, &mut blocks, plain);
                fence = Some(marker);
                extend(&mut paragraph, content_range);
                continue;
            }
            if let Some((level, heading)) = atx_heading(text, line_range.clone()) {
                close(&mut paragraph, &mut blocks, plain);
                blocks.push(Block {
                    heading: Some(level),
                    range: heading,
                });
                continue;
            }
        }
        if let Some(level) = setext_underline(content) {
            match paragraph.take() {
                Some(p) if p.lines == 1 => blocks.push(Block {
                    heading: Some(level),
                    range: p.range,
                }),
                // A rule after a longer paragraph (or none) only separates paragraphs.
                other => {
                    paragraph = other;
                    close(&mut paragraph, &mut blocks, plain);
                }
            }
            continue;
        }
        extend(&mut paragraph, content_range);
    }
    close(&mut paragraph, &mut blocks, plain);
    if plain {
        promote_caps_headings(text, &mut blocks);
    }
    blocks
}

fn extend(paragraph: &mut Option<Gathering>, line: Range<usize>) {
    match paragraph {
        Some(p) => {
            p.range.end = line.end.max(p.range.end);
            p.lines += 1;
        }
        None => {
            *paragraph = Some(Gathering {
                range: line,
                lines: 1,
            })
        }
    }
}

fn close(paragraph: &mut Option<Gathering>, blocks: &mut Vec<Block>, _plain: bool) {
    if let Some(p) = paragraph.take()
        && !p.range.is_empty()
    {
        blocks.push(Block {
            heading: None,
            range: p.range,
        });
    }
}

/// In plain text, a one-line paragraph of at most 80 bytes whose letters are all capitals
/// (at least three of them) reads as a heading: `SECTION 4 - DATA HANDLING`.
fn promote_caps_headings(text: &str, blocks: &mut [Block]) {
    for block in blocks.iter_mut().filter(|b| b.heading.is_none()) {
        let Some(line) = text.get(block.range.clone()) else {
            continue;
        };
        let letters = line.chars().filter(|c| c.is_alphabetic()).count();
        if line.len() <= 80
            && !line.contains('\n')
            && letters >= 3
            && line
                .chars()
                .filter(|c| c.is_alphabetic())
                .all(char::is_uppercase)
        {
            block.heading = Some(1);
        }
    }
}

/// `# Title`, up to three spaces of indent, optional closing `#`s. Returns the level and
/// the range of the heading's text.
fn atx_heading(text: &str, line: Range<usize>) -> Option<(u8, Range<usize>)> {
    let raw = text.get(line.clone())?;
    let indent = raw.len() - raw.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let after_indent = &raw[indent..];
    let level = after_indent.len() - after_indent.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &after_indent[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r'])) {
        return None;
    }
    let body_start = line.start + indent + level;
    let body = trim_range(text, body_start..line.end);
    // Drop a closing sequence of `#`s preceded by a space.
    let body_text = text.get(body.clone())?;
    let without_closing = body_text.trim_end_matches('#');
    let body = if without_closing.len() < body_text.len()
        && (without_closing.is_empty() || without_closing.ends_with([' ', '\t']))
    {
        trim_range(text, body.start..body.start + without_closing.len())
    } else {
        body
    };
    Some((u8::try_from(level).ok()?, body))
}

/// A line of only `=` (level 1) or only `-` (level 2, at least three).
fn setext_underline(content: &str) -> Option<u8> {
    let first = content.bytes().next()?;
    let uniform = content.bytes().all(|b| b == first);
    match first {
        b'=' if uniform && content.len() >= 2 => Some(1),
        b'-' if uniform && content.len() >= 3 => Some(2),
        _ => None,
    }
}

/// "```" or "~~~" (three or more), up to three spaces of indent.
fn fence_marker(line: &str) -> Option<(u8, usize)> {
    let trimmed = line.trim_start_matches(' ');
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let first = trimmed.bytes().next()?;
    if first != b'`' && first != b'~' {
        return None;
    }
    let count = trimmed.bytes().take_while(|&b| b == first).count();
    (count >= 3).then_some((first, count))
}

/// `range` of `text` without leading and trailing whitespace (empty ranges stay put).
pub(crate) fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let Some(slice) = text.get(range.clone()) else {
        return range.start..range.start;
    };
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.start + slice.trim_end().len();
    if start >= end {
        range.start..range.start
    } else {
        start..end
    }
}

// ---------------------------------------------------------------------------------------
// HTML: a small tag stripper. Not a full HTML5 parser: it needs to find the text, the
// headings and the block boundaries of ordinary documents, and to survive anything else.

/// Elements whose content is not document text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "iframe", "object",
];

/// Elements that start and end a paragraph.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "caption",
    "section",
    "article",
    "header",
    "footer",
    "nav",
    "aside",
    "main",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "hr",
    "form",
    "fieldset",
    "legend",
    "address",
    "details",
    "summary",
    "body",
    "html",
    "head",
];

struct HtmlOut<'s> {
    src: &'s str,
    text: String,
    map: OffsetMap,
    blocks: Vec<Block>,
    block_start: usize,
    block_heading: Option<u8>,
    /// Whitespace seen since the last text, and where it was.
    pending_space: Option<Range<usize>>,
    pre_depth: usize,
    title: Option<Range<usize>>,
}

impl HtmlOut<'_> {
    fn push_verbatim(&mut self, src: Range<usize>) {
        let Some(piece) = self.src.get(src.clone()) else {
            return;
        };
        self.flush_space();
        let out = self.text.len();
        match self.map.segments.last_mut() {
            Some(last)
                if last.verbatim
                    && last.src_end == src.start
                    && out - last.out == last.src_end - last.src_start =>
            {
                last.src_end = src.end;
            }
            _ => self.map.segments.push(Segment {
                out,
                src_start: src.start,
                src_end: src.end,
                verbatim: true,
            }),
        }
        self.text.push_str(piece);
    }

    fn push_transformed(&mut self, src: Range<usize>, piece: &str) {
        self.flush_space();
        self.map.segments.push(Segment {
            out: self.text.len(),
            src_start: src.start,
            src_end: src.end,
            verbatim: false,
        });
        self.text.push_str(piece);
    }

    fn whitespace(&mut self, src: Range<usize>) {
        if self.pre_depth > 0 {
            self.push_verbatim(src);
            return;
        }
        self.pending_space = Some(match self.pending_space.take() {
            Some(earlier) => earlier.start..src.end,
            None => src,
        });
    }

    /// Emit pending whitespace as one space, unless the block has no text yet.
    fn flush_space(&mut self) {
        let Some(space) = self.pending_space.take() else {
            return;
        };
        if self.text.len() == self.block_start {
            return;
        }
        if space.len() == 1 {
            // One byte of whitespace becomes one space: still byte for byte.
            let out = self.text.len();
            match self.map.segments.last_mut() {
                Some(last) if last.verbatim && last.src_end == space.start => {
                    last.src_end = space.end
                }
                _ => self.map.segments.push(Segment {
                    out,
                    src_start: space.start,
                    src_end: space.end,
                    verbatim: true,
                }),
            }
        } else {
            self.map.segments.push(Segment {
                out: self.text.len(),
                src_start: space.start,
                src_end: space.end,
                verbatim: false,
            });
        }
        self.text.push(' ');
    }

    /// Close the block being written and start a new one.
    fn end_block(&mut self, next_heading: Option<u8>) {
        self.pending_space = None;
        let range = trim_range(&self.text, self.block_start..self.text.len());
        if !range.is_empty() {
            self.blocks.push(Block {
                heading: self.block_heading,
                range,
            });
        }
        self.block_start = self.text.len();
        self.block_heading = next_heading;
    }
}

fn html(src: &str) -> Extracted {
    let mut out = HtmlOut {
        src,
        text: String::with_capacity(src.len() / 2),
        map: OffsetMap {
            src_len: src.len(),
            ..OffsetMap::default()
        },
        blocks: Vec::new(),
        block_start: 0,
        block_heading: None,
        pending_space: None,
        pre_depth: 0,
        title: None,
    };
    let bytes = src.as_bytes();
    let mut i = if src.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    while i < bytes.len() {
        match bytes[i] {
            b'<' => i = markup(&mut out, i),
            b'&' => {
                let (decoded, end) = entity(src, i);
                match decoded {
                    Some(c) => {
                        let mut buffer = [0u8; 4];
                        let piece: &str = c.encode_utf8(&mut buffer);
                        if c.is_whitespace() && c != '\u{a0}' {
                            out.whitespace(i..end);
                        } else {
                            out.push_transformed(i..end, piece);
                        }
                    }
                    None => out.push_verbatim(i..end),
                }
                i = end;
            }
            b if b.is_ascii_whitespace() => {
                let end = i + bytes[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
                out.whitespace(i..end);
                i = end;
            }
            _ => {
                let end = i + bytes[i..]
                    .iter()
                    .position(|&b| b == b'<' || b == b'&' || b.is_ascii_whitespace())
                    .unwrap_or(bytes.len() - i);
                out.push_verbatim(i..end);
                i = end;
            }
        }
    }
    out.end_block(None);
    out.map.out_len = out.text.len();
    // A document without headings takes its <title> as its first heading.
    if let Some(title) = out.title.take()
        && !out.blocks.iter().any(|b| b.heading.is_some())
    {
        let title_text = collapse(src.get(title.clone()).unwrap_or_default());
        if !title_text.is_empty() {
            let start = out.text.len();
            out.map.segments.push(Segment {
                out: start,
                src_start: title.start,
                src_end: title.end,
                verbatim: false,
            });
            out.text.push_str(&title_text);
            out.map.out_len = out.text.len();
            out.blocks.insert(
                0,
                Block {
                    heading: Some(1),
                    range: start..out.text.len(),
                },
            );
        }
    }
    Extracted {
        text: out.text,
        blocks: out.blocks,
        map: out.map,
    }
}

/// Handle the markup starting at `src[i] == '<'`; returns where scanning resumes.
fn markup(out: &mut HtmlOut<'_>, i: usize) -> usize {
    let src = out.src;
    let bytes = src.as_bytes();
    let rest = &bytes[i..];
    if rest.starts_with(b"<!--") {
        return find(bytes, i + 4, b"-->").map_or(bytes.len(), |at| at + 3);
    }
    if rest.starts_with(b"<![CDATA[") {
        let end = find(bytes, i + 9, b"]]>").unwrap_or(bytes.len());
        out.push_verbatim(i + 9..end);
        return (end + 3).min(bytes.len());
    }
    if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
        return find(bytes, i + 2, b">").map_or(bytes.len(), |at| at + 1);
    }
    let closing = rest.get(1) == Some(&b'/');
    let name_start = i + 1 + usize::from(closing);
    let name_len = bytes[name_start.min(bytes.len())..]
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name_len == 0 || !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
        // Not a tag: a literal `<`.
        out.push_verbatim(i..i + 1);
        return i + 1;
    }
    let name = src
        .get(name_start..name_start + name_len)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let tag_end = tag_end(bytes, name_start + name_len);
    let self_closing = tag_end >= 2 && bytes.get(tag_end - 2) == Some(&b'/');

    if !closing && SKIPPED.contains(&name.as_str()) && !self_closing {
        return skip_element(bytes, tag_end, &name);
    }
    if !closing && name == "title" {
        let close = find_closing(bytes, tag_end, "title");
        out.title
            .get_or_insert(tag_end..close.map_or(bytes.len(), |(start, _)| start));
        return close.map_or(bytes.len(), |(_, end)| end);
    }
    if let Some(level) = heading_level(&name) {
        out.end_block(if closing { None } else { Some(level) });
    } else if BLOCKS.contains(&name.as_str()) {
        if name == "pre" {
            out.pre_depth = if closing {
                out.pre_depth.saturating_sub(1)
            } else {
                out.pre_depth + 1
            };
        }
        out.end_block(None);
    } else if matches!(name.as_str(), "td" | "th") && !closing {
        out.whitespace(i..i);
    }
    tag_end
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// The offset just past the `>` closing a tag whose attributes start at `from`. Quoted
/// attribute values may hold `>`; a quote still open at the next `<` (or the end) is
/// taken as malformed and the tag ends at the first `>`. Stopping at `<` keeps the whole
/// scan linear: no byte is looked at more than a few times.
fn tag_end(bytes: &[u8], from: usize) -> usize {
    let mut quote: Option<u8> = None;
    for (at, &b) in bytes.iter().enumerate().skip(from) {
        match quote {
            Some(_) if b == b'<' => break,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return at + 1,
            None => {}
        }
    }
    find(bytes, from, b">").map_or(bytes.len(), |at| at + 1)
}

/// Skip an element's content up to and including its closing tag (or to the end).
fn skip_element(bytes: &[u8], from: usize, name: &str) -> usize {
    find_closing(bytes, from, name).map_or(bytes.len(), |(_, end)| end)
}

/// Finds `</name` (any case) from `from`: the offset of the `<` and the offset just past
/// the tag's `>`.
fn find_closing(bytes: &[u8], from: usize, name: &str) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(open) = find(bytes, at, b"</") {
        let name_at = open + 2;
        let candidate = bytes.get(name_at..name_at + name.len())?;
        let boundary = bytes
            .get(name_at + name.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric());
        if candidate.eq_ignore_ascii_case(name.as_bytes()) && boundary {
            return Some((open, tag_end(bytes, name_at + name.len())));
        }
        at = name_at;
    }
    None
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let haystack = bytes.get(from..)?;
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| from + at)
}

/// Decode the entity at `src[i] == '&'`: the character (if it is one this stripper
/// knows) and where the entity ends. Unknown entities stay as text.
fn entity(src: &str, i: usize) -> (Option<char>, usize) {
    let bytes = src.as_bytes();
    let body_len = bytes[i + 1..]
        .iter()
        .take(32)
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'#')
        .count();
    let semicolon = i + 1 + body_len;
    if body_len == 0 || bytes.get(semicolon) != Some(&b';') {
        return (None, i + 1);
    }
    let name = src.get(i + 1..semicolon).unwrap_or_default();
    let decoded = if let Some(number) = name.strip_prefix('#') {
        let value = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => number.parse::<u32>().ok(),
        };
        value.and_then(char::from_u32).filter(|c| *c != '\0')
    } else {
        named_entity(name)
    };
    match decoded {
        Some(c) => (Some(c), semicolon + 1),
        None => (None, i + 1),
    }
}

fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "lsaquo" => '‹',
        "rsaquo" => '›',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "para" => '¶',
        "deg" => '°',
        "times" => '×',
        "divide" => '÷',
        "plusmn" => '±',
        "le" => '≤',
        "ge" => '≥',
        "ne" => '≠',
        "rarr" => '→',
        "larr" => '←',
        "shy" => '\u{ad}',
        "zwj" => '\u{200d}',
        "zwnj" => '\u{200c}',
        "ensp" | "emsp" | "thinsp" => ' ',
        _ => return None,
    })
}

/// Whitespace collapsed to single spaces, for short strings such as a title.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(ex: &Extracted) -> Vec<(Option<u8>, &str)> {
        ex.blocks
            .iter()
            .map(|b| (b.heading, &ex.text[b.range.clone()]))
            .collect()
    }

    #[test]
    fn markdown_headings_and_paragraphs() {
        let doc = "# Travel policy\n\nIntro line one\nline two.\n\n## Hotels ##\n\nUp to 200 a night.\n\nSetext\n------\nBody\n";
        let ex = extract(doc, Format::Markdown);
        assert_eq!(
            blocks(&ex),
            [
                (Some(1), "Travel policy"),
                (None, "Intro line one\nline two."),
                (Some(2), "Hotels"),
                (None, "Up to 200 a night."),
                (Some(2), "Setext"),
                (None, "Body"),
            ]
        );
        let hotels = &ex.blocks[3];
        assert_eq!(
            ex.source_range(hotels.range.clone()),
            hotels.range,
            "markdown maps byte for byte"
        );
    }

    #[test]
    fn markdown_code_fences_keep_hashes_and_blank_lines() {
        let doc = "```sh\n# not a heading\n\nstill code\n```\nafter\n";
        let ex = extract(doc, Format::Markdown);
        assert_eq!(
            blocks(&ex),
            [
                (None, "```sh\n# not a heading\n\nstill code\n```"),
                (None, "after")
            ]
        );
    }

    #[test]
    fn plain_text_caps_headings_and_no_atx() {
        let doc = "\u{feff}SECTION 2 - DATA HANDLING\n\n# not a heading in text\n\nKeep data in the EU.\n";
        let ex = extract(doc, Format::Text);
        assert_eq!(
            blocks(&ex),
            [
                (Some(1), "SECTION 2 - DATA HANDLING"),
                (None, "# not a heading in text"),
                (None, "Keep data in the EU.")
            ]
        );
        // The BOM shifts source offsets by its three bytes.
        let last = ex.blocks[2].range.clone();
        let source = ex.source_range(last.clone());
        assert_eq!(&doc[source], "Keep data in the EU.");
    }

    #[test]
    fn html_text_headings_entities_and_scripts() {
        let doc = "<html><head><title>T&amp;E</title><style>p{color:red}</style></head><body>\
                   <h1>Travel &amp; expenses</h1><p>Economy   class\n for flights &lt; 6&nbsp;hours.</p>\
                   <script>var x = '<p>no</p>';</script><ul><li>One</li><li>Two</li></ul></body></html>";
        let ex = extract(doc, Format::Html);
        assert_eq!(
            blocks(&ex),
            [
                (Some(1), "Travel & expenses"),
                (None, "Economy class for flights < 6\u{a0}hours."),
                (None, "One"),
                (None, "Two"),
            ]
        );
        let paragraph = ex.source_range(ex.blocks[1].range.clone());
        assert_eq!(
            &doc[paragraph],
            "Economy   class\n for flights &lt; 6&nbsp;hours."
        );
        let word = ex.text.find("class").unwrap();
        assert_eq!(&doc[ex.source_range(word..word + 5)], "class");
    }

    #[test]
    fn html_title_is_the_heading_when_there_is_none() {
        let ex = extract(
            "<title> Data  classification </title><p>Four levels.</p>",
            Format::Html,
        );
        assert_eq!(
            blocks(&ex),
            [(Some(1), "Data classification"), (None, "Four levels.")]
        );
    }

    #[test]
    fn malformed_html_degrades_to_text() {
        for doc in [
            "<p>unclosed <b>bold",
            "a < b and c > d",
            "<p class=\"unterminated>text</p>",
            "<!-- never closed",
            "<script>never closed",
            "&#xFFFFFFFF; &#0; &bogus; & &;",
            "<",
            "</",
            "<<<>>>",
            "<![CDATA[x",
        ] {
            let ex = extract(doc, Format::Html);
            for block in &ex.blocks {
                let range = ex.source_range(block.range.clone());
                assert!(
                    range.start <= range.end && range.end <= doc.len(),
                    "{doc:?}"
                );
            }
        }
        let ex = extract("a < b &bogus; &#65;", Format::Html);
        assert_eq!(blocks(&ex), [(None, "a < b &bogus; A")]);
    }
}
