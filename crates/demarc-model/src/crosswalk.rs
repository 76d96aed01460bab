//! Crosswalks: how the areas of one catalog relate to the areas of another, as data.
//!
//! A crosswalk file names two catalogs (`from`, `to`) and lists relations between their
//! areas: `from-area RELATION to-area`, where the relation is one of
//! - `equal`: the two areas cover the same duty;
//! - `subset`: the from-area is part of the to-area's duty;
//! - `superset`: the from-area covers the to-area's duty and more;
//! - `intersects`: the two overlap, neither contains the other.
//!
//! Each relation carries a rationale citing both sources. Read the other way round
//! (to → from), `subset` and `superset` swap and the others stay. Checking a crosswalk
//! against its two catalogs rejects dangling area ids, a pair listed twice, an area `equal`
//! to two areas of the other side, and (between two crosswalks of the same two catalogs) a
//! pair whose relations are not each other's inverse.

use std::collections::{BTreeMap, HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::catalog::CheckedCatalog;
use crate::diag::{Diagnostic, Diagnostics, did_you_mean};
use crate::parse;

/// The version of the crosswalk data format this build reads.
pub const CROSSWALK_FORMAT: u32 = 1;

/// The crosswalks compiled into the binary: (from catalog, to catalog, file text).
const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "csa-genai-2023",
        "cosai-srf-1.0",
        include_str!("../catalogs/crosswalk/csa-genai-2023--cosai-srf-1.0.yaml"),
    ),
    (
        "csa-genai-2023",
        "microsoft-ai-srm",
        include_str!("../catalogs/crosswalk/csa-genai-2023--microsoft-ai-srm.yaml"),
    ),
    (
        "csa-genai-2023",
        "aws-genai-scoping",
        include_str!("../catalogs/crosswalk/csa-genai-2023--aws-genai-scoping.yaml"),
    ),
];

/// Relations between the areas of two catalogs, as written in a crosswalk file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Crosswalk {
    /// Version of the crosswalk data format; this build reads format 1.
    pub format: u32,
    /// The catalog whose areas are on the left of each relation.
    pub from: String,
    /// The catalog whose areas are on the right of each relation.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub relations: Vec<Relation>,
}

/// `from RELATION to`, with why.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    /// An area id of the `from` catalog.
    pub from: String,
    /// An area id of the `to` catalog.
    pub to: String,
    pub relation: RelationKind,
    /// Why, citing both sources (section, sentence) or saying it is demarc's reading.
    pub rationale: String,
}

/// How a from-area's duty relates to a to-area's duty.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RelationKind {
    /// The same duty.
    Equal,
    /// The from-area is part of the to-area.
    Subset,
    /// The from-area contains the to-area.
    Superset,
    /// They overlap; neither contains the other.
    Intersects,
}

impl RelationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "equal",
            Self::Subset => "subset",
            Self::Superset => "superset",
            Self::Intersects => "intersects",
        }
    }

    /// The relation read the other way round: subset and superset swap.
    pub fn inverse(self) -> Self {
        match self {
            Self::Subset => Self::Superset,
            Self::Superset => Self::Subset,
            other => other,
        }
    }
}

impl Relation {
    /// The same relation read from the other side.
    pub fn inverse(&self) -> Self {
        Self {
            from: self.to.clone(),
            to: self.from.clone(),
            relation: self.relation.inverse(),
            rationale: self.rationale.clone(),
        }
    }
}

/// A crosswalk checked against its two catalogs: every area id resolves.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedCrosswalk {
    crosswalk: Crosswalk,
    /// Where it was read from: `<builtin:FROM--TO>` or a file path.
    origin: String,
}

impl CheckedCrosswalk {
    /// Parse a crosswalk file and check it against `from` and `to`, which must be the
    /// catalogs it names (in either order: a file written `to → from` is read inverted).
    pub fn from_bytes(
        file: &str,
        bytes: &[u8],
        a: &CheckedCatalog,
        b: &CheckedCatalog,
    ) -> Result<Self, Diagnostics> {
        let text = parse::as_text(file, bytes)?;
        let crosswalk: Crosswalk = parse::from_text(file, text)?;
        let (from, to) = if crosswalk.from == b.id() && crosswalk.to == a.id() {
            (b, a)
        } else {
            (a, b)
        };
        let mut diagnostics = Diagnostics::new(file);
        for d in validate(&crosswalk, from, to) {
            diagnostics.push(d);
        }
        if !diagnostics.is_empty() {
            diagnostics.locate_in(text);
        }
        if diagnostics.has_errors() {
            return Err(diagnostics);
        }
        let checked = Self {
            crosswalk,
            origin: file.to_string(),
        };
        Ok(if checked.from() == a.id() {
            checked
        } else {
            checked.inverse()
        })
    }

