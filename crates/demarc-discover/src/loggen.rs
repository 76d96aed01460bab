//! A reproducible log generator: realistic Zeek (ssl, http, dns), Squid and Route 53 logs
//! of a requested size, mostly ordinary web traffic with some GenAI use, and the ground
//! truth of what it wrote (which services, which users, how many requests and bytes).
//! The same seed gives the same bytes on every machine.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::Serialize;

use crate::catalog::Catalog;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    ZeekSsl,
    ZeekHttp,
    ZeekDns,
    Squid,
    Route53,
}

impl GenFormat {
    pub const ALL: [GenFormat; 5] = [
        GenFormat::ZeekSsl,
        GenFormat::ZeekHttp,
        GenFormat::ZeekDns,
        GenFormat::Squid,
        GenFormat::Route53,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GenFormat::ZeekSsl => "zeek-ssl",
            GenFormat::ZeekHttp => "zeek-http",
            GenFormat::ZeekDns => "zeek-dns",
            GenFormat::Squid => "squid",
            GenFormat::Route53 => "route53",
        }
    }

    pub fn from_name(name: &str) -> Option<GenFormat> {
        GenFormat::ALL.into_iter().find(|f| f.name() == name)
    }
}

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub format: GenFormat,
    /// Stop after the first record that reaches this many bytes.
    pub size: u64,
    pub seed: u64,
    pub users: u32,
    /// Share of records that go to GenAI services, in per mille.
    pub genai_per_mille: u32,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            format: GenFormat::ZeekSsl,
            size: 1 << 20,
            seed: 42,
            users: 500,
            genai_per_mille: 40,
        }
    }
}

/// What the generator wrote, per service id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TruthService {
    /// Requests to any of the service's hosts (cdn and telemetry included).
    pub requests: u64,
    /// Requests to its ui, api or auth hosts.
    pub use_requests: u64,
    pub users: BTreeSet<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub large_uploads: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroundTruth {
    pub records: u64,
    pub bytes: u64,
    pub services: BTreeMap<String, TruthService>,
}

/// SplitMix64: tiny, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Ordinary hosts, none of them GenAI services.
const BACKGROUND: &[&str] = &[
    "www.google.com",
    "fonts.gstatic.com",
    "www.wikipedia.org",
    "en.wikipedia.org",
    "upload.wikimedia.org",
    "www.bbc.co.uk",
    "outlook.office365.com",
    "login.microsoftonline.com",
    "teams.microsoft.com",
    "graph.microsoft.com",
    "www.linkedin.com",
    "static.licdn.com",
    "github.com",
    "api.github.com",
    "raw.githubusercontent.com",
    "registry.npmjs.org",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "static.crates.io",
    "slack.com",
    "edgeapi.slack.com",
    "zoom.us",
    "www.salesforce.com",
    "s3.amazonaws.com",
    "ec2.us-east-1.amazonaws.com",
    "update.googleapis.com",
    "www.youtube.com",
    "i.ytimg.com",
    "www.nytimes.com",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "ocsp.digicert.com",
    "time.apple.com",
    "gateway.icloud.com",
    "www.dropbox.com",
    "docs.rs",
    "stackoverflow.com",
    "cdn.sstatic.net",
    "news.ycombinator.com",
    "www.reddit.com",
    "www.amazon.com",
    "m.media-amazon.com",
    "intranet.example.com",
    "mail.example.com",
    "vpn.example.com",
];

/// A GenAI host the generator may write, with the service it belongs to and whether a hit
/// on it counts as use.
struct GenHost {
    host: String,
    service: String,
    counts: bool,
}

/// Hosts taken from the catalog whose service no other pattern could claim: the pattern's
/// own domain, used only when no other service names the same domain.
fn genai_hosts(catalog: &Catalog) -> Vec<GenHost> {
    let mut claims: BTreeMap<String, u32> = BTreeMap::new();
    for (i, _) in catalog.services().iter().enumerate() {
        for (_, p) in catalog.patterns(i) {
            *claims.entry(p.example()).or_default() += 1;
        }
    }
    let mut hosts = Vec::new();
    for (i, service) in catalog.services().iter().enumerate() {
        for (role, p) in catalog.patterns(i) {
            let host = p.example();
            // A host another, longer pattern claims belongs to that pattern's service.
            let owner = catalog
                .services()
                .iter()
                .enumerate()
                .flat_map(|(j, _)| catalog.patterns(j).iter().map(move |(_, q)| (j, q)))
                .filter_map(|(j, q)| q.match_span(&host).map(|start| (host.len() - start, j)))
                .max_by_key(|&(len, _)| len)
                .map(|(_, j)| j);
            if claims.get(&host) == Some(&1) && owner == Some(i) {
                hosts.push(GenHost {
                    host,
                    service: service.id.clone(),
                    counts: role.counts_as_use(),
                });
            }
        }
    }
    hosts
}

