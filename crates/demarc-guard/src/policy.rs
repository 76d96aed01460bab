//! Guard policies: which detectors run on input and on output, the action for each, thresholds
//! and lists. YAML (or any serde format); unknown fields are errors so that typos are caught.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::finding::{Action, Detector, Direction};

/// The names [`Policy::builtin`] accepts.
pub const BUILTIN_POLICIES: [&str; 4] = ["default", "strict", "monitor", "off"];

/// A guard policy. Build one with [`Policy::from_yaml_str`], [`Policy::from_value`],
/// [`Policy::from_file`], [`Policy::load`] or [`Policy::builtin`], then compile it with
/// [`crate::Guard::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// A name for reports and logs.
    #[serde(default)]
    pub name: Option<String>,
    /// Detectors run on text going to the model, with the action for each.
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub input: BTreeMap<Detector, Action>,
    /// Detectors run on text coming back from the model, with the action for each.
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub output: BTreeMap<Detector, Action>,
    #[serde(default)]
    pub injection: InjectionConfig,
    #[serde(default)]
    pub pii: PiiConfig,
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub decode: DecodeConfig,
    #[serde(default)]
    pub deny: DenyConfig,
    #[serde(default)]
    pub allow: AllowConfig,
    #[serde(default)]
    pub canary: CanaryConfig,
    #[serde(default)]
    pub protected: ProtectedConfig,
    /// Folder that relative paths in this policy (protected documents) are resolved against;
    /// set by [`Policy::from_file`], otherwise the current directory.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

/// Prompt-injection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// Score (0..=1) at or above which the injection detector's action applies.
    pub threshold: f32,
    /// Run the built-in learned tier (a linear model over the folded text) beside the
    /// phrase heuristics; its score joins theirs (in a stream, when the stream ends).
    pub learned: bool,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        InjectionConfig {
            threshold: 0.5,
            learned: true,
        }
    }
}

/// Personal-data settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Kinds to report (see [`crate::PII_KINDS`]); empty means all.
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub kinds: Vec<String>,
}

/// Secret-detection settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Minimum Shannon entropy (bits per character) of a value in a generic `key = value`
    /// assignment before it is reported. Rules for known token formats do not use it.
    pub min_entropy: f32,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig { min_entropy: 3.5 }
    }
}

/// Bounded decoding of embedded base64, base32, hex, URL-encoded, `\u` escaped and binary payloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    pub enabled: bool,
    /// Longest encoded run (bytes) that is decoded; longer runs are left alone. Decoding is
    /// linear in the input: each run is decoded once, decoded text is not decoded again.
    pub max_bytes: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            enabled: true,
            max_bytes: 1024,
        }
    }
}

/// Terms, patterns and topics to deny. Terms match case- and accent-insensitively on word
/// boundaries; patterns are regular expressions (linear-time engine, no look-around).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenyConfig {
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub terms: Vec<String>,
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub patterns: Vec<String>,
    /// Named groups of terms, reported with the topic name.
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub topics: BTreeMap<String, Vec<String>>,
}

/// Values that are never reported by any detector (a finding overlapping an allowed match is
/// dropped): test card numbers, the company's own domain, ...
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowConfig {
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub terms: Vec<String>,
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub patterns: Vec<String>,
}

/// Canary tokens: secret markers placed in the system prompt; seeing one in output proves a leak.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanaryConfig {
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub tokens: Vec<String>,
}

/// Protected content: documents whose verbatim reproduction must be caught.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectedConfig {
    /// Files or folders (read recursively: `.txt`, `.md` and other UTF-8 text files).
    #[serde(deserialize_with = "demarc_yaml::null_as_default")]
    pub documents: Vec<PathBuf>,
    /// Words per fingerprinted k-gram.
    pub k: usize,
    /// Winnowing window (k-grams) over the protected documents.
    pub window: usize,
    /// Fewest matching k-grams from one document before a finding is reported.
    pub min_matches: usize,
}

impl Default for ProtectedConfig {
    fn default() -> Self {
        ProtectedConfig {
            documents: Vec::new(),
            k: 8,
            window: 4,
            min_matches: 2,
        }
    }
}

