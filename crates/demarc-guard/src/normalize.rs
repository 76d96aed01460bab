//! Normalisation before detection, with offset maps back to the original text.
//!
//! Two views are built from the original:
//! - `clean`: NFKC, invisible characters removed, Unicode tag characters decoded to the ASCII
//!   they smuggle, case kept. Secrets, PII and deny patterns run here.
//! - `folded`: `clean` lowercased, accents stripped, confusable letters (Cyrillic, Greek) and
//!   leetspeak digits folded to ASCII letters. Keyword matching (one Aho-Corasick pass) runs here.
//!
//! ASCII fast path: pure-ASCII text needs no Unicode work; `clean` borrows the original and
//! `folded` is a byte-for-byte table lookup, so both maps are the identity and are not stored.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

/// A run of invisible characters in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvisibleRun {
    pub start: usize,
    pub end: usize,
    pub kind: InvisibleKind,
    /// For tag smuggling: the ASCII text the tag characters spell (truncated to 200 bytes).
    pub decoded: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InvisibleKind {
    TagSmuggling,
    Bidi,
    ZeroWidth,
}

impl InvisibleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InvisibleKind::TagSmuggling => "tag_smuggling",
            InvisibleKind::Bidi => "bidi_control",
            InvisibleKind::ZeroWidth => "zero_width",
        }
    }
}

/// The views of one text.
pub(crate) struct Views<'a> {
    pub original: &'a str,
    pub clean: Cow<'a, str>,
    /// `clean` offsets to original offsets; `None` when they are the same (ASCII fast path).
    clean_map: Option<OffsetMap>,
    pub folded: Vec<u8>,
    /// `folded` offsets to original offsets; `None` when they are the same.
    folded_map: Option<OffsetMap>,
    pub invisible: Vec<InvisibleRun>,
}

/// A sparse offset map from a view to the original text: segments sorted by view offset. In a
/// linear segment view byte `v` maps to `orig + (v - view)` (a copied ASCII run); in a constant
/// segment every byte maps to `orig` (the bytes one normalised character became). Mostly-ASCII
/// text needs a handful of segments, not a word per byte.
#[derive(Default)]
struct OffsetMap {
    segs: Vec<Seg>,
}

#[derive(Clone, Copy)]
struct Seg {
    view: usize,
    orig: usize,
    linear: bool,
}

impl OffsetMap {
    fn linear(&mut self, view: usize, orig: usize) {
        if let Some(l) = self.segs.last()
            && l.linear
            && orig - l.orig == view - l.view
        {
            return;
        }
        self.segs.push(Seg {
            view,
            orig,
            linear: true,
        });
    }

    fn constant(&mut self, view: usize, orig: usize) {
        if let Some(l) = self.segs.last()
            && !l.linear
            && l.orig == orig
        {
            return;
        }
        self.segs.push(Seg {
            view,
            orig,
            linear: false,
        });
    }

    /// Original offset of view byte `v` (`None` past the end).
    fn get(&self, v: usize) -> Option<usize> {
        let i = self.segs.partition_point(|s| s.view <= v).checked_sub(1)?;
        let s = self.segs[i];
        Some(if s.linear {
            s.orig + (v - s.view)
        } else {
            s.orig
        })
    }

    /// The first view offset whose original offset is at least `o`.
    fn inverse(&self, o: usize, view_len: usize) -> usize {
        let Some(i) = self.segs.partition_point(|s| s.orig <= o).checked_sub(1) else {
            return 0;
        };
        let s = self.segs[i];
        let next = self.segs.get(i + 1).map_or(view_len, |n| n.view);
        if s.linear {
            (s.view + (o - s.orig)).min(next)
        } else if s.orig == o {
            s.view
        } else {
            next
        }
    }
}

/// Byte table for the ASCII fold: lowercase, leetspeak digits to letters.
const FOLD_ASCII: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        let b = i as u8;
        t[i] = match b {
            b'A'..=b'Z' => b + 32,
            b'0' => b'o',
            b'1' => b'i',
            b'3' => b'e',
            b'4' => b'a',
            b'5' => b's',
            b'7' => b't',
            b'$' => b's',
            _ => b,
        };
        i += 1;
    }
    t
};