/// Write a log to `out` and return what it holds.
pub fn generate(
    catalog: &Catalog,
    options: &GenOptions,
    out: &mut dyn Write,
) -> io::Result<GroundTruth> {
    let mut rng = Rng(options.seed);
    let all_hosts = genai_hosts(catalog);
    // A popular few and a long tail: the first services drawn are used far more often.
    let mut order: Vec<usize> = (0..all_hosts.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    // The services most organisations see most, first; then a random tail.
    const HEAD: [&str; 8] = [
        "chatgpt",
        "m365-copilot",
        "gemini",
        "github-copilot",
        "claude",
        "perplexity",
        "deepseek",
        "cursor",
    ];
    order.sort_by_key(|&i| {
        HEAD.iter()
            .position(|h| *h == all_hosts[i].service)
            .unwrap_or(HEAD.len())
    });
    let popular: Vec<&GenHost> = order.iter().take(60).map(|&i| &all_hosts[i]).collect();
    let mut truth = GroundTruth::default();
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    let header = header(options.format);
    w.write_all(header.as_bytes())?;
    truth.bytes += header.len() as u64;
    let mut ts: u64 = 1_700_000_000_000_000;
    let mut line = Vec::with_capacity(1024);
    let users = options.users.max(1);
    while truth.bytes < options.size {
        ts += rng.below(20_000);
        let user = rng.below(u64::from(users)) as u32;
        let genai = rng.below(1000) < u64::from(options.genai_per_mille);
        let (host, service) = if genai && !popular.is_empty() {
            // Squared uniform: skewed towards the front of `popular`.
            let r = rng.below(1 << 16);
            let idx = ((r * r * popular.len() as u64) >> 32) as usize;
            let h = popular[idx.min(popular.len() - 1)];
            (h.host.as_str(), Some(h))
        } else {
            (
                BACKGROUND[rng.below(BACKGROUND.len() as u64) as usize],
                None,
            )
        };
        let large = service.is_some_and(|s| s.counts) && rng.below(500) == 0;
        let sent = if large {
            20_000_000 + rng.below(5_000_000)
        } else {
            rng.below(4000)
        };
        let received = rng.below(200_000);
        line.clear();
        let (user_name, sent, received) = write_record(
            &mut line,
            options.format,
            &mut rng,
            ts,
            user,
            host,
            sent,
            received,
        )?;
        w.write_all(&line)?;
        truth.bytes += line.len() as u64;
        truth.records += 1;
        if let Some(s) = service {
            let t = truth.services.entry(s.service.clone()).or_default();
            t.requests += 1;
            t.bytes_sent += sent;
            t.bytes_received += received;
            if s.counts {
                t.use_requests += 1;
                t.users.insert(user_name);
            }
            if sent >= 10 << 20 {
                t.large_uploads += 1;
            }
        }
    }
    let footer = footer(options.format);
    w.write_all(footer.as_bytes())?;
    truth.bytes += footer.len() as u64;
    w.flush()?;
    Ok(truth)
}

fn zeek_header(path: &str, fields: &str, types: &str) -> String {
    format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#open\t2023-11-14-22-13-20\n#fields\t{fields}\n#types\t{types}\n"
    )
}

const SSL_FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tversion\tcipher\tcurve\tserver_name\tresumed\tlast_alert\tnext_protocol\testablished\tssl_history\tcert_chain_fps\tclient_cert_chain_fps\tsni_matches_cert\tvalidation_status";
const SSL_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\tbool\tstring\tstring\tbool\tstring\tvector[string]\tvector[string]\tbool\tstring";
const HTTP_FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\treferrer\tversion\tuser_agent\torigin\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg\tinfo_code\tinfo_msg\ttags\tusername\tpassword\tproxied\torig_fuids\torig_filenames\torig_mime_types\tresp_fuids\tresp_filenames\tresp_mime_types";
const HTTP_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tstring\tstring\tstring\tcount\tcount\tcount\tstring\tcount\tstring\tset[enum]\tstring\tstring\tset[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]\tvector[string]";
const DNS_FIELDS: &str = "ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected";
const DNS_TYPES: &str = "time\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool";

fn header(format: GenFormat) -> String {
    match format {
        GenFormat::ZeekSsl => zeek_header("ssl", SSL_FIELDS, SSL_TYPES),
        GenFormat::ZeekHttp => zeek_header("http", HTTP_FIELDS, HTTP_TYPES),
        GenFormat::ZeekDns => zeek_header("dns", DNS_FIELDS, DNS_TYPES),
        GenFormat::Squid | GenFormat::Route53 => String::new(),
    }
}

fn footer(format: GenFormat) -> String {
    match format {
        GenFormat::ZeekSsl | GenFormat::ZeekHttp | GenFormat::ZeekDns => {
            "#close\t2023-11-15-22-13-20\n".to_owned()
        }
        GenFormat::Squid | GenFormat::Route53 => String::new(),
    }
}

const UID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn uid(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(18);
    s.push('C');
    for _ in 0..17 {
        s.push(UID_CHARS[rng.below(UID_CHARS.len() as u64) as usize] as char);
    }
    s
}

