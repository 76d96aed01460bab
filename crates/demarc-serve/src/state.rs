//! What every request shares: the store, the catalog, the estate, and the live assessment of
//! that estate with the store's observations, computed at most every few seconds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use demarc_model::assess::{AssessOptions, Assessment, assess};
use demarc_model::{CheckedCatalog, CheckedEstate, Date};
use demarc_store::{HistoryPoint, NewAuditEvent, Store, VerifyReport};
use tokio::sync::Mutex;

use crate::assessing;
use crate::auth::Principal;
use crate::error::ServeError;

/// A live assessment is reused for this long (and while the estate file is unchanged):
/// pages read it several times a second under load, observations change by the minute.
const FRESH_FOR: Duration = Duration::from_secs(10);

/// A verification of every audit chain is reused for this long: it reads every event, and a
/// page view must not cost that much.
const AUDIT_FRESH_FOR: Duration = Duration::from_secs(60);

/// The audit chain that admin actions and logins are appended to.
pub const AUDIT_CHAIN: &str = "serve";

/// How `demarc serve` was started.
pub struct ServeOptions {
    pub catalog: CheckedCatalog,
    /// The estate the dashboard assesses; without one, the pages and endpoints that need it
    /// say so (409 `no_estate`) and the rest work.
    pub estate: Option<PathBuf>,
    /// Every page and endpoint but the admin ones readable without a token (`--public-read`,
    /// for a trusted network), as the `viewer` role.
    pub public_read: bool,
    /// Observations count from this many days before today.
    pub observed_days: u32,
    /// Evidence expiring within this many days is reported as expiring.
    pub expiring_days: i64,
}

/// The shared state of one `demarc serve` process.
pub struct App {
    pub(crate) store: Store,
    pub(crate) options: ServeOptions,
    live: Mutex<Option<Cached>>,
    verified: Mutex<Option<(Instant, time::OffsetDateTime, Arc<VerifyReport>)>>,
    history: Mutex<Option<(Instant, Arc<Vec<HistoryPoint>>)>>,
    /// Started by the first ingested batch.
    gatherer: std::sync::OnceLock<crate::gathering::Gatherer>,
}

struct Cached {
    at: Instant,
    modified: Option<SystemTime>,
    live: Arc<Live>,
}

/// The estate as assessed now, with what the store observed.
pub struct Live {
    pub assessment: Assessment,
    pub estate: CheckedEstate,
    /// The estate file's path as given, and its bytes (what a recorded run hashes).
    pub estate_name: String,
    pub estate_bytes: Vec<u8>,
}

impl App {
    pub fn new(store: Store, options: ServeOptions) -> Arc<App> {
        Arc::new(App {
            store,
            options,
            live: Mutex::new(None),
            verified: Mutex::new(None),
            history: Mutex::new(None),
            gatherer: std::sync::OnceLock::new(),
        })
    }

