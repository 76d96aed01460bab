//! Where a stream may be cut: the earliest offset at which a match that more text could still
//! change may start. Everything before it is final and can be released.
//!
//! Each detector bounds its matches in one of two ways:
//! - by length: no match is longer than so many bytes (injection windows, deny and allow
//!   patterns, protected k-grams), so the last that many bytes are held;
//! - by shape: a match crosses ASCII whitespace only in known places (a phone number's digit
//!   groups, `password = value`, a multi-word deny term), so the scanner walks back over the
//!   trailing words only while a match could still reach across the gap before them. Prose
//!   ending in a space is released at once; a trailing word is held until it ends.
//!
//! Rules are supersets of what a detector can match: non-ASCII bytes (which normalisation may
//! turn into ASCII, or remove) count as matching any class, so a rule errs towards holding.

use crate::engine::Plan;
use crate::finding::Detector;

/// Bytes past a match's end a detector may look at (word boundaries, `\b`, a UTF-8 character).
const LOOKAHEAD: usize = 16;

/// The cut rules of one stream direction, fixed when the scanner is created.
#[derive(Debug, Clone)]
pub(crate) struct CutRules {
    /// Hold for detectors bounded by length only (0 when none runs).
    length_hold: usize,
    secrets: bool,
    /// Every secret rule's keyword.
    secret_keywords: &'static Keywords,
    /// Keywords after which a secret may continue past whitespace.
    assignment_keys: &'static Keywords,
    pii: bool,
    /// Invisible characters: a run of them at the end may still grow.
    invisible: bool,
    /// Longest decoded run when decoding runs.
    decode: Option<usize>,
    /// Multi-word terms (deny terms, canaries): most whitespace bytes in one, longest in bytes.
    terms: Option<(usize, usize)>,
}

impl CutRules {
    pub(crate) fn new(
        plan: &Plan,
        length_hold: usize,
        decode: Option<usize>,
        terms: Option<(usize, usize)>,
    ) -> CutRules {
        CutRules {
            length_hold,
            secrets: plan.on(Detector::Secrets),
            secret_keywords: secret_keywords(),
            assignment_keys: assignment_keys(),
            pii: plan.on(Detector::Pii),
            invisible: plan.on(Detector::Invisible),
            decode,
            terms,
        }
    }

    /// The earliest offset of `buf` where an unfinished match may start (`buf.len()` when
    /// none can), never below `floor`. The caller also holds long secrets in progress.
    pub(crate) fn cut(&self, buf: &[u8], floor: usize) -> usize {
        let end = buf.len();
        let by_length = |hold: usize| end.saturating_sub(hold + LOOKAHEAD);
        // A shape-bounded detector holds at least the last word, which may still grow (secrets
        // only from where a keyword may begin in it).
        let mut cut = if self.pii || self.invisible || self.decode.is_some() || self.terms.is_some()
        {
            last_word_start(buf, end)
        } else {
            end
        };
        if self.length_hold > 0 {
            cut = cut.min(by_length(self.length_hold));
        }
        if self.secrets {
            let gap = |before: &[u8]| secret_gap(before, self.assignment_keys);
            let walked = walk(buf, floor, gap, secret_word, usize::MAX);
            let walked = if walked == last_word_start(buf, end) {
                secret_start_in_last_word(buf, self.secret_keywords)
            } else {
                walked
            };
            cut = cut.min(walked.max(by_length(crate::secrets::SHORT_MAX)));
        }
        if self.pii {
            let walked = walk(buf, floor, pii_gap, pii_word, usize::MAX);
            cut = cut.min(walked.max(by_length(crate::pii::MAX_TOKEN)));
        }
        if let Some(max_bytes) = self.decode {
            let walked = walk(buf, floor, decode_gap, decode_word, usize::MAX);
            cut = cut.min(walked.max(by_length(max_bytes + 8)));
            if let Some(open) = open_ascii85(buf, max_bytes) {
                cut = cut.min(open);
            }
        }
        if let Some((gaps, bytes)) = self.terms {
            let walked = walk(buf, floor, |_| true, |_| true, gaps);
            cut = cut.min(walked.max(by_length(bytes)));
        }
        cut.max(floor)
    }
}