/// Write one record; returns the user as the log names it and the bytes it records.
#[allow(clippy::too_many_arguments)]
fn write_record(
    line: &mut Vec<u8>,
    format: GenFormat,
    rng: &mut Rng,
    ts: u64,
    user: u32,
    host: &str,
    sent: u64,
    received: u64,
) -> io::Result<(String, u64, u64)> {
    let ip = format!(
        "10.{}.{}.{}",
        10 + user / 65_536,
        (user / 256) % 256,
        user % 256
    );
    let (secs, micros) = (ts / 1_000_000, ts % 1_000_000);
    let port = 1024 + rng.below(60_000);
    let resp = format!(
        "{}.{}.{}.{}",
        13 + rng.below(200),
        rng.below(256),
        rng.below(256),
        1 + rng.below(254)
    );
    match format {
        GenFormat::ZeekSsl => {
            let (version, cipher) = if rng.below(4) == 0 {
                ("TLSv12", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
            } else {
                ("TLSv13", "TLS_AES_128_GCM_SHA256")
            };
            writeln!(
                line,
                "{secs}.{micros:06}\t{}\t{ip}\t{port}\t{resp}\t443\t{version}\t{cipher}\tx25519\t{host}\tF\t-\th2\tT\tCsiI\t(empty)\t(empty)\t-\t-",
                uid(rng)
            )?;
            Ok((ip, 0, 0))
        }
        GenFormat::ZeekHttp => {
            let method = if sent > 1000 { "POST" } else { "GET" };
            writeln!(
                line,
                "{secs}.{micros:06}\t{}\t{ip}\t{port}\t{resp}\t80\t1\t{method}\t{host}\t/v1/{}\t-\t1.1\tMozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\t-\t{sent}\t{received}\t200\tOK\t-\t-\t(empty)\t-\t-\t-\t-\t-\t-\t-\t-\t-",
                uid(rng),
                rng.below(100_000)
            )?;
            Ok((ip, sent, received))
        }
        GenFormat::ZeekDns => {
            writeln!(
                line,
                "{secs}.{micros:06}\t{}\t{ip}\t{port}\t10.0.0.53\t53\tudp\t{}\t0.000{:03}\t{host}\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t{resp}\t300.000000\tF",
                uid(rng),
                rng.below(65_536),
                rng.below(1000)
            )?;
            Ok((ip, 0, 0))
        }
        GenFormat::Squid => {
            let name = format!("user{user:05}");
            let elapsed = rng.below(30_000);
            if rng.below(5) == 0 {
                writeln!(
                    line,
                    "{secs}.{:03} {elapsed:>6} {ip} TCP_MISS/200 {received} GET http://{host}/index.html {name} HIER_DIRECT/{resp} text/html",
                    micros / 1000
                )?;
            } else {
                writeln!(
                    line,
                    "{secs}.{:03} {elapsed:>6} {ip} TCP_TUNNEL/200 {received} CONNECT {host}:443 {name} HIER_DIRECT/{resp} -",
                    micros / 1000
                )?;
            }
            Ok((name, 0, received))
        }
        GenFormat::Route53 => {
            // RFC 3339 to the second, as Route 53 writes it.
            let stamp = crate::time::format_rfc3339((secs * 1_000_000) as i64);
            let stamp = stamp.get(..19).unwrap_or_default();
            writeln!(
                line,
                "{{\"version\":\"1.100000\",\"account_id\":\"123456789012\",\"region\":\"eu-west-1\",\"vpc_id\":\"vpc-0a1b2c3d\",\"query_timestamp\":\"{stamp}Z\",\"query_name\":\"{host}.\",\"query_type\":\"A\",\"query_class\":\"IN\",\"rcode\":\"NOERROR\",\"answers\":[{{\"Rdata\":\"{resp}\",\"Type\":\"A\",\"Class\":\"IN\"}}],\"srcaddr\":\"{ip}\",\"srcport\":\"{port}\",\"transport\":\"UDP\",\"srcids\":{{\"instance\":\"i-0{user:016x}\"}}}}"
            )?;
            Ok((ip, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Matcher;

    #[test]
    fn same_seed_same_bytes() {
        let c = Catalog::builtin().unwrap();
        for format in GenFormat::ALL {
            let options = GenOptions {
                format,
                size: 50_000,
                ..GenOptions::default()
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ta = generate(&c, &options, &mut a).unwrap();
            let tb = generate(&c, &options, &mut b).unwrap();
            assert_eq!(a, b);
            assert_eq!(ta, tb);
            assert_eq!(ta.bytes, a.len() as u64);
            assert!(!ta.services.is_empty());
        }
    }

    #[test]
    fn background_hosts_are_not_genai_and_genai_hosts_match_their_service() {
        let c = Catalog::builtin().unwrap();
        let m = Matcher::new(&c);
        for host in BACKGROUND {
            assert_eq!(m.lookup(host.as_bytes()), None, "{host}");
        }
        for h in genai_hosts(&c) {
            let hit = m.lookup(h.host.as_bytes()).unwrap();
            assert_eq!(
                c.services()[hit.service as usize].id,
                h.service,
                "{}",
                h.host
            );
            assert_eq!(hit.role.counts_as_use(), h.counts, "{}", h.host);
        }
    }
}
