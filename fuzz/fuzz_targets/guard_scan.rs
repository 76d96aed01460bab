//! The guard scanner and normaliser on arbitrary bytes: whole-text and streamed scans never
//! panic, offsets stay inside the text on character boundaries, redaction restores, and the
//! stream's findings equal the whole text's.
#![no_main]
use std::sync::OnceLock;

use demarc_guard::{Direction, Guard, Policy};
use libfuzzer_sys::fuzz_target;

fn guard() -> &'static Guard {
    static GUARD: OnceLock<Guard> = OnceLock::new();
    GUARD.get_or_init(|| match Guard::new(&Policy::default()) {
        Ok(g) => g,
        Err(e) => panic!("default policy must compile: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let g = guard();
    for dir in [Direction::Input, Direction::Output] {
        let whole = g.scan(&text, dir);
        for f in &whole.findings {
            assert!(f.start <= f.end && f.end <= text.len());
            assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        }
        let step = usize::from(split).max(1);
        let mut s = g.stream(dir);
        let mut at = 0;
        while at < text.len() {
            let mut end = (at + step).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let _ = s.push(&text[at..end]);
            at = end;
        }
        let (_, report, _) = s.finish();
        assert_eq!(report.findings, whole.findings);
    }
    let (redacted, redactions) = g.redact(&text);
    assert_eq!(redactions.restore(&redacted), text);
});
