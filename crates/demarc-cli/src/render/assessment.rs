//! `demarc assess` as a terminal table, Markdown and CSV. Each format carries the proof, not
//! only the statuses: the control statement, every piece of declared and observed evidence
//! (with file checks and dates), contradictions, risk acceptances, the provider a shared duty
//! is shared with, and the areas inherited from providers. The HTML report is in `html.rs`.

use demarc_model::assess::{
    AcceptedRisk, ApplicationAssessment, Assessment, Contradiction, DeclaredEvidence,
    DutyAssessment, EvidenceStatus, ObservedItem, Summary, UnlistedService,
};

use super::table::{Cell, Style, Table};
use super::{count, csv_record, markdown_table};

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
fn duty_name(app: &ApplicationAssessment, d: &DutyAssessment) -> String {
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
fn unattached_contradictions(app: &ApplicationAssessment) -> impl Iterator<Item = &Contradiction> {
    app.contradictions
        .iter()
        .filter(|c| !app.duties.iter().any(|d| d.contradictions.contains(c)))
}

fn inherited_line(app: &ApplicationAssessment) -> Option<String> {
    (!app.inherited.is_empty()).then(|| {
        app.inherited
            .iter()
            .map(|i| format!("{} ({}, via {})", i.area, i.provider, i.component))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn app_heading(app: &ApplicationAssessment) -> String {
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

/// The summary in one sentence, the same in every text format.
pub fn summary_sentence(s: &Summary, expiring_within_days: i64) -> String {
    let statuses = s
        .applications_by_status
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} ({statuses}), {}, {} covered ({}), {} not covered: {} evidence missing, {} expired, {} mismatched, {} contradicted, {} unowned, {} risk accepted; {} expiring within {} days, {} not applicable, {} inherited from providers; {} in use that no application covers",
        count(s.applications, "application"),
        count(s.duties, "customer duty"),
        s.coverage.covered,
        s.coverage.percent_label(),
        s.gaps,
        s.evidence_missing,
        s.evidence_expired,
        s.evidence_mismatch,
        s.contradicted,
        s.unowned,
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

fn evidence_style(e: EvidenceStatus) -> Style {
    match e {
        EvidenceStatus::Current => Style::Green,
        EvidenceStatus::Expiring => Style::Yellow,
        EvidenceStatus::Expired | EvidenceStatus::Missing => Style::Red,
        EvidenceStatus::NotNeeded => Style::Dim,
    }
}

pub fn table(report: &Assessment, color: bool) -> String {
    let mut out = format!(
        "{} — assessed {} against {} {}",
        report.organisation, report.date, report.catalog.id, report.catalog.version
    );
    if let Some(since) = report.observed_since {
        out.push_str(&format!(", observations since {since}"));
    }
    out.push('\n');
    for app in &report.applications {
        out.push_str(&format!("\n{}\n", app_heading(app)));
        let mut t = Table::new(&[
            "area",
            "accountable",
            "shared with",
            "team",
            "control",
            "evidence",
            "status",
        ]);
        for d in &app.duties {
            t.row(vec![
                duty_name(app, d).into(),
                d.accountable.label().into(),
                shared_with(d).into(),
                Cell::styled(
                    d.owner_team.clone().unwrap_or_else(|| "(unowned)".into()),
                    if d.owner_team.is_some() {
                        Style::Plain
                    } else {
                        Style::Red
                    },
                ),
                d.control.as_str().into(),
                Cell::styled(evidence_label(d), evidence_style(d.evidence)),
                if d.covered {
                    Cell::styled("covered", Style::Green)
                } else if d.risk_accepted {
                    Cell::styled(status_label(d), Style::Yellow)
                } else {
                    Cell::styled(status_label(d), Style::Red)
                },
            ]);
        }
        if t.is_empty() {
            out.push_str("  no customer duties\n");
        } else {
            out.push_str(&t.render(color));
        }
        for c in unattached_contradictions(app) {
            out.push_str(&format!("  {}\n", contradiction_line(c)));
        }
        for d in &app.duties {
            let lines = proof_lines(d);
            if lines.is_empty() {
                continue;
            }
            out.push_str(&format!("  {}:\n", duty_name(app, d)));
            for l in lines {
                out.push_str(&format!("    - {l}\n"));
            }
        }
        if let Some(line) = inherited_line(app) {
            out.push_str(&format!("  inherited from providers: {line}\n"));
        }
    }
    if !report.unlisted_services.is_empty() {
        out.push_str("\nGenAI services in use that no application covers (usage governance):\n");
        for u in &report.unlisted_services {
            out.push_str(&format!("  - {}\n", unlisted_line(u)));
        }
    }
    out.push_str(&format!(
        "\nsummary: {}\n",
        summary_sentence(&report.summary, report.expiring_within_days)
    ));
    out
}

pub fn markdown(report: &Assessment) -> String {
    let mut out = format!(
        "# GenAI responsibility assessment: {}\n\nAssessed {} against `{}` {}{}. **{} covered**.\n\n{}.\n",
        report.organisation,
        report.date,
        report.catalog.id,
        report.catalog.version,
        report
            .observed_since
            .map(|d| format!(", observations since {d}"))
            .unwrap_or_default(),
        report.summary.coverage.percent_label(),
        summary_sentence(&report.summary, report.expiring_within_days)
    );
    for app in &report.applications {
        out.push_str(&format!("\n## {}\n\n", app_heading(app)));
        let rows: Vec<Vec<String>> = app
            .duties
            .iter()
            .map(|d| {
                vec![
                    format!("`{}`", duty_name(app, d)),
                    d.accountable.label(),
                    shared_with(d),
                    d.owner_team.clone().unwrap_or_else(|| "**unowned**".into()),
                    d.control.as_str().into(),
                    evidence_label(d),
                    status_label(d),
                ]
            })
            .collect();
        if rows.is_empty() {
            out.push_str("No customer duties.\n");
        } else {
            out.push_str(&markdown_table(
                &[
                    "Area",
                    "Accountable",
                    "Shared with",
                    "Team",
                    "Control",
                    "Evidence",
                    "Status",
                ],
                &rows,
            ));
        }
        let mut proof: String = unattached_contradictions(app)
            .map(|c| format!("- {}\n", contradiction_line(c)))
            .collect();
        for d in &app.duties {
            let lines = proof_lines(d);
            if lines.is_empty() {
                continue;
            }
            proof.push_str(&format!("- `{}`\n", duty_name(app, d)));
            for l in lines {
                proof.push_str(&format!("  - {}\n", l.replace('\n', " ")));
            }
        }
        if !proof.is_empty() {
            out.push_str(&format!("\n**Proof**\n\n{proof}"));
        }
        if let Some(line) = inherited_line(app) {
            out.push_str(&format!("\nInherited from providers: {line}.\n"));
        }
    }
    if !report.unlisted_services.is_empty() {
        out.push_str("\n## GenAI services in use that no application covers\n\n");
        for u in &report.unlisted_services {
            out.push_str(&format!("- {}\n", unlisted_line(u)));
        }
    }
    out
}

/// One row per duty, then one per inherited area (`row` = `duty` or `inherited`), then one
/// per unlisted GenAI service (`row` = `unlisted-service`, the service id in `application`).
/// Lists inside a field are separated by ` | `.
pub fn csv(report: &Assessment) -> String {
    let mut out = csv_record(
        &[
            "application",
            "area",
            "owner",
            "accountable",
            "also_responsible",
            "owner_team",
            "control",
            "evidence",
            "evidence_expires",
            "covered",
            "gaps",
            "component",
            "shared_with",
            "control_statement",
            "declared_evidence",
            "observed_evidence",
            "contradictions",
            "risk_acceptance",
            "risk_accepted",
            "row",
        ]
        .map(String::from),
    );
    let join = |v: Vec<String>| v.join(" | ");
    for app in &report.applications {
        for d in &app.duties {
            out.push_str(&csv_record(&[
                app.id.clone(),
                d.area.clone(),
                d.owner.to_string(),
                d.accountable.label(),
                join(d.also_responsible.iter().map(|p| p.label()).collect()),
                d.owner_team.clone().unwrap_or_default(),
                d.control.as_str().to_string(),
                d.evidence.as_str().to_string(),
                d.evidence_expires
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                d.covered.to_string(),
                d.gap_list(" "),
                d.component.clone(),
                d.shared_with().unwrap_or_default().to_string(),
                d.control_statement.clone().unwrap_or_default(),
                join(d.declared_evidence.iter().map(declared_line).collect()),
                join(d.observed_evidence.iter().map(observed_line).collect()),
                join(d.contradictions.iter().map(contradiction_line).collect()),
                d.risk_acceptance
                    .as_ref()
                    .map(acceptance_line)
                    .unwrap_or_default(),
                d.risk_accepted.to_string(),
                "duty".to_string(),
            ]));
        }
        for i in &app.inherited {
            let mut row = vec![String::new(); 20];
            row[0] = app.id.clone();
            row[1] = i.area.clone();
            row[2] = "provider".into();
            row[3] = format!("provider:{}", i.provider);
            row[11] = i.component.clone();
            row[19] = "inherited".into();
            out.push_str(&csv_record(&row));
        }
    }
    for u in &report.unlisted_services {
        let mut row = vec![String::new(); 20];
        row[0] = u.service.clone();
        row[10] = "unlisted-service".into();
        row[16] = unlisted_line(u);
        row[19] = "unlisted-service".into();
        out.push_str(&csv_record(&row));
    }
    out
}
