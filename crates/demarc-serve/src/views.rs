//! What the API and the pages both compute: catalog citations of a duty, team tallies, user
//! pseudonyms, gateway activity per day, and the admin actions (each an audit event).

use std::collections::BTreeMap;

use demarc_model::CheckedCatalog;
use demarc_model::assess::{ApplicationAssessment, Assessment, DutyAssessment, EvidenceStatus};
use demarc_store::{EstateRecord, NewApiKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::api::{ActivityDay, RecordedRun, TeamSummary};
use crate::auth::Principal;
use crate::error::ServeError;
use crate::state::App;

/// The catalog cell a duty was read from: owner, note and the citation of its source.
#[derive(Debug, Clone, Serialize)]
pub struct CellCitation {
    pub owner: String,
    pub lead: Option<String>,
    pub note: String,
    pub source: String,
    pub basis: String,
}

pub fn citation(catalog: &CheckedCatalog, duty: &DutyAssessment) -> Option<CellCitation> {
    let area = catalog.areas().iter().find(|a| a.id == duty.area)?;
    let cell = catalog.cell(area, &duty.service_model)?;
    Some(CellCitation {
        owner: cell.owner.as_str().to_owned(),
        lead: cell.lead.map(|l| l.as_str().to_owned()),
        note: cell.note.clone(),
        source: cell.source.clone(),
        basis: cell.basis.as_str().to_owned(),
    })
}

/// Whether a duty's evidence runs out within the assessment's expiring window.
pub fn expiring(duty: &DutyAssessment) -> bool {
    duty.evidence == EvidenceStatus::Expiring
}

pub fn teams(assessment: &Assessment) -> Vec<TeamSummary> {
    let mut by_team: BTreeMap<&str, TeamSummary> = BTreeMap::new();
    for d in assessment.applications.iter().flat_map(|a| &a.duties) {
        let Some(team) = d.owner_team.as_deref() else {
            continue;
        };
        let t = by_team.entry(team).or_insert_with(|| TeamSummary {
            team: team.to_owned(),
            duties: 0,
            covered: 0,
            expiring: 0,
        });
        t.duties += 1;
        t.covered += usize::from(d.covered);
        t.expiring += usize::from(expiring(d));
    }
    by_team.into_values().collect()
}

/// A team's duties across the estate's applications, in estate order.
pub fn team_duties<'a>(
    assessment: &'a Assessment,
    team: &'a str,
) -> impl Iterator<Item = (&'a ApplicationAssessment, &'a DutyAssessment)> + 'a {
    assessment.applications.iter().flat_map(move |a| {
        a.duties
            .iter()
            .filter(move |d| d.owner_team.as_deref() == Some(team))
            .map(move |d| (a, d))
    })
}

/// A stable stand-in for a user name: keyed with the store's secret, so the same user has the
/// same pseudonym on every page and replica, and names cannot be confirmed by hashing guesses.
pub fn pseudonym(key: &str, user: &str) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(user.as_bytes());
    let digest = h.finalize();
    format!("user-{}", hex::encode(&digest[..5]))
}

pub fn day_label(day: i64) -> String {
    demarc_model::Date::from_days_since_epoch(day).to_string()
}

pub async fn activity(app: &App, days: u32) -> Result<Vec<ActivityDay>, ServeError> {
    let today = demarc_model::Date::today();
    let from = crate::assessing::start_of(today.add_days(-i64::from(days)));
    Ok(app
        .store
        .gateway_traffic_by_day(from)
        .await?
        .into_iter()
        .map(|d| ActivityDay {
            application: d.application,
            day: day_label(d.day),
            requests: d.requests,
            served: d.served,
            blocked: d.blocked,
            refused: d.refused,
            failed: d.failed,
            redactions: d.redactions,
            timed: d.timed,
            mean_latency_ms: d.mean_latency_ms,
        })
        .collect())
}

/// Assesses the estate now and records the run, as `demarc assess --record` does.
pub async fn record_run(app: &App, who: &Principal) -> Result<RecordedRun, ServeError> {
    let live = app.live().await?;
    let results: Vec<demarc_store::DutyResult> = live
        .assessment
        .applications
        .iter()
        .flat_map(crate::assessing::duty_results)
        .collect();
    let estate = EstateRecord::from_content(live.estate_name.clone(), &live.estate_bytes);
    let run = app
        .store
        .record_assessment(&estate, time::OffsetDateTime::now_utc(), &results)
        .await?;
    app.history_changed().await;
    let covered = results.iter().filter(|r| r.covered).count();
    app.audit(
        who,
        "assessment.record",
        serde_json::json!({"run": run, "duties": results.len(), "covered": covered}),
    )
    .await?;
    Ok(RecordedRun {
        run,
        duties: results.len(),
        covered,
    })
}

/// Creates a gateway key for an application of the estate.
pub async fn create_key(
    app: &App,
    who: &Principal,
    application: &str,
) -> Result<NewApiKey, ServeError> {
    let live = app.live().await?;
    if !live
        .estate
        .applications()
        .iter()
        .any(|a| a.id == application)
    {
        return Err(ServeError::BadRequest(format!(
            "no application `{application}` in the estate"
        )));
    }
    let created = app.store.create_api_key(application).await?;
    app.audit(
        who,
        "gateway_key.create",
        serde_json::json!({"key_id": created.key.id, "for_application": application}),
    )
    .await?;
    Ok(created)
}

pub async fn revoke_key(app: &App, who: &Principal, id: &str) -> Result<bool, ServeError> {
    let keys = app.store.list_api_keys(None).await?;
    if !keys.iter().any(|k| k.id == id) {
        return Err(ServeError::NotFound(format!("no gateway key `{id}`")));
    }
    let revoked = app.store.revoke_api_key(id).await?;
    app.audit(
        who,
        "gateway_key.revoke",
        serde_json::json!({"key_id": id, "changed": revoked}),
    )
    .await?;
    Ok(revoked)
}

/// What-if for one application of the live estate, as `demarc what-if` computes it (declared
/// controls and evidence, judged today).
pub fn what_if(
    app: &App,
    live: &crate::state::Live,
    application: &str,
    q: &WhatIfQuery,
) -> Result<demarc_model::whatif::WhatIf, ServeError> {
    let service_model = q
        .service_model
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ServeError::BadRequest("give `service_model`".into()))?;
    let change = demarc_model::whatif::Change {
        service_model,
        provider: q.provider.clone().filter(|s| !s.is_empty()),
        component: q.component.clone().filter(|s| !s.is_empty()),
    };
    let options = demarc_model::assess::AssessOptions::new(live.assessment.date);
    demarc_model::whatif::what_if(&live.estate, app.catalog(), application, &change, &options)
        .map_err(|e| match e {
            demarc_model::whatif::WhatIfError::UnknownApplication { .. } => {
                ServeError::NotFound(e.to_string())
            }
            _ => ServeError::BadRequest(e.to_string()),
        })
}

/// The change a what-if asks about.
#[derive(Debug, Default, serde::Deserialize)]
pub struct WhatIfQuery {
    pub service_model: Option<String>,
    pub provider: Option<String>,
    pub component: Option<String>,
}
