//! `demarc fake-upstream`: the fake OpenAI-compatible model provider used by the gateway's
//! tests and benchmarks. It is a test tool, not a model.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use demarc_fake::{FakeConfig, FakeUpstream, Fault};

use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. The base URL is printed on stdout.
    #[arg(long, default_value = "127.0.0.1:9000", value_name = "ADDR")]
    listen: SocketAddr,
    /// Delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,
    /// Characters of the reply per streamed event.
    #[arg(long, default_value_t = 8, value_name = "N")]
    chunk_chars: usize,
    /// Delay between streamed events, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    chunk_delay_ms: u64,
    /// Fault to inject: none, refuse, timeout, cut, stall, malformed, 429, 500, 503, fail-first-N.
    #[arg(long, default_value = "none", value_name = "FAULT")]
    fault: String,
    /// A fixed reply (default: `echo: ` and the last user message).
    #[arg(long, value_name = "TEXT")]
    reply: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let fault: Fault = args.fault.parse()?;
    let config = FakeConfig {
        latency: Duration::from_millis(args.latency_ms),
        chunk_chars: args.chunk_chars.max(1),
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        fault,
        reply: args.reply,
        record: 0,
        ..FakeConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let fake = FakeUpstream::start(args.listen, config)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        println!("{}", fake.base_url());
        eprintln!(
            "fake upstream listening on {} (Ctrl-C to stop)",
            fake.base_url()
        );
        demarc_gateway::shutdown_signal().await;
        Ok(Outcome::Success)
    })
}