/// Fold one ASCII byte (non-ASCII bytes pass through).
#[inline]
pub(crate) fn fold_byte(b: u8) -> u8 {
    if b < 128 { FOLD_ASCII[b as usize] } else { b }
}

/// Fold a pattern (keyword, term, canary) exactly as text is folded, so that both sides agree.
pub(crate) fn fold_str(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.nfkc() {
        if invisible_class(c).is_some() {
            continue;
        }
        fold_char(c, &mut |b| out.push(b), &mut buf);
    }
    out
}

/// What kind of invisible character `c` is, if it is one.
fn invisible_class(c: char) -> Option<InvisibleKind> {
    match c as u32 {
        0xE0000..=0xE007F => Some(InvisibleKind::TagSmuggling),
        0x202A..=0x202E | 0x2066..=0x2069 => Some(InvisibleKind::Bidi),
        0x200B..=0x200F
        | 0x061C
        | 0x2060..=0x2064
        | 0xFEFF
        | 0x180E
        | 0x00AD
        | 0x034F
        | 0x115F
        | 0x1160
        | 0x3164
        | 0xFFA0
        | 0xFE00..=0xFE0F
        | 0xE0100..=0xE01EF => Some(InvisibleKind::ZeroWidth),
        _ => None,
    }
}

/// Emoji presentation and joiners between non-letters are ordinary; so are the joiners (ZWJ,
/// ZWNJ) inside words of scripts whose spelling uses them (Arabic and Persian, Syriac, the Indic
/// scripts, Tibetan, Myanmar, Khmer, Mongolian) and the zero-width space between letters of
/// scripts written without spaces (Thai, Lao, Khmer, Myanmar, Tibetan, Chinese, Japanese).
/// Zero-width characters inside words of other scripts (Latin, Cyrillic, Greek) are how keyword
/// filters get dodged.
fn is_benign_zero_width(c: char, prev: Option<char>, next: Option<char>) -> bool {
    let cp = c as u32;
    if (0xFE00..=0xFE0F).contains(&cp) || cp == 0xFEFF || cp == 0x00AD {
        return true;
    }
    let letter = |x: Option<char>| x.is_some_and(char::is_alphanumeric);
    if !(letter(prev) && letter(next)) {
        return true;
    }
    let (Some(p), Some(n)) = (prev, next) else {
        return true;
    };
    match cp {
        0x200C | 0x200D => {
            (uses_joiners(p) || uses_joiners(n)) && !splits_keywords(p) && !splits_keywords(n)
        }
        0x200B => without_spaces(p) && without_spaces(n),
        _ => false,
    }
}

/// Scripts whose ordinary spelling puts ZWJ or ZWNJ between letters.
fn uses_joiners(c: char) -> bool {
    matches!(c as u32,
        0x0600..=0x08FF // Arabic, Syriac, Thaana, NKo, Samaritan, Mandaic, Arabic extensions
        | 0x0900..=0x0DFF // Devanagari, Bengali, Gurmukhi, Gujarati, Oriya, Tamil, Telugu, Kannada, Malayalam, Sinhala
        | 0x0F00..=0x109F // Tibetan, Myanmar
        | 0x1780..=0x18AF // Khmer, Mongolian
        | 0x1CD0..=0x1CFF // Vedic extensions
        | 0xA8E0..=0xA8FF // Devanagari extended
        | 0xA9E0..=0xAA7F // Myanmar extensions
        | 0xFB50..=0xFDFF // Arabic presentation forms A
        | 0xFE70..=0xFEFE) // Arabic presentation forms B
}

/// Scripts written without spaces between words, where a zero-width space marks a word break.
fn without_spaces(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF // Thai, Lao
        | 0x0F00..=0x109F // Tibetan, Myanmar
        | 0x1780..=0x17FF // Khmer
        | 0x3040..=0x30FF // Hiragana, Katakana
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF) // CJK ideographs
}

/// Scripts of the keywords the detectors match (Latin, Greek, Cyrillic): a joiner inside one of
/// their words is never ordinary spelling.
fn splits_keywords(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c as u32, 0x00C0..=0x052F | 0x1E00..=0x1FFF)
}

