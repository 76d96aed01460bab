//! The parts of the OSCAL 1.2.1 JSON model demarc writes, field names as OSCAL spells them.
//! Empty lists and absent values are left out (OSCAL arrays have at least one item).

use serde::Serialize;

pub const OSCAL_VERSION: &str = "1.2.1";
/// The namespace of demarc's own properties (`responsibility`, `lead`, `team`, ...).
pub const DEMARC_NS: &str = "https://example.invalid/demarc/ns/oscal";

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metadata {
    pub title: String,
    pub last_modified: String,
    pub version: String,
    pub oscal_version: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

impl Metadata {
    pub fn new(title: String, last_modified: String, version: String) -> Self {
        Self {
            title,
            last_modified,
            version,
            oscal_version: OSCAL_VERSION,
            props: Vec::new(),
            links: Vec::new(),
            roles: Vec::new(),
            parties: Vec::new(),
            remarks: None,
        }
    }
}

#[derive(Serialize, Clone)]
pub struct Prop {
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns: Option<&'static str>,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

impl Prop {
    /// A demarc property (in [`DEMARC_NS`]); the value made a valid OSCAL string.
    pub fn demarc(name: &'static str, value: &str) -> Self {
        Self {
            name,
            ns: Some(DEMARC_NS),
            value: line(value),
            class: None,
        }
    }

    /// An OSCAL property (no namespace).
    pub fn oscal(name: &'static str, value: &str) -> Self {
        Self {
            name,
            ns: None,
            value: line(value),
            class: None,
        }
    }

    pub fn class(mut self, class: &str) -> Self {
        self.class = Some(token(class));
        self
    }
}

#[derive(Serialize, Clone)]
pub struct Link {
    pub href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rel: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Serialize)]
pub struct Role {
    pub id: String,
    pub title: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Party {
    pub uuid: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResponsibleRole {
    pub role_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub party_uuids: Vec<String>,
}

#[derive(Serialize)]
pub struct Part {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Prop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prose: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

#[derive(Serialize, Default)]
pub struct BackMatter {
    pub resources: Vec<Resource>,
}

#[derive(Serialize)]
pub struct Resource {
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citation: Option<Citation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rlinks: Vec<Rlink>,
}

#[derive(Serialize)]
pub struct Citation {
    pub text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Rlink {
    pub href: String,
}

/// OSCAL's `string`: at least one character, no leading or trailing whitespace, one line.
/// Runs of whitespace become one space; an empty value becomes `-`.
pub fn line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

/// OSCAL's `token`: a letter or `_` first, then letters, digits, `.`, `-`, `_`. demarc ids
/// are tokens except when they start with a digit; those get a leading `_`.
pub fn token(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    if !s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
    {
        out.push('_');
    }
    out.extend(s.chars().map(|c| {
        if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
            c
        } else {
            '_'
        }
    }));
    out
}

/// A date as an OSCAL date-time at midnight UTC.
pub fn midnight(date: demarc_model::Date) -> String {
    format!("{date}T00:00:00Z")
}

/// An `href` (a URI reference) for a link or a relative file path: characters a URI may not
/// hold are percent-encoded.
pub fn href(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('#');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_tokens_are_valid_oscal() {
        assert_eq!(line("  two\nlines  "), "two lines");
        assert_eq!(line(" \n"), "-");
        assert_eq!(token("365-copilot"), "_365-copilot");
        assert_eq!(token("ai-platform"), "ai-platform");
        assert_eq!(href("evidence/a b.md"), "evidence/a%20b.md");
    }
}
