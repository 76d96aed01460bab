//! Protected content: winnowed fingerprints of word k-grams of registered documents.
//!
//! Documents are folded like scanned text (lowercase, no accents, confusables folded), split
//! into words, and every k-gram of words is hashed; winnowing keeps the minimum hash of each
//! window of `w` consecutive k-grams, which guarantees that any shared run of `w + k - 1` words
//! is caught. Scanned text is checked k-gram by k-gram (every k-gram, no winnowing on that
//! side), so each match is local: a k-gram spans at most [`MAX_KGRAM_BYTES`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Severity;
use crate::hit::Hit;
use crate::policy::PolicyError;

/// A k-gram whose words span more than this many bytes is not fingerprinted.
pub(crate) const MAX_KGRAM_BYTES: usize = 480;
const MAX_WORD: usize = 40;
const MAX_FILE_BYTES: u64 = 16 << 20;
const MAX_FILES: usize = 10_000;

pub(crate) struct Protected {
    k: usize,
    /// Fingerprint -> document index.
    prints: HashMap<u64, u32>,
    pub docs: Vec<ProtectedDoc>,
}

pub(crate) struct ProtectedDoc {
    pub name: String,
    pub fingerprints: usize,
}

#[inline]
fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// FNV-1a over a word (capped), then mixed.
#[inline]
fn word_hash(w: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &w[..w.len().min(MAX_WORD)] {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Words of `t` as (start, end, hash).
fn words(t: &[u8], out: &mut Vec<(u32, u32, u64)>) {
    let n = t.len();
    let mut i = 0;
    while i < n {
        if !word_byte(t[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < n && word_byte(t[i]) {
            i += 1;
        }
        out.push((s as u32, i as u32, word_hash(&t[s..i])));
    }
}

/// Hash of the k-gram of words starting at `i`, if its span is bounded.
#[inline]
fn kgram(ws: &[(u32, u32, u64)], i: usize, k: usize) -> Option<u64> {
    let last = ws.get(i + k - 1)?;
    if (last.1 - ws[i].0) as usize > MAX_KGRAM_BYTES {
        return None;
    }
    let mut h = 0u64;
    for w in &ws[i..i + k] {
        h = mix(h ^ w.2);
    }
    Some(h)
}

impl Protected {
    pub fn load(
        paths: &[PathBuf],
        base: Option<&Path>,
        k: usize,
        window: usize,
    ) -> Result<Protected, PolicyError> {
        let mut files = Vec::new();
        for p in paths {
            let path = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.clone(),
            };
            collect(&path, &mut files)?;
        }
        let mut me = Protected {
            k,
            prints: HashMap::new(),
            docs: Vec::new(),
        };
        for path in files {
            let bytes = std::fs::read(&path).map_err(|source| PolicyError::Io {
                path: path.clone(),
                source,
            })?;
            let Ok(text) = String::from_utf8(bytes) else {
                tracing::warn!(path = %path.display(), "protected document is not UTF-8 text; skipped");
                continue;
            };
            me.add(&path.display().to_string(), &text, window);
        }
        Ok(me)
    }

    pub fn add(&mut self, name: &str, text: &str, window: usize) {
        let folded = crate::normalize::Views::new(text).folded;
        let mut ws = Vec::new();
        words(&folded, &mut ws);
        let hashes: Vec<u64> = (0..ws.len())
            .filter_map(|i| kgram(&ws, i, self.k))
            .collect();
        let idx = self.docs.len() as u32;
        let mut kept = 0;
        let mut last_pick = usize::MAX;
        let w = window.max(1);
        for start in 0..hashes.len().saturating_sub(w - 1) {
            let win = &hashes[start..start + w];
            let (off, &h) = win
                .iter()
                .enumerate()
                .rev()
                .min_by_key(|(_, h)| **h)
                .unwrap_or((0, &0));
            if start + off != last_pick {
                last_pick = start + off;
                if self.prints.insert(h, idx).is_none() {
                    kept += 1;
                }
            }
        }
        if hashes.len() < w {
            for &h in &hashes {
                if self.prints.insert(h, idx).is_none() {
                    kept += 1;
                }
            }
        }
        self.docs.push(ProtectedDoc {
            name: name.to_string(),
            fingerprints: kept,
        });
    }

    /// Push one hit per matching k-gram of `folded` (folded-view offsets).
    pub fn scan(&self, folded: &[u8], out: &mut Vec<Hit>) {
        if self.prints.is_empty() {
            return;
        }
        let mut ws = Vec::new();
        words(folded, &mut ws);
        for i in 0..ws.len() {
            let Some(h) = kgram(&ws, i, self.k) else {
                continue;
            };
            if let Some(&doc) = self.prints.get(&h) {
                let mut hit = Hit::new(
                    ws[i].0 as usize,
                    ws[i + self.k - 1].1 as usize,
                    "protected_content",
                    Severity::High,
                );
                hit.detail = Some(doc.to_string());
                out.push(hit);
            }
        }
    }

    pub fn doc(&self, idx: &str) -> Option<&ProtectedDoc> {
        idx.parse::<usize>().ok().and_then(|i| self.docs.get(i))
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let meta = std::fs::metadata(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        let entries = std::fs::read_dir(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            if child
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            collect(&child, files)?;
        }
    } else if meta.len() <= MAX_FILE_BYTES {
        if files.len() >= MAX_FILES {
            return Err(PolicyError::invalid(
                "protected.documents",
                format!("more than {MAX_FILES} files"),
            ));
        }
        files.push(path.to_path_buf());
    } else {
        tracing::warn!(path = %path.display(), "protected document larger than 16 MiB; skipped");
    }
    Ok(())
}
