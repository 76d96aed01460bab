//! The config file as written: serde's view of the YAML, before validation turns it into the
//! domain types of [`super`] (every problem named by field there).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{GroundingConfig, RawLimits};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) listen: Option<String>,
    pub(super) estate: Option<PathBuf>,
    pub(super) db: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) max_in_flight: Option<usize>,
    pub(super) user_header: Option<String>,
    pub(super) groups_header: Option<String>,
    #[serde(default)]
    pub(super) shared_limits: bool,
    pub(super) redis: Option<String>,
    pub(super) shared_limits_fallback: Option<String>,
    #[serde(default)]
    pub(super) audit: RawAudit,
    pub(super) upstreams: Vec<RawUpstream>,
    pub(super) applications: Vec<RawApplication>,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub(super) serve: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) queue: Option<usize>,
    pub(super) batch: Option<usize>,
    pub(super) on_full: Option<String>,
    pub(super) file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) id: String,
    #[serde(default = "default_kind")]
    pub(super) kind: String,
    pub(super) base_url: String,
    pub(super) api_key_env: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) api_version: Option<String>,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub(super) deployments: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) timeouts: RawTimeouts,
    #[serde(default)]
    pub(super) retries: RawRetries,
    #[serde(default)]
    pub(super) circuit_breaker: RawBreaker,
}

pub(super) fn default_kind() -> String {
    "openai".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub(super) connect_ms: Option<u64>,
    pub(super) first_byte_ms: Option<u64>,
    pub(super) total_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetries {
    pub(super) max: Option<u32>,
    pub(super) backoff_ms: Option<u64>,
    pub(super) retry_after_max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreaker {
    pub(super) failures: Option<u32>,
    pub(super) open_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApplication {
    pub(super) id: String,
    pub(super) upstreams: Vec<String>,
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub(super) models: BTreeMap<String, String>,
    pub(super) policy: Option<serde_json::Value>,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) grounding: Option<GroundingConfig>,
    #[serde(default)]
    pub(super) audit: RawAppAudit,
    #[serde(default)]
    pub(super) canary: RawCanary,
    #[serde(default)]
    pub(super) embeddings: RawEmbeddings,
    #[serde(default)]
    pub(super) input: RawInput,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInput {
    #[serde(default, deserialize_with = "demarc_yaml::null_as_default")]
    pub(super) trusted_roles: Vec<String>,
    pub(super) unreadable: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanary {
    #[serde(default)]
    pub(super) inject: bool,
    pub(super) rotate_every: Option<String>,
    pub(super) grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmbeddings {
    #[serde(default)]
    pub(super) enforce_injection: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAppAudit {
    pub(super) store_prompt: Option<String>,
}