/// Why a policy could not be read or compiled.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A problem serde met while reading the policy text, located in it.
    #[error("{origin}:{line}:{column}: {message}{}", help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Yaml {
        origin: String,
        line: usize,
        column: usize,
        message: String,
        /// "did you mean `x`?" for a misspelt field, detector or action.
        help: Option<String>,
    },
    #[error("{origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("policy field `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("unknown builtin policy `{name}` (builtins: {}); to read a file, give a path that exists", BUILTIN_POLICIES.join(", "))]
    UnknownBuiltin { name: String },
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PolicyError {
    fn from_yaml(origin: &str, error: demarc_yaml::Error) -> PolicyError {
        match error.location {
            Some(loc) => PolicyError::Yaml {
                origin: origin.to_string(),
                line: loc.line,
                column: loc.column,
                message: error.message,
                help: error.help,
            },
            None => PolicyError::Syntax {
                origin: origin.to_string(),
                message: match error.help {
                    Some(help) => format!("{} ({help})", error.message),
                    None => error.message,
                },
            },
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Default for Policy {
    /// The builtin `default` policy (see [`Policy::default_input`]).
    fn default() -> Self {
        Policy::default_input()
    }
}

impl Policy {
    /// An empty policy: no detector runs.
    pub fn empty() -> Policy {
        Policy {
            name: None,
            input: BTreeMap::new(),
            output: BTreeMap::new(),
            injection: InjectionConfig::default(),
            pii: PiiConfig::default(),
            secrets: SecretsConfig::default(),
            decode: DecodeConfig::default(),
            deny: DenyConfig::default(),
            allow: AllowConfig::default(),
            canary: CanaryConfig::default(),
            protected: ProtectedConfig::default(),
            base_dir: None,
        }
    }

    /// The builtin `default` policy. Input: reversible redaction of personal data and secrets,
    /// block prompt injection and smuggled invisible text, block deny-list hits. Output: redact
    /// secrets, flag personal data, block canary leaks and protected content, flag invisible text.
    pub fn default_input() -> Policy {
        let mut policy = Policy::empty();
        policy.name = Some("default".into());
        policy.input = BTreeMap::from([
            (Detector::Secrets, Action::Redact),
            (Detector::Pii, Action::Redact),
            (Detector::Injection, Action::Block),
            (Detector::Invisible, Action::Block),
            (Detector::Deny, Action::Block),
        ]);
        policy.output = BTreeMap::from([
            (Detector::Secrets, Action::Redact),
            (Detector::Pii, Action::Flag),
            (Detector::Invisible, Action::Flag),
            (Detector::Deny, Action::Block),
            (Detector::Canary, Action::Block),
            (Detector::Protected, Action::Block),
        ]);
        policy
    }

    /// A builtin policy by name: `default`, `strict` (block secrets, injection and invisible
    /// text everywhere, redact personal data), `monitor` (every detector, flag only), `off`.
    pub fn builtin(name: &str) -> Option<Policy> {
        let mut policy = match name {
            "default" => Policy::default_input(),
            "strict" => {
                let mut p = Policy::default_input();
                p.input.insert(Detector::Secrets, Action::Block);
                p.output.insert(Detector::Secrets, Action::Block);
                p.output.insert(Detector::Pii, Action::Redact);
                p.output.insert(Detector::Invisible, Action::Block);
                p.injection.threshold = 0.4;
                p
            }
            "monitor" => {
                let mut p = Policy::empty();
                for d in Detector::ALL {
                    if d != Detector::Canary && d != Detector::Protected {
                        p.input.insert(d, Action::Flag);
                    }
                    if d != Detector::Injection {
                        p.output.insert(d, Action::Flag);
                    }
                }
                p
            }
            "off" => Policy::empty(),
            _ => return None,
        };
        policy.name = Some(name.to_string());
        Some(policy)
    }

    /// Parse a policy from YAML text.
    pub fn from_yaml_str(text: &str) -> Result<Policy, PolicyError> {
        Self::parse_yaml(text, "policy")
    }

    /// Through demarc-yaml, the one YAML stack: its limits, located errors with "did you
    /// mean"; a `.json` origin is read as JSON.
    fn parse_yaml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let policy: Policy =
            demarc_yaml::from_text(origin, text).map_err(|e| PolicyError::from_yaml(origin, e))?;
        policy.validate()?;
        Ok(policy)
    }

    /// A policy from an already-parsed YAML value (an estate's `guard_policy`, a gateway
    /// application's `policy`, read by demarc-yaml as a generic value). A string names a
    /// builtin policy or a policy file; a mapping is an inline policy. Its errors carry no line:
    /// the caller locates them in its own file by the field path.
    pub fn from_value(value: serde_json::Value) -> Result<Policy, PolicyError> {
        if let serde_json::Value::String(name) = &value {
            return Policy::load(name);
        }
        let policy: Policy = serde_json::from_value(value).map_err(|e| PolicyError::Syntax {
            origin: "guard_policy".into(),
            message: match demarc_yaml::help_for_serde_message(&e.to_string()) {
                Some(help) => format!("{e} ({help})"),
                None => e.to_string(),
            },
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Read a policy file (YAML or JSON). Relative document paths resolve against its folder.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut policy = Self::parse_yaml(&text, &path.display().to_string())?;
        policy.base_dir = path.parent().map(Path::to_path_buf);
        Ok(policy)
    }

    /// A builtin name or a path to a policy file.
    pub fn load(name_or_path: &str) -> Result<Policy, PolicyError> {
        if let Some(policy) = Policy::builtin(name_or_path) {
            return Ok(policy);
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            return Policy::from_file(path);
        }
        Err(PolicyError::UnknownBuiltin {
            name: name_or_path.to_string(),
        })
    }

    /// The detectors and actions for one direction.
    pub fn detectors(&self, direction: Direction) -> &BTreeMap<Detector, Action> {
        match direction {
            Direction::Input => &self.input,
            Direction::Output => &self.output,
        }
    }

    /// Checks the values serde cannot: ranges, non-empty terms, known PII kinds. Regular
    /// expressions are checked when the policy is compiled.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let t = self.injection.threshold;
        if !(0.0..=1.0).contains(&t) || t.is_nan() {
            return Err(PolicyError::invalid(
                "injection.threshold",
                format!("`{t}` is out of range; use a number between 0 and 1"),
            ));
        }
        for (i, kind) in self.pii.kinds.iter().enumerate() {
            if !crate::pii::PII_KINDS.contains(&kind.as_str()) {
                return Err(PolicyError::invalid(
                    format!("pii.kinds[{i}]"),
                    format!(
                        "unknown kind `{kind}`; known: {}",
                        crate::pii::PII_KINDS.join(", ")
                    ),
                ));
            }
        }
        if !(3..=32).contains(&self.protected.k) {
            return Err(PolicyError::invalid(
                "protected.k",
                "use between 3 and 32 words",
            ));
        }
        if !(1..=64).contains(&self.protected.window) {
            return Err(PolicyError::invalid(
                "protected.window",
                "use between 1 and 64",
            ));
        }
        if self.decode.max_bytes > 65536 {
            return Err(PolicyError::invalid("decode.max_bytes", "at most 65536"));
        }
        let term_lists = [
            ("deny.terms", &self.deny.terms),
            ("allow.terms", &self.allow.terms),
        ];
        for (field, terms) in term_lists {
            check_terms(field, terms)?;
        }
        for (topic, terms) in &self.deny.topics {
            check_terms(&format!("deny.topics.{topic}"), terms)?;
        }
        for (i, token) in self.canary.tokens.iter().enumerate() {
            if token.trim().chars().count() < 8 || token.len() > 256 {
                return Err(PolicyError::invalid(
                    format!("canary.tokens[{i}]"),
                    "a canary token needs 8 to 256 characters (use a random string)",
                ));
            }
        }
        Ok(())
    }
}

fn check_terms(field: &str, terms: &[String]) -> Result<(), PolicyError> {
    for (i, term) in terms.iter().enumerate() {
        if term.trim().is_empty() || term.len() > 256 {
            return Err(PolicyError::invalid(
                format!("{field}[{i}]"),
                "a term needs 1 to 256 bytes of text",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_is_reported_with_line() {
        let err = Policy::from_yaml_str("input:\n  secrets: redact\ninjecton:\n  threshold: 0.4\n")
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("policy:3:1: "), "{text}");
        assert!(text.contains("injecton"), "{text}");
        assert!(text.contains("did you mean `injection`?"), "{text}");
    }

    #[test]
    fn unknown_detector_and_action_are_errors() {
        assert!(Policy::from_yaml_str("input:\n  secretz: redact\n").is_err());
        assert!(Policy::from_yaml_str("input:\n  secrets: erase\n").is_err());
    }

    #[test]
    fn threshold_out_of_range_names_the_field() {
        let err = Policy::from_yaml_str("injection:\n  threshold: 1.5\n").unwrap_err();
        assert!(err.to_string().contains("injection.threshold"), "{err}");
    }

    #[test]
    fn yaml_value_string_names_a_builtin() {
        let p = Policy::from_value(serde_json::Value::String("monitor".into())).unwrap();
        assert_eq!(p.name.as_deref(), Some("monitor"));
        let err = Policy::from_value(serde_json::Value::String("nope".into())).unwrap_err();
        assert!(err.to_string().contains("unknown builtin policy `nope`"));
    }

    #[test]
    fn inline_mapping_round_trips() {
        let yaml = "input:\n  pii: redact\n  injection: block\ninjection:\n  threshold: 0.6\n";
        let value: serde_json::Value = demarc_yaml::from_text("p.yaml", yaml).unwrap();
        let p = Policy::from_value(value).unwrap();
        assert_eq!(p.input.get(&Detector::Pii), Some(&Action::Redact));
        assert!((p.injection.threshold - 0.6).abs() < 1e-6);
        assert!(p.output.is_empty());
    }
}