    /// The crosswalk compiled in between `a` and `b` (either direction), read `a → b`.
    pub fn builtin_between(
        a: &CheckedCatalog,
        b: &CheckedCatalog,
    ) -> Option<Result<Self, Diagnostics>> {
        BUILTIN
            .iter()
            .find(|(from, to, _)| {
                (*from == a.id() && *to == b.id()) || (*from == b.id() && *to == a.id())
            })
            .map(|(from, to, text)| {
                Self::from_bytes(&format!("<builtin:{from}--{to}>"), text.as_bytes(), a, b)
            })
    }

    /// The pairs of catalogs with a crosswalk compiled in, as written (from, to).
    pub fn builtin_pairs() -> impl Iterator<Item = (&'static str, &'static str)> {
        BUILTIN.iter().map(|(from, to, _)| (*from, *to))
    }

    /// The catalog on the left of every relation.
    pub fn from(&self) -> &str {
        &self.crosswalk.from
    }

    /// The catalog on the right of every relation.
    pub fn to(&self) -> &str {
        &self.crosswalk.to
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn description(&self) -> Option<&str> {
        self.crosswalk.description.as_deref()
    }

    pub fn relations(&self) -> &[Relation] {
        &self.crosswalk.relations
    }

    /// The same crosswalk read the other way round.
    #[must_use]
    pub fn inverse(&self) -> Self {
        Self {
            crosswalk: Crosswalk {
                format: self.crosswalk.format,
                from: self.crosswalk.to.clone(),
                to: self.crosswalk.from.clone(),
                description: self.crosswalk.description.clone(),
                relations: self
                    .crosswalk
                    .relations
                    .iter()
                    .map(Relation::inverse)
                    .collect(),
            },
            origin: self.origin.clone(),
        }
    }

    /// Whether this crosswalk relates `a` and `b`, in either direction.
    pub fn joins(&self, a: &str, b: &str) -> bool {
        (self.from() == a && self.to() == b) || (self.from() == b && self.to() == a)
    }

    /// This crosswalk read `from → to`, if it joins those two catalogs.
    pub fn oriented(&self, from: &str, to: &str) -> Option<Self> {
        if self.from() == from && self.to() == to {
            Some(self.clone())
        } else if self.from() == to && self.to() == from {
            Some(self.inverse())
        } else {
            None
        }
    }

    /// Pairs that both crosswalks relate but not consistently (read the same way round,
    /// the relations differ). Both must join the same two catalogs; otherwise empty.
    pub fn conflicts_with(&self, other: &Self) -> Vec<(Relation, Relation)> {
        let Some(other) = other.oriented(self.from(), self.to()) else {
            return Vec::new();
        };
        let theirs: HashMap<(&str, &str), &Relation> = other
            .relations()
            .iter()
            .map(|r| ((r.from.as_str(), r.to.as_str()), r))
            .collect();
        self.relations()
            .iter()
            .filter_map(|r| {
                let t = theirs.get(&(r.from.as_str(), r.to.as_str()))?;
                (t.relation != r.relation).then(|| (r.clone(), (*t).clone()))
            })
            .collect()
    }

    /// Everything a reader needs to print the crosswalk: each relation with both areas'
    /// titles, and the areas of either side that no relation names.
    pub fn view<'a>(&'a self, from: &'a CheckedCatalog, to: &'a CheckedCatalog) -> View<'a> {
        let related_from: HashSet<&str> =
            self.relations().iter().map(|r| r.from.as_str()).collect();
        let related_to: HashSet<&str> = self.relations().iter().map(|r| r.to.as_str()).collect();
        let title = |c: &'a CheckedCatalog, id: &str| c.area(id).map_or("", |a| a.title.as_str());
        View {
            from,
            to,
            origin: &self.origin,
            relations: self
                .relations()
                .iter()
                .map(|r| RelationView {
                    from_area: &r.from,
                    from_title: title(from, &r.from),
                    relation: r.relation,
                    to_area: &r.to,
                    to_title: title(to, &r.to),
                    rationale: &r.rationale,
                })
                .collect(),
            unrelated_from: from
                .areas()
                .iter()
                .filter(|a| !related_from.contains(a.id.as_str()))
                .map(|a| (a.id.as_str(), a.title.as_str()))
                .collect(),
            unrelated_to: to
                .areas()
                .iter()
                .filter(|a| !related_to.contains(a.id.as_str()))
                .map(|a| (a.id.as_str(), a.title.as_str()))
                .collect(),
        }
    }

    /// For each area of the `from` catalog, the relations it takes part in.
    pub fn by_from_area(&self) -> BTreeMap<&str, Vec<&Relation>> {
        let mut out: BTreeMap<&str, Vec<&Relation>> = BTreeMap::new();
        for r in self.relations() {
            out.entry(r.from.as_str()).or_default().push(r);
        }
        out
    }
}

