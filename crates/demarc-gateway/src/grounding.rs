//! Grounding from approved sources (`demarc-ground`): the best passages for the user's
//! question, readable by the caller's groups, added to the model's context with citations.

use std::path::{Path, PathBuf};

use demarc_ground::{GroundingIndex, Source, format_context};
use serde_json::{Map, Value, json};

use crate::endpoint::Endpoint;

/// Passages added per request unless configured otherwise.
pub const DEFAULT_PASSAGES: usize = 3;

/// One approved source as the config or the estate names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub id: String,
    pub path: PathBuf,
    /// Caller groups that may read it; empty = everyone.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An application's grounding: its index and how many passages to add.
pub struct Grounding {
    index: GroundingIndex,
    passages: usize,
    pub source_ids: Vec<String>,
}

/// What grounding added to one request (for the audit event).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GroundingUse {
    pub passages: u32,
    /// `source/document` of each passage, best first.
    pub citations: Vec<String>,
}

impl Grounding {
    /// Index the sources in memory (relative paths against `base`). Warnings about skipped
    /// files are returned for the caller to show.
    pub fn build(
        specs: &[SourceSpec],
        base: &Path,
        passages: usize,
    ) -> Result<(Self, Vec<String>), String> {
        let mut sources = Vec::new();
        for spec in specs {
            let root = if spec.path.is_relative() {
                base.join(&spec.path)
            } else {
                spec.path.clone()
            };
            let mut source = Source::new(spec.id.clone(), root).map_err(|e| e.to_string())?;
            if !spec.groups.is_empty() {
                source = source
                    .readable_by(spec.groups.iter().cloned())
                    .map_err(|e| e.to_string())?;
            }
            sources.push(source);
        }
        let (index, report) = GroundingIndex::build_in_ram(&sources).map_err(|e| e.to_string())?;
        let warnings = report.warnings.iter().map(ToString::to_string).collect();
        let source_ids = specs.iter().map(|s| s.id.clone()).collect();
        Ok((
            Self {
                index,
                passages: passages.max(1),
                source_ids,
            },
            warnings,
        ))
    }

    /// Add the passages for the request's last user text to its context. Nothing is added
    /// when nothing relevant (and readable) is found.
    pub fn apply(
        &self,
        endpoint: Endpoint,
        request: &mut Map<String, Value>,
        groups: &[String],
    ) -> Result<Option<GroundingUse>, String> {
        if !matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Responses) {
            return Ok(None);
        }
        let question = crate::fields::last_user_text(request);
        if question.trim().is_empty() {
            return Ok(None);
        }
        let passages = self
            .index
            .retrieve(&question, groups, self.passages)
            .map_err(|e| e.to_string())?;
        if passages.is_empty() {
            return Ok(None);
        }
        let context = format_context(&passages);
        match endpoint {
            Endpoint::Responses => {
                let instructions = match request.get("instructions").and_then(Value::as_str) {
                    Some(existing) if !existing.is_empty() => format!("{existing}\n\n{context}"),
                    _ => context,
                };
                request.insert("instructions".into(), Value::String(instructions));
            }
            _ => {
                if let Some(Value::Array(messages)) = request.get_mut("messages") {
                    // After the application's own system messages, before the conversation.
                    let at = messages
                        .iter()
                        .position(|m| {
                            !matches!(
                                m.get("role").and_then(Value::as_str),
                                Some("system" | "developer")
                            )
                        })
                        .unwrap_or(messages.len());
                    messages.insert(at, json!({"role": "system", "content": context}));
                }
            }
        }
        Ok(Some(GroundingUse {
            passages: u32::try_from(passages.len()).unwrap_or(u32::MAX),
            citations: passages
                .iter()
                .map(|p| format!("{}/{}", p.source, p.document))
                .collect(),
        }))
    }
}
