//! The gateway's parsers of upstream and caller input: the SSE event parser (fed in two
//! pieces split at an arbitrary point), the streamed-event filter (passing through, and
//! scanning with the default policy, which merges text events and reads them by template),
//! and the config file.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;

use demarc_gateway::SseParser as Parser;
use demarc_gateway::{Endpoint, GuardPolicy, Off, Policy, PolicySpec, StreamFilter, Vault};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut parser = Parser::new();
    let mut events = Vec::new();
    if parser.push(&data[..split], &mut events).is_ok() {
        let _ = parser.push(&data[split..], &mut events);
    }
    parser.finish();
    static DEFAULT: OnceLock<Arc<dyn Policy>> = OnceLock::new();
    let default = DEFAULT.get_or_init(|| match GuardPolicy::from_spec(&PolicySpec::Default) {
        Ok(p) => Arc::new(p),
        Err(_) => Arc::new(Off),
    });
    let policies: [Arc<dyn Policy>; 2] = [Arc::new(Off), default.clone()];
    for endpoint in [Endpoint::ChatCompletions, Endpoint::Responses] {
        for policy in &policies {
            let mut filter = StreamFilter::new(endpoint, policy.clone(), Arc::new(Vault::default()));
            let mut out = Vec::new();
            for (i, event) in events.iter().enumerate() {
                if filter.on_event(event, &mut out).is_err() {
                    break;
                }
                // End a batch now and then, as the stream does.
                if i % 3 == 2 && filter.flush_held(&mut out).is_err() {
                    break;
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = demarc_gateway::GatewayConfig::parse("fuzz.yaml", text, &|_| None);
    }
});
