//! Reversible redaction: values become stable placeholders such as `[[EMAIL_3f9a2c1b]]` before
//! text goes upstream, and [`Redactions::restore`] puts them back in what the caller receives.
//!
//! A placeholder is derived from a keyed hash of the value, so the same value gets the same
//! placeholder in every request a [`crate::Guard`] handles (multi-turn conversations stay
//! consistent) while the value cannot be read from it.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};

use serde::{Deserialize, Serialize};

/// Longest placeholder, `[[` and `]]` included.
pub const MAX_PLACEHOLDER: usize = 64;

/// The placeholders inserted into one text (or one conversation) and the values they stand for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redactions {
    map: BTreeMap<String, String>,
}

impl Redactions {
    pub fn new() -> Redactions {
        Redactions::default()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// (placeholder, original value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Record a placeholder made elsewhere for `value`; a placeholder already known keeps its
    /// value.
    pub fn insert(&mut self, placeholder: &str, value: &str) {
        self.map
            .entry(placeholder.to_string())
            .or_insert_with(|| value.to_string());
    }

    /// Add another text's redactions (e.g. every message of one request).
    pub fn extend(&mut self, other: Redactions) {
        self.map.extend(other.map);
    }

    /// The placeholder for `value`. `source` is the text being redacted: a candidate that
    /// already occurs in it is skipped, so that restoring cannot turn the caller's own text
    /// into a value.
    pub(crate) fn placeholder(
        &mut self,
        keys: &PlaceholderKeys,
        kind: &str,
        value: &str,
        source: &str,
    ) -> String {
        let label: String = kind
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .take(24)
            .collect();
        let hash = keys.hash(value);
        for width in [8usize, 16] {
            let p = format!(
                "[[{label}_{:0width$x}]]",
                hash >> (64 - 4 * width as u32),
                width = width
            );
            if source.contains(p.as_str()) {
                continue;
            }
            match self.map.get(&p) {
                Some(existing) if existing != value => continue,
                _ => {
                    self.map.insert(p.clone(), value.to_string());
                    return p;
                }
            }
        }
        let mut n = self.map.len();
        let mut p = format!("[[{label}_{hash:016x}_{n}]]");
        while source.contains(p.as_str()) || self.map.contains_key(&p) {
            n += 1;
            p = format!("[[{label}_{hash:016x}_{n}]]");
        }
        self.map.insert(p.clone(), value.to_string());
        p
    }

    /// Replace every known placeholder in `text` by its original value.
    pub fn restore(&self, text: &str) -> String {
        if self.map.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("[[") {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let mut limit = tail.len().min(MAX_PLACEHOLDER);
            while !tail.is_char_boundary(limit) {
                limit -= 1;
            }
            let close = tail[..limit].find("]]");
            match close.and_then(|c| self.map.get(&tail[..c + 2]).map(|v| (c, v))) {
                Some((c, value)) => {
                    out.push_str(value);
                    rest = &tail[c + 2..];
                }
                None => {
                    // Step one bracket: `[[[KIND_x]]` holds a placeholder one byte later.
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A restorer for streamed text, where a placeholder may be split across chunks.
    pub fn restore_stream(&self) -> RestoreStream<'_> {
        RestoreStream {
            redactions: self,
            pending: String::new(),
        }
    }
}

/// How many bytes at the end of streamed `text` to hold back because they may open a placeholder
/// still being written: from the last `[` (with the one before it) that no `]]` follows, when
/// that is shorter than [`MAX_PLACEHOLDER`]. Everything before can be restored and released.
pub fn partial_placeholder_len(text: &str) -> usize {
    let Some(at) = text.rfind('[') else {
        return 0;
    };
    let at = if text[..at].ends_with('[') {
        at - 1
    } else {
        at
    };
    let tail = &text[at..];
    if !tail.contains("]]") && tail.len() < MAX_PLACEHOLDER {
        tail.len()
    } else {
        0
    }
}

/// Restores placeholders in chunks of streamed text; holds back at most one partial placeholder.
pub struct RestoreStream<'a> {
    redactions: &'a Redactions,
    pending: String,
}

impl RestoreStream<'_> {
    /// Restored text that is safe to release now.
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        let cut = self.pending.len() - partial_placeholder_len(&self.pending);
        let ready: String = self.pending.drain(..cut).collect();
        self.redactions.restore(&ready)
    }

    /// Everything that is left.
    pub fn finish(mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.redactions.restore(&rest)
    }
}

/// The key of the placeholder hash; random per process.
#[derive(Clone)]
pub(crate) struct PlaceholderKeys(std::collections::hash_map::RandomState);

impl PlaceholderKeys {
    pub fn new() -> PlaceholderKeys {
        PlaceholderKeys(std::collections::hash_map::RandomState::new())
    }

    fn hash(&self, value: &str) -> u64 {
        let mut h = self.0.build_hasher();
        h.write(value.as_bytes());
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_stable_and_restore() {
        let keys = PlaceholderKeys::new();
        let mut r = Redactions::new();
        let a = r.placeholder(&keys, "email", "a@example.com", "");
        let b = r.placeholder(&keys, "email", "a@example.com", "");
        let c = r.placeholder(&keys, "email", "b@example.com", "");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.starts_with("[[EMAIL_"));
        let text = format!("write to {a} and {c} [[not]] [[");
        assert_eq!(
            r.restore(&text),
            "write to a@example.com and b@example.com [[not]] [["
        );
    }

    #[test]
    fn placeholder_never_collides_with_the_source_text() {
        // Regression (fuzz): the text already held the placeholder its value would get.
        let keys = PlaceholderKeys::new();
        let mut probe = Redactions::new();
        let taken = probe.placeholder(&keys, "email", "%@1.UU", "");
        let source = format!("x {taken} %@1.UU");
        let mut r = Redactions::new();
        let p = r.placeholder(&keys, "email", "%@1.UU", &source);
        assert_ne!(p, taken);
        assert_eq!(r.restore(&format!("x {taken} {p}")), source);
    }

    #[test]
    fn placeholder_after_an_opening_bracket_restores() {
        // Regression (fuzz): the text `[` followed by a placeholder.
        let keys = PlaceholderKeys::new();
        let mut r = Redactions::new();
        let p = r.placeholder(&keys, "ipv6", "e::AeAe", "");
        assert_eq!(r.restore(&format!("Ae[{p}]]")), "Ae[e::AeAe]]");
    }

    #[test]
    fn stream_restore_across_chunks() {
        let keys = PlaceholderKeys::new();
        let mut r = Redactions::new();
        let p = r.placeholder(&keys, "iban", "GB82WEST12345698765432", "");
        let text = format!("pay {p} today [x]");
        for split in 0..text.len() {
            if !text.is_char_boundary(split) {
                continue;
            }
            let mut s = r.restore_stream();
            let mut out = s.push(&text[..split]);
            out.push_str(&s.push(&text[split..]));
            out.push_str(&s.finish());
            assert_eq!(out, "pay GB82WEST12345698765432 today [x]", "split {split}");
        }
    }
}
