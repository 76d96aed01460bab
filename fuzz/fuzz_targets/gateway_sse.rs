//! The gateway's parsers of upstream and caller input: the SSE event parser (fed in two
//! pieces split at an arbitrary point), the streamed-event filter, and the config file.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

use demarc_gateway::openai::StreamFilter;
use demarc_gateway::policy::{Off, Vault};
use demarc_gateway::sse::Parser;
use demarc_gateway::upstream::Endpoint;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut parser = Parser::new();
    let mut events = Vec::new();
    if parser.push(&data[..split], &mut events).is_ok() {
        let _ = parser.push(&data[split..], &mut events);
    }
    parser.finish();
    for endpoint in [Endpoint::ChatCompletions, Endpoint::Responses] {
        let mut filter = StreamFilter::new(endpoint, Arc::new(Off), Arc::new(Vault::default()));
        let mut out = Vec::new();
        for event in &events {
            if filter.on_event(event, &mut out).is_err() {
                break;
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = demarc_gateway::config::GatewayConfig::parse("fuzz.yaml", text, &|_| None);
    }
});
