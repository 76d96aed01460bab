//! The words every format shares: an assessment's proof lines (control statement, declared
//! and observed evidence, contradictions, risk acceptances), its summary sentence, and the
//! human forms of a discovery's sizes, times and identities. Each format module (`table`,
//! `markdown`, `csv`, `html`) escapes these for its own syntax.

use demarc_discover::catalog::{Role, ServiceModel};
use demarc_discover::report::Identities;
use demarc_model::assess::{
    AcceptedRisk, ApplicationAssessment, Contradiction, DeclaredEvidence, DutyAssessment,
    EvidenceStatus, ObservedItem, Summary, UnlistedService,
};

use super::count;

/// The evidence column: status and the date it counts until; `not needed` for a justified
/// not-applicable control.
pub fn evidence_label(d: &DutyAssessment) -> String {
    match (d.evidence, d.evidence_expires) {
        (EvidenceStatus::NotNeeded, _) => "not needed".to_string(),
        (e, Some(date)) => format!("{} ({date})", e.as_str()),
        (e, None) => e.as_str().to_string(),
    }
}

/// `covered`, `risk accepted: gaps`, or the gaps.
pub fn status_label(d: &DutyAssessment) -> String {
    if d.covered {
        "covered".to_string()
    } else if d.risk_accepted {
        format!("risk accepted: {}", d.gap_list(", "))
    } else {
        d.gap_list(", ")
    }
}

/// The provider a shared duty is shared with, or `-`.
pub fn shared_with(d: &DutyAssessment) -> String {
    d.shared_with().unwrap_or("-").to_string()
}

/// One line for a piece of reviewed evidence.
pub fn declared_line(e: &DeclaredEvidence) -> String {
    let mut s = format!("declared: {}", e.description);
    let mut at = Vec::new();
    if let Some(link) = &e.link {
        at.push(link.clone());
    }
    if let Some(file) = &e.file {
        let check = match (&e.file_check, &e.sha256) {
            (Some(c), _) => format!("sha256 {}", c.as_str()),
            (None, Some(_)) => "sha256 not checked".to_string(),
            (None, None) => "no sha256".to_string(),
        };
        at.push(format!("file {file}, {check}"));
    }
    if !at.is_empty() {
        s.push_str(&format!(" [{}]", at.join("; ")));
    }
    s.push_str(&format!("; reviewed by {} on {}", e.reviewer, e.reviewed));
    match (e.expires, e.valid_until) {
        (Some(x), _) => s.push_str(&format!(", expires {x}")),
        (None, Some(v)) => s.push_str(&format!(", stale after {v} (maximum review age)")),
        (None, None) => {}
    }
    match &e.problem {
        Some(p) => s.push_str(&format!(" — does not count: {p}")),
        None => s.push_str(&format!(" — {}", e.status.as_str())),
    }
    s
}

/// One line for an observation.
pub fn observed_line(o: &ObservedItem) -> String {
    format!(
        "observed ({}, {}): {}; seen {}, valid until {} — {}{}",
        o.kind,
        o.source,
        o.summary,
        o.observed_at,
        o.expires,
        o.status.as_str(),
        if o.accepted {
            ", accepted as evidence on its own"
        } else {
            ", listed beside reviewed evidence"
        }
    )
}

pub fn contradiction_line(c: &Contradiction) -> String {
    format!(
        "contradicted ({}): {} [{}, last {}]",
        c.kind.as_str(),
        c.detail,
        c.source,
        c.time
    )
}

pub fn acceptance_line(r: &AcceptedRisk) -> String {
    format!(
        "risk acceptance ({}): owner {}, approved by {} on {}, expires {}: {}",
        r.status.as_str(),
        r.owner,
        r.approved_by,
        r.approved,
        r.expires,
        r.reason
    )
}

/// Every proof line of a duty, in a fixed order.
pub fn proof_lines(d: &DutyAssessment) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(st) = &d.control_statement {
        out.push(format!("control ({}): {st}", d.control.as_str()));
    }
    out.extend(d.declared_evidence.iter().map(declared_line));
    out.extend(d.observed_evidence.iter().map(observed_line));
    out.extend(d.contradictions.iter().map(contradiction_line));
    out.extend(d.risk_acceptance.iter().map(acceptance_line));
    out
}

