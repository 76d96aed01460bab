//! Zeek TSV reader: the first line is taken as the `#fields` header, the rest as records.
//! Nothing may panic; every line is a record, a skip or a malformed line.
#![no_main]
use demarc_discover::formats::{Parser, Scratch, ZeekSchema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let header = lines.next().unwrap_or_default();
    let parser = Parser::Zeek(ZeekSchema::from_fields_line(header));
    let mut scratch = Scratch::default();
    for line in lines {
        let _ = parser.parse(line, &mut scratch);
    }
});
