//! The gateway's view of a guard policy: scan input text (possibly rewriting it), scan output
//! incrementally, and restore reversibly redacted values. `guard.rs` adapts `demarc-guard` to
//! these traits; keeping the seam here lets the proxy code stay independent of detector details.

use std::collections::BTreeMap;
use std::sync::Arc;

/// What a policy decided, ordered from mildest to strongest: demarc-guard's own.
pub use demarc_guard::Action;

/// Verdicts collected over one request, for the audit event and metrics.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdicts {
    pub input: Option<Action>,
    pub output: Option<Action>,
    /// Hits per detector id, input and output together.
    pub detectors: BTreeMap<String, u32>,
    pub redactions: u32,
    /// The detector that blocked the request or its output, if any.
    pub blocked_by: Option<String>,
}

impl Verdicts {
    pub fn record_input(&mut self, scan: &InputScan) {
        self.input = self.input.max(Some(scan.action));
        self.merge(&scan.hits, scan.redactions);
    }

    /// Add another set of verdicts (the output side of a stream) to these.
    pub fn absorb(&mut self, other: Verdicts) {
        self.input = self.input.max(other.input);
        self.output = self.output.max(other.output);
        for (detector, n) in other.detectors {
            *self.detectors.entry(detector).or_default() += n;
        }
        self.redactions += other.redactions;
        if self.blocked_by.is_none() {
            self.blocked_by = other.blocked_by;
        }
    }

    pub fn merge(&mut self, hits: &[Hit], redactions: u32) {
        for hit in hits {
            *self.detectors.entry(hit.detector.clone()).or_default() += 1;
            if hit.action == Action::Block && self.blocked_by.is_none() {
                self.blocked_by = Some(hit.detector.clone());
            }
        }
        self.redactions += redactions;
    }
}

/// One detector hit and the action the policy attached to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub detector: String,
    pub action: Action,
}

/// How the model treats an input text, which decides what is looked for in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Read and possibly obeyed: every role the application does not trust.
    Untrusted,
    /// The application's own instructions (roles in `input.trusted_roles`): personal data and
    /// secrets are handled, prompt injection is not looked for.
    Trusted,
    /// Indexed, not obeyed (embedding inputs): as `Trusted`, unless the application enforces
    /// injection there ([`EnforceInjectionOnEmbeddings`]).
    Indexed,
}

/// The result of scanning the input texts of one request.
#[derive(Debug, Clone)]
pub struct InputScan {
    pub action: Action,
    /// The texts to send upstream, in the order scanned, when the policy rewrote any of them.
    pub rewritten: Option<Vec<String>>,
    pub hits: Vec<Hit>,
    pub redactions: u32,
}

/// Placeholders of reversible redaction and the values they stand for, for one request:
/// demarc-guard's own, so that the gateway restores exactly what the guard redacted.
pub type Vault = demarc_guard::Redactions;

/// Which customer duties a policy carries out, for evidence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub name: String,
    /// Input is scanned (prompt filtering).
    pub input: bool,
    /// Some input detector redacts (so a stored prompt is not the raw text).
    pub redacts_input: bool,
    /// Output is scanned.
    pub output: bool,
    /// Output is checked against registered protected content or canary tokens (IP and
    /// copyright, leaks).
    pub ip: bool,
    /// Those output checks in words (`protected content (2 registered paths)`, `canary tokens
    /// (1 registered)`), for evidence.
    pub ip_checks: Vec<String>,
    /// The approved grounding sources the application's requests are grounded in.
    pub grounding: Option<Vec<String>>,
    /// The generated canary that guards the application's system context, in words (see
    /// `canary.rs`), when there is one.
    pub canary: Option<String>,
}

/// A policy applied to one application's traffic.
pub trait Policy: Send + Sync {
    /// What this policy enforces (for evidence); nothing by default.
    fn coverage(&self) -> Coverage {
        Coverage::default()
    }
    /// Scan texts that the model reads together (the texts of one request that share a
    /// [`Trust`]), as one conversation, recording reversible redactions.
    fn scan_input(&self, texts: &[&str], trust: Trust, vault: &mut Vault) -> InputScan;
    /// A fresh incremental scanner for one output text (one choice of one response).
    fn output_scanner(&self) -> Box<dyn OutputScanner>;
    /// Whether this policy scans output at all (lets the proxy skip work).
    fn scans_output(&self) -> bool {
        true
    }
}

/// An application's policy that scans embedding inputs exactly as other inputs, prompt
/// injection included (`embeddings: {enforce_injection: true}`).
pub struct EnforceInjectionOnEmbeddings(pub Arc<dyn Policy>);

impl Policy for EnforceInjectionOnEmbeddings {
    fn coverage(&self) -> Coverage {
        self.0.coverage()
    }
    fn scan_input(&self, texts: &[&str], trust: Trust, vault: &mut Vault) -> InputScan {
        let trust = match trust {
            Trust::Indexed => Trust::Untrusted,
            other => other,
        };
        self.0.scan_input(texts, trust, vault)
    }
    fn output_scanner(&self) -> Box<dyn OutputScanner> {
        self.0.output_scanner()
    }
    fn scans_output(&self) -> bool {
        self.0.scans_output()
    }
}

