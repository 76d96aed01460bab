//! Malformed uses of the catalog format's issue-16 additions (`basis`, `model-dependent`,
//! `maps_from`, `only_with`) are errors located at the field, never accepted or a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::CheckedCatalog;

const COSAI: &str = include_str!("../catalogs/cosai-srf-1.0.yaml");

/// `COSAI` with the first `from` replaced by `to`; the replaced text's line, 1-based.
fn broken(from: &str, to: &str) -> (String, usize) {
    let at = COSAI
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in the catalog"));
    let line = COSAI[..at].matches('\n').count() + 1;
    (COSAI.replacen(from, to, 1), line)
}

/// The error's rendering, which must name `needle` and a line near `line`.
fn refused(text: &str, needle: &str, line: usize) {
    let d = match CheckedCatalog::from_bytes("cosai.yaml", text.as_bytes()) {
        Ok(_) => panic!("accepted a catalog with {needle}"),
        Err(d) => d,
    };
    let shown = d.to_string();
    assert!(shown.contains(needle), "{shown}");
    let located = d
        .items
        .iter()
        .filter_map(|i| i.location)
        .any(|l| l.line.abs_diff(line) <= 8);
    assert!(located, "no error near line {line}:\n{shown}");
}

#[test]
fn an_unknown_basis_is_refused_at_its_value() {
    let (text, line) = broken("        basis: inferred", "        basis: guessed");
    refused(&text, "guessed", line);
}

#[test]
fn a_model_dependent_cell_with_a_lead_is_refused() {
    let (text, line) = broken(
        "owner: model-dependent",
        "owner: model-dependent\n        lead: customer",
    );
    refused(&text, "model-dependent cell has no lead", line);
}

#[test]
fn maps_from_an_unknown_estate_service_model_is_refused_with_a_suggestion() {
    let (text, line) = broken("service_model: saas", "service_model: sass");
    refused(&text, "`sass` is not an estate service model", line);
    assert!(
        CheckedCatalog::from_bytes("cosai.yaml", text.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("saas")
    );
}

#[test]
fn maps_from_without_a_note_is_refused() {
    let at = COSAI.find("maps_from:").unwrap();
    let note = at + COSAI[at..].find("note:").unwrap();
    let line = COSAI[..note].matches('\n').count() + 1;
    let end = note + COSAI[note..].find('\n').unwrap();
    // An empty note keeps the mapping but says nothing of why.
    let text = format!("{}note: \"\"{}", &COSAI[..note], &COSAI[end..]);
    refused(&text, "a mapping needs a note", line);
}

#[test]
fn only_with_an_unknown_component_kind_is_refused() {
    let (text, line) = broken(
        "layers:\n  - id: ",
        "layers:\n  - only_with: [robot]\n    id: ",
    );
    refused(&text, "robot", line);
}
