//! Reviewed evidence files checked on disk: each `file:` of the estate, resolved relative to
//! the estate file, read with a size bound and hashed, so `validate` and `assess` can tell a
//! missing or changed file from a verified one.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use demarc_model::CheckedEstate;
use demarc_model::assess::FileCheck;
use sha2::{Digest, Sha256};

/// Evidence files larger than this are not read (an evidence file is a report, not a dataset).
const MAX_EVIDENCE_FILE: u64 = 256 * 1024 * 1024;

/// Check every evidence file the estate names, once per distinct path.
pub fn check(estate_path: &Path, estate: &CheckedEstate) -> BTreeMap<String, FileCheck> {
    let base = estate_path.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for e in estate.applications().iter().flat_map(|a| &a.evidence) {
        let Some(file) = &e.file else { continue };
        let recorded = e.sha256.as_deref().map(str::to_ascii_lowercase);
        let result = match sha256_of(&base.join(file)) {
            Err(reason) => FileCheck::Missing { reason },
            Ok(actual) => match recorded {
                None => FileCheck::Unpinned,
                Some(r) if r == actual => FileCheck::Verified,
                Some(_) => FileCheck::Mismatch { actual },
            },
        };
        // Two entries naming one path with different hashes: keep the worse verdict.
        match out.get(file) {
            Some(FileCheck::Mismatch { .. } | FileCheck::Missing { .. }) => {}
            _ => {
                out.insert(file.clone(), result);
            }
        }
    }
    out
}

fn sha256_of(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| describe(&e))?;
    if meta.is_dir() {
        return Err("it is a directory".into());
    }
    if meta.len() > MAX_EVIDENCE_FILE {
        return Err(format!(
            "it is {} bytes, over the {MAX_EVIDENCE_FILE}-byte limit",
            meta.len()
        ));
    }
    let mut file = std::fs::File::open(path).map_err(|e| describe(&e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| describe(&e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}
