//! The JSON-lines readers (Zeek JSON, Route 53, Cloudflare Gateway, Zscaler NSS): nothing may
//! panic, whatever the bytes (invalid UTF-8, deep nesting, huge numbers).
#![no_main]
use demarc_discover::formats::{Parser, Scratch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut scratch = Scratch::default();
    for parser in [
        Parser::ZeekJson,
        Parser::Route53,
        Parser::Cloudflare,
        Parser::Zscaler,
    ] {
        for line in data.split(|&b| b == b'\n') {
            let _ = parser.parse(line, &mut scratch);
        }
    }
});
