//! The input stage: every text of a request that the model will read, found by structure
//! ([`crate::fields`]), scanned through the application's policy by role and trust, redacted in
//! place; payloads that cannot be read as text follow the `input.unreadable` rule.

use serde_json::{Map, Value};

use crate::config::{InputRules, Unreadable};
use crate::endpoint::Endpoint;
use crate::fields::{self, Role};
use crate::policy::{Action, Hit, Policy, Trust, Vault, Verdicts};

/// Scan every text of a request the model will read through the input policy, rewriting
/// redacted text in place. `Err` names the detector that blocked it.
///
/// Texts are found by structure ([`crate::fields`]): every role, every field, data URLs of
/// text decoded. The texts of one trust are scanned together as one conversation, so a value
/// split across messages or parts is found; embedding inputs are separate documents, each
/// scanned alone. When `prompt` is given, the user and tool texts as they leave for the
/// upstream (after redaction) are appended to it, one line apart.
pub fn scan_request(
    endpoint: Endpoint,
    body: &mut Map<String, Value>,
    policy: &dyn Policy,
    rules: &InputRules,
    vault: &mut Vault,
    verdicts: &mut Verdicts,
    prompt: Option<&mut String>,
) -> Result<(), InputBlocked> {
    let mut found = fields::request_texts(body);
    let mut strip = Vec::new();
    for unreadable in std::mem::take(&mut found.unreadable) {
        let action = match rules.unreadable {
            Unreadable::Allow => continue,
            Unreadable::Flag => Action::Flag,
            Unreadable::Block => Action::Block,
            Unreadable::Strip => {
                strip.push(unreadable.path);
                Action::Redact
            }
        };
        let hit = Hit {
            detector: UNREADABLE.into(),
            action,
        };
        verdicts.input = verdicts.input.max(Some(action));
        verdicts.merge(std::slice::from_ref(&hit), 0);
        if action == Action::Block {
            return Err(InputBlocked {
                detector: UNREADABLE.into(),
                role: Some(unreadable.role),
                payload: Some(unreadable.what),
            });
        }
    }
    let mut scan = |texts: &mut [&mut fields::Text<'_>],
                    trust: Trust|
     -> Result<(), InputBlocked> {
        if texts.is_empty() {
            return Ok(());
        }
        let strs: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
        let result = policy.scan_input(&strs, trust, vault);
        verdicts.record_input(&result);
        if result.action == Action::Block {
            let detector = result
                .hits
                .iter()
                .find(|h| h.action == Action::Block)
                .map_or_else(|| "policy".to_string(), |h| h.detector.clone());
            // Which text it was, for the error (a second look, on the rare blocked request).
            let role = texts
                .iter()
                .find(|t| {
                    let alone = policy.scan_input(&[t.text.as_str()], trust, &mut Vault::default());
                    alone.action == Action::Block
                })
                .map(|t| t.role);
            return Err(InputBlocked {
                detector,
                role,
                payload: None,
            });
        }
        if let Some(rewritten) = result.rewritten {
            for (text, new) in texts.iter_mut().zip(rewritten) {
                if new != text.text {
                    text.set(new);
                }
            }
        }
        Ok(())
    };
    if endpoint == Endpoint::Embeddings {
        for text in &mut found.texts {
            scan(&mut [text], Trust::Indexed)?;
        }
    } else {
        let (mut trusted, mut untrusted): (Vec<_>, Vec<_>) = found
            .texts
            .iter_mut()
            .partition(|t| rules.trusted_roles.contains(&t.role));
        scan(&mut untrusted, Trust::Untrusted)?;
        scan(&mut trusted, Trust::Trusted)?;
    }
    if let Some(prompt) = prompt {
        let asked = found
            .texts
            .iter()
            .filter(|t| matches!(t.role, Role::User | Role::Tool));
        for text in asked {
            if !prompt.is_empty() {
                prompt.push('\n');
            }
            prompt.push_str(&text.text);
        }
    }
    drop(found);
    fields::strip(body, &strip);
    Ok(())
}

/// The input policy refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputBlocked {
    pub detector: String,
    /// The role of the text that was refused, where one text alone was.
    pub role: Option<Role>,
    /// The payload refused under `input.unreadable: block` (`image/png`, `file:report.pdf`).
    pub payload: Option<String>,
}

