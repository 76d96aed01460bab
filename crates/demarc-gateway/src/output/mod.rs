//! The output stage: every string the caller will read goes through the application's output
//! policy and the request's vault (restoring what input redaction replaced), whatever field it
//! sits in ([`crate::fields::output_texts`]); whole answers here, streams event by event in
//! [`stream`], relayed to the caller by [`relay`].

pub(crate) mod relay;
pub(crate) mod stream;

use std::sync::Arc;

use serde_json::Value;

use crate::endpoint::Endpoint;
use crate::fields;
use crate::policy::{Action, Blocked, OutputPipeline, Policy, Vault, Verdicts};

/// Scan and restore every text of a complete (non-streamed) response — or of an upstream
/// error body — in place: whatever field it sits in ([`fields::output_texts`]), log
/// probabilities included.
pub fn filter_response(
    endpoint: Endpoint,
    body: &mut Value,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<(), Blocked> {
    if !policy.scans_output() && vault.is_empty() {
        return Ok(());
    }
    filter_all(
        body,
        endpoint == Endpoint::Responses,
        policy,
        vault,
        verdicts,
    )
}

/// Every string of `body` through the output filter, log probabilities included.
fn filter_all(
    body: &mut Value,
    responses: bool,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<(), Blocked> {
    let texts = fields::output_texts(body, responses);
    for text in texts.strings.into_iter().filter(|t| !t.is_empty()) {
        *text = filter_text(text, policy, vault, verdicts)?;
    }
    for logprobs in texts.logprobs {
        filter_logprobs(logprobs, policy, vault, verdicts)?;
    }
    Ok(())
}

/// One whole output text through the output pipeline: what the caller may see.
fn filter_text(
    text: &str,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<String, Blocked> {
    let mut pipeline = OutputPipeline::new(policy, vault.clone());
    let mut out = String::with_capacity(text.len());
    let result = pipeline
        .push(text, &mut out)
        .and_then(|()| pipeline.finish(&mut out));
    let (hits, redactions) = pipeline.take_hits();
    record_output(verdicts, &hits, redactions, result.is_err());
    result.map(|()| out)
}

/// Log probabilities spell the answer again, a token at a time: the chosen tokens are checked
/// joined (a key spans many tokens), and so is each rank of alternatives. What the policy
/// blocks blocks the response; where it would rewrite the text (redact, restore), the log
/// probabilities are withheld, since no token-level value can stand for a redacted span.
fn filter_logprobs(
    value: &mut Value,
    policy: &dyn Policy,
    vault: &Arc<Vault>,
    verdicts: &mut Verdicts,
) -> Result<(), Blocked> {
    let lists: Vec<&Vec<Value>> = match &*value {
        Value::Array(list) => vec![list],
        Value::Object(map) => map.values().filter_map(Value::as_array).collect(),
        _ => Vec::new(),
    };
    // A token is given as text and again as UTF-8 bytes (which may split a character); an
    // upstream may make the two differ, so each is spelled out and checked.
    let token = |e: &Value| match e {
        Value::String(s) => Some(s.clone()),
        e => e.get("token").and_then(Value::as_str).map(str::to_string),
    };
    let bytes = |e: &Value| -> Vec<u8> {
        e.get("bytes")
            .and_then(Value::as_array)
            .map(|b| {
                b.iter()
                    .filter_map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Alternatives: `top_logprobs` lists (chat, Responses) or token-to-logprob maps (legacy
    // completions).
    let alternatives = |e: &Value| -> Vec<String> {
        match e.get("top_logprobs") {
            Some(Value::Array(alts)) => alts.iter().filter_map(token).collect(),
            _ => match e {
                Value::Object(map) if !map.contains_key("token") => map.keys().cloned().collect(),
                _ => Vec::new(),
            },
        }
    };
    let mut spellings = Vec::new();
    for list in lists {
        spellings.push(list.iter().filter_map(token).collect::<String>());
        let raw: Vec<u8> = list.iter().flat_map(bytes).collect();
        spellings.push(String::from_utf8_lossy(&raw).into_owned());
        // Bytes that do not say what their token says are also read on their own (glued to
        // their neighbours' bytes, a value may lose the boundary its detector needs).
        let odd = list
            .iter()
            .chain(
                list.iter()
                    .filter_map(|e| e.get("top_logprobs")?.as_array())
                    .flatten(),
            )
            .filter(|e| token(e).is_some_and(|t| !bytes(e).is_empty() && bytes(e) != t.as_bytes()));
        spellings.extend(odd.map(|e| String::from_utf8_lossy(&bytes(e)).into_owned()));
        let alts: Vec<Vec<String>> = list.iter().map(alternatives).collect();
        let ranks = alts.iter().map(Vec::len).max().unwrap_or(0);
        for rank in 0..ranks {
            spellings.push(alts.iter().filter_map(|a| a.get(rank).cloned()).collect());
        }
        for rank in 0..ranks {
            let raw: Vec<u8> = list
                .iter()
                .filter_map(|e| e.get("top_logprobs")?.get(rank))
                .flat_map(bytes)
                .collect();
            if !raw.is_empty() {
                spellings.push(String::from_utf8_lossy(&raw).into_owned());
            }
        }
    }
    // The chosen tokens repeat text already counted; only a block is recorded from here.
    let mut scratch = Verdicts::default();
    let mut withhold = false;
    for text in spellings.iter().filter(|t| !t.is_empty()) {
        match filter_text(text, policy, vault, &mut scratch) {
            Ok(out) => withhold |= out != *text,
            Err(blocked) => {
                verdicts.absorb(scratch);
                return Err(blocked);
            }
        }
    }
    if withhold {
        *value = match value {
            Value::Array(_) => Value::Array(Vec::new()),
            _ => Value::Null,
        };
    }
    Ok(())
}

fn record_output(
    verdicts: &mut Verdicts,
    hits: &[crate::policy::Hit],
    redactions: u32,
    blocked: bool,
) {
    let action = if blocked {
        Action::Block
    } else {
        hits.iter().map(|h| h.action).max().unwrap_or(Action::Allow)
    };
    verdicts.output = verdicts.output.max(Some(action));
    verdicts.merge(hits, redactions);
}
