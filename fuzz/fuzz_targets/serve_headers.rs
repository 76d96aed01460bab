//! The dashboard's request-header parsers (session cookie, bearer token, same-origin check)
//! over arbitrary header lines: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    demarc_serve::parse_headers_for_fuzzing(data);
});
