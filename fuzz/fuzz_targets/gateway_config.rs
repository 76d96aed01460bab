//! Gateway config files from arbitrary text: a config or located problems, never a panic, and
//! every problem's line and column inside the text.
#![no_main]
use demarc_gateway::{ConfigError, GatewayConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Every credential counts as set, so validation goes on past `api_key_env`.
    match GatewayConfig::parse("fuzz.yaml", text, &|_| Some("sk-fuzz".to_string())) {
        Ok(_) => {}
        Err(ConfigError::Invalid(d)) => {
            let lines = text.split('\n').count();
            for item in &d.items {
                if let Some(at) = item.location {
                    assert!(at.line >= 1 && at.line <= lines, "{d}");
                }
            }
        }
        Err(other) => panic!("parse reads no file: {other}"),
    }
});
