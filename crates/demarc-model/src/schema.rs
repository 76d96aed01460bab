//! JSON Schemas of the catalog and estate formats, generated from the types.
//! The copies under `schemas/` in the repository are checked against these by a test.

/// The JSON Schema of the catalog format, pretty-printed.
pub fn catalog_schema() -> String {
    pretty(schemars::schema_for!(crate::catalog::Catalog))
}

/// The JSON Schema of the estate format, pretty-printed.
pub fn estate_schema() -> String {
    pretty(schemars::schema_for!(crate::estate::Estate))
}

fn pretty(schema: schemars::Schema) -> String {
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
