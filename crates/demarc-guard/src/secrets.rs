//! Credentials: keyword prefilter (shared Aho-Corasick pass), then an anchored regex at the
//! keyword, then an entropy check where the format alone is not distinctive.
//!
//! Every rule's regex starts at its keyword and is bounded by `max_len`, so a finding depends
//! only on the text from the keyword on (the stream scanner relies on that).

use regex::Regex;

use crate::Severity;
use crate::hit::Hit;
use crate::policy::PolicyError;

/// One credential format. `pattern` is matched at the keyword position (it is anchored);
/// when `group` is set, capture group 1 is the secret that is reported (and redacted).
pub(crate) struct RuleSpec {
    pub kind: &'static str,
    pub keywords: &'static [&'static str],
    pub pattern: &'static str,
    pub severity: Severity,
    pub group: bool,
    /// Minimum Shannon entropy (bits/char) of the reported value; `None` for distinctive formats.
    pub entropy: Option<f32>,
    pub max_len: usize,
}

const C: Severity = Severity::Critical;
const H: Severity = Severity::High;
const M: Severity = Severity::Medium;

/// The builtin rules. Formats follow each vendor's published token layout.
pub(crate) const RULES: &[RuleSpec] = &[
    RuleSpec {
        kind: "aws_access_key_id",
        keywords: &["AKIA", "ASIA", "ABIA", "ACCA"],
        pattern: r"^(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
        severity: H,
        group: false,
        entropy: None,
        max_len: 24,
    },
    RuleSpec {
        kind: "aws_secret_access_key",
        keywords: &["aws_secret_access_key", "aws_secret_key", "secretaccesskey"],
        pattern: r#"^(?i:aws_secret_access_key|aws_secret_key|secretaccesskey)["']?\s*(?:=|:|=>)\s*["']?([A-Za-z0-9/+]{40})\b"#,
        severity: C,
        group: true,
        entropy: Some(3.5),
        max_len: 120,
    },
    RuleSpec {
        kind: "github_token",
        keywords: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        pattern: r"^gh[pousr]_[A-Za-z0-9]{36,251}\b",
        severity: C,
        group: false,
        entropy: None,
        max_len: 256,
    },
    RuleSpec {
        kind: "github_fine_grained_token",
        keywords: &["github_pat_"],
        pattern: r"^github_pat_[A-Za-z0-9_]{60,240}\b",
        severity: C,
        group: false,
        entropy: None,
        max_len: 256,
    },
    RuleSpec {
        kind: "gitlab_token",
        keywords: &["glpat-"],
        pattern: r"^glpat-[A-Za-z0-9_-]{20,60}\b",
        severity: C,
        group: false,
        entropy: None,
        max_len: 70,
    },
    RuleSpec {
        kind: "slack_token",
        keywords: &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-"],
        pattern: r"^(?:xox[bpars]|xapp)-[A-Za-z0-9-]{10,250}\b",
        severity: H,
        group: false,
        entropy: None,
        max_len: 256,
    },
    RuleSpec {
        kind: "slack_webhook",
        keywords: &["hooks.slack.com/services/"],
        pattern: r"^hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32}\b",
        severity: H,
        group: false,
        entropy: None,
        max_len: 120,
    },
    RuleSpec {
        kind: "stripe_key",
        keywords: &["sk_live_", "rk_live_", "sk_test_", "rk_test_"],
        pattern: r"^[sr]k_(?:live|test)_[A-Za-z0-9]{20,247}\b",
        severity: C,
        group: false,
        entropy: None,
        max_len: 256,
    },
    RuleSpec {
        kind: "anthropic_api_key",
        keywords: &["sk-ant-"],
        pattern: r"^sk-ant-[A-Za-z0-9_-]{32,200}",
        severity: C,
        group: false,
        entropy: None,
        max_len: 210,
    },
    RuleSpec {
        kind: "openai_api_key",
        keywords: &["sk-"],
        pattern: r"^sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,200}",
        severity: C,
        group: false,
        entropy: Some(3.8),
        max_len: 210,
    },
    RuleSpec {
        kind: "google_api_key",
        keywords: &["AIza"],
        pattern: r"^AIza[0-9A-Za-z_-]{35}\b",
        severity: H,
        group: false,
        entropy: None,
        max_len: 40,
    },
    RuleSpec {
        kind: "huggingface_token",
        keywords: &["hf_"],
        pattern: r"^hf_[A-Za-z0-9]{34,40}\b",
        severity: H,
        group: false,
        entropy: Some(3.5),
        max_len: 44,
    },
    RuleSpec {
        kind: "npm_token",
        keywords: &["npm_"],
        pattern: r"^npm_[A-Za-z0-9]{36}\b",
        severity: H,
        group: false,
        entropy: Some(3.5),
        max_len: 40,
    },
    RuleSpec {
        kind: "pypi_token",
        keywords: &["pypi-AgE"],
        pattern: r"^pypi-AgE[A-Za-z0-9_-]{50,250}",
        severity: H,
        group: false,
        entropy: None,
        max_len: 260,
    },
    RuleSpec {
        kind: "sendgrid_api_key",
        keywords: &["SG."],
        pattern: r"^SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b",
        severity: H,
        group: false,
        entropy: None,
        max_len: 70,
    },
    RuleSpec {
        kind: "jwt",
        keywords: &["eyJ"],
        pattern: r"^eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{8,1000}",
        severity: M,
        group: false,
        entropy: None,
        max_len: 7000,
    },
    RuleSpec {
        kind: "private_key",
        keywords: &["-----BEGIN"],
        pattern: r"^-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=:,\- \r\n]{0,8192}?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----)?",
        severity: C,
        group: false,
        entropy: None,
        max_len: 8400,
    },
    RuleSpec {
        kind: "connection_string_password",
        keywords: &[
            "postgres://",
            "postgresql://",
            "mysql://",
            "mariadb://",
            "mongodb://",
            "mongodb+srv://",
            "redis://",
            "rediss://",
            "amqp://",
            "amqps://",
            "mssql://",
            "sqlserver://",
            "jdbc:",
            "ftp://",
            "smtp://",
        ],
        pattern: r"^(?:jdbc:)?[a-z][a-z0-9+]{1,15}://[^\s:/@]{1,64}:([^\s@/]{3,128})@[^\s/]{1,128}",
        severity: C,
        group: true,
        entropy: None,
        max_len: 360,
    },
    RuleSpec {
        kind: "url_credentials",
        keywords: &["https://", "http://"],
        pattern: r"^https?://[^\s:/@]{1,64}:([^\s@/]{3,128})@[A-Za-z0-9.-]{1,128}",
        severity: H,
        group: true,
        entropy: None,
        max_len: 340,
    },
    RuleSpec {
        kind: "azure_storage_key",
        keywords: &["AccountKey="],
        pattern: r"^AccountKey=([A-Za-z0-9/+]{86}==)",
        severity: C,
        group: true,
        entropy: None,
        max_len: 100,
    },
    RuleSpec {
        kind: "bearer_token",
        keywords: &["Bearer "],
        pattern: r"^Bearer[ \t]+([A-Za-z0-9._~+/-]{20,1024}=*)",
        severity: H,
        group: true,
        entropy: Some(3.5),
        max_len: 1100,
    },
    RuleSpec {
        kind: "generic_secret",
        keywords: &[
            "password",
            "passwd",
            "pwd",
            "secret",
            "token",
            "api_key",
            "apikey",
            "api-key",
            "access_key",
            "auth_key",
            "private_key",
            "client_secret",
            "credential",
        ],
        pattern: r#"^(?i:password|passwd|pwd|secret|token|api_key|apikey|api-key|access_key|auth_key|private_key|client_secret|credential)[A-Za-z0-9_.-]{0,24}["']?[ \t]*(?:=|:=|=>|:)[ \t]*["'`]?([^\s"'`,;<>(){}\[\]]{10,200})"#,
        severity: H,
        group: true,
        entropy: None,
        max_len: 300,
    },
];

