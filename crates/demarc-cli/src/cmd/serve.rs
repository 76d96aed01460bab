//! `demarc serve`: the dashboard and HTTP API over the store (`demarc_serve`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use demarc_serve::{App, ServeOptions};

use crate::Outcome;
use crate::cmd::common::{CatalogArg, load_estate};
use crate::cmd::db::StoreArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The estate the dashboard assesses (re-read when the file changes). Without one, the
    /// estate's pages say so and discovery, gateway activity and the audit trail still work.
    #[arg(long, value_name = "FILE", env = "DEMARC_ESTATE")]
    estate: Option<PathBuf>,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Let anyone who can reach the server read it, as a viewer, without a token (for a
    /// trusted network). Admin pages and endpoints still need an admin token.
    #[arg(long)]
    public_read: bool,
    /// Observations (gateway evidence and traffic, discovery) count from this many days back.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    observed_days: u32,
    /// Evidence expiring within this many days is reported as expiring.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    expiring_days: i64,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    // Check the estate now, so that a broken file fails at start with every problem listed.
    if let Some(path) = &args.estate {
        load_estate(path, &catalog)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let store = args.store.open().await?;
        let location = store.location().to_owned();
        let app = App::new(
            store,
            ServeOptions {
                catalog,
                estate: args.estate,
                public_read: args.public_read,
                observed_days: args.observed_days,
                expiring_days: args.expiring_days,
            },
        );
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!("demarc serve: http://{addr}/ over {location}");
        if args.public_read {
            eprintln!("anyone who can reach it may read it (--public-read)");
        } else {
            eprintln!(
                "sign in with a token from `demarc tokens create --role viewer|auditor|admin`"
            );
        }
        demarc_serve::serve(listener, app, demarc_gateway::shutdown_signal())
            .await
            .context("the server stopped")?;
        Ok(Outcome::Success)
    })
}