/// `area` or `area [component]` when the application has several duties for one area.
pub fn duty_name(app: &ApplicationAssessment, d: &DutyAssessment) -> String {
    let several = app
        .duties
        .iter()
        .filter(|o| o.area == d.area)
        .nth(1)
        .is_some();
    if several {
        format!("{} [{}]", d.area, d.component)
    } else {
        d.area.clone()
    }
}

/// The application's contradictions that no duty lists (the catalog maps the observation to
/// none of its areas): shown once for the application.
pub fn unattached_contradictions(
    app: &ApplicationAssessment,
) -> impl Iterator<Item = &Contradiction> {
    app.contradictions
        .iter()
        .filter(|c| !app.duties.iter().any(|d| d.contradictions.contains(c)))
}

pub fn inherited_line(app: &ApplicationAssessment) -> Option<String> {
    (!app.inherited.is_empty()).then(|| {
        app.inherited
            .iter()
            .map(|i| format!("{} ({}, via {})", i.area, i.provider, i.component))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

pub fn app_heading(app: &ApplicationAssessment) -> String {
    format!(
        "{} ({}) — {}, {}, owner {}: {} of {} covered ({})",
        app.name,
        app.id,
        app.status.as_str(),
        app.service_models.join("+"),
        app.owner,
        app.coverage.covered,
        count(app.coverage.total, "duty"),
        app.coverage.percent_label()
    )
}

/// Whether the duty's owner is model-dependent and the estate does not resolve it.
pub fn unresolved(d: &demarc_model::assess::DutyAssessment) -> bool {
    d.gaps.contains(&demarc_model::assess::Gap::Unresolved)
}

/// `3 unowned`, with the unresolved model-dependent duties when there are any.
fn unowned_label(s: &Summary) -> String {
    if s.unresolved > 0 {
        format!(
            "{} unowned, {} unresolved (model-dependent)",
            s.unowned, s.unresolved
        )
    } else {
        format!("{} unowned", s.unowned)
    }
}

/// The summary in one sentence, the same in every text format.
pub fn summary_sentence(s: &Summary, expiring_within_days: i64) -> String {
    let statuses = s
        .applications_by_status
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} ({statuses}), {}, {} covered ({}), {} not covered: {} evidence missing, {} expired, {} mismatched, {} contradicted, {}, {} risk accepted; {} expiring within {} days, {} not applicable, {} inherited from providers; {} in use that no application covers",
        count(s.applications, "application"),
        count(s.duties, "customer duty"),
        s.coverage.covered,
        s.coverage.percent_label(),
        s.gaps,
        s.evidence_missing,
        s.evidence_expired,
        s.evidence_mismatch,
        s.contradicted,
        unowned_label(s),
        s.risk_accepted,
        s.evidence_expiring,
        expiring_within_days,
        s.not_applicable,
        count(s.inherited, "area"),
        count(s.unlisted_services, "unlisted GenAI service"),
    )
}

/// One line for a GenAI service seen in use that no application covers.
pub fn unlisted_line(u: &UnlistedService) -> String {
    let tenant = u
        .tenant
        .as_ref()
        .map(|t| format!(" at {t}"))
        .unwrap_or_default();
    format!(
        "unlisted-service {}{tenant} ({}): {} ({} blocked by the proxy) by {} between {} and {} [{}]",
        u.service,
        u.status,
        count(u.requests, "request"),
        u.blocked,
        count(u.identities, "identity"),
        u.first_seen,
        u.last_seen,
        u.source
    )
}

/// A discovery service model as its id: `saas`, `paas`, `iaas`.
pub fn model_name(m: ServiceModel) -> &'static str {
    match m {
        ServiceModel::Saas => "saas",
        ServiceModel::Paas => "paas",
        ServiceModel::Iaas => "iaas",
    }
}

/// `2 users, 3 addresses` (after mapping); `nobody known` when there are none.
pub fn identities_text(i: &Identities) -> String {
    let mut parts = Vec::new();
    if i.user > 0 {
        parts.push(count(i.user, "user"));
    }
    if i.ip > 0 {
        parts.push(count(i.ip, "address"));
    }
    if i.device > 0 {
        parts.push(count(i.device, "device"));
    }
    if parts.is_empty() {
        "nobody known".to_owned()
    } else {
        parts.join(", ")
    }
}

