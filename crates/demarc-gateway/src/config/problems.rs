//! What validation of a gateway config finds: problems named by field, turned into located
//! diagnostics with "did you mean".

/// The problems validation finds, each written `PATH: message` where PATH is the field's
/// document path, with the item's id after an index for the reader
/// (`upstreams[1] (`a`).base_url`).
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<String>);

impl Problems {
    pub(super) fn push(&mut self, problem: String) {
        self.0.push(problem);
    }

    /// Located diagnostics: each problem as written (it names the field and the item's id),
    /// at the line and column demarc-yaml's source map finds for its path without the ids;
    /// "did you mean" when a given name is close to one the message lists.
    pub(super) fn into_diagnostics(self, file: &str, text: &str) -> demarc_model::Diagnostics {
        let map = demarc_yaml::SourceMap::build(text);
        let end = demarc_yaml::Location::end_of(text);
        let mut out = demarc_model::Diagnostics::new(file);
        for problem in self.0 {
            let (shown, message) = problem.split_once(": ").unwrap_or(("", &problem));
            let mut path = String::with_capacity(shown.len());
            let mut rest = shown;
            while let Some(start) = rest.find(" (`") {
                path.push_str(&rest[..start]);
                rest = rest[start..]
                    .split_once("`)")
                    .map_or("", |(_, after)| after);
            }
            path.push_str(rest);
            let mut d = demarc_model::Diagnostic::error("", problem.clone());
            d.location = map.find(&path).map(|l| l.clamp_to(end));
            d.help = suggestion(message);
            out.push(d);
        }
        out.items.sort_by_key(|d| d.location);
        out
    }
}

/// "did you mean" for a message whose first quoted name is close to one it lists after it
/// (`` `gcp` is not one of `openai`, `azure` ``, `` unknown upstream `b` (known: `a`) ``).
fn suggestion(message: &str) -> Option<String> {
    if message.contains("did you mean") {
        return None;
    }
    let mut quoted = message.split('`').skip(1).step_by(2);
    let given = quoted.next()?;
    let candidates: Vec<&str> = quoted.collect();
    demarc_model::diag::suggest(given, candidates.iter().copied())
        .filter(|s| *s != given)
        .map(|s| format!("did you mean `{s}`?"))
}