/// Map a confusable letter (already lowercased) to the ASCII letter it imitates.
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' => 'e',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'ɡ' => 'g',
        'ι' | 'ί' => 'i',
        'ο' | 'ό' => 'o',
        'α' | 'ά' => 'a',
        'ν' => 'v',
        'ρ' => 'p',
        'τ' => 't',
        'κ' => 'k',
        'υ' => 'u',
        'ε' | 'έ' => 'e',
        'η' => 'n',
        'χ' => 'x',
        'ı' => 'i',
        'ł' => 'l',
        'ø' => 'o',
        'đ' => 'd',
        _ => return None,
    })
}

/// The ASCII letter or digit a character imitates, case kept: Cyrillic and Greek look-alike
/// letters (`А` for `A`, `о` for `o`) and the digits of other scripts (Arabic-Indic, Persian,
/// Devanagari and the other Indic scripts, Thai, Lao, Tibetan, Myanmar, Khmer, Mongolian;
/// fullwidth digits are NFKC's already). What personal data and secrets are read through when
/// they are written in disguise ([`crate::decode::unmask`]).
pub(crate) fn ascii_lookalike(c: char) -> Option<u8> {
    if let Some(d) = native_digit(c) {
        return Some(b'0' + d);
    }
    Some(match c {
        'А' | 'Α' => b'A',
        'В' | 'Β' => b'B',
        'С' | 'Ϲ' => b'C',
        'Е' | 'Ε' => b'E',
        'Н' | 'Η' => b'H',
        'І' | 'Ι' | 'Ӏ' => b'I',
        'Ј' => b'J',
        'К' | 'Κ' => b'K',
        'М' | 'Μ' => b'M',
        'Ν' => b'N',
        'О' | 'Ο' => b'O',
        'Р' | 'Ρ' => b'P',
        'Ѕ' => b'S',
        'Т' | 'Τ' => b'T',
        'Х' | 'Χ' => b'X',
        'У' | 'Υ' | 'Ү' => b'Y',
        'Ζ' => b'Z',
        'а' | 'α' => b'a',
        'Ь' | 'ь' => b'b',
        'с' | 'ϲ' => b'c',
        'ԁ' => b'd',
        'е' => b'e',
        'һ' => b'h',
        'і' | 'ι' => b'i',
        'ј' => b'j',
        'κ' => b'k',
        'ο' | 'о' => b'o',
        'р' | 'ρ' => b'p',
        'ԛ' => b'q',
        'ѕ' => b's',
        'υ' => b'u',
        'ν' => b'v',
        'ԝ' => b'w',
        'х' | 'χ' => b'x',
        'у' | 'γ' => b'y',
        _ => return None,
    })
}

/// The value of a decimal digit of another script (`None` for ASCII digits and non-digits).
pub(crate) fn native_digit(c: char) -> Option<u8> {
    // The digit zeros of the scripts whose ten digits are consecutive code points.
    const ZEROS: [u32; 22] = [
        0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
        0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0xFF10, 0x1946,
    ];
    let cp = c as u32;
    if cp < 0x0660 {
        return None;
    }
    ZEROS
        .iter()
        .find(|&&z| (z..z + 10).contains(&cp))
        .and_then(|&z| u8::try_from(cp - z).ok())
}

/// The canary skeleton of folded text: its ASCII letters and digits only. A run of more than
/// [`SKELETON_GAP`] other bytes breaks it (a space is written there, which no skeleton holds),
/// so that a match stays local. `emit(byte, folded offset)` receives the skeleton.
pub(crate) const SKELETON_GAP: usize = 8;

pub(crate) fn skeleton(folded: &[u8], mut emit: impl FnMut(u8, usize)) {
    let mut gap = 0;
    for (i, &b) in folded.iter().enumerate() {
        if b.is_ascii_alphanumeric() {
            if gap > SKELETON_GAP {
                emit(b' ', i);
            }
            gap = 0;
            emit(b, i);
        } else {
            gap += 1;
        }
    }
}

