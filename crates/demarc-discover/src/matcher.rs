//! Host -> service by a hash lookup on domain-label suffixes: for `a.b.example.com` we look
//! up `a.b.example.com`, `b.example.com`, `example.com` (never the bare top-level label), and
//! the first hit is the longest, most specific pattern. A handful of hash probes per record;
//! no regular expression, no per-record allocation.

use rustc_hash::FxHashMap;

use crate::catalog::{Catalog, Role};

/// What a host matched: the service (its index in the catalog) and the endpoint's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub service: u32,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// A `full:` pattern: this host only.
    exact: Option<Hit>,
    /// A suffix pattern: this domain and its subdomains.
    suffix: Option<Hit>,
}

/// Longest host we look up; DNS names are at most 253 bytes.
pub const MAX_HOST: usize = 253;

#[derive(Debug, Clone)]
pub struct Matcher {
    map: FxHashMap<Box<[u8]>, Entry>,
}

impl Matcher {
    pub fn new(catalog: &Catalog) -> Matcher {
        let mut map: FxHashMap<Box<[u8]>, Entry> = FxHashMap::default();
        for (index, _) in catalog.services().iter().enumerate() {
            for (role, pattern) in catalog.patterns(index) {
                let hit = Hit {
                    service: index as u32,
                    role: *role,
                };
                let entry = map.entry(pattern.domain.as_bytes().into()).or_default();
                if pattern.exact {
                    entry.exact = Some(hit);
                } else {
                    entry.suffix = Some(hit);
                }
            }
        }
        Matcher { map }
    }

    /// The service a host belongs to. `host` may carry upper case, a trailing dot or a
    /// `:port`; anything that cannot be a DNS name (too long, a space) matches nothing.
    #[inline]
    pub fn lookup(&self, host: &[u8]) -> Option<Hit> {
        let mut buf = [0u8; MAX_HOST];
        let host = normalise(host, &mut buf)?;
        if let Some(e) = self.map.get(host) {
            if let Some(hit) = e.exact.or(e.suffix) {
                return Some(hit);
            }
        }
        let mut rest = host;
        while let Some(dot) = memchr::memchr(b'.', rest) {
            rest = &rest[dot + 1..];
            // A bare top-level label is never a pattern (patterns have two labels or more).
            if memchr::memchr(b'.', rest).is_none() {
                break;
            }
            if let Some(hit) = self.map.get(rest).and_then(|e| e.suffix) {
                return Some(hit);
            }
        }
        None
    }
}

/// Lowercase `host` into `buf`, dropping a `:port` and a trailing dot.
#[inline]
fn normalise<'b>(host: &[u8], buf: &'b mut [u8; MAX_HOST]) -> Option<&'b [u8]> {
    let mut host = host;
    // `host:port`, but not a bare IPv6 address (more than one colon).
    if let Some(colon) = memchr::memrchr(b':', host) {
        if memchr::memchr(b':', &host[..colon]).is_none() {
            host = &host[..colon];
        }
    }
    if let [rest @ .., b'.'] = host {
        host = rest;
    }
    if host.is_empty() || host.len() > MAX_HOST {
        return None;
    }
    let out = &mut buf[..host.len()];
    for (o, &b) in out.iter_mut().zip(host) {
        if b <= b' ' || b == b'/' {
            return None;
        }
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> (Catalog, Matcher) {
        let catalog = Catalog::builtin().unwrap();
        let m = Matcher::new(&catalog);
        (catalog, m)
    }

    fn id(c: &Catalog, hit: Option<Hit>) -> Option<(&str, Role)> {
        hit.map(|h| (c.services()[h.service as usize].id.as_str(), h.role))
    }

    #[test]
    fn longest_pattern_wins_and_exact_is_exact() {
        let (c, m) = matcher();
        assert_eq!(
            id(&c, m.lookup(b"api.openai.com")),
            Some(("openai-api", Role::Api))
        );
        assert_eq!(
            id(&c, m.lookup(b"API.OpenAI.com.")),
            Some(("openai-api", Role::Api))
        );
        assert_eq!(
            id(&c, m.lookup(b"api.openai.com:443")),
            Some(("openai-api", Role::Api))
        );
        assert_eq!(
            id(&c, m.lookup(b"x.api.openai.com")),
            Some(("openai-web", Role::Ui))
        );
        assert_eq!(
            id(&c, m.lookup(b"chatgpt.com")),
            Some(("chatgpt", Role::Ui))
        );
        assert_eq!(
            id(&c, m.lookup(b"cdn.oaistatic.com")),
            Some(("chatgpt", Role::Cdn))
        );
        assert_eq!(
            id(&c, m.lookup(b"foo.openai.azure.com")),
            Some(("azure-openai", Role::Api))
        );
    }

    #[test]
    fn non_matches() {
        let (_, m) = matcher();
        for host in [
            &b"notopenai.com"[..],
            b"com",
            b"",
            b"example.org",
            b"openai",
            b"a b.openai.com",
            b"::1",
            b"fe80::1:openai.com",
        ] {
            assert_eq!(m.lookup(host), None, "{}", String::from_utf8_lossy(host));
        }
        assert_eq!(m.lookup(&[b'a'; 400]), None);
    }

    proptest::proptest! {
        /// The hash lookup agrees with the obvious definition: the longest catalog pattern
        /// that matches the host.
        #[test]
        fn agrees_with_linear_scan(prefix in "[a-z0-9]{0,6}(\\.[a-z]{1,4}){0,2}", pick in 0usize..400) {
            let (c, m) = matcher();
            let domains = c.domains();
            let domain = domains[pick % domains.len()];
            let host = if prefix.is_empty() { domain.to_owned() } else { format!("{prefix}.{domain}") };
            let mut best: Option<(usize, Hit)> = None;
            for (i, _) in c.services().iter().enumerate() {
                for (role, p) in c.patterns(i) {
                    if p.matches(&host) {
                        let rank = p.domain.len() * 2 + usize::from(p.exact);
                        if best.is_none_or(|(r, _)| rank > r) {
                            best = Some((rank, Hit { service: i as u32, role: *role }));
                        }
                    }
                }
            }
            proptest::prop_assert_eq!(m.lookup(host.as_bytes()), best.map(|(_, h)| h));
        }
    }
}