#[inline]
fn is_gap(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// Start of the run of non-whitespace bytes that ends at `end` (`end` itself after a space).
fn last_word_start(buf: &[u8], end: usize) -> usize {
    buf[..end]
        .iter()
        .rposition(|&b| is_gap(b))
        .map_or(0, |i| i + 1)
}

/// Walk back over trailing words: the buffer ends with word W0 (maybe empty), before it gap
/// G1 and word W1, and so on. A match still open at the end could start in Wk only if it may
/// cross every gap G1..Gk (`gap(Wj)` judges Gj from the word before it) and lie across every
/// word W1..W(k-1) whole (`through`). Returns the start of the furthest such Wk.
fn walk(
    buf: &[u8],
    floor: usize,
    gap: impl Fn(&[u8]) -> bool,
    through: impl Fn(&[u8]) -> bool,
    max_gaps: usize,
) -> usize {
    let mut word_start = last_word_start(buf, buf.len());
    let mut cut = word_start;
    let mut inner: Option<&[u8]> = None;
    let mut gaps = 0;
    while gaps < max_gaps && word_start > floor {
        let gap_start = buf[..word_start]
            .iter()
            .rposition(|&b| !is_gap(b))
            .map_or(0, |i| i + 1);
        let before_start = last_word_start(buf, gap_start);
        let before = &buf[before_start..gap_start];
        if before.is_empty() || !gap(before) || inner.is_some_and(|w| !through(w)) {
            break;
        }
        gaps += 1;
        cut = before_start;
        inner = Some(before);
        word_start = before_start;
    }
    cut
}

/// The last ASCII byte of `word`, or `None` when non-ASCII bytes end it (treat as "any").
fn last_ascii(word: &[u8]) -> Option<u8> {
    word.last().copied().filter(u8::is_ascii)
}

fn has_non_ascii(word: &[u8]) -> bool {
    !word.is_ascii()
}

/// Every ASCII byte of `word` satisfies `class` (non-ASCII bytes match anything).
fn all_ascii(word: &[u8], class: impl Fn(u8) -> bool) -> bool {
    word.iter().all(|&b| !b.is_ascii() || class(b))
}

// ------------------------------------------------------------------------------- secrets

/// The secret rules whose match may cross whitespace after the keyword (`password = x`,
/// `aws_secret_access_key: x`, `Bearer x`).
const ASSIGNMENT_RULES: [&str; 3] = ["generic_secret", "aws_secret_access_key", "bearer_token"];

/// Built once: every stream scanner shares them.
fn assignment_keys() -> &'static Keywords {
    static KEYS: std::sync::OnceLock<Keywords> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        Keywords::new(
            crate::secrets::RULES
                .iter()
                .filter(|r| ASSIGNMENT_RULES.contains(&r.kind))
                .flat_map(|r| r.keywords.iter().map(|k| k.trim())),
        )
    })
}

fn secret_keywords() -> &'static Keywords {
    static KEYS: std::sync::OnceLock<Keywords> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        Keywords::new(
            crate::secrets::RULES
                .iter()
                .flat_map(|r| r.keywords.iter().copied()),
        )
    })
}

/// ASCII keywords grouped by their lowercased first byte, for case-insensitive checks of the
/// few words at the end of a stream (cheaper than building a searcher per call).
#[derive(Debug, Clone)]
struct Keywords {
    by_first: Vec<Vec<Vec<u8>>>,
}

impl Keywords {
    fn new<'a>(words: impl Iterator<Item = &'a str>) -> Keywords {
        let mut by_first = vec![Vec::new(); 256];
        for w in words.filter(|w| !w.is_empty()) {
            let w = w.to_ascii_lowercase().into_bytes();
            by_first[usize::from(w[0])].push(w);
        }
        Keywords { by_first }
    }

    /// The earliest offset in `word` where a keyword occurs or where a tail of `word` is the
    /// beginning of one.
    fn earliest_start(&self, word: &[u8]) -> Option<usize> {
        (0..word.len()).find(|&p| self.begins(&word[p..], true))
    }

    /// Whether a whole keyword occurs in `word`.
    fn occurs_in(&self, word: &[u8]) -> bool {
        (0..word.len()).any(|p| self.begins(&word[p..], false))
    }

    /// Whether a keyword begins `rest` (or, with `or_prefix`, `rest` begins a keyword).
    fn begins(&self, rest: &[u8], or_prefix: bool) -> bool {
        self.by_first[usize::from(rest[0].to_ascii_lowercase())]
            .iter()
            .any(|k| {
                let n = rest.len().min(k.len());
                (or_prefix || n == k.len()) && rest[..n].eq_ignore_ascii_case(&k[..n])
            })
    }
}