/// Fold one (NFKC) character into ASCII-ish bytes for keyword matching.
fn fold_char(c: char, emit: &mut impl FnMut(u8), buf: &mut [u8; 4]) {
    if c.is_ascii() {
        emit(fold_byte(c as u8));
        return;
    }
    for lower in c.to_lowercase() {
        match lower {
            'ß' => {
                emit(b's');
                emit(b's');
            }
            'æ' => {
                emit(b'a');
                emit(b'e');
            }
            'œ' => {
                emit(b'o');
                emit(b'e');
            }
            // Typographic quotes and dashes fold to ASCII so that "ignore the user’s" matches.
            '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{2032}' => emit(b'\''),
            '\u{201C}' | '\u{201D}' | '\u{201F}' | '\u{2033}' | '«' | '»' => emit(b'"'),
            '\u{2010}'..='\u{2015}' | '\u{2212}' => emit(b'-'),
            '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => {
                emit(b' ')
            }
            _ => {
                // Combining marks left after NFKC (the dot of a lowercased Turkish İ) carry no
                // letter of their own.
                if ('\u{0300}'..='\u{036F}').contains(&lower) {
                    continue;
                }
                if let Some(ascii) = confusable(lower) {
                    emit(ascii as u8);
                    continue;
                }
                // Strip accents: the first char of the canonical decomposition, if ASCII.
                let base = lower.nfd().next().unwrap_or(lower);
                if base.is_ascii() {
                    emit(fold_byte(base as u8));
                } else {
                    for &b in lower.encode_utf8(buf).as_bytes() {
                        emit(b);
                    }
                }
            }
        }
    }
}

