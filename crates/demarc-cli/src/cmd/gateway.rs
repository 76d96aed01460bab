//! `demarc gateway`: run the OpenAI-compatible enforcement point, from a config file or from an
//! estate and one upstream URL (the quick start).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use demarc_gateway::GuardPolicy;
use demarc_gateway::{ApplicationConfig, GatewayConfig, PolicySpec};
use demarc_gateway::{BackendError, Off, Policy};
use demarc_gateway::{DEFAULT_PASSAGES, Grounding, SourceSpec};
use demarc_gateway::{Gateway, Live, serve, shutdown_signal};
use demarc_gateway::{StoreCanaries, StoreCounters, StoreKeys, StoreSink, write_evidence};
use demarc_model::CheckedCatalog;
use demarc_model::CheckedEstate as Estate;
use demarc_model::estate::AppStatus;

use crate::Outcome;
use crate::cmd::common::{CatalogArg, load_estate};
use crate::cmd::db::StoreArgs;

/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the config and estate files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How often evidence of enforcement is written to the store.
const EVIDENCE_EVERY: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Gateway config file (YAML): upstreams, applications, policies, limits (every key:
    /// docs/gateway-config.md; an example: `examples/gateway.yaml`). Reloaded without a
    /// restart when it (or the estate file) changes, or on SIGHUP; one that does not load
    /// leaves the running config.
    #[arg(long, value_name = "FILE", conflicts_with = "upstream")]
    config: Option<PathBuf>,
    /// Estate file: without `--config`, every application in it that it sanctions or
    /// tolerates is served with its `guard_policy` (default: reversible redaction of personal
    /// data and secrets, prompt injection blocked); with `--config`, the applications'
    /// policies come from it where the config names none. With an estate, applications it
    /// marks `unsanctioned` or `discovered`, or does not list, are refused (403
    /// `application_not_served`) unless `--serve` or the config's `serve:` names them.
    #[arg(long, value_name = "FILE")]
    estate: Option<PathBuf>,
    /// Serve this application although the estate does not sanction or tolerate it
    /// (repeatable; adds to the config's `serve:` list).
    #[arg(long, value_name = "APP")]
    serve: Vec<String>,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Quick start: the OpenAI-compatible base URL every application goes to, e.g.
    /// `https://api.openai.com/v1`; its key is read from `DEMARC_UPSTREAM_API_KEY`.
    #[arg(long, value_name = "URL", requires = "estate")]
    upstream: Option<String>,
    /// Address to listen on (overrides the config's `listen`; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Worker threads serving requests (default: one per core). Fewer leave cores to
    /// processes beside the gateway on the same machine.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    workers: Option<u16>,
    /// Count rate limits and token budgets in this Redis (`redis://[user:password@]host:port`),
    /// shared exactly by every gateway replica that uses it (overrides the config's `redis:`;
    /// when Redis cannot be reached, the config's `shared_limits_fallback` decides:
    /// docs/gateway-config.md).
    #[arg(
        long,
        value_name = "URL",
        env = "DEMARC_REDIS_URL",
        hide_env_values = true
    )]
    redis: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// The canaries the gateway injects into applications' system context
    /// (`canary: {inject: true}` in the config): list them, or rotate one now.
    Canary(crate::cmd::canary::Args),
}

pub fn run(mut args: Args) -> anyhow::Result<Outcome> {
    if let Some(Action::Canary(canary)) = args.action.take() {
        return crate::cmd::canary::run(canary);
    }
    // The catalog maps what the gateway observes to areas: the same one `assess` uses.
    let catalog = args.catalog.load()?;
    let loaded = load(&args, &catalog)?;
    let db_url = args.store.db.clone().or_else(|| loaded.config.db.clone());
    let store_args = StoreArgs { db: db_url };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            usize::from,
        ))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve_gateway(
        Arc::new(args),
        loaded,
        Arc::new(catalog),
        store_args,
    ))
}

/// What one generation of the gateway is built from: its files, read and checked.
struct Loaded {
    config: GatewayConfig,
    estate: Option<Estate>,
    estate_dir: Option<PathBuf>,
    grounding: HashMap<String, Arc<Grounding>>,
    /// The files a reload watches: the config and the estate.
    files: Vec<PathBuf>,
}

