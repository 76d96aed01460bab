//! Squid native access.log reader and format detection: nothing may panic.
#![no_main]
use demarc_discover::formats::{Parser, Scratch, detect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = detect(data);
    let mut scratch = Scratch::default();
    for line in data.split(|&b| b == b'\n') {
        let _ = Parser::Squid.parse(line, &mut scratch);
    }
});