/// A compiled rule.
pub(crate) struct Rule {
    pub spec: &'static RuleSpec,
    regex: Regex,
}

pub(crate) struct Secrets {
    pub rules: Vec<Rule>,
    generic_entropy: f32,
    /// Searchers for the keywords of the long rules (index into `rules`), built once: a
    /// stream asks for them after every chunk.
    long_keywords: Vec<(usize, memchr::memmem::Finder<'static>)>,
}

impl Secrets {
    pub fn new(min_entropy: f32) -> Result<Secrets, PolicyError> {
        let mut rules = Vec::with_capacity(RULES.len());
        for spec in RULES {
            let regex = Regex::new(spec.pattern).map_err(|e| {
                PolicyError::invalid(format!("builtin secret rule {}", spec.kind), e.to_string())
            })?;
            rules.push(Rule { spec, regex });
        }
        let long_keywords = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.spec.max_len > SHORT_MAX)
            .flat_map(|(i, r)| {
                r.spec
                    .keywords
                    .iter()
                    .map(move |k| (i, memchr::memmem::Finder::new(k.as_bytes())))
            })
            .collect();
        Ok(Secrets {
            rules,
            generic_entropy: min_entropy,
            long_keywords,
        })
    }

    /// Longest text a finding can span from its keyword.
    /// Check rule `rule` at `at` (a keyword hit in `text`); push a hit if it matches.
    pub fn check(&self, rule: usize, text: &str, at: usize, out: &mut Vec<Hit>) {
        let Some(r) = self.rules.get(rule) else {
            return;
        };
        let bytes = text.as_bytes();
        // Tokens start on a word boundary; generic assignments may sit inside an identifier
        // (`DB_PASSWORD=`), so only the distinctive formats need the boundary.
        if r.spec.kind != "generic_secret"
            && at > 0
            && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_')
        {
            return;
        }
        if r.spec.kind == "generic_secret"
            && at > 0
            && bytes[at - 1].is_ascii_lowercase()
            && !bytes[at].is_ascii_uppercase()
        {
            // `mypassword` is prose; `db_password`, `dbPassword` and `DB_PASSWORD` are keys.
            return;
        }
        let mut end = (at + r.spec.max_len).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let window = &text[at..end];
        let (s, e) = if r.spec.group {
            let Some(caps) = r.regex.captures(window) else {
                return;
            };
            let Some(g) = caps.get(1) else { return };
            (g.start(), g.end())
        } else {
            let Some(m) = r.regex.find(window) else {
                return;
            };
            (m.start(), m.end())
        };
        let value = &window[s..e];
        let min_entropy = if r.spec.kind == "generic_secret" {
            if looks_like_placeholder(value) {
                return;
            }
            Some(self.generic_entropy)
        } else {
            r.spec.entropy
        };
        if let Some(min) = min_entropy
            && shannon_entropy(value.as_bytes()) < min
        {
            return;
        }
        out.push(Hit::new(at + s, at + e, r.spec.kind, r.spec.severity));
    }
}