    /// The task that gathers ingested batches into runs (call inside the runtime).
    pub(crate) fn gatherer(
        &self,
        catalog: &'static demarc_discover::Catalog,
    ) -> &crate::gathering::Gatherer {
        self.gatherer
            .get_or_init(|| crate::gathering::Gatherer::start(self.store.clone(), catalog))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn catalog(&self) -> &CheckedCatalog {
        &self.options.catalog
    }

    /// The live assessment, recomputed when older than a few seconds or when the estate file
    /// changed. One request computes it while the others wait for the result.
    pub async fn live(&self) -> Result<Arc<Live>, ServeError> {
        let path = self.options.estate.as_ref().ok_or(ServeError::NoEstate)?;
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut cached = self.live.lock().await;
        if let Some(c) = cached.as_ref()
            && c.at.elapsed() < FRESH_FOR
            && c.modified == modified
        {
            return Ok(c.live.clone());
        }
        let live = Arc::new(self.assess_now(path).await?);
        *cached = Some(Cached {
            at: Instant::now(),
            modified,
            live: live.clone(),
        });
        Ok(live)
    }

    async fn assess_now(&self, path: &std::path::Path) -> Result<Live, ServeError> {
        let estate_name = path.display().to_string();
        let invalid = |reason: String| ServeError::Estate {
            file: estate_name.clone(),
            reason,
        };
        let bytes = read_bounded(path).map_err(&invalid)?;
        let today = Date::today();
        let since = today.add_days(-i64::from(self.options.observed_days));
        let observations = assessing::StoreObservations::read(&self.store, since, today).await?;
        let catalog = self.options.catalog.clone();
        let expiring = self.options.expiring_days;
        let path = path.to_path_buf();
        let name = estate_name.clone();
        // Parsing and assessing a large estate takes milliseconds of CPU: off the reactor.
        let work = tokio::task::spawn_blocking(move || -> Result<Live, String> {
            let checked = CheckedEstate::from_bytes(&name, &bytes, &catalog)
                .map_err(|d| d.to_string().lines().next().unwrap_or("").to_owned())?;
            let estate = checked.estate;
            let mut options = AssessOptions::new(today);
            options.expiring_within_days = expiring;
            options.files = assessing::check_evidence_files(&path, &estate);
            observations.apply(&estate, &mut options);
            let assessment = assess(&estate, &catalog, &options);
            Ok(Live {
                assessment,
                estate,
                estate_name: name,
                estate_bytes: bytes,
            })
        });
        match work.await {
            Ok(result) => result.map_err(invalid),
            Err(e) => Err(invalid(format!("the assessment stopped: {e}"))),
        }
    }

    /// Coverage per recorded run and application, for the overview's chart: read at most
    /// every few seconds (it sums every recorded duty result), and again after a run is
    /// recorded here.
    pub async fn history(&self) -> Result<Arc<Vec<HistoryPoint>>, ServeError> {
        let mut cached = self.history.lock().await;
        if let Some((at, points)) = cached.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(points.clone());
        }
        let points = Arc::new(self.store.history(None).await?);
        *cached = Some((Instant::now(), points.clone()));
        Ok(points)
    }

    /// Forgets the cached history (a run was just recorded).
    pub async fn history_changed(&self) {
        *self.history.lock().await = None;
    }

    /// Every audit chain verified, and when: at most a minute old.
    pub async fn verified_audit(
        &self,
    ) -> Result<(time::OffsetDateTime, Arc<VerifyReport>), ServeError> {
        let mut cached = self.verified.lock().await;
        if let Some((at, when, report)) = cached.as_ref()
            && at.elapsed() < AUDIT_FRESH_FOR
        {
            return Ok((*when, report.clone()));
        }
        let report = Arc::new(self.store.verify_audit().await?);
        let when = time::OffsetDateTime::now_utc();
        *cached = Some((Instant::now(), when, report.clone()));
        Ok((when, report))
    }

    /// Appends an audit event for what `who` did (an admin action, a login). A failure is
    /// logged and returned: an admin action whose audit event cannot be written is refused.
    pub async fn audit(
        &self,
        who: &Principal,
        action: &str,
        detail: serde_json::Value,
    ) -> Result<(), ServeError> {
        // No `application` field: the store counts events that carry one as gateway traffic.
        let payload = serde_json::json!({
            "kind": "serve",
            "action": action,
            "token_id": who.token_id,
            "token_label": who.label,
            "role": who.role,
            "detail": detail,
        });
        let event = NewAuditEvent {
            at: time::OffsetDateTime::now_utc(),
            payload: payload.to_string(),
        };
        self.store
            .append_audit_batch(AUDIT_CHAIN, &[event])
            .await
            .map_err(|e| {
                tracing::error!(error = %e, action, "cannot append the audit event");
                ServeError::Store(e)
            })?;
        Ok(())
    }
}

/// Reads the estate with the model's size bound.
fn read_bounded(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let limit = demarc_model::parse::MAX_FILE_BYTES as u64;
    if meta.len() > limit {
        return Err(format!(
            "it is {} bytes; the limit is {limit} bytes",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))
}
