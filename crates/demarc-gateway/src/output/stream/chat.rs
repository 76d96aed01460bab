//! Chat completions chunks through the stream filter: each choice's content, tool calls and
//! other text fields with pipelines of their own; tails added to the chunk that ends a choice.

use serde_json::{Map, Value, json};

use super::*;

impl StreamFilter {
    pub(super) fn on_chat_chunk(
        &mut self,
        mut chunk: Map<String, Value>,
        event: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        if let Some(usage) = Usage::from_value(chunk.get("usage")) {
            self.usage = Some(usage);
        }
        // Anything beside the choices (an error body, a field the gateway does not know).
        for (key, value) in chunk.iter_mut() {
            if key != "choices" && key != "usage" && !fields::STRUCTURAL.contains(&key.as_str()) {
                self.scan_strings(value, false)?;
            }
        }
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            for choice in choices.iter_mut() {
                let Some(choice) = choice.as_object_mut() else {
                    continue;
                };
                self.on_chat_choice(choice)?;
            }
        }
        let data = serde_json::to_string(&chunk).unwrap_or_default();
        chunk.remove("choices");
        chunk.remove("usage");
        self.last_chunk = Some(chunk);
        sse::encode(event, &data, out);
        Ok(())
    }

    pub(super) fn on_chat_choice(
        &mut self,
        choice: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        let finished = choice.get("finish_reason").is_some_and(|r| !r.is_null());
        // Log probabilities spell the text again: held until the choice ends, then checked.
        if let Some(Value::Object(lists)) = choice.get_mut("logprobs") {
            for (list, entries) in std::mem::take(lists) {
                let key = FIELD_KEY + self.name_id(&format!("logprobs.{list}"));
                self.hold_logprobs((index, key), entries);
            }
            choice.insert("logprobs".into(), Value::Null);
        }
        // Anything else beside the delta (a field the gateway does not know).
        for (key, value) in choice.iter_mut() {
            if !matches!(
                key.as_str(),
                "index" | "delta" | "finish_reason" | "logprobs" | "text"
            ) {
                self.scan_strings(value, false)?;
            }
        }
        let completions = self.endpoint == Endpoint::Completions;
        let content = if completions {
            choice.get("text")
        } else {
            choice.get("delta").and_then(|d| d.get("content"))
        }
        .and_then(Value::as_str);
        let mut text = String::new();
        if let Some(c) = content {
            self.run((index, CONTENT_KEY), Some(c))?;
            text.push_str(&self.text);
        }
        if finished {
            self.run((index, CONTENT_KEY), None)?;
            text.push_str(&self.text);
        }
        let had_content = content.is_some();
        if completions {
            if had_content || !text.is_empty() {
                choice.insert("text".into(), Value::String(text));
            }
            return self.finish_chat_choice(index, finished, choice);
        }
        // Tool-call arguments and other text fields (rare next to text): looked up without JSON
        // pointers, which allocate, so text chunks cost what they did.
        let Some(delta) = choice.get_mut("delta").and_then(Value::as_object_mut) else {
            return self.finish_chat_choice(index, finished, choice);
        };
        if had_content || !text.is_empty() {
            delta.insert("content".into(), Value::String(text));
        }
        if delta.contains_key("tool_calls") || delta.contains_key("function_call") {
            self.filter_tool_deltas(index, delta)?;
        }
        if delta.len() > 1 || !delta.contains_key("content") {
            let (mut strings, mut lists) = (Vec::new(), Vec::new());
            delta_fields(delta, "", &mut strings, &mut lists);
            for (name, value) in strings {
                let key = FIELD_KEY + self.name_id(&name);
                self.run((index, key), Some(value))?;
                value.clone_from(&self.text);
            }
            for list in lists {
                self.scan_strings(list, false)?;
            }
        }
        self.finish_chat_choice(index, finished, choice)
    }

    /// When a choice finishes: release what its tool-call and field pipelines held back into
    /// its delta, and its checked log probabilities.
    pub(super) fn finish_chat_choice(
        &mut self,
        index: u64,
        finished: bool,
        choice: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        if !finished {
            return Ok(());
        }
        let tails = self.finish_choice(index)?;
        if !tails.is_empty() {
            let delta = choice
                .entry("delta")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(delta) = delta.as_object_mut() {
                for (key, tail) in tails {
                    add_tail(delta, key, tail, &self.names);
                }
            }
        }
        if let Some(logprobs) = self.chat_logprobs(index)? {
            choice.insert("logprobs".into(), logprobs);
        }
        Ok(())
    }

    /// Finish every pipeline of one chat choice but its content's: what each held back, by key.
    pub(super) fn finish_choice(&mut self, choice: u64) -> Result<Vec<(u64, String)>, StreamEnd> {
        let keys: Vec<_> = self
            .pipelines
            .range((choice, TOOL_KEY)..=(choice, ARGUMENTS_KEY))
            .map(|(k, _)| k.1)
            .collect();
        let mut tails = Vec::new();
        for key in keys {
            self.run((choice, key), None)?;
            if !self.text.is_empty() {
                tails.push((key, self.text.clone()));
            }
        }
        Ok(tails)
    }

    /// The checked log probabilities held for a chat choice, as its `logprobs` object.
    pub(super) fn chat_logprobs(&mut self, choice: u64) -> Result<Option<Value>, StreamEnd> {
        let keys: Vec<_> = self
            .logprobs
            .range((choice, FIELD_KEY)..=(choice, ARGUMENTS_KEY))
            .map(|(k, _)| *k)
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let mut lists = Map::new();
        for key in keys {
            let name = usize::try_from(key.1 - FIELD_KEY)
                .ok()
                .and_then(|i| self.names.get(i))
                .and_then(|n| n.strip_prefix("logprobs."))
                .unwrap_or("content")
                .to_string();
            lists.insert(
                name,
                self.logprobs.remove(&key).map_or(Value::Null, Value::Array),
            );
        }
        let mut value = Value::Object(lists);
        self.check_logprobs(&mut value)?;
        Ok(Some(value))
    }

    /// Filter the argument fragments of a chat delta's tool calls (and legacy function call)
    /// in place; their other strings (names) are scanned whole.
    pub(super) fn filter_tool_deltas(
        &mut self,
        choice: u64,
        delta: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
            for call in calls.iter_mut() {
                let i = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let Some(function) = call.get_mut("function").and_then(Value::as_object_mut) else {
                    continue;
                };
                let fragment = match function.remove("arguments") {
                    Some(Value::String(fragment)) => Some(fragment),
                    other => {
                        if let Some(other) = other {
                            function.insert("arguments".into(), other);
                        }
                        None
                    }
                };
                for value in function.values_mut() {
                    self.scan_strings(value, false)?;
                }
                if let Some(fragment) = fragment {
                    let key = TOOL_KEY.saturating_add(i).min(FIELD_KEY - 1);
                    self.run((choice, key), Some(&fragment))?;
                    function.insert("arguments".into(), Value::String(self.text.clone()));
                }
            }
        }
        let legacy = delta
            .get_mut("function_call")
            .and_then(Value::as_object_mut)
            .and_then(|f| f.get_mut("arguments"));
        if let Some(Value::String(arguments)) = legacy {
            let fragment = std::mem::take(arguments);
            self.run((choice, ARGUMENTS_KEY), Some(&fragment))?;
            arguments.push_str(&self.text);
        }
        Ok(())
    }

    /// Release what is still held back for choices that never sent a `finish_reason`.
    pub(super) fn flush_chat(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let mut choices: Vec<u64> = self.pipelines.keys().map(|k| k.0).collect();
        choices.extend(self.logprobs.keys().map(|k| k.0));
        choices.sort_unstable();
        choices.dedup();
        for index in choices {
            let mut delta = Map::new();
            self.run((index, CONTENT_KEY), None)?;
            if !self.text.is_empty() {
                delta.insert("content".into(), Value::String(self.text.clone()));
            }
            for (key, tail) in self.finish_choice(index)? {
                add_tail(&mut delta, key, tail, &self.names);
            }
            let logprobs = self.chat_logprobs(index)?;
            if delta.is_empty() && logprobs.is_none() {
                continue;
            }
            let mut chunk = self.last_chunk.clone().unwrap_or_default();
            let choice = if self.endpoint == Endpoint::Completions {
                let text = delta.remove("content").unwrap_or_else(|| json!(""));
                json!({"index": index, "text": text, "logprobs": logprobs, "finish_reason": null})
            } else {
                json!({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": null})
            };
            chunk.insert("choices".into(), Value::Array(vec![choice]));
            sse::encode(None, &Value::Object(chunk).to_string(), out);
        }
        Ok(())
    }
}
