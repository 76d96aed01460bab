//! Output formats shared by the commands, one module per format: `table` (the terminal),
//! `markdown`, `csv` and `html` (askama templates under `templates/html/`); `text` holds the
//! words every format shares. JSON is serde's and lives with each command's data.
//! Every format treats text from estates, catalogs and logs as hostile: see
//! `docs/output-formats.md`.

pub mod csv;
pub mod html;
pub mod markdown;
pub mod table;
pub mod text;

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

/// A matrix cell in a few characters: the owner (with the lead of a shared cell) and the
/// basis marker (`*` inferred, `!` disputed).
pub fn cell_label(cell: &demarc_model::catalog::Cell) -> String {
    format!(
        "{}{}",
        owner_label(cell.owner.as_str(), cell.lead.map(|l| l.as_str())),
        cell.basis.marker()
    )
}

/// What the markers of [`cell_label`] mean, for the line under a matrix.
pub const BASIS_LEGEND: &str = "Markers: * inferred (demarc's reading where the source is silent), ! disputed (the source contradicts itself); model-dependent: the estate's `owners` says who owns it";

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
    fn counts_of_addresses() {
        assert_eq!(count(2, "address"), "2 addresses");
    }
}
