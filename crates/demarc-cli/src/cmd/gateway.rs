//! `demarc gateway`: run the OpenAI-compatible enforcement point, from a config file or from an
//! estate and one upstream URL (the quick start).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use demarc_gateway::config::{ApplicationConfig, GatewayConfig, PolicySpec};
use demarc_gateway::grounding::{DEFAULT_PASSAGES, Grounding, SourceSpec};
use demarc_gateway::guard::GuardPolicy;
use demarc_gateway::policy::{Off, Policy};
use demarc_gateway::server::{Gateway, serve, shutdown_signal};
use demarc_gateway::store::{StoreCounters, StoreKeys, StoreSink, write_evidence};
use demarc_model::CheckedEstate as Estate;

use crate::Outcome;
use crate::cmd::common::{load_catalog, load_estate};
use crate::cmd::db::StoreArgs;

/// How long in-flight requests get to finish after SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often evidence of enforcement is written to the store.
const EVIDENCE_EVERY: Duration = Duration::from_secs(60);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Gateway config file (YAML): upstreams, applications, policies, limits (see
    /// `examples/gateway.yaml`).
    #[arg(long, value_name = "FILE", conflicts_with = "upstream")]
    config: Option<PathBuf>,
    /// Estate file: without `--config`, every application in it is served with its
    /// `guard_policy` (default: reversible redaction of personal data and secrets, prompt
    /// injection blocked); with `--config`, the applications' policies come from it where the
    /// config names none.
    #[arg(long, value_name = "FILE")]
    estate: Option<PathBuf>,
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
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let estate = match &args.estate {
        Some(path) => Some(load_estate(
            path,
            &load_catalog(demarc_model::catalog::DEFAULT_CATALOG)?,
        )?),
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
    let estate_dir = args
        .estate
        .as_ref()
        .or(config.estate.as_ref())
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    let estate = match (estate, &config.estate) {
        (Some(e), _) => Some(e),
        (None, Some(path)) => Some(load_estate(
            path,
            &load_catalog(demarc_model::catalog::DEFAULT_CATALOG)?,
        )?),
        (None, None) => None,
    };
    if let Some(estate) = &estate {
        check_applications(&config, estate);
    }
    let db_url = args.store.db.clone().or_else(|| config.db.clone());
    let store_args = StoreArgs { db: db_url };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            usize::from,
        ))
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let grounding = build_grounding(&config, estate.as_ref(), estate_dir.as_deref())?;
    runtime.block_on(serve_gateway(config, estate, grounding, store_args))
}

/// Warn about config applications the estate does not know (they are served anyway).
fn check_applications(config: &GatewayConfig, estate: &Estate) {
    for app in &config.applications {
        if estate.application(&app.id).is_none() {
            tracing::warn!(application = %app.id, "application is not in the estate");
            eprintln!("warning: application `{}` is not in the estate", app.id);
        }
    }
}

/// The policy for one application: the config's, else the estate's `guard_policy`, else default.
fn policy_for(app: &ApplicationConfig, estate: Option<&Estate>) -> Result<Arc<dyn Policy>, String> {
    let from_estate = estate
        .and_then(|e| e.application(&app.id))
        .and_then(|a| a.guard_policy.clone());
    let spec = match (&app.policy, from_estate) {
        (PolicySpec::Default, Some(value)) => match &value {
            demarc_gateway::config::YamlValue::String(s) if s == "off" => PolicySpec::Off,
            _ => PolicySpec::Document(value),
        },
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
    config: GatewayConfig,
    estate: Option<Estate>,
    grounding: HashMap<String, Arc<Grounding>>,
    store_args: StoreArgs,
) -> anyhow::Result<Outcome> {
    let store = store_args.open().await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let chain = StoreSink::default_chain(addr.port());
    let sink = Arc::new(StoreSink::new(store.clone(), chain.clone()));
    let keys = Arc::new(StoreKeys(store.clone()));
    let counters = Arc::new(StoreCounters(store.clone()));
    let factory = |app: &ApplicationConfig| policy_for(app, estate.as_ref());
    let (gateway, writer) =
        Gateway::start_with_grounding(config, keys, sink, &factory, grounding, Some(counters))?;
    let apps: Vec<&str> = {
        let mut v: Vec<&str> = gateway.application_ids().collect();
        v.sort_unstable();
        v
    };
    eprintln!(
        "demarc gateway listening on http://{addr}/v1 for {} application(s): {}; store {}, audit chain `{chain}`",
        apps.len(),
        apps.join(", "),
        store.location()
    );

    let evidence_gateway = gateway.clone();
    let evidence_store = store.clone();
    let evidence_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVIDENCE_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = write_evidence(&evidence_store, &evidence_gateway).await {
                tracing::warn!(error = %e, "cannot write gateway evidence");
            }
        }
    });

    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, gateway.clone(), async move {
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
    let written = write_evidence(&store, &gateway)
        .await
        .context("cannot write gateway evidence")?;
    let lost = gateway.auditor.lost();
    drop(gateway);
    tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .context("the audit log did not flush within 30 s")?
        .context("the audit writer failed")?;
    eprintln!("demarc gateway stopped: audit log flushed, {written} evidence item(s) written");
    if lost > 0 {
        eprintln!(
            "warning: {lost} audit event(s) were lost or requests refused because the audit queue was full"
        );
    }
    store.close().await;
    Ok(Outcome::Success)
}