/// Read the config (or build the quick start's), the estate and the grounding sources, with
/// the command line's overrides.
fn load(args: &Args, catalog: &CheckedCatalog) -> anyhow::Result<Loaded> {
    let estate = match &args.estate {
        Some(path) => Some(load_estate(path, catalog)?),
        None => None,
    };
    let mut config = match (&args.config, &args.upstream, &estate) {
        (Some(path), _, _) => GatewayConfig::load(path)?,
        (None, Some(url), Some(estate)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("--upstream `{url}` must start with `http://` or `https://`");
            }
            let apps: Vec<String> = estate.applications().iter().map(|a| a.id.clone()).collect();
            GatewayConfig::quick_start(SocketAddr::from(([127, 0, 0, 1], 8080)), url, &apps)
        }
        _ => bail!("give `--config FILE`, or `--estate FILE --upstream URL` for the quick start"),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(url) = &args.redis {
        config.redis = Some(url.clone());
    }
    let estate_path = args.estate.as_ref().or(config.estate.as_ref()).cloned();
    let estate_dir = estate_path
        .as_ref()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    let estate = match (estate, &config.estate) {
        (Some(e), _) => Some(e),
        (None, Some(path)) => Some(load_estate(path, catalog)?),
        (None, None) => None,
    };
    config.serve.extend(args.serve.iter().cloned());
    match &estate {
        Some(estate) => serve_what_the_estate_allows(&mut config, estate)?,
        None if !args.serve.is_empty() => bail!(
            "`--serve` needs an estate (`--estate FILE` or the config's `estate:`); without one every configured application is served"
        ),
        None => {}
    }
    let grounding = build_grounding(&config, estate.as_ref(), estate_dir.as_deref())?;
    let files = args
        .config
        .iter()
        .chain(estate_path.iter())
        .cloned()
        .collect();
    Ok(Loaded {
        config,
        estate,
        estate_dir,
        grounding,
        files,
    })
}

/// Keep only the applications the estate sanctions or tolerates, and those `serve` names;
/// the others are refused with their reason. Every `serve` entry must be a configured
/// application.
fn serve_what_the_estate_allows(config: &mut GatewayConfig, estate: &Estate) -> anyhow::Result<()> {
    let mut known: Vec<&str> = config.applications.iter().map(|a| a.id.as_str()).collect();
    known.sort_unstable();
    for id in &config.serve {
        if !known.contains(&id.as_str()) {
            bail!(
                "--serve `{id}`: not an application the gateway is configured for; {}",
                demarc_model::diag::did_you_mean(id, known.iter().copied())
            );
        }
    }
    let mut served = Vec::new();
    for app in std::mem::take(&mut config.applications) {
        let listed = config.serve.contains(&app.id);
        let refusal = match estate.application(&app.id).map(|a| a.status) {
            Some(AppStatus::Sanctioned | AppStatus::Tolerated) => None,
            Some(status) => Some(format!("the estate marks it `{}`", status.as_str())),
            None => Some("it is not in the estate".to_string()),
        };
        match (refusal, listed) {
            (None, _) => served.push(app),
            (Some(reason), true) => {
                eprintln!(
                    "warning: serving application `{}` although {reason} (listed in `serve`)",
                    app.id
                );
                served.push(app);
            }
            (Some(reason), false) => {
                eprintln!(
                    "note: application `{}` is not served: {reason} (`--serve {}` serves it anyway)",
                    app.id, app.id
                );
                config.not_served.insert(app.id, reason);
            }
        }
    }
    config.applications = served;
    Ok(())
}

/// The policy for one application: the config's, else the estate's `guard_policy` (compiled
/// by the same function `demarc validate` checks it with, paths relative to the estate file),
/// else default.
fn policy_for(
    app: &ApplicationConfig,
    estate: Option<&Estate>,
    estate_dir: Option<&std::path::Path>,
    policies: &crate::cmd::common::PolicyCache,
) -> Result<Arc<dyn Policy>, BackendError> {
    let from_estate = estate
        .and_then(|e| e.application(&app.id))
        .and_then(|a| a.guard_policy.as_ref());
    let spec = match (&app.policy, from_estate) {
        (PolicySpec::Default, Some(value)) => {
            let dir = estate_dir.unwrap_or(std::path::Path::new(""));
            return policies
                .get(value, dir)
                .map_err(|p| format!("estate `guard_policy`: {p}").into());
        }
        (spec, _) => spec.clone(),
    };
    match spec {
        PolicySpec::Off => Ok(Arc::new(Off)),
        spec => Ok(Arc::new(
            GuardPolicy::from_spec(&spec).map_err(|e| format!("guard policy: {e}"))?,
        )),
    }
}