impl<'a> Views<'a> {
    pub fn new(original: &'a str) -> Views<'a> {
        if original.is_ascii() {
            let folded = original.bytes().map(|b| FOLD_ASCII[b as usize]).collect();
            return Views {
                original,
                clean: Cow::Borrowed(original),
                clean_map: None,
                folded,
                folded_map: None,
                invisible: Vec::new(),
            };
        }
        Self::build_unicode(original)
    }

    fn build_unicode(original: &'a str) -> Views<'a> {
        let bytes = original.as_bytes();
        let n = bytes.len();
        let mut clean = String::with_capacity(n);
        let mut folded = Vec::with_capacity(n);
        let mut cmap = OffsetMap::default();
        let mut fmap = OffsetMap::default();
        let mut invisible: Vec<InvisibleRun> = Vec::new();
        let mut buf = [0u8; 4];
        let mut prev: Option<char> = None;
        let mut i = 0;
        while i < n {
            // ASCII runs are copied in bulk: one segment each, no Unicode work.
            let run = bytes[i..].iter().position(|&b| b >= 0x80).unwrap_or(n - i);
            if run > 0 {
                cmap.linear(clean.len(), i);
                fmap.linear(folded.len(), i);
                clean.push_str(&original[i..i + run]);
                folded.extend(bytes[i..i + run].iter().map(|&b| FOLD_ASCII[b as usize]));
                prev = Some(bytes[i + run - 1] as char);
                i += run;
                continue;
            }
            let Some(c) = original[i..].chars().next() else {
                break;
            };
            let at = i;
            i += c.len_utf8();
            let next = original[i..].chars().next();
            if let Some(kind) = invisible_class(c) {
                let report = match kind {
                    InvisibleKind::ZeroWidth => !is_benign_zero_width(c, prev, next),
                    _ => true,
                };
                let tag_ascii = (kind == InvisibleKind::TagSmuggling)
                    .then(|| (c as u32 - 0xE0000) as u8)
                    .filter(|a| (0x20..0x7F).contains(a));
                if let Some(ascii) = tag_ascii {
                    // The tag block mirrors ASCII: decode it into the views so it is scanned.
                    cmap.constant(clean.len(), at);
                    clean.push(ascii as char);
                    fmap.constant(folded.len(), at);
                    folded.push(fold_byte(ascii));
                }
                if report {
                    match invisible.last_mut() {
                        Some(r) if r.end == at && r.kind == kind => r.end = i,
                        _ => invisible.push(InvisibleRun {
                            start: at,
                            end: i,
                            kind,
                            decoded: String::new(),
                        }),
                    }
                    if let (Some(ascii), Some(r)) = (tag_ascii, invisible.last_mut())
                        && r.decoded.len() < 200
                    {
                        r.decoded.push(ascii as char);
                    }
                }
                continue;
            }
            prev = Some(c);
            for nc in std::iter::once(c).nfkc() {
                cmap.constant(clean.len(), at);
                clean.push(nc);
                fmap.constant(folded.len(), at);
                fold_char(nc, &mut |b| folded.push(b), &mut buf);
            }
        }
        Views {
            original,
            clean: Cow::Owned(clean),
            clean_map: Some(cmap),
            folded,
            folded_map: Some(fmap),
            invisible,
        }
    }

    /// Whether the views differ from the original text in offsets (it is not ASCII).
    pub fn has_map(&self) -> bool {
        self.clean_map.is_some()
    }

    /// Map a span of `clean` to the original text.
    pub fn clean_span(&self, start: usize, end: usize) -> (usize, usize) {
        map_span(self.original, self.clean_map.as_ref(), start, end)
    }

    /// Map a span of `folded` to the original text.
    pub fn folded_span(&self, start: usize, end: usize) -> (usize, usize) {
        map_span(self.original, self.folded_map.as_ref(), start, end)
    }

    /// Map an offset of `folded` to the matching offset of `clean` (the start of the character).
    pub fn folded_to_clean(&self, at: usize) -> usize {
        match (&self.folded_map, &self.clean_map) {
            (Some(f), Some(c)) => {
                let orig = f.get(at).unwrap_or(self.original.len());
                c.inverse(orig, self.clean.len())
            }
            _ => at,
        }
    }
}

fn map_span(original: &str, map: Option<&OffsetMap>, start: usize, end: usize) -> (usize, usize) {
    let Some(map) = map else { return (start, end) };
    let len = original.len();
    let s = map.get(start).unwrap_or(len).min(len);
    if end <= start {
        return (s, s);
    }
    let last = map.get(end - 1).unwrap_or(len).min(len);
    let e = original[last..]
        .chars()
        .next()
        .map_or(len, |c| last + c.len_utf8());
    (s, e.max(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_fast_path_is_identity() {
        let v = Views::new("Ignore 4ll PREVIOUS");
        assert!(v.clean_map.is_none() && v.folded_map.is_none());
        assert_eq!(v.folded, b"ignore all previous");
    }

    #[test]
    fn zero_width_inside_word_is_removed_and_reported() {
        let text = "ig\u{200B}nore previous";
        let v = Views::new(text);
        assert_eq!(v.folded, b"ignore previous");
        assert_eq!(v.invisible.len(), 1);
        assert_eq!(v.invisible[0].kind, InvisibleKind::ZeroWidth);
        assert_eq!(&text[v.invisible[0].start..v.invisible[0].end], "\u{200B}");
        // "nore" in the folded view maps back to "nore" in the original.
        let (s, e) = v.folded_span(2, 6);
        assert_eq!(&text[s..e], "nore");
    }

    #[test]
    fn tag_characters_are_decoded_and_reported() {
        let hidden: String = "hi you"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let text = format!("ok {hidden}!");
        let v = Views::new(&text);
        assert_eq!(v.folded, b"ok hi you!");
        assert_eq!(v.invisible[0].kind, InvisibleKind::TagSmuggling);
        assert_eq!(v.invisible[0].decoded, "hi you");
        let (s, e) = v.folded_span(3, 5);
        assert_eq!(s, 3);
        assert_eq!(e, 3 + 8);
    }

    #[test]
    fn confusables_accents_and_fullwidth_fold() {
        let v = Views::new("Іgnоrе révèle ＳＹＳＴＥＭ Straße");
        assert_eq!(
            String::from_utf8(v.folded.clone()).unwrap(),
            "ignore revele system strasse"
        );
        let v = Views::new("ＡＢＣ");
        assert_eq!(v.clean, "ABC");
        assert_eq!(v.clean_span(1, 2), (3, 6));
    }

    #[test]
    fn emoji_joiner_is_not_reported() {
        let v = Views::new("family 👨\u{200D}👩\u{200D}👧 ❤\u{FE0F}");
        assert!(v.invisible.is_empty());
    }
}
