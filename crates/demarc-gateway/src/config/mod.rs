//! The gateway's configuration file (YAML): raw structs with `deny_unknown_fields`, validated
//! into domain types. Validation reports every problem at once, each naming its field.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod problems;
mod raw;
use problems::Problems;
use raw::*;

/// A generic YAML value, as policies are written in configs and estates: demarc-yaml reads
/// such subtrees into serde_json's value tree (the guard compiles them).
pub use serde_json::Value as YamlValue;

/// The largest request body accepted unless the config says otherwise (4 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Requests in progress at most unless the config says otherwise.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
/// The largest non-streamed upstream response the gateway reads (32 MiB).
pub const MAX_UPSTREAM_BODY_BYTES: usize = 32 * 1024 * 1024;
/// The longest upstream `Retry-After` waited for unless the config says otherwise.
pub const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(10);
/// The largest config file accepted.
const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{file}`: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// Every problem in the file, each with its line, column and field (compiler style).
    #[error("{0}")]
    Invalid(Box<demarc_model::Diagnostics>),
}

/// Approved grounding sources of an application and how many passages to add per request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroundingConfig {
    pub sources: Vec<crate::grounding::SourceSpec>,
    #[serde(default = "default_passages")]
    pub passages: usize,
}

fn default_passages() -> usize {
    crate::grounding::DEFAULT_PASSAGES
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub user_requests_per_minute: Option<u32>,
    pub user_tokens_per_minute: Option<u32>,
}

/// Which guard policy an application runs: `default` (reversible redaction of personal data
/// and secrets, block prompt injection), `off` (nothing scanned), or anything `demarc-guard`
/// reads: a builtin name (`strict`, `monitor`), a policy file path, or an inline policy.
#[derive(Debug, Clone)]
pub enum PolicySpec {
    /// The config names no policy: the estate's `guard_policy`, else guard's `default`.
    Default,
    Off,
    Document(YamlValue),
}

// ---------------------------------------------------------------- validated

/// Whether an application's audit events carry the prompt text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorePrompt {
    /// No prompt text in the audit trail (the default).
    #[default]
    Off,
    /// The user and tool texts as they left for the upstream, after the input policy's
    /// redaction; never the raw text (a request whose input is blocked stores none).
    Redacted,
}

/// A canary the gateway generates, injects into the application's system context and blocks
/// in its answers (`canary: {inject: true}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryConfig {
    /// A canary older than this is replaced by a new one.
    pub rotate_every: Duration,
    /// How long a replaced canary stays blocked (answers cached or still in flight).
    pub grace: Duration,
}

/// How an application's request input is read (`input:` in its config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputRules {
    /// Roles whose text is the application's own: scanned for personal data and secrets, not
    /// for prompt injection. Empty by default: every role is scanned in full.
    pub trusted_roles: Vec<crate::fields::Role>,
    /// What happens to a payload the gateway cannot read as text (an image, audio, a PDF).
    pub unreadable: Unreadable,
}

/// The action for unreadable payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unreadable {
    /// Forwarded, and not recorded.
    Allow,
    /// Forwarded, and recorded in the audit as a `unreadable` hit (the default).
    #[default]
    Flag,
    /// The request is refused (400 `input_blocked`).
    Block,
    /// The part is removed before the request leaves.
    Strip,
}

/// Canaries are replaced weekly unless the config says otherwise.
pub const DEFAULT_CANARY_ROTATE_EVERY: Duration = Duration::from_secs(7 * 86_400);
/// A replaced canary stays blocked for a day unless the config says otherwise.
pub const DEFAULT_CANARY_GRACE: Duration = Duration::from_secs(86_400);

/// A duration as written in the config: a whole number and a unit, `s`, `m`, `h` or `d`
/// (`7d`, `12h`, `30m`, `45s`). `None` for anything else, zero included.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(seconds).map(Duration::from_secs)
}

/// What the gateway does when the shared rate counters (the store, Redis) cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsFallback {
    /// Serve, counting in this replica's memory (each replica then allows the full limit),
    /// and count the failure in `/metrics`.
    FailOpen,
    /// Refuse the request (503 `limits_unavailable`).
    FailClosed,
}

