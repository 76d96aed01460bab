//! The OpenAPI 3.1 document, generated from [`crate::api::endpoints`] (paths, methods, roles,
//! parameters) and the response types' JSON Schemas (schemars, draft 2020-12, which OpenAPI
//! 3.1 uses as is).

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::api::endpoints;
use crate::error::ErrorBody;

pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = generator.subschema_for::<ErrorBody>();
    let mut paths: Map<String, Value> = Map::new();
    for (e, _) in endpoints() {
        let mut parameters: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(e.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": "string"}})
        }));
        let ok = if e.method == axum::http::Method::POST {
            "201"
        } else {
            "200"
        };
        let mut op = json!({
            "summary": e.summary,
            "operationId": operation_id(e.method.as_str(), e.path),
            "description": format!("Needs the `{}` role or above.", e.role),
            "parameters": parameters,
            "responses": {
                ok: {"description": "OK", "content": {"application/json": {"schema": (e.response)(&mut generator)}}},
                "default": {"description": "An error", "content": {"application/json": {"schema": error.clone()}}},
            },
        });
        if let Some(body) = e.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body(&mut generator)}}});
        }
        let entry = paths
            .entry(e.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[e.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "demarc serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The dashboard's API over demarc's store: the estate assessed now, recorded runs, evidence, discovery, gateway activity and the audit trail. Errors share one shape: {\"error\": {\"code\", \"message\"}}.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from `demarc tokens create --role R` (dmt_…)."},
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE, "description": "The browser session set by POST /login; state changes also need the X-CSRF-Token header."},
            },
        },
    })
}

/// `get_applications_id` for `GET /api/v1/applications/{id}`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path.trim_start_matches("/api/v1/").split('/') {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        id.push('_');
        id.extend(
            seg.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_documented_once_with_a_unique_operation_id() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            assert!(path.starts_with("/api/v1/"), "{path}");
            for (_, op) in item.as_object().into_iter().flatten() {
                operations += 1;
                assert!(ids.insert(op["operationId"].as_str().unwrap_or("").to_owned()));
                assert!(op["responses"]["default"].is_object());
            }
        }
        assert_eq!(operations, endpoints().len());
        // Every `$ref` points at a schema the document defines.
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or("");
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        assert!(schemas.contains_key("ErrorBody"));
    }
}
