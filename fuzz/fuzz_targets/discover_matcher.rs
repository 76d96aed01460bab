//! Host matching with tenant patterns: any host bytes and any pattern text never panic, and
//! a tenant hit names the whole (normalised) host.
#![no_main]
use demarc_discover::catalog::Pattern;
use demarc_discover::matcher::{MAX_HOST, Matcher};
use demarc_discover::Catalog;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn matcher() -> Option<&'static Matcher> {
    static M: OnceLock<Option<Matcher>> = OnceLock::new();
    M.get_or_init(|| Catalog::builtin().ok().map(|c| Matcher::new(&c)))
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    if let Some(m) = matcher() {
        let mut buf = [0u8; MAX_HOST];
        if let Some((_, Some(tenant))) = m.lookup_tenant(data, &mut buf) {
            assert!(tenant.len() <= MAX_HOST);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some((pattern, host)) = text.split_once(' ') {
            if let Ok(p) = Pattern::parse(pattern) {
                if let Some(start) = p.match_span(host) {
                    assert!(start <= host.len());
                }
                let _ = p.example();
            }
        }
    }
});
