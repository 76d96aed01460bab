//! Output formats shared by the commands: aligned terminal tables, Markdown, CSV and the
//! self-contained HTML report. JSON is serde's and lives with each command's data.

pub mod assessment;
pub mod html;
pub mod table;

/// `1 duty`, `2 duties`, `0 areas`: a count with its noun in the right number. The last word
/// of `noun` is inflected (`evidence item` → `evidence items`).
pub fn count<N: TryInto<u64>>(n: N, noun: &str) -> String {
    let n = n.try_into().unwrap_or(u64::MAX);
    if n == 1 {
        return format!("1 {noun}");
    }
    let (head, word) = match noun.rfind(' ') {
        Some(i) => noun.split_at(i + 1),
        None => ("", noun),
    };
    let mut chars = word.chars().rev();
    let (last, before) = (chars.next(), chars.next());
    let inflected = match (last, before) {
        (Some('y'), Some(b)) if !"aeiou".contains(b) => format!("{}ies", &word[..word.len() - 1]),
        (Some('s' | 'x'), _) => format!("{word}es"),
        (Some('h'), Some('c' | 's')) => format!("{word}es"),
        _ => format!("{word}s"),
    };
    format!("{n} {head}{inflected}")
}

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
    fn counts_agree_in_number() {
        assert_eq!(count(1, "duty"), "1 duty");
        assert_eq!(count(2, "customer duty"), "2 customer duties");
        assert_eq!(count(0, "application"), "0 applications");
        assert_eq!(count(3, "key"), "3 keys");
    }

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