/// A crosswalk ready to print.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub from: &'a CheckedCatalog,
    pub to: &'a CheckedCatalog,
    pub origin: &'a str,
    pub relations: Vec<RelationView<'a>>,
    /// Areas of the `from` catalog that no relation names: (id, title).
    pub unrelated_from: Vec<(&'a str, &'a str)>,
    /// Areas of the `to` catalog that no relation names: (id, title).
    pub unrelated_to: Vec<(&'a str, &'a str)>,
}

#[derive(Debug, Clone)]
pub struct RelationView<'a> {
    pub from_area: &'a str,
    pub from_title: &'a str,
    pub relation: RelationKind,
    pub to_area: &'a str,
    pub to_title: &'a str,
    pub rationale: &'a str,
}

/// Check a parsed crosswalk against the catalogs it joins. Returns every problem found.
pub fn validate(
    crosswalk: &Crosswalk,
    from: &CheckedCatalog,
    to: &CheckedCatalog,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if crosswalk.format != CROSSWALK_FORMAT {
        out.push(
            Diagnostic::error(
                "format",
                format!("unsupported crosswalk format `{}`", crosswalk.format),
            )
            .with_help(format!("this build reads format {CROSSWALK_FORMAT}")),
        );
    }
    let ids = [from.id(), to.id()];
    for (field, id, expected) in [
        ("from", &crosswalk.from, from.id()),
        ("to", &crosswalk.to, to.id()),
    ] {
        if id != expected {
            out.push(
                Diagnostic::error(
                    field,
                    format!(
                        "the crosswalk's `{field}` catalog is `{id}`, but it is read between `{}` and `{}`",
                        from.id(),
                        to.id()
                    ),
                )
                .with_help(did_you_mean(id, ids.iter().copied())),
            );
        }
    }
    if crosswalk.from == crosswalk.to {
        out.push(Diagnostic::error(
            "to",
            "a crosswalk joins two different catalogs",
        ));
    }
    let from_areas: Vec<&str> = from.areas().iter().map(|a| a.id.as_str()).collect();
    let to_areas: Vec<&str> = to.areas().iter().map(|a| a.id.as_str()).collect();
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    let mut equal_from: HashMap<&str, &str> = HashMap::new();
    let mut equal_to: HashMap<&str, &str> = HashMap::new();
    for (i, r) in crosswalk.relations.iter().enumerate() {
        let at = format!("relations[{i}]");
        if !from_areas.contains(&r.from.as_str()) {
            out.push(
                Diagnostic::error(
                    format!("{at}.from"),
                    format!("catalog `{}` has no area `{}`", from.id(), r.from),
                )
                .with_help(did_you_mean(&r.from, from_areas.iter().copied())),
            );
        }
        if !to_areas.contains(&r.to.as_str()) {
            out.push(
                Diagnostic::error(
                    format!("{at}.to"),
                    format!("catalog `{}` has no area `{}`", to.id(), r.to),
                )
                .with_help(did_you_mean(&r.to, to_areas.iter().copied())),
            );
        }
        if r.rationale.trim().is_empty() {
            out.push(Diagnostic::error(
                format!("{at}.rationale"),
                "a relation needs a rationale citing both sources",
            ));
        }
        if let Some(first) = seen.insert((r.from.as_str(), r.to.as_str()), i) {
            out.push(
                Diagnostic::error(
                    format!("{at}.to"),
                    format!(
                        "`{}` and `{}` are already related at relations[{first}]",
                        r.from, r.to
                    ),
                )
                .with_help("one relation per pair of areas; merge the two"),
            );
        }
        if r.relation == RelationKind::Equal {
            for (map, this, other, side) in [
                (&mut equal_from, r.from.as_str(), r.to.as_str(), "from"),
                (&mut equal_to, r.to.as_str(), r.from.as_str(), "to"),
            ] {
                if let Some(prev) = map.insert(this, other)
                    && prev != other
                {
                    out.push(
                        Diagnostic::error(
                            format!("{at}.relation"),
                            format!(
                                "`{this}` ({side}) is `equal` to both `{prev}` and `{other}`"
                            ),
                        )
                        .with_help("an area equals at most one area of the other catalog; use `subset` or `intersects`"),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_and_superset_are_each_others_inverse() {
        use RelationKind::*;
        for k in [Equal, Subset, Superset, Intersects] {
            assert_eq!(k.inverse().inverse(), k);
        }
        assert_eq!(Subset.inverse(), Superset);
        assert_eq!(Equal.inverse(), Equal);
        assert_eq!(Intersects.inverse(), Intersects);
    }
}