impl InputBlocked {
    /// The error message for the caller: what refused it, where, and (for the application's
    /// own instructions) how to trust them.
    pub fn message(&self) -> String {
        let mut message = format!(
            "the request was blocked by the application's policy (detector `{}`",
            self.detector
        );
        if let Some(role) = self.role {
            message.push_str(&format!(", in {} text", role.as_str()));
        }
        if let Some(payload) = &self.payload {
            message.push_str(&format!(": {payload} cannot be read as text"));
        }
        message.push(')');
        if self.detector == "injection" && matches!(self.role, Some(Role::System | Role::Developer))
        {
            message.push_str(
                "; if this is the application's own system prompt, list its role in the application's `input.trusted_roles`",
            );
        }
        message
    }
}

/// The detector id under which unreadable payloads are recorded.
pub const UNREADABLE: &str = "unreadable";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Off;
    use serde_json::json;

    /// Upper-cases untrusted text and lower-cases trusted text, counting each.
    struct Cases;
    impl Policy for Cases {
        fn scan_input(
            &self,
            texts: &[&str],
            trust: Trust,
            _: &mut Vault,
        ) -> crate::policy::InputScan {
            let rewritten = texts
                .iter()
                .map(|t| match trust {
                    Trust::Trusted => t.to_lowercase(),
                    _ => t.to_uppercase(),
                })
                .collect::<Vec<_>>();
            crate::policy::InputScan {
                action: Action::Redact,
                redactions: rewritten.len() as u32,
                rewritten: Some(rewritten),
                hits: vec![],
            }
        }
        fn output_scanner(&self) -> Box<dyn crate::policy::OutputScanner> {
            Off.output_scanner()
        }
    }

    #[test]
    fn request_scan_visits_every_role_and_field_but_structure() {
        let mut body: Map<String, Value> = serde_json::from_value(json!({
            "model": "m", "extra": {"kept": true, "note": "x"},
            "messages": [
                {"role": "system", "content": "Sys"},
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image_url", "image_url": {"url": "https://e.test/a.png"}}]},
                {"role": "assistant", "content": "asst"},
                {"role": "tool", "content": "tool", "tool_call_id": "t"}
            ]
        }))
        .unwrap();
        let mut verdicts = Verdicts::default();
        let rules = InputRules {
            trusted_roles: vec![Role::System],
            ..InputRules::default()
        };
        let mut prompt = String::new();
        scan_request(
            Endpoint::ChatCompletions,
            &mut body,
            &Cases,
            &rules,
            &mut Vault::default(),
            &mut verdicts,
            Some(&mut prompt),
        )
        .unwrap();
        let v = Value::Object(body);
        assert_eq!(v["model"], "m");
        assert_eq!(v["messages"][0]["role"], "system");
        assert_eq!(v["messages"][0]["content"], "sys");
        assert_eq!(v["messages"][1]["content"], "HI");
        assert_eq!(v["messages"][2]["content"][0]["text"], "PART");
        assert_eq!(v["messages"][2]["content"][0]["type"], "text");
        assert_eq!(
            v["messages"][2]["content"][1]["image_url"]["url"],
            "HTTPS://E.TEST/A.PNG"
        );
        assert_eq!(v["messages"][3]["content"], "ASST");
        assert_eq!(v["messages"][4]["content"], "TOOL");
        assert_eq!(v["messages"][4]["tool_call_id"], "t");
        assert_eq!(v["extra"]["kept"], true);
        assert_eq!(v["extra"]["note"], "X");
        assert_eq!(verdicts.redactions, 7);
        assert_eq!(prompt, "HI\nPART\nHTTPS://E.TEST/A.PNG\nTOOL");
    }

    #[test]
    fn unreadable_payloads_follow_the_rule() {
        let body = || -> Map<String, Value> {
            serde_json::from_value(json!({"messages": [{"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}]}))
            .unwrap()
        };
        let run = |unreadable: Unreadable| {
            let mut b = body();
            let rules = InputRules {
                unreadable,
                ..InputRules::default()
            };
            let mut verdicts = Verdicts::default();
            let result = scan_request(
                Endpoint::ChatCompletions,
                &mut b,
                &Off,
                &rules,
                &mut Vault::default(),
                &mut verdicts,
                None,
            );
            (result, b, verdicts)
        };
        let (result, b, verdicts) = run(Unreadable::Flag);
        assert!(result.is_ok());
        assert_eq!(
            b["messages"][0]["content"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(verdicts.detectors.get(UNREADABLE), Some(&1));
        let (result, _, _) = run(Unreadable::Block);
        assert_eq!(
            result.err().map(|b| b.detector),
            Some(UNREADABLE.to_string())
        );
        let (result, b, _) = run(Unreadable::Strip);
        assert!(result.is_ok());
        assert_eq!(
            b["messages"][0]["content"].as_array().map(Vec::len),
            Some(1)
        );
        let (_, _, verdicts) = run(Unreadable::Allow);
        assert!(verdicts.detectors.is_empty());
    }
}