fn is_secret_operator(b: u8) -> bool {
    matches!(b, b'=' | b':' | b'>' | b'"' | b'\'' | b'`')
}

/// The gap after `before` may lie inside a secret: after an assignment operator or a quote,
/// or after a word holding a keyword (the operator may follow).
fn secret_gap(before: &[u8], keys: &Keywords) -> bool {
    has_non_ascii(before)
        || last_ascii(before).is_some_and(is_secret_operator)
        || keys.occurs_in(before)
}

/// Where in the last word a secret may begin: its earliest keyword (a token in progress), or
/// the earliest tail that may still grow into a keyword. Secrets start at their keyword, so
/// `Hello` can be released while `ghp_12` or `sk` cannot.
fn secret_start_in_last_word(buf: &[u8], keywords: &Keywords) -> usize {
    let start = last_word_start(buf, buf.len());
    let word = &buf[start..];
    if !word.is_ascii() {
        return start;
    }
    keywords
        .earliest_start(word)
        .map_or(buf.len(), |p| start + p)
}

/// A whole word inside a secret: an operator between gaps (`password = value`).
fn secret_word(word: &[u8]) -> bool {
    all_ascii(word, is_secret_operator)
}

// ----------------------------------------------------------------------------------- PII

fn is_numeric_part(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'+' | b'(' | b')' | b'-' | b'.' | b'/')
}

/// Length of the run of IBAN characters (digits, capitals) that ends `word` (non-ASCII bytes
/// count as part of it), and whether it holds non-ASCII bytes.
fn trailing_iban_group(word: &[u8]) -> (usize, bool) {
    let mut ascii = 0;
    let mut other = false;
    for &b in word.iter().rev() {
        if b.is_ascii_digit() || b.is_ascii_uppercase() {
            ascii += 1;
        } else if !b.is_ascii() {
            other = true;
        } else {
            break;
        }
    }
    (ascii, other)
}

/// The gap after `before` may lie inside personal data: digit groups of a phone, card or
/// national number (separated by spaces, dashes, dots, brackets), a 4-character IBAN group, or
/// the two letters that begin a UK National Insurance number (`QQ 12 34 56 C`). A label before
/// a value is look-behind, not part of the match: the scanner keeps it as context.
fn pii_gap(before: &[u8]) -> bool {
    // A separator is at most two characters (`) `, `- `), so a digit ends the word or comes
    // right before its last character.
    let digit_or_any = |b: Option<&u8>| b.is_none_or(|b| b.is_ascii_digit() || !b.is_ascii());
    match last_ascii(before) {
        None => true,
        Some(b) if b.is_ascii_digit() => true,
        Some(b) if is_numeric_part(b) && before.len() >= 2 => {
            digit_or_any(before.get(before.len() - 2))
        }
        Some(_) => {
            let (n, other) = trailing_iban_group(before);
            n == 4 || n == 2 || (other && n < 4)
        }
    }
}

fn pii_word(word: &[u8]) -> bool {
    if all_ascii(word, is_numeric_part) {
        return true;
    }
    let (n, other) = trailing_iban_group(word);
    let whole = n + word.iter().filter(|b| !b.is_ascii()).count() == word.len();
    whole && (n == 4 || (other && n < 4))
}

// -------------------------------------------------------------------------------- decode

fn is_morse(b: u8) -> bool {
    matches!(b, b'.' | b'-' | b'/')
}

fn is_bit(b: u8) -> bool {
    b == b'0' || b == b'1'
}

