//! Responses API events through the stream filter: per output item and content part, the
//! generic `.delta` / `.done` families, and whole items and parts rewritten when they come
//! without deltas.

use serde_json::{Map, Value, json};

use super::*;

impl StreamFilter {
    /// Release what every open Responses pipeline holds back, as a last delta event each.
    pub(super) fn flush_responses(&mut self, out: &mut Vec<u8>) -> Result<(), StreamEnd> {
        let keys: Vec<_> = self.pipelines.keys().copied().collect();
        for key in keys {
            self.run(key, None)?;
            let logprobs = self.release_logprobs(key)?;
            if self.text.is_empty() && logprobs.is_none() {
                continue;
            }
            self.released.entry(key).or_default().push_str(&self.text);
            let (item, place) = key;
            let (family, part) = if place == ARGUMENTS_KEY {
                ("response.function_call_arguments".to_string(), None)
            } else if place < FIELD_KEY {
                ("response.output_text".to_string(), Some(place))
            } else {
                let name = usize::try_from((place - FIELD_KEY) / PARTS)
                    .ok()
                    .and_then(|i| self.names.get(i))
                    .cloned()
                    .unwrap_or_default();
                (name, Some((place - FIELD_KEY) % PARTS))
            };
            let kind = format!("{family}.delta");
            let mut event = json!({"type": kind, "output_index": item, "delta": self.text});
            if let Some(id) = self.item_ids.get(&item) {
                event["item_id"] = id.clone();
            }
            if let Some(part) = part {
                let field = if family == "response.reasoning_summary_text" {
                    "summary_index"
                } else {
                    "content_index"
                };
                event[field] = json!(part);
            }
            if let Some(logprobs) = logprobs {
                event["logprobs"] = logprobs;
            }
            sse::encode(Some(&kind), &event.to_string(), out);
        }
        Ok(())
    }

    /// The pipeline key of a Responses text event of `family` (its type without `.delta` or
    /// `.done`).
    pub(super) fn part_key(&mut self, family: &str, body: &Map<String, Value>) -> (u64, u64) {
        let get = |k: &str| body.get(k).and_then(Value::as_u64);
        let item = get("output_index").unwrap_or(0);
        let part = get("content_index")
            .or_else(|| get("summary_index"))
            .unwrap_or(0)
            .min(PARTS - 1);
        (item, self.part_place(family, part))
    }

    pub(super) fn part_place(&mut self, family: &str, part: u64) -> u64 {
        match family {
            "response.output_text" => part,
            "response.function_call_arguments" => ARGUMENTS_KEY,
            _ => FIELD_KEY + self.name_id(family) * PARTS + part,
        }
    }

    /// A Responses `*.delta` event for text or arguments: its `delta` goes through the
    /// pipeline for `k` and becomes what the pipeline released.
    pub(super) fn filter_part_delta(
        &mut self,
        k: (u64, u64),
        body: &mut Map<String, Value>,
    ) -> Result<(), StreamEnd> {
        if let Some(logprobs) = body.get_mut("logprobs") {
            let list = std::mem::replace(logprobs, Value::Array(Vec::new()));
            self.hold_logprobs(k, list);
        }
        let delta = body
            .get("delta")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.run(k, Some(&delta))?;
        self.released.entry(k).or_default().push_str(&self.text);
        body.insert("delta".into(), Value::String(self.text.clone()));
        Ok(())
    }

    /// A Responses `*.done` event for text or arguments: release what the pipeline held back
    /// (and the checked log probabilities) as a last `delta_type` event before it, and make the
    /// done event's `field` carry the whole released (filtered) value.
    pub(super) fn finish_part(
        &mut self,
        k: (u64, u64),
        body: &mut Map<String, Value>,
        field: &str,
        delta_type: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        self.run(k, None)?;
        let logprobs = self.release_logprobs(k)?;
        if !self.text.is_empty() || logprobs.is_some() {
            self.released.entry(k).or_default().push_str(&self.text);
            let mut delta = body.clone();
            delta.remove(field);
            delta.remove("logprobs");
            delta.insert("type".into(), delta_type.into());
            delta.insert("delta".into(), Value::String(self.text.clone()));
            if let Some(logprobs) = logprobs {
                delta.insert("logprobs".into(), logprobs);
            }
            sse::encode(Some(delta_type), &Value::Object(delta).to_string(), out);
        }
        let whole = self.released.get(&k).cloned().unwrap_or_default();
        body.insert(field.into(), Value::String(whole));
        // The done event's own copy of the log probabilities, if it has one.
        if let Some(logprobs) = body.get_mut("logprobs") {
            self.check_logprobs(logprobs)?;
        }
        Ok(())
    }