/// What the gateway does when the audit queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// Refuse the request (503): no request goes unaudited.
    FailClosed,
    /// Serve the request and count the lost event in `/metrics`.
    FailOpen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub queue: usize,
    pub batch: usize,
    pub on_full: OnFull,
    /// A JSON-lines file for audit events when no store is configured.
    pub file: Option<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            queue: 65_536,
            batch: 512,
            on_full: OnFull::FailClosed,
            file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamKind {
    /// Any OpenAI-compatible API: `{base_url}/chat/completions`, bearer token.
    OpenAi,
    /// Azure OpenAI: `{base_url}/openai/deployments/{deployment}/...?api-version=`, `api-key`.
    Azure {
        api_version: String,
        deployments: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub total: Duration,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub id: String,
    pub kind: UpstreamKind,
    /// Without a trailing slash.
    pub base_url: String,
    /// The upstream credential, read from the environment at start-up; never logged.
    pub api_key: Option<String>,
    /// PEM certificates trusted for this upstream besides the public roots (a private CA).
    pub ca_file: Option<PathBuf>,
    pub timeouts: Timeouts,
    pub max_retries: u32,
    pub backoff: Duration,
    /// The longest `Retry-After` (on 429 or 503) the gateway waits before retrying this
    /// upstream; a longer one fails over to the next upstream instead.
    pub retry_after_max: Duration,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
}

#[derive(Debug, Clone)]
pub struct ApplicationConfig {
    pub id: String,
    /// Upstream ids in failover order.
    pub upstreams: Vec<String>,
    /// Model aliases the caller may use, mapped to the upstream model; empty = any model.
    pub models: BTreeMap<String, String>,
    pub policy: PolicySpec,
    pub limits: RawLimits,
    pub grounding: Option<GroundingConfig>,
    pub store_prompt: StorePrompt,
    /// A generated canary in the system context, blocked in answers; `None`: off (default).
    pub canary: Option<CanaryConfig>,
    /// Embedding inputs are checked for prompt injection too (off by default: a document that
    /// quotes an attack is indexed, not obeyed).
    pub embeddings_injection: bool,
    pub input: InputRules,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    pub estate: Option<PathBuf>,
    pub db: Option<String>,
    pub max_body_bytes: usize,
    /// Requests in progress at most (streams until they end); more get 503 `overloaded`.
    pub max_in_flight: usize,
    /// Header that attributes a request to an end user (lowercase).
    pub user_header: String,
    /// Header with the end user's groups, comma-separated, for grounding access (lowercase).
    pub groups_header: String,
    /// Count rate limits and token budgets in the store, shared by every replica (fixed
    /// one-minute windows), instead of in memory.
    pub shared_limits: bool,
    /// Count them in this Redis instead (`redis://…`), shared by every replica that uses it.
    pub redis: Option<String>,
    /// What a request meets when the shared counters cannot be reached.
    pub shared_limits_fallback: LimitsFallback,
    pub audit: AuditConfig,
    pub upstreams: Vec<UpstreamConfig>,
    pub applications: Vec<ApplicationConfig>,
    /// Applications served although the estate does not sanction or tolerate them (their
    /// status is `unsanctioned` or `discovered`, or they are not in the estate). Without an
    /// estate every application listed is served.
    pub serve: Vec<String>,
    /// Applications the gateway knows and refuses, with the reason given to their callers
    /// (403 `application_not_served`). Filled by the binary from the estate, not from the file.
    pub not_served: BTreeMap<String, String>,
}

impl GatewayConfig {
    /// A configuration with one OpenAI-compatible upstream serving every named application
    /// with the default policy (the quick start).
    pub fn quick_start(listen: SocketAddr, upstream_url: &str, apps: &[String]) -> Self {
        let upstream = UpstreamConfig {
            id: "upstream".into(),
            kind: UpstreamKind::OpenAi,
            base_url: upstream_url.trim_end_matches('/').to_string(),
            api_key: std::env::var("DEMARC_UPSTREAM_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            ca_file: None,
            timeouts: default_timeouts(),
            max_retries: 2,
            backoff: Duration::from_millis(100),
            retry_after_max: DEFAULT_RETRY_AFTER_MAX,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(10),
        };
        let applications = apps
            .iter()
            .map(|id| ApplicationConfig {
                id: id.clone(),
                upstreams: vec!["upstream".into()],
                models: BTreeMap::new(),
                policy: PolicySpec::Default,
                limits: RawLimits::default(),
                grounding: None,
                store_prompt: StorePrompt::Off,
                canary: None,
                embeddings_injection: false,
                input: InputRules::default(),
            })
            .collect();
        Self {
            listen,
            estate: None,
            db: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            user_header: "x-demarc-user".into(),
            groups_header: "x-demarc-groups".into(),
            shared_limits: false,
            redis: None,
            shared_limits_fallback: LimitsFallback::FailOpen,
            audit: AuditConfig::default(),
            upstreams: vec![upstream],
            applications,
            serve: Vec::new(),
            not_served: BTreeMap::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &|name| std::env::var(name).ok())
    }

    /// [`GatewayConfig::load`] for commands that only read the applications, the estate and
    /// `serve` (`demarc keys create`): upstream credentials are not read from the environment
    /// (every `api_key_env` counts as set, to a placeholder; do not serve with it).
    pub fn load_applications(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with(path, &|_| Some("(not read)".to_string()))
    }

    fn load_with(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let read_err = |source| ConfigError::Read {
            file: file.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::Invalid(Box::new(
                demarc_model::Diagnostics::single(
                    file,
                    demarc_model::Diagnostic::error(
                        "",
                        format!(
                            "file is {} bytes; the limit is {MAX_CONFIG_BYTES}",
                            meta.len()
                        ),
                    ),
                ),
            )));
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        let mut config = Self::parse(&file, &text, env)?;
        // Relative paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(estate) = &mut config.estate {
            anchor(estate);
        }
        for app in &mut config.applications {
            if let Some(grounding) = &mut app.grounding {
                grounding
                    .sources
                    .iter_mut()
                    .for_each(|s| anchor(&mut s.path));
            }
        }
        for upstream in &mut config.upstreams {
            if let Some(ca_file) = &mut upstream.ca_file {
                anchor(ca_file);
            }
        }
        if let Some(file) = &mut config.audit.file {
            anchor(file);
        }
        Ok(config)
    }

    /// Parse and validate config text; `env` looks up upstream credentials.
    pub fn parse(
        file: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // demarc-yaml, the one YAML stack: its limits, and a located first structural problem.
        let raw: RawConfig = demarc_model::parse::from_text(file, text)
            .map_err(|d| ConfigError::Invalid(Box::new(d)))?;
        let mut problems = Problems::default();

        let listen_text = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen_text.parse().unwrap_or_else(|_| {
            problems.push(format!(
                "listen: `{listen_text}` is not an address; write it as `127.0.0.1:8080`"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });

        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            problems.push("max_body_bytes: must be greater than 0".into());
        }
        let user_header = raw.user_header.unwrap_or_else(|| "x-demarc-user".into());
        if axum::http::HeaderName::from_bytes(user_header.as_bytes()).is_err() {
            problems.push(format!(
                "user_header: `{user_header}` is not a valid header name"
            ));
        }

        let groups_header = raw
            .groups_header
            .unwrap_or_else(|| "x-demarc-groups".into());
        if axum::http::HeaderName::from_bytes(groups_header.as_bytes()).is_err() {
            problems.push(format!(
                "groups_header: `{groups_header}` is not a valid header name"
            ));
        }
        let on_full = match raw.audit.on_full.as_deref() {
            None | Some("fail-closed") => OnFull::FailClosed,
            Some("fail-open") => OnFull::FailOpen,
            Some(other) => {
                problems.push(format!(
                    "audit.on_full: `{other}` is not one of `fail-closed`, `fail-open`"
                ));
                OnFull::FailClosed
            }
        };
        let shared_limits_fallback = match raw.shared_limits_fallback.as_deref() {
            None | Some("fail-open") => LimitsFallback::FailOpen,
            Some("fail-closed") => LimitsFallback::FailClosed,
            Some(other) => {
                problems.push(format!(
                    "shared_limits_fallback: `{other}` is not one of `fail-open`, `fail-closed`"
                ));
                LimitsFallback::FailOpen
            }
        };
        if let Some(url) = &raw.redis
            && !url.starts_with("redis://")
        {
            // The URL may hold a password: not echoed.
            problems.push(
                "redis: must be a `redis://host:port` URL (`rediss://`, Redis over TLS, is not supported yet)"
                    .to_string(),
            );
        }
        let defaults = AuditConfig::default();
        let audit = AuditConfig {
            queue: raw.audit.queue.unwrap_or(defaults.queue).max(1),
            batch: raw.audit.batch.unwrap_or(defaults.batch).max(1),
            on_full,
            file: raw.audit.file,
        };

        let mut upstreams = Vec::new();
        let mut seen = HashMap::new();
        for (i, u) in raw.upstreams.into_iter().enumerate() {
            let at = format!("upstreams[{i}] (`{}`)", u.id);
            if seen.insert(u.id.clone(), i).is_some() {
                problems.push(format!("{at}.id: duplicate upstream id"));
            }
            if !(u.base_url.starts_with("http://") || u.base_url.starts_with("https://")) {
                problems.push(format!(
                    "{at}.base_url: `{}` must start with `http://` or `https://`",
                    u.base_url
                ));
            }
            let kind = match u.kind.as_str() {
                "openai" => {
                    if u.api_version.is_some() || !u.deployments.is_empty() {
                        problems.push(format!(
                            "{at}: `api_version` and `deployments` apply to `kind: azure` only"
                        ));
                    }
                    UpstreamKind::OpenAi
                }
                "azure" => match u.api_version {
                    Some(api_version) => UpstreamKind::Azure {
                        api_version,
                        deployments: u.deployments,
                    },
                    None => {
                        problems.push(format!(
                            "{at}.api_version: required for `kind: azure` (e.g. `2024-10-21`)"
                        ));
                        UpstreamKind::OpenAi
                    }
                },
                other => {
                    problems.push(format!(
                        "{at}.kind: `{other}` is not one of `openai`, `azure`"
                    ));
                    UpstreamKind::OpenAi
                }
            };
            let api_key = match &u.api_key_env {
                Some(name) => match env(name) {
                    Some(v) if !v.is_empty() => Some(v),
                    _ => {
                        problems.push(format!(
                            "{at}.api_key_env: environment variable `{name}` is not set"
                        ));
                        None
                    }
                },
                None => None,
            };
            let d = default_timeouts();
            let ms = |v: Option<u64>, d: Duration| v.map(Duration::from_millis).unwrap_or(d);
            let timeouts = Timeouts {
                connect: ms(u.timeouts.connect_ms, d.connect),
                first_byte: ms(u.timeouts.first_byte_ms, d.first_byte),
                total: ms(u.timeouts.total_ms, d.total),
            };
            if timeouts.connect.is_zero()
                || timeouts.first_byte.is_zero()
                || timeouts.total.is_zero()
            {
                problems.push(format!(
                    "{at}.timeouts: every timeout must be greater than 0"
                ));
            }
            upstreams.push(UpstreamConfig {
                id: u.id,
                kind,
                base_url: u.base_url.trim_end_matches('/').to_string(),
                api_key,
                ca_file: u.ca_file,
                timeouts,
                max_retries: u.retries.max.unwrap_or(2).min(10),
                backoff: Duration::from_millis(u.retries.backoff_ms.unwrap_or(100)),
                retry_after_max: u
                    .retries
                    .retry_after_max_ms
                    .map_or(DEFAULT_RETRY_AFTER_MAX, Duration::from_millis),
                breaker_failures: u.circuit_breaker.failures.unwrap_or(5).max(1),
                breaker_open: Duration::from_millis(u.circuit_breaker.open_ms.unwrap_or(10_000)),
            });
        }
        if upstreams.is_empty() {
            problems.push("upstreams: at least one upstream is required".into());
        }

        let mut applications = Vec::new();
        let mut seen_apps = HashMap::new();
        for (i, a) in raw.applications.into_iter().enumerate() {
            let at = format!("applications[{i}] (`{}`)", a.id);
            if seen_apps.insert(a.id.clone(), i).is_some() {
                problems.push(format!("{at}.id: duplicate application id"));
            }
            if a.upstreams.is_empty() {
                problems.push(format!("{at}.upstreams: name at least one upstream"));
            }
            for (j, u) in a.upstreams.iter().enumerate() {
                if !seen.contains_key(u) {
                    let mut known: Vec<_> = seen.keys().map(|k| format!("`{k}`")).collect();
                    known.sort_unstable();
                    problems.push(format!(
                        "{at}.upstreams[{j}]: unknown upstream `{u}` (known: {})",
                        known.join(", ")
                    ));
                }
            }
            let policy = match a.policy {
                None => PolicySpec::Default,
                Some(YamlValue::String(name)) => match name.as_str() {
                    "off" => PolicySpec::Off,
                    _ => PolicySpec::Document(YamlValue::String(name)),
                },
                Some(document) => {
                    // An inline policy is checked here, so its mistakes are located in this
                    // file (a named policy or policy file is read when the gateway starts).
                    if let Err(e) = demarc_guard::Policy::from_value(document.clone()) {
                        let field = match &e {
                            demarc_guard::PolicyError::Invalid { field, .. } => format!(".{field}"),
                            _ => String::new(),
                        };
                        problems.push(format!("{at}.policy{field}: {e}"));
                    }
                    PolicySpec::Document(document)
                }
            };
            let store_prompt = match a.audit.store_prompt.as_deref() {
                None | Some("off") => StorePrompt::Off,
                Some("redacted") => StorePrompt::Redacted,
                Some(other) => {
                    problems.push(format!(
                        "{at}.audit.store_prompt: `{other}` is not one of `off`, `redacted` (raw prompts are never stored)"
                    ));
                    StorePrompt::Off
                }
            };
            let mut duration = |field: &str, text: Option<&String>, default: Duration| {
                match text {
                None => default,
                Some(text) => parse_duration(text).unwrap_or_else(|| {
                    problems.push(format!(
                        "{at}.canary.{field}: `{text}` is not a duration; write a whole number and a unit, e.g. `7d`, `12h`, `30m` or `45s`"
                    ));
                    default
                }),
            }
            };
            let rotate_every = duration(
                "rotate_every",
                a.canary.rotate_every.as_ref(),
                DEFAULT_CANARY_ROTATE_EVERY,
            );
            let grace = duration("grace", a.canary.grace.as_ref(), DEFAULT_CANARY_GRACE);
            let canary = a.canary.inject.then_some(CanaryConfig {
                rotate_every,
                grace,
            });
            if !a.canary.inject && (a.canary.rotate_every.is_some() || a.canary.grace.is_some()) {
                problems.push(format!(
                    "{at}.canary: `rotate_every` and `grace` apply only with `inject: true`"
                ));
            }
            let mut trusted_roles = Vec::new();
            for (j, name) in a.input.trusted_roles.iter().enumerate() {
                match crate::fields::Role::parse(name) {
                    Some(role) => trusted_roles.push(role),
                    None => problems.push(format!(
                        "{at}.input.trusted_roles[{j}]: `{name}` is not a role; write one of {}",
                        crate::fields::Role::ALL
                            .iter()
                            .map(|r| format!("`{}`", r.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
            let unreadable = match a.input.unreadable.as_deref() {
                None | Some("flag") => Unreadable::Flag,
                Some("allow") => Unreadable::Allow,
                Some("block") => Unreadable::Block,
                Some("strip") => Unreadable::Strip,
                Some(other) => {
                    problems.push(format!(
                        "{at}.input.unreadable: `{other}` is not one of `flag`, `allow`, `block`, `strip`"
                    ));
                    Unreadable::Flag
                }
            };
            applications.push(ApplicationConfig {
                id: a.id,
                upstreams: a.upstreams,
                models: a.models,
                policy,
                limits: a.limits,
                grounding: a.grounding,
                store_prompt,
                canary,
                embeddings_injection: a.embeddings.enforce_injection,
                input: InputRules {
                    trusted_roles,
                    unreadable,
                },
            });
        }

        for (i, id) in raw.serve.iter().enumerate() {
            if !seen_apps.contains_key(id) {
                let mut known: Vec<_> = seen_apps.keys().map(String::as_str).collect();
                known.sort_unstable();
                problems.push(format!(
                    "serve[{i}]: `{id}` is not one of the config's applications; {}",
                    demarc_model::diag::did_you_mean(id, known.iter().copied())
                ));
            }
        }

        if problems.0.is_empty() {
            Ok(Self {
                listen,
                estate: raw.estate,
                db: raw.db,
                max_body_bytes,
                max_in_flight: raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT).max(1),
                user_header: user_header.to_ascii_lowercase(),
                groups_header: groups_header.to_ascii_lowercase(),
                shared_limits: raw.shared_limits,
                redis: raw.redis,
                shared_limits_fallback,
                audit,
                upstreams,
                applications,
                serve: raw.serve,
                not_served: BTreeMap::new(),
            })
        } else {
            Err(ConfigError::Invalid(Box::new(
                problems.into_diagnostics(file, text),
            )))
        }
    }
}

fn default_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        first_byte: Duration::from_secs(60),
        total: Duration::from_secs(600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse("gw.yaml", text, &|n| {
            (n == "KEY").then(|| "sk-test".to_string())
        })
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(
            "upstreams: [{id: a, base_url: 'http://127.0.0.1:1/v1/'}]\n\
             applications: [{id: app, upstreams: [a]}]\n",
        )
        .unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.upstreams[0].base_url, "http://127.0.0.1:1/v1");
        assert!(matches!(c.applications[0].policy, PolicySpec::Default));
        assert_eq!(c.audit.on_full, OnFull::FailClosed);
    }

    #[test]
    fn unknown_field_is_rejected_with_location() {
        let err =
            parse("upstreams: [{id: a, base_url: 'http://x', colour: red}]\napplications: []\n")
                .unwrap_err()
                .to_string();
        assert!(err.starts_with("gw.yaml:1:43: "), "{err}");
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = parse(
            "listen: nowhere\n\
             upstreams:\n\
             - {id: a, kind: azure, base_url: 'ftp://x', api_key_env: MISSING}\n\
             - {id: a, kind: gcp, base_url: 'http://x'}\n\
             applications: [{id: app, upstreams: [b], policy: 7}]\n",
        )
        .unwrap_err();
        let ConfigError::Invalid(d) = err else {
            panic!("{err}")
        };
        // Every problem is located in the file.
        assert!(d.items.iter().all(|i| i.location.is_some()), "{d}");
        let all = d.to_string();
        for needle in [
            "listen",
            "ftp://x",
            "MISSING",
            "api_version",
            "duplicate",
            "gcp",
            "`b`",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
    }

    #[test]
    fn retry_after_cap_and_store_prompt() {
        let c = parse(
            "upstreams: [{id: a, base_url: 'http://x', retries: {retry_after_max_ms: 0}}]\n\
             applications: [{id: app, upstreams: [a], audit: {store_prompt: redacted}}, {id: b, upstreams: [a]}]\n",
        )
        .unwrap();
        assert_eq!(c.upstreams[0].retry_after_max, Duration::ZERO);
        assert_eq!(c.applications[0].store_prompt, StorePrompt::Redacted);
        assert_eq!(c.applications[1].store_prompt, StorePrompt::Off);
        let err = parse(
            "upstreams: [{id: a, base_url: 'http://x'}]\n\
             applications: [{id: app, upstreams: [a], audit: {store_prompt: raw}}]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("store_prompt") && err.contains("`raw`"),
            "{err}"
        );
    }

    #[test]
    fn canary_and_embeddings_options() {
        let c = parse(
            "upstreams: [{id: a, base_url: 'http://x'}]\n\
             applications:\n\
             - {id: plain, upstreams: [a]}\n\
             - {id: weekly, upstreams: [a], canary: {inject: true}}\n\
             - {id: daily, upstreams: [a], canary: {inject: true, rotate_every: 1d, grace: 90m}, \
                embeddings: {enforce_injection: true}}\n",
        )
        .unwrap();
        assert_eq!(c.applications[0].canary, None);
        assert!(!c.applications[0].embeddings_injection);
        assert_eq!(
            c.applications[1].canary,
            Some(CanaryConfig {
                rotate_every: DEFAULT_CANARY_ROTATE_EVERY,
                grace: DEFAULT_CANARY_GRACE
            })
        );
        assert_eq!(
            c.applications[2].canary,
            Some(CanaryConfig {
                rotate_every: Duration::from_secs(86_400),
                grace: Duration::from_secs(90 * 60)
            })
        );
        assert!(c.applications[2].embeddings_injection);
    }

    #[test]
    fn bad_canary_values_name_the_file_and_field() {
        let err = parse(
            "upstreams: [{id: a, base_url: 'http://x'}]\n\
             applications:\n\
             - {id: app, upstreams: [a], canary: {inject: true, rotate_every: weekly, grace: 0h}}\n\
             - {id: off, upstreams: [a], canary: {rotate_every: 7d}}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("gw.yaml:"), "{err}");
        for needle in [
            "applications[0] (`app`).canary.rotate_every: `weekly` is not a duration",
            "applications[0] (`app`).canary.grace: `0h` is not a duration",
            "applications[1] (`off`).canary: `rotate_every` and `grace` apply only with `inject: true`",
        ] {
            assert!(err.contains(needle), "missing {needle} in {err}");
        }
        let err = parse(
            "upstreams: [{id: a, base_url: 'http://x'}]\n\
             applications: [{id: app, upstreams: [a], canary: {inject: yes please}}]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gw.yaml") && err.contains("inject"), "{err}");
        for (text, secs) in [("45s", 45), ("30m", 1800), ("12h", 43_200), ("7d", 604_800)] {
            assert_eq!(parse_duration(text), Some(Duration::from_secs(secs)));
        }
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "-1d",
            "1.5h",
            "0s",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn azure_upstream_and_credentials() {
        let c = parse(
            "upstreams: [{id: az, kind: azure, base_url: 'https://x.openai.azure.com', \
             api_version: '2024-10-21', deployments: {gpt-4o: prod-4o}, api_key_env: KEY}]\n\
             applications: [{id: app, upstreams: [az], models: {chat: gpt-4o}}]\n",
        )
        .unwrap();
        assert_eq!(c.upstreams[0].api_key.as_deref(), Some("sk-test"));
        let UpstreamKind::Azure { deployments, .. } = &c.upstreams[0].kind else {
            panic!()
        };
        assert_eq!(deployments["gpt-4o"], "prod-4o");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The example shipped in the repository stays valid.
    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gateway.yaml");
        let c = GatewayConfig::load(&path).unwrap();
        assert_eq!(c.applications.len(), 4);
        assert!(c.estate.unwrap().ends_with("bank-estate.yaml"));
        assert!(matches!(c.applications[3].policy, PolicySpec::Document(_)));
    }

    #[test]
    fn a_relative_ca_file_is_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.yaml");
        std::fs::write(
            &path,
            "upstreams: [{id: a, base_url: 'https://x', ca_file: certs/ca.pem}]\n\
             applications: [{id: app, upstreams: [a]}]\n",
        )
        .unwrap();
        let c = GatewayConfig::load(&path).unwrap();
        assert_eq!(
            c.upstreams[0].ca_file.as_deref(),
            Some(dir.path().join("certs/ca.pem").as_path())
        );
    }
}
