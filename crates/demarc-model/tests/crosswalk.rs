//! Crosswalk files: parsing, the checks against both catalogs, reading the other way round.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use demarc_model::CheckedCatalog;
use demarc_model::crosswalk::{CheckedCrosswalk, RelationKind};

fn catalog(id: &str, areas: &[&str]) -> CheckedCatalog {
    let mut text = format!(
        "format: 1\nid: {id}\ntitle: T\nversion: \"1\"\n\
         source: {{title: s, url: u, date: \"2024-01-01\", licence: l}}\nroles: []\n\
         service_models:\n  - {{id: iaas, title: I, description: d}}\n\
         layers:\n  - {{id: model, title: M, description: d, supplied_by: [model]}}\nareas:\n"
    );
    for a in areas {
        text.push_str(&format!(
            "  - id: {a}\n    title: Area {a}\n    description: d\n    layer: model\n    cells:\n      iaas: {{owner: customer, note: n, source: s}}\n"
        ));
    }
    CheckedCatalog::from_bytes(&format!("{id}.yaml"), text.as_bytes()).unwrap()
}

const GOOD: &str = r#"format: 1
from: left
to: right
relations:
  - {from: a, to: x, relation: equal, rationale: "left s1; right s2"}
  - {from: b, to: y, relation: subset, rationale: "left s3; right s4"}
  - {from: b, to: z, relation: intersects, rationale: "left s3; right s5"}
"#;

#[test]
fn a_crosswalk_reads_both_ways_and_lists_the_unrelated_areas() {
    let left = catalog("left", &["a", "b", "c"]);
    let right = catalog("right", &["x", "y", "z", "w"]);
    let cw = CheckedCrosswalk::from_bytes("cw.yaml", GOOD.as_bytes(), &left, &right).unwrap();
    assert_eq!((cw.from(), cw.to()), ("left", "right"));
    let view = cw.view(&left, &right);
    assert_eq!(view.relations.len(), 3);
    assert_eq!(view.unrelated_from, [("c", "Area c")]);
    assert_eq!(view.unrelated_to, [("w", "Area w")]);

    // Given the catalogs the other way round, the same file is read inverted.
    let back = CheckedCrosswalk::from_bytes("cw.yaml", GOOD.as_bytes(), &right, &left).unwrap();
    assert_eq!((back.from(), back.to()), ("right", "left"));
    let rel = |cw: &CheckedCrosswalk, f: &str, t: &str| {
        cw.relations()
            .iter()
            .find(|r| r.from == f && r.to == t)
            .map(|r| r.relation)
    };
    assert_eq!(rel(&back, "y", "b"), Some(RelationKind::Superset));
    assert_eq!(rel(&back, "x", "a"), Some(RelationKind::Equal));
    assert_eq!(rel(&back, "z", "b"), Some(RelationKind::Intersects));
    assert_eq!(back.inverse(), cw);
    assert!(cw.conflicts_with(&back).is_empty());
}

#[test]
fn two_crosswalks_of_the_same_catalogs_must_agree_each_way() {
    let left = catalog("left", &["a", "b", "c"]);
    let right = catalog("right", &["x", "y", "z", "w"]);
    let cw = CheckedCrosswalk::from_bytes("cw.yaml", GOOD.as_bytes(), &left, &right).unwrap();
    // Written right -> left: `y subset b` is the inverse of `b subset y` only if it were
    // `superset`; as `subset` it contradicts the first file.
    let other = r#"format: 1
from: right
to: left
relations:
  - {from: y, to: b, relation: subset, rationale: "right s4; left s3"}
  - {from: x, to: a, relation: equal, rationale: "right s2; left s1"}
"#;
    let other =
        CheckedCrosswalk::from_bytes("other.yaml", other.as_bytes(), &right, &left).unwrap();
    let conflicts = cw.conflicts_with(&other);
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].0.from, "b");
    assert_eq!(conflicts[0].0.relation, RelationKind::Subset);
    assert_eq!(conflicts[0].1.relation, RelationKind::Superset);
}

#[test]
fn dangling_ids_duplicates_and_double_equals_are_located() {
    let left = catalog("left", &["a", "b", "c"]);
    let right = catalog("right", &["x", "y", "z", "w"]);
    let text = r#"format: 1
from: left
to: rihgt
relations:
  - {from: aa, to: x, relation: equal, rationale: r}
  - {from: b, to: yy, relation: subset, rationale: r}
  - {from: b, to: yy, relation: subset, rationale: r}
  - {from: c, to: x, relation: equal, rationale: r}
  - {from: a, to: z, relation: intersects, rationale: " "}
  - {from: a, to: w, relation: overlaps, rationale: r}
"#;
    let err = CheckedCrosswalk::from_bytes("bad.yaml", text.as_bytes(), &left, &right).unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("bad.yaml:10:32: error: relations[5].relation: unknown variant `overlaps`"),
        "{shown}"
    );
    let text = text.replace("relation: overlaps", "relation: intersects");
    let err = CheckedCrosswalk::from_bytes("bad.yaml", text.as_bytes(), &left, &right).unwrap_err();
    let shown = err.to_string();
    for needle in [
        "bad.yaml:3:5: error: the crosswalk's `to` catalog is `rihgt`",
        "did you mean `right`?",
        "bad.yaml:5:12: error: catalog `left` has no area `aa`",
        "did you mean `a`?",
        "bad.yaml:6:19: error: catalog `right` has no area `yy`",
        "did you mean `y`?",
        "`b` and `yy` are already related at relations[1]",
        "`x` (to) is `equal` to both `aa` and `c`",
        "a relation needs a rationale citing both sources",
    ] {
        assert!(shown.contains(needle), "missing `{needle}` in:\n{shown}");
    }
    assert!(err.items.iter().all(|d| d.location.is_some()), "{shown}");
}

#[test]
fn every_builtin_crosswalk_checks_against_its_catalogs_and_names_every_area() {
    for (from, to) in CheckedCrosswalk::builtin_pairs() {
        let a = CheckedCatalog::builtin(from).unwrap().unwrap();
        let b = CheckedCatalog::builtin(to).unwrap().unwrap();
        let cw = CheckedCrosswalk::builtin_between(&a, &b).unwrap().unwrap();
        let view = cw.view(&a, &b);
        assert!(
            view.unrelated_from.is_empty(),
            "{from}: {:?}",
            view.unrelated_from
        );
        assert!(
            view.unrelated_to.is_empty(),
            "{to}: {:?}",
            view.unrelated_to
        );
        let back = CheckedCrosswalk::builtin_between(&b, &a).unwrap().unwrap();
        assert_eq!(back.inverse(), cw);
    }
}

#[test]
fn the_seed_has_a_builtin_crosswalk_to_each_other_builtin_catalog() {
    let pairs: Vec<(&str, &str)> = CheckedCrosswalk::builtin_pairs().collect();
    for other in ["cosai-srf-1.0", "microsoft-ai-srm", "aws-genai-scoping"] {
        assert!(pairs.contains(&("csa-genai-2023", other)), "{other}");
    }
}
