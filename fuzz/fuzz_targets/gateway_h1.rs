//! The gateway's streaming HTTP/1.1 client reading an upstream's response: head, informational
//! heads, chunked / length / close-delimited bodies, fed in reads of an arbitrary size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let piece = data.first().map_or(1, |b| usize::from(*b).max(1));
    if let Ok((_, body, _)) = demarc_gateway::h1_decode_response(data, piece) {
        assert!(body.len() <= data.len());
    }
});
