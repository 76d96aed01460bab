//! "did you mean" help: the closest candidate by edit distance.

/// The candidate closest to `given` when it is close enough to be a likely typo.
pub fn suggest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&given_lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean `x`?` help text, or a list of what is allowed when nothing is close.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    match suggest(given, candidates.clone()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            if all.is_empty() {
                "nothing of that kind is defined".to_string()
            } else if all.len() <= 12 {
                format!("expected one of {}", all.join(", "))
            } else {
                format!(
                    "expected one of {}, ... ({} in all)",
                    all[..12].join(", "),
                    all.len()
                )
            }
        }
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" messages (also written without
/// the backticks around the candidates), suggest the closest candidate.
pub fn help_for_serde_message(message: &str) -> Option<String> {
    let kind_start = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|p| message.find(p).map(|i| i + p.len()))?;
    let rest = &message[kind_start..];
    let given = &rest[..rest.find('`')?];
    let after_given = &rest[given.len() + 1..];
    let list = if let Some(i) = after_given.find("expected one of ") {
        &after_given[i + "expected one of ".len()..]
    } else if let Some(i) = after_given.find("expected ") {
        &after_given[i + "expected ".len()..]
    } else {
        return None;
    };
    let candidates: Vec<&str> = list
        .split(", ")
        .flat_map(|c| c.split(" or "))
        .map(|c| c.trim().trim_matches('`'))
        .filter(|c| !c.is_empty() && !c.contains(' '))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    Some(did_you_mean(given, candidates.iter().copied()))
}

/// Edit distance counting a swap of neighbours as one edit (optimal string alignment),
/// since transposed letters are the commonest typo. Inputs are short identifiers.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_ids_only() {
        assert_eq!(suggest("pass", ["iaas", "paas", "saas"]), Some("paas"));
        assert_eq!(suggest("PaaS", ["iaas", "paas", "saas"]), Some("paas"));
        assert_eq!(suggest("mainframe", ["iaas", "paas", "saas"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("modle", "model"), 1);
    }

    #[test]
    fn reads_both_message_styles() {
        for message in [
            "unknown field `kindd`, expected one of `name`, `kind`",
            "unknown field `kindd`, expected one of name, kind",
            "unknown variant `kindd`, expected `name` or `kind`",
        ] {
            assert_eq!(
                help_for_serde_message(message).as_deref(),
                Some("did you mean `kind`?"),
                "{message}"
            );
        }
        assert_eq!(help_for_serde_message("invalid type: map"), None);
    }
}
