//! Generic CSV, TSV and JSON-lines readers with a field mapping: the first line is the
//! header; nothing may panic.
#![no_main]
use demarc_discover::formats::{FieldMap, Parser, Scratch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(map) = FieldMap::parse(
        "host=host,url=url,user=user,src=src,time=time,sent=sent,received=received",
    ) else {
        return;
    };
    let mut lines = data.split(|&b| b == b'\n');
    let header = lines.next().unwrap_or_default();
    let mut parsers = vec![Parser::JsonLines(map.clone())];
    for sep in [b',', b'\t'] {
        if let Ok(p) = Parser::delimited(sep, header, &map) {
            parsers.push(p);
        }
    }
    let mut scratch = Scratch::default();
    for line in lines {
        for p in &parsers {
            let _ = p.parse(line, &mut scratch);
        }
    }
});