/// The output was blocked; nothing more of it may reach the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub detector: String,
}

/// Incremental output scanning: text goes in as it arrives; text that is safe comes out.
/// A scanner holds back only what might still turn out to be part of a match.
pub trait OutputScanner: Send {
    /// Scan `chunk`, appending the text now safe to release to `out`.
    fn push(&mut self, chunk: &str, out: &mut String) -> Result<(), Blocked>;
    /// The text is complete: release whatever was held back.
    fn finish(&mut self, out: &mut String) -> Result<(), Blocked>;
    /// Hits seen so far (drained) and the number of redactions made.
    fn take_hits(&mut self) -> (Vec<Hit>, u32);
}

/// `policy: off`: everything passes untouched.
#[derive(Debug, Default)]
pub struct Off;

impl Policy for Off {
    fn coverage(&self) -> Coverage {
        Coverage {
            name: "off".into(),
            ..Coverage::default()
        }
    }
    fn scan_input(&self, _texts: &[&str], _trust: Trust, _vault: &mut Vault) -> InputScan {
        InputScan {
            action: Action::Allow,
            rewritten: None,
            hits: Vec::new(),
            redactions: 0,
        }
    }
    fn output_scanner(&self) -> Box<dyn OutputScanner> {
        Box::new(PassThrough)
    }
    fn scans_output(&self) -> bool {
        false
    }
}

struct PassThrough;

impl OutputScanner for PassThrough {
    fn push(&mut self, chunk: &str, out: &mut String) -> Result<(), Blocked> {
        out.push_str(chunk);
        Ok(())
    }
    fn finish(&mut self, _out: &mut String) -> Result<(), Blocked> {
        Ok(())
    }
    fn take_hits(&mut self) -> (Vec<Hit>, u32) {
        (Vec::new(), 0)
    }
}

/// Output scanning followed by restoration of reversibly redacted values, for one output text.
/// Restoration comes after scanning so that the output policy sees placeholders, not the
/// caller's own data, and a placeholder split across chunks is restored whole.
pub struct OutputPipeline {
    scanner: Box<dyn OutputScanner>,
    vault: Arc<Vault>,
    scanned: String,
    pending: String,
}

impl OutputPipeline {
    pub fn new(policy: &dyn Policy, vault: Arc<Vault>) -> Self {
        Self {
            scanner: policy.output_scanner(),
            vault,
            scanned: String::new(),
            pending: String::new(),
        }
    }

    /// Feed upstream text; append what may reach the client to `out`.
    pub fn push(&mut self, chunk: &str, out: &mut String) -> Result<(), Blocked> {
        self.scanned.clear();
        self.scanner.push(chunk, &mut self.scanned)?;
        if self.vault.is_empty() {
            out.push_str(&self.scanned);
            return Ok(());
        }
        self.pending.push_str(&self.scanned);
        let ready = self.pending.len() - demarc_guard::partial_placeholder_len(&self.pending);
        out.push_str(&self.vault.restore(&self.pending[..ready]));
        self.pending.drain(..ready);
        Ok(())
    }

    pub fn finish(&mut self, out: &mut String) -> Result<(), Blocked> {
        self.scanned.clear();
        self.scanner.finish(&mut self.scanned)?;
        self.pending.push_str(&self.scanned);
        out.push_str(&self.vault.restore(&self.pending));
        self.pending.clear();
        Ok(())
    }

    pub fn take_hits(&mut self) -> (Vec<Hit>, u32) {
        self.scanner.take_hits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault_with(placeholder: &str, value: &str) -> Vault {
        let mut vault = Vault::default();
        vault.insert(placeholder, value);
        vault
    }

    #[test]
    fn placeholders_split_across_chunks_are_restored() {
        let vault = Arc::new(vault_with("[[EMAIL_1]]", "ann@example.com"));
        let text = "write to [[EMAIL_1]] today [[EMAIL_1]]";
        for cut in 0..=text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let mut p = OutputPipeline::new(&Off, vault.clone());
            let mut out = String::new();
            p.push(&text[..cut], &mut out).unwrap();
            p.push(&text[cut..], &mut out).unwrap();
            p.finish(&mut out).unwrap();
            assert_eq!(
                out, "write to ann@example.com today ann@example.com",
                "cut {cut}"
            );
        }
    }

    #[test]
    fn text_without_placeholders_is_released_at_once() {
        let mut p = OutputPipeline::new(&Off, Arc::new(vault_with("[[EMAIL_1]]", "a@b.c")));
        let mut out = String::new();
        p.push("hello world", &mut out).unwrap();
        assert_eq!(out, "hello world");
        p.push(" [EM", &mut out).unwrap();
        assert_eq!(out, "hello world ");
    }
}
