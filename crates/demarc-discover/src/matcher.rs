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
    /// Tenant patterns whose fixed part right of the tenant label is this domain (an index
    /// into `Matcher::tenants`).
    tenants: Option<u32>,
}

/// A tenant pattern, keyed in the map by its fixed right part.
#[derive(Debug, Clone)]
struct TenantPattern {
    left: Box<[u8]>,
    label_suffix: Box<[u8]>,
    exact: bool,
    hit: Hit,
}

/// Longest host we look up; DNS names are at most 253 bytes.
pub const MAX_HOST: usize = 253;

#[derive(Debug, Clone)]
pub struct Matcher {
    map: FxHashMap<Box<[u8]>, Entry>,
    tenants: Vec<Vec<TenantPattern>>,
}

impl Matcher {
    pub fn new(catalog: &Catalog) -> Matcher {
        let mut map: FxHashMap<Box<[u8]>, Entry> = FxHashMap::default();
        let mut tenants: Vec<Vec<TenantPattern>> = Vec::new();
        for (index, _) in catalog.services().iter().enumerate() {
            for (role, pattern) in catalog.patterns(index) {
                let hit = Hit {
                    service: index as u32,
                    role: *role,
                };
                let entry = map.entry(pattern.domain.as_bytes().into()).or_default();
                match &pattern.tenant {
                    Some(t) => {
                        let slot = *entry.tenants.get_or_insert_with(|| {
                            tenants.push(Vec::new());
                            (tenants.len() - 1) as u32
                        });
                        tenants[slot as usize].push(TenantPattern {
                            left: t.left.as_bytes().into(),
                            label_suffix: t.label_suffix.as_bytes().into(),
                            exact: pattern.exact,
                            hit,
                        });
                    }
                    None if pattern.exact => entry.exact = Some(hit),
                    None => entry.suffix = Some(hit),
                }
            }
        }
        // Longer fixed parts first, so that the first tenant pattern that fits is the longest.
        for list in &mut tenants {
            list.sort_by_key(|t| std::cmp::Reverse(t.left.len() + t.label_suffix.len()));
        }
        Matcher { map, tenants }
    }

    /// The service a host belongs to. `host` may carry upper case, a trailing dot or a
    /// `:port`; anything that cannot be a DNS name (too long, a space) matches nothing.
    #[inline]
    pub fn lookup(&self, host: &[u8]) -> Option<Hit> {
        let mut buf = [0u8; MAX_HOST];
        self.lookup_tenant(host, &mut buf).map(|(hit, _)| hit)
    }

    /// The service a host belongs to and, for a tenant pattern, the tenant: the lowercase host
    /// without port or trailing dot. The longest match wins; on a tie the plain pattern.
    #[inline]
    pub fn lookup_tenant<'b>(
        &self,
        host: &[u8],
        buf: &'b mut [u8; MAX_HOST],
    ) -> Option<(Hit, Option<&'b [u8]>)> {
        let host: &'b [u8] = normalise(host, buf)?;
        // (match length * 2 + exact, hit, tenant start)
        let mut best: Option<(usize, Hit, Option<usize>)> = None;
        fn consider(
            best: &mut Option<(usize, Hit, Option<usize>)>,
            rank: usize,
            hit: Hit,
            tenant: Option<usize>,
        ) {
            if best.is_none_or(|(r, _, _)| rank > r) {
                *best = Some((rank, hit, tenant));
            }
        }
        let mut pos = 0;
        loop {
            let rest = &host[pos..];
            // A bare top-level label is never a pattern (patterns have two labels or more).
            let Some(dot) = memchr::memchr(b'.', rest) else {
                break;
            };
            if let Some(e) = self.map.get(rest) {
                if pos == 0
                    && let Some(hit) = e.exact
                {
                    consider(&mut best, rest.len() * 2 + 1, hit, None);
                }
                if let Some(hit) = e.suffix {
                    consider(&mut best, rest.len() * 2, hit, None);
                }
                if let Some(slot) = e.tenants
                    && let Some((start, hit)) = self.tenant_match(host, pos, slot)
                {
                    consider(&mut best, (host.len() - start) * 2, hit, Some(start));
                }
            }
            // Plain patterns only get shorter from here; tenant patterns end further left.
            if best.is_some() && self.tenants.is_empty() {
                break;
            }
            pos += dot + 1;
        }
        // The tenant is the whole host: an estate endpoint names the hosts it sanctions.
        best.map(|(_, hit, tenant)| (hit, tenant.map(|_| host)))
    }

    /// The first tenant pattern of `slot` that fits `host`, whose fixed right part starts at
    /// `pos`: where its match starts.
    #[inline]
    fn tenant_match(&self, host: &[u8], pos: usize, slot: u32) -> Option<(usize, Hit)> {
        if pos < 2 {
            return None;
        }
        let before = &host[..pos - 1];
        let label_start = memchr::memrchr(b'.', before).map_or(0, |d| d + 1);
        let label = &before[label_start..];
        for t in self.tenants.get(slot as usize)? {
            if label.len() <= t.label_suffix.len() || !label.ends_with(&t.label_suffix) {
                continue;
            }
            let start = if t.left.is_empty() {
                label_start
            } else {
                let Some(head) = label_start.checked_sub(1).map(|e| &before[..e]) else {
                    continue;
                };
                let Some(s) = head.len().checked_sub(t.left.len()) else {
                    continue;
                };
                if !head.ends_with(&t.left) || (s > 0 && head[s - 1] != b'.') {
                    continue;
                }
                s
            };
            if start == 0 || !t.exact {
                return Some((start, t.hit));
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
    if let Some(colon) = memchr::memrchr(b':', host)
        && memchr::memchr(b':', &host[..colon]).is_none()
    {
        host = &host[..colon];
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
            let domains: Vec<String> = c
                .services()
                .iter()
                .enumerate()
                .flat_map(|(i, _)| c.patterns(i).iter().map(|(_, p)| p.example()))
                .collect();
            let domain = &domains[pick % domains.len()];
            let host = if prefix.is_empty() { domain.to_owned() } else { format!("{prefix}.{domain}") };
            // The obvious definition: the longest match; a plain pattern wins a tie.
            let mut best: Option<(usize, Option<usize>, Hit)> = None;
            for (i, _) in c.services().iter().enumerate() {
                for (role, p) in c.patterns(i) {
                    if let Some(start) = p.match_span(&host) {
                        let len = host.len() - start;
                        let rank = if p.tenant.is_some() {
                            len * 4
                        } else {
                            len * 4 + 1 + 2 * usize::from(p.exact)
                        };
                        if best.is_none_or(|(r, _, _)| rank > r) {
                            let tenant = p.tenant.is_some().then_some(start);
                            best = Some((rank, tenant, Hit { service: i as u32, role: *role }));
                        }
                    }
                }
            }
            let mut buf = [0u8; MAX_HOST];
            let got = m.lookup_tenant(host.as_bytes(), &mut buf).map(|(h, t)| (h, t.map(<[u8]>::to_vec)));
            let want = best.map(|(_, tenant, h)| (h, tenant.map(|_| host.as_bytes().to_vec())));
            proptest::prop_assert_eq!(got, want);
        }
    }
}