/// The gap after `before` may lie inside an encoded payload: Morse code, 8-bit binary groups.
fn decode_gap(before: &[u8]) -> bool {
    let tail = &before[before.len().saturating_sub(8)..];
    has_non_ascii(tail)
        || last_ascii(before).is_some_and(is_morse)
        || tail.iter().all(|&b| is_bit(b))
}

fn decode_word(word: &[u8]) -> bool {
    all_ascii(word, is_morse) || (word.len() == 8 && word.iter().all(|&b| is_bit(b)))
}

/// An ASCII85 block `<~` in the last `max_bytes` that has not closed yet.
fn open_ascii85(buf: &[u8], max_bytes: usize) -> Option<usize> {
    let from = buf.len().saturating_sub(max_bytes + 4);
    memchr::memmem::find_iter(&buf[from..], b"<~")
        .map(|at| from + at)
        .find(|&at| memchr::memmem::find(&buf[at + 2..], b"~>").is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_with(text: &str, gap: impl Fn(&[u8]) -> bool, word: fn(&[u8]) -> bool) -> usize {
        walk(text.as_bytes(), 0, gap, word, usize::MAX)
    }

    fn secret_gap_default(before: &[u8]) -> bool {
        secret_gap(before, assignment_keys())
    }

    #[test]
    fn prose_ending_in_a_space_is_final() {
        let t = "the meeting moved to Thursday ";
        assert_eq!(cut_with(t, secret_gap_default, secret_word), t.len());
        assert_eq!(cut_with(t, pii_gap, pii_word), t.len());
    }

    #[test]
    fn a_trailing_word_is_held() {
        let t = "the meeting moved to Thurs";
        assert_eq!(cut_with(t, pii_gap, pii_word), t.len() - "Thurs".len());
    }

    #[test]
    fn digit_groups_and_assignments_are_held_whole() {
        let t = "call me on +44 20 7946 09";
        assert_eq!(cut_with(t, pii_gap, pii_word), "call me on ".len());
        let t = "card 4111 1111 ";
        assert_eq!(cut_with(t, pii_gap, pii_word), "card ".len());
        let t = "to GB82 WEST 12";
        assert_eq!(cut_with(t, pii_gap, pii_word), "to ".len());
        let t = "NI number QQ 12 34 5";
        assert_eq!(cut_with(t, pii_gap, pii_word), "NI number ".len());
        let t = "my password = hunt";
        assert_eq!(cut_with(t, secret_gap_default, secret_word), "my ".len());
        let t = "Authorization: Bearer ";
        assert_eq!(
            cut_with(t, secret_gap_default, secret_word),
            "Authorization: ".len()
        );
    }

    #[test]
    fn a_word_is_held_only_from_where_a_secret_may_begin() {
        let keywords = secret_keywords();
        assert!(secret_gap_default(b"DB_PASSWORD"));
        let at = |t: &str| secret_start_in_last_word(t.as_bytes(), keywords);
        assert_eq!(at("say Hello"), "say Hello".len());
        assert_eq!(at("say ghp_12"), "say ".len());
        assert_eq!(at("mytoken"), "my".len());
        assert_eq!(at("a ta"), "a t".len(), "`t` may begin `token`");
        assert_eq!(at("x Bear"), "x ".len());
    }

    #[test]
    fn terms_walk_back_a_bounded_number_of_gaps() {
        let t = "one two three four";
        assert_eq!(walk(t.as_bytes(), 0, |_| true, |_| true, 2), "one ".len());
        assert_eq!(
            walk(t.as_bytes(), 0, |_| true, |_| true, 0),
            "one two three ".len()
        );
    }

    #[test]
    fn invisible_characters_count_as_anything() {
        // A zero-width space inside a digit group must not end the walk.
        let t = "x 4111\u{200B} 1111 11";
        assert_eq!(cut_with(t, pii_gap, pii_word), "x ".len());
    }

    #[test]
    fn open_ascii85_blocks_are_held() {
        assert_eq!(open_ascii85(b"ab <~87cURD]i", 64), Some(3));
        assert_eq!(open_ascii85(b"ab <~87cURD]i~> cd", 64), None);
    }
}