/// Values in `key = value` that are references or examples, not secrets.
fn looks_like_placeholder(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    const MARKERS: [&str; 14] = [
        "${",
        "{{",
        "process.env",
        "os.environ",
        "getenv",
        "env(",
        "<",
        "xxxx",
        "****",
        "changeme",
        "example",
        "placeholder",
        "your_",
        "redacted",
    ];
    MARKERS.iter().any(|m| lower.contains(m))
        || v.bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'.')
}

/// Shannon entropy in bits per byte.
pub(crate) fn shannon_entropy(v: &[u8]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in v {
        counts[b as usize] += 1;
    }
    let n = v.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

/// Longest match of the short rules; longer rules (private keys, JWTs, bearer tokens) are
/// tracked by [`Secrets::pending`] so a stream only holds back more while one is in progress.
pub(crate) const SHORT_MAX: usize = 400;

impl Secrets {
    /// The earliest offset in `text` where a long secret may still be in progress (its keyword
    /// is there but the match is not complete).
    pub fn pending(&self, text: &str) -> Option<usize> {
        let bytes = text.as_bytes();
        let mut earliest: Option<usize> = None;
        for (rule, finder) in &self.long_keywords {
            let r = &self.rules[*rule];
            let from = text.len().saturating_sub(r.spec.max_len);
            for at in finder.find_iter(&bytes[from..]) {
                let at = from + at;
                if earliest.is_some_and(|e| e <= at) {
                    break;
                }
                if at > 0 && bytes[at - 1].is_ascii_alphanumeric() {
                    continue;
                }
                let open = match r.regex.find(&text[at..]) {
                    None => may_become_long_match(r.spec.kind, &bytes[at..]),
                    Some(m) => {
                        at + m.end() + 1 >= text.len()
                            || (r.spec.kind == "private_key"
                                && !m.as_str().contains("-----END")
                                && bytes[at + m.end()..].iter().all(|&b| is_key_body(b)))
                    }
                };
                if open {
                    earliest = Some(at);
                    break;
                }
            }
        }
        earliest
    }
}

/// Whether `rest` (from a long rule's keyword to the end of the text, not matching yet) may
/// still become a match with more text. A keyword followed by text that can never match (a
/// certificate, `Bearer` in prose) must not hold a stream back.
fn may_become_long_match(kind: &str, rest: &[u8]) -> bool {
    let token =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'+' | b'/' | b'-');
    match kind {
        "jwt" => rest
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')),
        "bearer_token" => {
            let after = rest.get(6..).unwrap_or_default();
            let value = after.iter().position(|&b| b != b' ' && b != b'\t');
            let value = value.map_or(&[][..], |i| &after[i..]);
            let pad = value.iter().position(|&b| !token(b)).unwrap_or(value.len());
            value[pad..].iter().all(|&b| b == b'=')
        }
        "private_key" => {
            let header = rest.get(10..).unwrap_or_default();
            header.len() < 64
                && header.iter().all(|&b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b' ' | b'-')
                })
        }
        _ => true,
    }
}

/// A character of a PEM body (base64, headers such as `Proc-Type: 4,ENCRYPTED`, line breaks).
fn is_key_body(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'+' | b'/' | b'=' | b':' | b',' | b'-' | b' ' | b'\r' | b'\n'
        )
}

/// Where a vendor format and a generic rule (`key = value`, `Bearer ...`) report overlapping
/// text, keep the vendor format: it names what leaked.
pub(crate) fn prefer_specific(hits: &mut Vec<Hit>) {
    if hits.len() < 2 {
        return;
    }
    let generic = |h: &Hit| h.kind == "generic_secret" || h.kind == "bearer_token";
    let specific: Vec<(usize, usize)> = hits
        .iter()
        .filter(|h| !generic(h))
        .map(|h| (h.start, h.end))
        .collect();
    hits.retain(|h| !generic(h) || !specific.iter().any(|&(s, e)| h.start < e && s < h.end));
}
