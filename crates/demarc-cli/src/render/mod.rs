//! Output formats shared by the commands: aligned terminal tables, Markdown, CSV and the
//! self-contained HTML report. JSON is serde's and lives with each command's data.

pub mod html;
pub mod table;

/// Colours for the owner of a responsibility, the same in every format.
pub fn owner_label(owner: &str, lead: Option<&str>) -> String {
    match (owner, lead) {
        ("shared", Some(lead)) => format!("shared ({lead} leads)"),
        (owner, _) => owner.to_string(),
    }
}

/// One CSV record, quoting fields that need it (RFC 4180).
pub fn csv_record(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// A Markdown table.
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("| {} |\n", headers.join(" | "));
    out.push_str(&format!("|{}\n", " --- |".repeat(headers.len())));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        let r = csv_record(&["a".into(), "b,c".into(), "say \"hi\"".into()]);
        assert_eq!(r, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn markdown_escapes_pipes() {
        let t = markdown_table(&["x"], &[vec!["a|b".into()]]);
        assert!(t.contains("a\\|b"));
    }
}
