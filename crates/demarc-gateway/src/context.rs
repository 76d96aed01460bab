//! What is known about one request as it goes through the stages: its context, the token
//! counts the upstream reported, and its place among the requests in progress.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::Value;

use crate::endpoint::Endpoint;
use crate::grounding::GroundingUse;
use crate::policy::Verdicts;

/// What is known about a request as it goes through the pipeline.
pub(crate) struct Ctx {
    pub(crate) start: Instant,
    pub(crate) request_id: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) application: Option<Arc<str>>,
    pub(crate) user: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) upstream: Option<String>,
    pub(crate) stream: bool,
    pub(crate) attempts: u32,
    pub(crate) usage: Usage,
    pub(crate) verdicts: Verdicts,
    pub(crate) grounding: Option<GroundingUse>,
    /// The prompt after input redaction, when the application stores it.
    pub(crate) prompt: Option<String>,
    /// The id of the canary injected into the request's system context.
    pub(crate) canary: Option<String>,
    /// Held while the request (or its stream) is in progress.
    pub(crate) admission: Option<Admission>,
}

impl Ctx {
    pub(crate) fn new(endpoint: Endpoint, request_id: String) -> Self {
        Self {
            start: Instant::now(),
            request_id,
            endpoint,
            application: None,
            user: None,
            model: None,
            upstream: None,
            stream: false,
            attempts: 0,
            usage: Usage::default(),
            verdicts: Verdicts::default(),
            grounding: None,
            prompt: None,
            canary: None,
            admission: None,
        }
    }
}

/// One request in progress; the count goes down when it is dropped.
pub(crate) struct Admission {
    active: Arc<std::sync::atomic::AtomicUsize>,
    /// The number in progress, this one included, when it was admitted.
    pub(crate) count: usize,
}

impl Admission {
    pub(crate) fn new(active: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        let count = active.fetch_add(1, Ordering::AcqRel) + 1;
        Self { active, count }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Token counts reported by the upstream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
}

impl Usage {
    /// Read `usage` in either naming (chat/embeddings or Responses API).
    pub fn from_value(usage: Option<&Value>) -> Option<Self> {
        let usage = usage?.as_object()?;
        let get = |a: &str, b: &str| {
            usage
                .get(a)
                .or_else(|| usage.get(b))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Some(Self {
            prompt: get("prompt_tokens", "input_tokens"),
            completion: get("completion_tokens", "output_tokens"),
        })
    }

    pub fn total(self) -> u64 {
        self.prompt + self.completion
    }
}
