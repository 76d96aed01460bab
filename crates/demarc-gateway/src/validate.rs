//! The shape a request must have before anything else happens to it: what OpenAI's API itself
//! refuses is refused here with the same kind of 400, naming the field, so that a malformed
//! request never reaches an upstream (nor a policy that would read a half-formed body).

use serde_json::{Map, Value};

use crate::endpoint::Endpoint;
use crate::error::ApiError;

/// Check the fields every model call of `endpoint` needs.
pub fn request(endpoint: Endpoint, body: &Map<String, Value>) -> Result<(), ApiError> {
    match body.get("model") {
        None => {
            return Err(ApiError::invalid_request(
                "missing_model",
                "the request must name a `model`",
            )
            .about("model"));
        }
        Some(Value::String(m)) if m.trim().is_empty() => {
            return Err(invalid_value("model", "`model` must not be empty"));
        }
        Some(Value::String(_)) => {}
        Some(other) => return Err(invalid_type("model", "a string", other)),
    }
    if let Some(stream) = body
        .get("stream")
        .filter(|v| !v.is_null() && !v.is_boolean())
    {
        return Err(invalid_type("stream", "a boolean", stream));
    }
    match endpoint {
        Endpoint::ChatCompletions => messages(body.get("messages")),
        Endpoint::Completions => non_empty("prompt", body.get("prompt"), true),
        Endpoint::Embeddings => non_empty("input", body.get("input"), true),
        Endpoint::Responses => match body.get("input") {
            None | Some(Value::Null) => Ok(()),
            input => non_empty("input", input, false),
        },
        Endpoint::Models | Endpoint::Model | Endpoint::Unrouted => Ok(()),
    }
}

fn messages(value: Option<&Value>) -> Result<(), ApiError> {
    let list = match value {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(invalid_type("messages", "an array", other)),
    };
    if list.is_empty() {
        return Err(invalid_value(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    for (i, message) in list.iter().enumerate() {
        let role = message.get("role");
        if !message.is_object() || !role.is_some_and(Value::is_string) {
            return Err(invalid_value(
                "messages",
                format!("`messages[{i}]` must be an object with a string `role`"),
            ));
        }
    }
    Ok(())
}

/// A string, or a non-empty list (`strict`: required).
fn non_empty(field: &'static str, value: Option<&Value>, strict: bool) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) if strict => Err(missing(field)),
        Some(Value::String(_)) | None | Some(Value::Null) => Ok(()),
        Some(Value::Array(list)) if list.is_empty() => Err(invalid_value(
            field,
            format!("`{field}` must not be an empty list"),
        )),
        Some(Value::Array(_)) => Ok(()),
        Some(other) => Err(invalid_type(field, "a string or a list", other)),
    }
}

fn missing(field: &'static str) -> ApiError {
    ApiError::invalid_request(
        "missing_required_parameter",
        format!("the request must have `{field}`"),
    )
    .about(field)
}

fn invalid_value(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::invalid_request("invalid_value", message).about(field)
}

fn invalid_type(field: &'static str, expected: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiError::invalid_request(
        "invalid_type",
        format!("`{field}` must be {expected}, not {got}"),
    )
    .about(field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(endpoint: Endpoint, v: Value) -> Result<(), (&'static str, Option<&'static str>)> {
        let Value::Object(body) = v else {
            return Ok(());
        };
        request(endpoint, &body).map_err(|e| (e.code, e.param))
    }

    #[test]
    fn malformed_chat_requests_are_refused_naming_the_field() {
        let chat = Endpoint::ChatCompletions;
        let user = json!([{"role": "user", "content": "hi"}]);
        assert_eq!(check(chat, json!({"model": "m", "messages": user})), Ok(()));
        for (body, code, param) in [
            (json!({"messages": user}), "missing_model", "model"),
            (
                json!({"model": "", "messages": user}),
                "invalid_value",
                "model",
            ),
            (
                json!({"model": 3, "messages": user}),
                "invalid_type",
                "model",
            ),
            (
                json!({"model": "m"}),
                "missing_required_parameter",
                "messages",
            ),
            (
                json!({"model": "m", "messages": "Hello"}),
                "invalid_type",
                "messages",
            ),
            (
                json!({"model": "m", "messages": []}),
                "invalid_value",
                "messages",
            ),
            (
                json!({"model": "m", "messages": ["hi"]}),
                "invalid_value",
                "messages",
            ),
            (
                json!({"model": "m", "messages": [{"content": "hi"}]}),
                "invalid_value",
                "messages",
            ),
            (
                json!({"model": "m", "messages": user, "stream": "yes"}),
                "invalid_type",
                "stream",
            ),
        ] {
            assert_eq!(
                check(chat, body.clone()),
                Err((code, Some(param))),
                "{body}"
            );
        }
    }

    #[test]
    fn other_endpoints_need_their_input() {
        assert!(check(Endpoint::Completions, json!({"model": "m", "prompt": "hi"})).is_ok());
        assert!(check(Endpoint::Completions, json!({"model": "m"})).is_err());
        assert!(check(Endpoint::Embeddings, json!({"model": "m", "input": []})).is_err());
        assert!(check(Endpoint::Embeddings, json!({"model": "m", "input": ["a"]})).is_ok());
        assert!(check(Endpoint::Responses, json!({"model": "m"})).is_ok());
        assert!(check(Endpoint::Responses, json!({"model": "m", "input": 3})).is_err());
    }
}