/// Index each application's approved grounding sources: the config's, else the estate's.
fn build_grounding(
    config: &GatewayConfig,
    estate: Option<&Estate>,
    estate_dir: Option<&std::path::Path>,
) -> anyhow::Result<HashMap<String, Arc<Grounding>>> {
    let mut out = HashMap::new();
    for app in &config.applications {
        let (specs, base, passages) = match &app.grounding {
            Some(g) => (g.sources.clone(), PathBuf::from("."), g.passages),
            None => {
                let sources = estate
                    .and_then(|e| e.application(&app.id))
                    .map(|a| &a.grounding_sources);
                let Some(sources) = sources.filter(|s| !s.is_empty()) else {
                    continue;
                };
                let specs = sources
                    .iter()
                    .map(|s| SourceSpec {
                        id: s.id.clone(),
                        path: s.path.clone().into(),
                        groups: s.groups.clone(),
                    })
                    .collect();
                (
                    specs,
                    estate_dir.map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf),
                    DEFAULT_PASSAGES,
                )
            }
        };
        let (grounding, warnings) = Grounding::build(&specs, &base, passages)
            .map_err(|e| anyhow::anyhow!("application `{}`: grounding sources: {e}", app.id))?;
        for warning in warnings {
            eprintln!("warning: application `{}`: {warning}", app.id);
        }
        out.insert(app.id.clone(), Arc::new(grounding));
    }
    Ok(out)
}

async fn serve_gateway(
    args: Arc<Args>,
    loaded: Loaded,
    catalog: Arc<CheckedCatalog>,
    store_args: StoreArgs,
) -> anyhow::Result<Outcome> {
    let Loaded {
        config,
        estate,
        estate_dir,
        grounding,
        files,
    } = loaded;
    let store = store_args.open().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let chain = StoreSink::default_chain(addr.port());
    let sink = Arc::new(StoreSink::new(store.clone(), chain.clone()));
    let keys = Arc::new(StoreKeys(store.clone()));
    let counters = Arc::new(StoreCounters::batched(store.clone()));
    let policies = crate::cmd::common::PolicyCache::default();
    let factory = |app: &ApplicationConfig| {
        policy_for(app, estate.as_ref(), estate_dir.as_deref(), &policies)
    };
    let canaries = Arc::new(StoreCanaries(store.clone()));
    let (gateway, writer) = Gateway::start_full(
        config,
        keys,
        sink,
        &factory,
        grounding,
        Some(counters),
        Some(canaries),
    )?;
    // Each canary is read (or created, or rotated when due) before the first request.
    gateway
        .refresh_canaries()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let apps: Vec<&str> = {
        let mut v: Vec<&str> = gateway.application_ids().collect();
        v.sort_unstable();
        v
    };
    let limits_counted = match (&gateway.config.redis, gateway.config.shared_limits) {
        (Some(_), _) => "in Redis, shared by replicas",
        (None, true) => "in the store, shared by replicas",
        (None, false) => "in memory",
    };
    eprintln!(
        "demarc gateway listening on http://{addr}/v1 for {}: {}; catalog `{}`; store {}, audit chain `{chain}`; rate limits counted {limits_counted}",
        crate::cmd::common::count(apps.len(), "application"),
        apps.join(", "),
        catalog.id(),
        store.location()
    );

    let live = Live::new(gateway);
    let evidence_live = live.clone();
    let evidence_store = store.clone();
    let evidence_catalog = catalog.clone();
    let evidence_chain = chain.clone();
    let evidence_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVIDENCE_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = write_evidence(
                &evidence_store,
                &evidence_live.current(),
                &evidence_catalog,
                &evidence_chain,
            )
            .await
            {
                tracing::warn!(error = %e, "cannot write gateway evidence");
            }
        }
    });

    // Revocations and canary rotations announced by the store (PostgreSQL) reach this replica
    // at once; without them its key cache expires within a second and its canaries are read
    // again within a minute.
    let listener_task = match store.changes().await {
        Ok(Some(changes)) => Some(tokio::spawn(follow_store_changes(
            changes,
            Arc::downgrade(&live),
        ))),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for key revocations and canary rotations; cached keys expire within a second, canaries are read again within a minute");
            None
        }
    };

    let reload_task = tokio::spawn(reload_on_change(
        args,
        catalog.clone(),
        Arc::downgrade(&live),
        files,
    ));

    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, live.clone(), async move {
        shutdown_signal().await;
        let _ = drained_tx.send(());
    }));
    let mut server = server;
    tokio::select! {
        result = &mut server => { result??; }
        _ = async { let _ = drained_rx.await; tokio::time::sleep(DRAIN_TIMEOUT).await; } => {
            eprintln!("warning: requests still running after {} s; stopping anyway", DRAIN_TIMEOUT.as_secs());
            server.abort();
        }
    }
    evidence_task.abort();
    reload_task.abort();
    if let Some(task) = listener_task {
        task.abort();
    }
    // The audit writer ends once every generation of the gateway is gone.
    let _ = tokio::join!(evidence_task, reload_task);
    let gateway = live.current();
    drop(live);
    let written = write_evidence(&store, &gateway, &catalog, &chain)
        .await
        .context("cannot write gateway evidence")?;
    let lost = gateway.auditor.lost();
    drop(gateway);
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .context("the audit log did not flush within 30 s")?
        .context("the audit writer failed")?;
    eprintln!(
        "demarc gateway stopped: audit log flushed, {} written",
        crate::cmd::common::count(written, "evidence item")
    );
    if lost > 0 {
        eprintln!(
            "warning: {} lost or requests refused because the audit queue was full",
            crate::cmd::common::count(lost, "audit event")
        );
    }
    store.close().await;
    Ok(Outcome::Success)
}