    pub(super) fn on_responses_event(
        &mut self,
        mut body: Map<String, Value>,
        event: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), StreamEnd> {
        let kind = body
            .get("type")
            .and_then(Value::as_str)
            .or(event)
            .unwrap_or("")
            .to_string();
        let index = body
            .get("output_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let item_id = body
            .get("item_id")
            .or_else(|| body.get("item").and_then(|i| i.get("id")));
        if let Some(id) = item_id {
            self.item_ids.insert(index, id.clone());
        }
        match kind.as_str() {
            "response.output_item.added" | "response.output_item.done" => {
                if let Some(item) = body.get_mut("item") {
                    self.rewrite_item(index, item)?;
                }
            }
            "response.content_part.added"
            | "response.content_part.done"
            | "response.reasoning_summary_part.added"
            | "response.reasoning_summary_part.done" => {
                let get = |k: &str| body.get(k).and_then(Value::as_u64);
                let j = get("content_index")
                    .or_else(|| get("summary_index"))
                    .unwrap_or(0);
                let summary = kind.starts_with("response.reasoning_summary_part");
                if let Some(part) = body.get_mut("part") {
                    self.rewrite_part(index, j, part, summary)?;
                }
            }
            "response.created"
            | "response.in_progress"
            | "response.queued"
            | "response.completed"
            | "response.incomplete"
            | "response.failed" => {
                if matches!(
                    kind.as_str(),
                    "response.completed" | "response.incomplete" | "response.failed"
                ) {
                    // What the pipelines still hold goes out before the end is announced.
                    self.flush_responses(out)?;
                }
                if let Some(response) = body.get_mut("response") {
                    if let Some(usage) = Usage::from_value(response.get("usage")) {
                        self.usage = Some(usage);
                    }
                    if let Some(envelope) = response.as_object().filter(|_| self.response.is_none())
                    {
                        let mut envelope = envelope.clone();
                        envelope.remove("output");
                        self.response = Some(envelope);
                    }
                    if let Some(Value::Array(items)) = response.get_mut("output") {
                        for (i, item) in items.iter_mut().enumerate() {
                            self.rewrite_item(i as u64, item)?;
                        }
                    }
                    // The rest of the response object (its `output_text`, an error), but not
                    // the items just rewritten nor the request it echoes.
                    let output = response.as_object_mut().and_then(|r| r.remove("output"));
                    self.scan_strings(response, true)?;
                    if let (Some(output), Some(r)) = (output, response.as_object_mut()) {
                        r.insert("output".into(), output);
                    }
                }
                if matches!(
                    kind.as_str(),
                    "response.completed" | "response.incomplete" | "response.failed"
                ) {
                    self.saw_done = true;
                }
            }
            _ => {
                let text_delta = body.get("delta").is_some_and(Value::is_string);
                let done_field = DONE_FIELDS
                    .iter()
                    .find(|f| body.get(**f).is_some_and(Value::is_string));
                if let (Some(family), true) = (kind.strip_suffix(".delta"), text_delta) {
                    let k = self.part_key(family, &body);
                    self.filter_part_delta(k, &mut body)?;
                } else if let (Some(family), Some(field)) = (kind.strip_suffix(".done"), done_field)
                {
                    let k = self.part_key(family, &body);
                    let delta_type = format!("{family}.delta");
                    self.finish_part(k, &mut body, field, &delta_type, out)?;
                } else {
                    // An error event, or an event the gateway does not know: every string in it.
                    let mut value = Value::Object(std::mem::take(&mut body));
                    self.scan_strings(&mut value, false)?;
                    if let Value::Object(map) = value {
                        body = map;
                    }
                }
            }
        }
        sse::encode(event, &Value::Object(body).to_string(), out);
        Ok(())
    }

    /// Give an output item the text its parts released as deltas; whatever the stream never
    /// delivered as deltas (a part first seen whole, names, annotations) is scanned whole.
    pub(super) fn rewrite_item(
        &mut self,
        output_index: u64,
        item: &mut Value,
    ) -> Result<(), StreamEnd> {
        let Some(map) = item.as_object_mut() else {
            return self.scan_strings(item, false);
        };
        let mut held = Vec::new();
        if map.get("type").and_then(Value::as_str) == Some("function_call") {
            let key = (output_index, ARGUMENTS_KEY);
            if let Some(released) = self.released.get(&key) {
                map.insert("arguments".into(), Value::String(released.clone()));
                held.extend(map.remove_entry("arguments"));
            }
        }
        for list in ["content", "summary"] {
            if let Some(Value::Array(parts)) = map.get_mut(list) {
                for (j, part) in parts.iter_mut().enumerate() {
                    self.rewrite_part(output_index, j as u64, part, list == "summary")?;
                }
                held.extend(map.remove_entry(list));
            }
        }
        let mut rest = Value::Object(std::mem::take(map));
        self.scan_strings(&mut rest, false)?;
        if let Value::Object(rest) = rest {
            *map = rest;
        }
        map.extend(held);
        Ok(())
    }

    /// Give a content (or reasoning summary) part the text released for it; scan it whole when
    /// the stream delivered none.
    pub(super) fn rewrite_part(
        &mut self,
        output_index: u64,
        j: u64,
        part: &mut Value,
        summary: bool,
    ) -> Result<(), StreamEnd> {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        let (family, field) = match kind {
            _ if summary => ("response.reasoning_summary_text", "text"),
            "output_text" => ("response.output_text", "text"),
            "refusal" => ("response.refusal", "refusal"),
            "reasoning_text" => ("response.reasoning_text", "text"),
            _ => return self.scan_strings(part, false),
        };
        let place = self.part_place(family, j.min(PARTS - 1));
        let released = self.released.get(&(output_index, place)).cloned();
        let Some(map) = part.as_object_mut() else {
            return Ok(());
        };
        let text = match released {
            Some(text) => Some(text),
            None => map
                .remove(field)
                .map(|mut v| {
                    let r = self.scan_strings(&mut v, false);
                    (v, r)
                })
                .map(|(v, r)| r.map(|()| v.as_str().unwrap_or("").to_string()))
                .transpose()?,
        };
        let mut rest = Value::Object(std::mem::take(map));
        self.scan_strings(&mut rest, false)?;
        if let Value::Object(rest) = rest {
            *map = rest;
        }
        if let Some(text) = text {
            map.insert(field.into(), Value::String(text));
        }
        Ok(())
    }
}
