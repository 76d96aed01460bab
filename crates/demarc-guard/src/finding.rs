//! What the detectors report: findings with offsets into the original text, and the verdict.

use serde::{Deserialize, Serialize};

/// Which way text is flowing: towards the model (`Input`) or back to the caller (`Output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Input,
    Output,
}

/// The detectors, by stable id (used in policies, reports and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Detector {
    /// Credentials: cloud keys, tokens, private keys, connection strings, high-entropy assignments.
    Secrets,
    /// Personal data, checksum-validated where a checksum exists.
    Pii,
    /// Prompt injection and jailbreak heuristics.
    Injection,
    /// Invisible or smuggled text: Unicode tag characters, zero-width and bidi controls.
    Invisible,
    /// Terms, patterns and topics the policy denies.
    Deny,
    /// A canary token: proves that the system prompt leaked into output.
    Canary,
    /// Verbatim reproduction of a registered protected document.
    Protected,
}

impl Detector {
    pub const ALL: [Detector; 7] = [
        Detector::Secrets,
        Detector::Pii,
        Detector::Injection,
        Detector::Invisible,
        Detector::Deny,
        Detector::Canary,
        Detector::Protected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Secrets => "secrets",
            Detector::Pii => "pii",
            Detector::Injection => "injection",
            Detector::Invisible => "invisible",
            Detector::Deny => "deny",
            Detector::Canary => "canary",
            Detector::Protected => "protected",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad one finding is on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a policy does about a detector's findings, ordered from mildest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Run the detector, report nothing to the verdict.
    Allow,
    /// Report the finding; let the text through unchanged.
    Flag,
    /// Replace the finding's text by a placeholder (reversible with [`crate::Redactions`]).
    Redact,
    /// Refuse the text.
    Block,
}

impl Action {
    /// Whether the action changes what passes (redact, block), so a stream must decide it
    /// before releasing text.
    pub fn changes_text(self) -> bool {
        matches!(self, Action::Redact | Action::Block)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Flag => "flag",
            Action::Redact => "redact",
            Action::Block => "block",
        }
    }
}

/// The overall decision for one text: the strongest action of any finding.
pub type Verdict = Action;

/// One detection. `start..end` are byte offsets into the ORIGINAL text that was scanned
/// (after normalisation and decoding, offsets are mapped back; a finding inside an encoded
/// payload spans the whole encoded run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub detector: Detector,
    /// What was found, e.g. `email`, `aws_access_key`, `instruction_override`, `base64:instruction_override`.
    pub kind: String,
    pub start: usize,
    pub end: usize,
    pub severity: Severity,
    /// The detector's weight for this finding (injection signals; 1.0 for validated matches).
    #[serde(default)]
    pub score: f32,
    /// Extra context: the source document of protected content and its overlap, the topic of a deny hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The action the policy attached to this finding.
    pub action: Action,
}

/// The result of scanning one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    /// The prompt-injection score in `0.0..=1.0` (noisy-or of the injection signals found).
    pub score: f32,
    /// Findings sorted by start offset, then end, then detector.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Whether the policy refuses this text.
    pub fn blocked(&self) -> bool {
        self.verdict == Action::Block
    }
}