/// Forget the gateway's cached keys when the store announces a revocation, and read its
/// canaries again when it announces a rotation (both when it may have missed one: its
/// connection was lost), until the gateway is gone.
async fn follow_store_changes(mut changes: demarc_store::Changes, live: std::sync::Weak<Live>) {
    use demarc_store::Change;
    loop {
        let heard = changes.next().await;
        let Some(gateway) = live.upgrade().map(|l| l.current()) else {
            return;
        };
        let (keys, canaries) = match &heard {
            Ok(Change::KeyRevoked(_)) => (true, false),
            Ok(Change::CanaryRotated(_)) => (false, true),
            Ok(Change::Missed) | Err(_) => (true, true),
        };
        if keys {
            gateway.forget_cached_keys();
        }
        if canaries && let Err(e) = gateway.refresh_canaries().await {
            tracing::warn!(error = %e, "cannot read the rotated canaries; the next request tries again");
        }
        if let Err(e) = heard {
            tracing::warn!(error = %e, "store change listener failed; retrying in a second");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Build the gateway anew from its files on SIGHUP, or when the config or estate file changes
/// (checked every [`WATCH_EVERY`]), until the gateway is gone. A config that does not load
/// or build leaves the running gateway as it was.
async fn reload_on_change(
    args: Arc<Args>,
    catalog: Arc<CheckedCatalog>,
    live: std::sync::Weak<Live>,
    files: Vec<PathBuf>,
) {
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = fingerprint(&files);
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        let signalled = tokio::select! {
            _ = tick.tick() => false,
            Some(()) = hup => true,
        };
        let now = fingerprint(&files);
        if !signalled && now == seen {
            continue;
        }
        seen = now;
        let Some(live) = live.upgrade() else {
            return;
        };
        let started = std::time::Instant::now();
        match reload(&args, &catalog, &live).await {
            Ok(summary) => eprintln!(
                "demarc gateway reloaded its config in {} ms: {summary}",
                started.elapsed().as_millis()
            ),
            Err(e) => eprintln!(
                "error: the gateway config was not reloaded; the gateway goes on with the one it had: {e:#}"
            ),
        }
    }
}

/// What tells a file has changed: its modification time and length (`None`: unreadable).
fn fingerprint(files: &[PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
    files
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        })
        .collect()
}

/// Load the files again and serve a gateway built from them; returns what it now serves.
async fn reload(
    args: &Arc<Args>,
    catalog: &Arc<CheckedCatalog>,
    live: &Live,
) -> anyhow::Result<String> {
    let (a, c) = (args.clone(), catalog.clone());
    let Loaded {
        config,
        estate,
        estate_dir,
        grounding,
        ..
    } = tokio::task::spawn_blocking(move || load(&a, &c))
        .await
        .context("the reload stopped")??;
    let policies = crate::cmd::common::PolicyCache::default();
    let factory = |app: &ApplicationConfig| {
        policy_for(app, estate.as_ref(), estate_dir.as_deref(), &policies)
    };
    let (next, ignored) = live.current().reconfigured(config, &factory, grounding)?;
    // A new application's canary is read (or created) before it serves.
    next.refresh_canaries()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut apps: Vec<&str> = next.application_ids().collect();
    apps.sort_unstable();
    let mut summary = format!(
        "{}: {}",
        crate::cmd::common::count(apps.len(), "application"),
        apps.join(", ")
    );
    if !ignored.is_empty() {
        summary.push_str(&format!(
            "; the change to `{}` takes effect at the next restart",
            ignored.join("`, `")
        ));
    }
    live.replace(next);
    Ok(summary)
}