/// ` (3 allowed, 1 blocked by the proxy)`, or nothing when the log does not say.
pub fn proxy_text(blocked: u64, allowed: u64) -> String {
    match (blocked, allowed) {
        (0, 0) => String::new(),
        (b, a) => format!(" ({a} allowed, {b} blocked by the proxy)"),
    }
}

/// The host roles as text: `api, ui`.
pub fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `4.0 KiB`, `812 B`; `unknown` when the log has no such field.
pub fn human_bytes(n: Option<u64>) -> String {
    let Some(n) = n else {
        return "unknown".to_owned();
    };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `2023-11-14 22:13 UTC` from RFC 3339; `unknown` when there is none.
pub fn human_time(t: Option<&str>) -> String {
    match t {
        Some(t) if t.len() >= 16 && [10, 11, 16].iter().all(|&i| t.is_char_boundary(i)) => {
            format!("{} {} UTC", &t[..10], &t[11..16])
        }
        Some(t) => t.to_owned(),
        None => "unknown".to_owned(),
    }
}

/// `no relation in `x`: `a`, `b``, or that every area of the catalog is related.
pub fn unrelated_line(catalog: &str, areas: &[(&str, &str)]) -> String {
    if areas.is_empty() {
        return format!("every area of `{catalog}` is related");
    }
    let ids: Vec<String> = areas.iter().map(|(id, _)| format!("`{id}`")).collect();
    format!(
        "{} of `{catalog}` with no relation: {}",
        super::count(areas.len(), "area"),
        ids.join(", ")
    )
}

/// `customer`, `shared (provider leads)`, `provider (from owners)`, `model-dependent
/// (unresolved)`: a compared cell's owner in words.
pub fn cell_owner_label(c: &demarc_model::compare::CellRead<'_>) -> String {
    let base = match c.owner {
        demarc_model::catalog::Owner::ModelDependent => "model-dependent (unresolved)".to_string(),
        o => super::owner_label(o.as_str(), c.lead.map(|l| l.as_str())),
    };
    if c.owner_from_estate {
        format!("{base} (from owners)")
    } else {
        base
    }
}

/// `cosai-srf-1.0 foundation-models @ai-paas`: which cell; `(for gpt-4o)` added when read
/// for another component than the row's.
pub fn cell_name(c: &demarc_model::compare::CellRead<'_>) -> String {
    format!("{} {} @{}", c.catalog.id(), c.area.id, c.service_model)
}

/// The component(s) of a disagreement: `gpt-4o`, or `gpt-4o / assistant-web` when the two
/// catalogs' layers pick different components.
pub fn disagreement_components(d: &demarc_model::compare::Disagreement<'_>) -> String {
    if std::ptr::eq(d.a.component, d.b.component) {
        d.a.component.id.clone()
    } else {
        format!("{} / {}", d.a.component.id, d.b.component.id)
    }
}

/// The one-line summary of a comparison.
pub fn comparison_summary(report: &demarc_model::compare::Comparison<'_>) -> String {
    let s = &report.summary;
    let mut line = format!(
        "{} under {}: {} ({} about the accountable party, {} about the owner) and {} in {} of {}",
        super::count(s.applications, "application"),
        super::count(report.catalogs.len(), "catalog"),
        super::count(s.disagreements, "disagreement"),
        s.accountable,
        s.owner,
        super::count(s.unresolved, "unresolved model-dependent cell"),
        super::count(s.applications_listed, "application"),
        s.applications,
    );
    for (a, b) in &report.not_compared {
        line.push_str(&format!("; `{a}` and `{b}` not compared (no crosswalk)"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_times_and_identities_read_as_words() {
        assert_eq!(human_bytes(None), "unknown");
        assert_eq!(human_bytes(Some(812)), "812 B");
        assert_eq!(human_bytes(Some(4096)), "4.0 KiB");
        assert_eq!(
            human_time(Some("2023-11-14T22:13:20Z")),
            "2023-11-14 22:13 UTC"
        );
        assert_eq!(human_time(None), "unknown");
        let i = Identities {
            user: 2,
            ip: 1,
            device: 0,
        };
        assert_eq!(identities_text(&i), "2 users, 1 address");
        assert_eq!(identities_text(&Identities::default()), "nobody known");
    }
}
