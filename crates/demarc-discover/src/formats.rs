//! Log formats: detection from the first bytes of a file, and one line parser per format.
//! Parsers work on `&[u8]` and borrow from the line; they allocate only when a JSON string
//! carries escapes.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use crate::time::{self, Micros};

/// The log formats demarc reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Zeek TSV (http, ssl, dns), driven by the `#fields` header.
    Zeek,
    /// Zeek JSON lines (http, ssl, dns).
    ZeekJson,
    /// Squid native access.log.
    Squid,
    /// AWS Route 53 Resolver query logs (JSON lines).
    Route53,
    /// Cloudflare Gateway HTTP logs (Logpush JSON lines).
    Cloudflare,
    /// Zscaler NSS web logs (JSON feed output, flat or wrapped in `event`).
    Zscaler,
    /// Generic CSV with a header line and a field mapping.
    Csv,
    /// Generic TSV with a header line and a field mapping.
    Tsv,
    /// Generic JSON lines with a field mapping.
    JsonLines,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::Zeek,
        Format::ZeekJson,
        Format::Squid,
        Format::Route53,
        Format::Cloudflare,
        Format::Zscaler,
        Format::Csv,
        Format::Tsv,
        Format::JsonLines,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Zeek => "zeek",
            Format::ZeekJson => "zeek-json",
            Format::Squid => "squid",
            Format::Route53 => "route53",
            Format::Cloudflare => "cloudflare",
            Format::Zscaler => "zscaler",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::JsonLines => "jsonl",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where to find each field in a generic CSV, TSV or JSON-lines log: `host=dest,user=who`.
/// `host` or `url` is required. JSON names may be dotted paths (`a.b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    pub host: Option<String>,
    pub url: Option<String>,
    pub user: Option<String>,
    pub src: Option<String>,
    pub time: Option<String>,
    pub sent: Option<String>,
    pub received: Option<String>,
}

impl FieldMap {
    /// Parse `host=dest_host,user=uname,src=src_ip,time=ts,sent=bytes_out,received=bytes_in,url=u`.
    pub fn parse(text: &str) -> Result<FieldMap, String> {
        let mut map = FieldMap::default();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("`{pair}` is not `field=column`"));
            };
            let slot = match key.trim() {
                "host" => &mut map.host,
                "url" => &mut map.url,
                "user" => &mut map.user,
                "src" => &mut map.src,
                "time" => &mut map.time,
                "sent" => &mut map.sent,
                "received" => &mut map.received,
                other => {
                    return Err(format!(
                        "unknown field `{other}`; use host, url, user, src, time, sent or received"
                    ));
                }
            };
            *slot = Some(value.trim().to_owned());
        }
        if map.host.is_none() && map.url.is_none() {
            return Err("the mapping needs `host=COLUMN` or `url=COLUMN`".to_owned());
        }
        Ok(map)
    }
}

/// One web or DNS transaction, as much of it as the log tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub ts: Option<Micros>,
    /// The host name asked for (may carry a port or a trailing dot; the matcher copes).
    pub host: Cow<'a, [u8]>,
    /// The user name where the log has one, else the source address; may be empty.
    pub user: Cow<'a, [u8]>,
    pub sent: u64,
    pub received: u64,
}

/// What a line turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Record(Record<'a>),
    /// A comment, header or blank line.
    Skip,
}

/// Why a line is not a record.
pub type Malformed = Cow<'static, str>;

/// Column positions of a Zeek TSV log, from its `#fields` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeekSchema {
    ts: Option<usize>,
    host: Option<usize>,
    src: Option<usize>,
    user: Option<usize>,
    sent: Option<usize>,
    received: Option<usize>,
    columns: usize,
    /// For each column, the slot (see `SLOT_*`) its value goes to, or `NO_SLOT`.
    slots: Vec<u8>,
}

const SLOT_TS: u8 = 0;
const SLOT_HOST: u8 = 1;
const SLOT_SRC: u8 = 2;
const SLOT_USER: u8 = 3;
const SLOT_SENT: u8 = 4;
const SLOT_RECEIVED: u8 = 5;
const NO_SLOT: u8 = u8::MAX;

/// The host fields Zeek logs carry, in order of preference: ssl, http, dns.
pub const ZEEK_HOST_FIELDS: [&str; 3] = ["server_name", "host", "query"];

impl ZeekSchema {
    /// From a `#fields\tts\tuid\t...` line (without the line ending).
    pub fn from_fields_line(line: &[u8]) -> ZeekSchema {
        let names: Vec<&[u8]> = line.split(|&b| b == b'\t').skip(1).collect();
        let find = |wanted: &[&str]| {
            wanted
                .iter()
                .find_map(|w| names.iter().position(|n| *n == w.as_bytes()))
        };
        let mut schema = ZeekSchema {
            ts: find(&["ts"]),
            host: find(&ZEEK_HOST_FIELDS),
            src: find(&["id.orig_h"]),
            user: find(&["username"]),
            sent: find(&["request_body_len", "orig_bytes"]),
            received: find(&["response_body_len", "resp_bytes"]),
            columns: names.len(),
            slots: vec![NO_SLOT; names.len()],
        };
        for (column, slot) in [
            (schema.ts, SLOT_TS),
            (schema.host, SLOT_HOST),
            (schema.src, SLOT_SRC),
            (schema.user, SLOT_USER),
            (schema.sent, SLOT_SENT),
            (schema.received, SLOT_RECEIVED),
        ] {
            if let Some(c) = column {
                schema.slots[c] = slot;
            }
        }
        schema
    }

    pub fn has_host(&self) -> bool {
        self.host.is_some()
    }
}

/// A ready-to-use parser for one file (or one stretch of a Zeek file between headers).
#[derive(Debug, Clone)]
pub enum Parser {
    Zeek(ZeekSchema),
    ZeekJson,
    Squid,
    Route53,
    Cloudflare,
    Zscaler,
    /// CSV (`,`) or TSV (`\t`) with the mapped columns' positions.
    Delimited {
        separator: u8,
        columns: DelimitedColumns,
    },
    JsonLines(FieldMap),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelimitedColumns {
    host: Option<usize>,
    url: Option<usize>,
    user: Option<usize>,
    src: Option<usize>,
    time: Option<usize>,
    sent: Option<usize>,
    received: Option<usize>,
}

/// Reusable per-thread space for parsers that need it (field positions of a CSV line).
#[derive(Debug, Default)]
pub struct Scratch {
    fields: Vec<(usize, usize)>,
}

impl Parser {
    /// A parser for a generic CSV/TSV log, from its header line and the mapping.
    pub fn delimited(separator: u8, header: &[u8], map: &FieldMap) -> Result<Parser, String> {
        let mut scratch = Scratch::default();
        split_delimited(header, separator, &mut scratch.fields);
        let names: Vec<&[u8]> = scratch
            .fields
            .iter()
            .map(|&(a, b)| header[a..b].trim_ascii())
            .collect();
        let column = |wanted: &Option<String>| -> Result<Option<usize>, String> {
            match wanted {
                None => Ok(None),
                Some(w) => names
                    .iter()
                    .position(|n| *n == w.as_bytes())
                    .map(Some)
                    .ok_or_else(|| {
                        let known: Vec<String> = names
                            .iter()
                            .map(|n| String::from_utf8_lossy(n).into_owned())
                            .collect();
                        format!(
                            "column `{w}` is not in the header line (columns: {})",
                            known.join(", ")
                        )
                    }),
            }
        };
        let columns = DelimitedColumns {
            host: column(&map.host)?,
            url: column(&map.url)?,
            user: column(&map.user)?,
            src: column(&map.src)?,
            time: column(&map.time)?,
            sent: column(&map.sent)?,
            received: column(&map.received)?,
        };
        Ok(Parser::Delimited { separator, columns })
    }

    /// Parse one line (without its `\n`; a trailing `\r` is tolerated).
    pub fn parse<'a>(&self, line: &'a [u8], scratch: &mut Scratch) -> Result<Line<'a>, Malformed> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b'#' {
            return Ok(Line::Skip);
        }
        match self {
            Parser::Zeek(schema) => parse_zeek(schema, line),
            Parser::Squid => parse_squid(line),
            Parser::ZeekJson => parse_json::<ZeekJson>(line),
            Parser::Route53 => parse_json::<Route53>(line),
            Parser::Cloudflare => parse_json::<Cloudflare>(line),
            Parser::Zscaler => parse_json::<Zscaler>(line),
            Parser::Delimited { separator, columns } => {
                parse_delimited(*separator, columns, line, scratch)
            }
            Parser::JsonLines(map) => parse_generic_json(map, line),
        }
    }
}

fn unset(field: &[u8]) -> bool {
    field.is_empty() || field == b"-" || field == b"(empty)"
}

fn number(field: &[u8], name: &'static str) -> Result<u64, Malformed> {
    if unset(field) {
        return Ok(0);
    }
    let mut n: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return Err(Cow::Owned(format!("`{name}` is not a number")));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(Cow::Borrowed("number too large"))?;
    }
    Ok(n)
}

fn parse_zeek<'a>(schema: &ZeekSchema, line: &'a [u8]) -> Result<Line<'a>, Malformed> {
    if schema.host.is_none() {
        return Err(Cow::Borrowed(
            "zeek `#fields` has no host field (`server_name`, `host` or `query`)",
        ));
    }
    // One pass over the tabs: each wanted column lands in its slot; counting every column
    // catches truncated lines.
    let mut slots: [&[u8]; 6] = [b"-"; 6];
    let mut column = 0;
    let mut start = 0;
    for tab in memchr::memchr_iter(b'\t', line) {
        if let Some(&slot) = schema.slots.get(column) {
            if slot != NO_SLOT {
                slots[usize::from(slot)] = &line[start..tab];
            }
        }
        column += 1;
        start = tab + 1;
    }
    if let Some(&slot) = schema.slots.get(column) {
        if slot != NO_SLOT {
            slots[usize::from(slot)] = &line[start..];
        }
    }
    column += 1;
    if column != schema.columns {
        return Err(Cow::Owned(format!(
            "{column} fields where `#fields` names {}",
            schema.columns
        )));
    }
    let [ts, host, src, user, sent, received] = slots;
    let ts = if unset(ts) {
        None
    } else {
        Some(time::parse_epoch(ts).ok_or(Cow::Borrowed("`ts` is not a timestamp"))?)
    };
    let host = if unset(host) { &b""[..] } else { host };
    let user = if !unset(user) {
        user
    } else if !unset(src) {
        src
    } else {
        &b""[..]
    };
    Ok(Line::Record(Record {
        ts,
        host: Cow::Borrowed(host),
        user: Cow::Borrowed(user),
        sent: number(sent, "request_body_len")?,
        received: number(received, "response_body_len")?,
    }))
}

/// The host of a URL: `http://user@host:80/path` -> `host:80`; `host:443` (CONNECT) and
/// `host/path` (Zscaler) work too.
pub fn host_of_url(url: &[u8]) -> &[u8] {
    // `scheme://` ends at the first `:` when `//` follows it (no searcher set-up per call).
    let rest = match memchr::memchr(b':', url) {
        Some(i) if url[i + 1..].starts_with(b"//") => &url[i + 3..],
        _ => url,
    };
    let end = memchr::memchr3(b'/', b'?', b'#', rest).unwrap_or(rest.len());
    let authority = &rest[..end];
    match memchr::memrchr(b'@', authority) {
        Some(at) => &authority[at + 1..],
        None => authority,
    }
}

/// `time elapsed client code/status bytes method URL user hierarchy/peer type`
fn parse_squid(line: &[u8]) -> Result<Line<'_>, Malformed> {
    // Fields are separated by one or more spaces (squid pads `elapsed`); only the first
    // eight are needed.
    let mut fields: [&[u8]; 8] = [&[]; 8];
    let mut n = 0;
    let mut rest = line;
    while n < fields.len() {
        let Some(start) = rest.iter().position(|&b| b != b' ') else {
            break;
        };
        rest = &rest[start..];
        let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        fields[n] = &rest[..end];
        rest = &rest[end..];
        n += 1;
    }
    if n < 8 {
        return Err(Cow::Owned(format!(
            "{n} fields where squid's native format has 10"
        )));
    }
    let ts =
        time::parse_epoch(fields[0]).ok_or(Cow::Borrowed("the first field is not a timestamp"))?;
    let received = number(fields[4], "bytes")?;
    let user = if unset(fields[7]) {
        fields[2]
    } else {
        fields[7]
    };
    Ok(Line::Record(Record {
        ts: Some(ts),
        host: Cow::Borrowed(host_of_url(fields[6])),
        user: Cow::Borrowed(user),
        sent: 0,
        received,
    }))
}

/// A JSON timestamp: epoch seconds (number or string) or an RFC 3339 / ctime string.
#[derive(Debug, Default)]
struct JsonTime(Option<Micros>);

impl<'de> Deserialize<'de> for JsonTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = JsonTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<JsonTime, E> {
                Ok(JsonTime(time::parse_epoch(format!("{v:.6}").as_bytes())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JsonTime, E> {
                Ok(JsonTime(time::parse_epoch(v.to_string().as_bytes())))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<JsonTime, E> {
                Err(E::custom("negative timestamp"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsonTime, E> {
                time::parse_any(v.as_bytes())
                    .map(|t| JsonTime(Some(t)))
                    .ok_or_else(|| E::custom(format!("`{v}` is not a timestamp")))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<JsonTime, E> {
                Ok(JsonTime(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count written as a number or a string.
#[derive(Debug, Default, Clone, Copy)]
struct LooseU64(u64);

impl<'de> Deserialize<'de> for LooseU64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = LooseU64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LooseU64, E> {
                Ok(LooseU64(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LooseU64, E> {
                u64::try_from(v)
                    .map(LooseU64)
                    .map_err(|_| E::custom("negative byte count"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<LooseU64, E> {
                if (0.0..1.8e19).contains(&v) {
                    Ok(LooseU64(v as u64))
                } else {
                    Err(E::custom("byte count out of range"))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LooseU64, E> {
                if v.is_empty() || v == "-" || v == "None" {
                    return Ok(LooseU64(0));
                }
                v.parse()
                    .map(LooseU64)
                    .map_err(|_| E::custom(format!("`{v}` is not a byte count")))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<LooseU64, E> {
                Ok(LooseU64(0))
            }
        }
        d.deserialize_any(V)
    }
}

type Text<'a> = Option<Cow<'a, str>>;

fn text<'a>(t: Text<'a>) -> Cow<'a, [u8]> {
    match t {
        None => Cow::Borrowed(b""),
        Some(Cow::Borrowed("-")) => Cow::Borrowed(b""),
        Some(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
        Some(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
    }
}

fn first_set<'a>(options: impl IntoIterator<Item = Text<'a>>) -> Text<'a> {
    options
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty() && s != "-" && s != "None")
}

trait JsonFormat<'a>: Deserialize<'a> {
    fn record(self) -> Record<'a>;
}

fn parse_json<'a, T: JsonFormat<'a>>(line: &'a [u8]) -> Result<Line<'a>, Malformed> {
    match serde_json::from_slice::<T>(line) {
        Ok(v) => Ok(Line::Record(v.record())),
        Err(e) => Err(Cow::Owned(format!("invalid json: {e}"))),
    }
}

#[derive(Deserialize)]
struct ZeekJson<'a> {
    #[serde(default)]
    ts: JsonTime,
    #[serde(borrow, default)]
    server_name: Text<'a>,
    #[serde(borrow, default)]
    host: Text<'a>,
    #[serde(borrow, default)]
    query: Text<'a>,
    #[serde(borrow, default, rename = "id.orig_h")]
    orig_h: Text<'a>,
    #[serde(borrow, default)]
    username: Text<'a>,
    #[serde(default)]
    request_body_len: LooseU64,
    #[serde(default)]
    response_body_len: LooseU64,
}

impl<'a> JsonFormat<'a> for ZeekJson<'a> {
    fn record(self) -> Record<'a> {
        Record {
            ts: self.ts.0,
            host: text(first_set([self.server_name, self.host, self.query])),
            user: text(first_set([self.username, self.orig_h])),
            sent: self.request_body_len.0,
            received: self.response_body_len.0,
        }
    }
}

#[derive(Deserialize)]
struct Route53<'a> {
    #[serde(default)]
    query_timestamp: JsonTime,
    #[serde(borrow)]
    query_name: Cow<'a, str>,
    #[serde(borrow, default)]
    srcaddr: Text<'a>,
}

impl<'a> JsonFormat<'a> for Route53<'a> {
    fn record(self) -> Record<'a> {
        Record {
            ts: self.query_timestamp.0,
            host: text(Some(self.query_name)),
            user: text(self.srcaddr),
            sent: 0,
            received: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Cloudflare<'a> {
    #[serde(default)]
    datetime: JsonTime,
    #[serde(borrow, default, rename = "HTTPHost")]
    http_host: Text<'a>,
    #[serde(borrow, default, rename = "URL")]
    url: Text<'a>,
    #[serde(borrow, default)]
    email: Text<'a>,
    #[serde(borrow, default, rename = "SourceInternalIP")]
    source_internal_ip: Text<'a>,
    #[serde(borrow, default, rename = "SourceIP")]
    source_ip: Text<'a>,
}

impl<'a> JsonFormat<'a> for Cloudflare<'a> {
    fn record(self) -> Record<'a> {
        let host = match first_set([self.http_host]) {
            Some(h) => text(Some(h)),
            None => url_host(self.url),
        };
        Record {
            ts: self.datetime.0,
            host,
            user: text(first_set([
                self.email,
                self.source_internal_ip,
                self.source_ip,
            ])),
            sent: 0,
            received: 0,
        }
    }
}

fn url_host(url: Text<'_>) -> Cow<'_, [u8]> {
    match url {
        None => Cow::Borrowed(b""),
        Some(Cow::Borrowed(u)) => Cow::Borrowed(host_of_url(u.as_bytes())),
        Some(Cow::Owned(u)) => Cow::Owned(host_of_url(u.as_bytes()).to_vec()),
    }
}

#[derive(Deserialize)]
struct ZscalerEvent<'a> {
    #[serde(default, alias = "time", alias = "epochtime")]
    datetime: JsonTime,
    #[serde(borrow, default, alias = "host")]
    hostname: Text<'a>,
    #[serde(borrow, default)]
    url: Text<'a>,
    #[serde(borrow, default, alias = "login")]
    user: Text<'a>,
    #[serde(
        borrow,
        default,
        rename = "ClientIP",
        alias = "cip",
        alias = "clientip"
    )]
    client_ip: Text<'a>,
    #[serde(default, alias = "reqsize")]
    requestsize: LooseU64,
    #[serde(default, alias = "respsize")]
    responsesize: LooseU64,
}

/// Zscaler's JSON feed is either the event itself or `{"sourcetype": ..., "event": {...}}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Zscaler<'a> {
    Wrapped {
        #[serde(borrow)]
        event: ZscalerEvent<'a>,
    },
    Flat(#[serde(borrow)] ZscalerEvent<'a>),
}

impl<'a> JsonFormat<'a> for Zscaler<'a> {
    fn record(self) -> Record<'a> {
        let (Zscaler::Wrapped { event: e } | Zscaler::Flat(e)) = self;
        let host = match first_set([e.hostname]) {
            Some(h) => text(Some(h)),
            None => url_host(e.url),
        };
        Record {
            ts: e.datetime.0,
            host,
            user: text(first_set([e.user, e.client_ip])),
            sent: e.requestsize.0,
            received: e.responsesize.0,
        }
    }
}

/// Split a CSV/TSV line into field ranges; a field in double quotes may hold the separator.
fn split_delimited(line: &[u8], separator: u8, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let mut i = 0;
    loop {
        if line.get(i) == Some(&b'"') {
            let start = i + 1;
            let mut j = start;
            while j < line.len() {
                if line[j] == b'"' {
                    if line.get(j + 1) == Some(&b'"') {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            out.push((start, j.min(line.len())));
            i = match memchr::memchr(separator, &line[j.min(line.len())..]) {
                Some(k) => j + k + 1,
                None => return,
            };
        } else {
            match memchr::memchr(separator, &line[i..]) {
                Some(k) => {
                    out.push((i, i + k));
                    i += k + 1;
                }
                None => {
                    out.push((i, line.len()));
                    return;
                }
            }
        }
    }
}

fn parse_delimited<'a>(
    separator: u8,
    columns: &DelimitedColumns,
    line: &'a [u8],
    scratch: &mut Scratch,
) -> Result<Line<'a>, Malformed> {
    split_delimited(line, separator, &mut scratch.fields);
    let fields = &scratch.fields;
    let get = |c: Option<usize>| -> Result<&'a [u8], Malformed> {
        match c {
            None => Ok(b""),
            Some(i) => fields
                .get(i)
                .map(|&(a, b)| line[a..b].trim_ascii())
                .ok_or(Cow::Borrowed("fewer fields than the header line")),
        }
    };
    let host = match get(columns.host)? {
        h if !unset(h) => h,
        _ => host_of_url(get(columns.url)?),
    };
    let user = match get(columns.user)? {
        u if !unset(u) => u,
        _ => get(columns.src)?,
    };
    let ts = match get(columns.time)? {
        t if unset(t) => None,
        t => Some(time::parse_any(t).ok_or(Cow::Borrowed("the time field is not a timestamp"))?),
    };
    Ok(Line::Record(Record {
        ts,
        host: Cow::Borrowed(host),
        user: Cow::Borrowed(if unset(user) { b"" } else { user }),
        sent: number(get(columns.sent)?, "sent")?,
        received: number(get(columns.received)?, "received")?,
    }))
}

fn lookup<'v>(
    value: &'v serde_json::Value,
    path: &Option<String>,
) -> Option<&'v serde_json::Value> {
    let path = path.as_deref()?;
    value
        .get(path)
        .or_else(|| path.split('.').try_fold(value, |v, key| v.get(key)))
}

fn parse_generic_json<'a>(map: &FieldMap, line: &'a [u8]) -> Result<Line<'a>, Malformed> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| Cow::Owned(format!("invalid json: {e}")))?;
    let string = |path: &Option<String>| -> Option<String> {
        match lookup(&value, path)? {
            serde_json::Value::String(s) if !s.is_empty() && s != "-" => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let host = match string(&map.host) {
        Some(h) => h.into_bytes(),
        None => string(&map.url)
            .map(|u| host_of_url(u.as_bytes()).to_vec())
            .unwrap_or_default(),
    };
    let user = string(&map.user)
        .or_else(|| string(&map.src))
        .unwrap_or_default();
    let ts = match string(&map.time) {
        None => None,
        Some(t) => Some(
            time::parse_any(t.as_bytes())
                .ok_or(Cow::Borrowed("the time field is not a timestamp"))?,
        ),
    };
    let bytes = |path: &Option<String>| -> Result<u64, Malformed> {
        match lookup(&value, path) {
            None | Some(serde_json::Value::Null) => Ok(0),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .ok_or(Cow::Borrowed("a byte count is not a whole number")),
            Some(serde_json::Value::String(s)) => number(s.as_bytes(), "bytes"),
            Some(_) => Err(Cow::Borrowed("a byte count is not a number")),
        }
    };
    Ok(Line::Record(Record {
        ts,
        host: Cow::Owned(host),
        user: Cow::Owned(user.into_bytes()),
        sent: bytes(&map.sent)?,
        received: bytes(&map.received)?,
    }))
}

/// Guess the format from the first bytes of a file. `None`: not recognised.
pub fn detect(sample: &[u8]) -> Option<Format> {
    let first = sample
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.trim_ascii().is_empty() && !l.starts_with(b"### BTest"))?;
    if first.starts_with(b"#separator")
        || first.starts_with(b"#fields")
        || memchr::memmem::find(sample, b"\n#fields\t").is_some()
    {
        return Some(Format::Zeek);
    }
    if first.trim_ascii_start().starts_with(b"{") {
        let has = |key: &[u8]| memchr::memmem::find(first, key).is_some();
        return if has(b"\"query_name\"") && has(b"\"srcaddr\"") {
            Some(Format::Route53)
        } else if has(b"\"HTTPHost\"") || (has(b"\"Datetime\"") && has(b"\"SourceIP\"")) {
            Some(Format::Cloudflare)
        } else if has(b"zscalernss")
            || (has(b"\"hostname\"") && (has(b"\"ClientIP\"") || has(b"\"cip\"")))
            || has(b"\"reqsize\"")
            || has(b"\"requestsize\"")
        {
            Some(Format::Zscaler)
        } else if has(b"\"id.orig_h\"") || has(b"\"_path\"") {
            Some(Format::ZeekJson)
        } else {
            None
        };
    }
    // Squid native: `1286536308.779    180 192.168.0.224 TCP_MISS/200 ...`
    let mut fields = first.split(|&b| b == b' ').filter(|f| !f.is_empty());
    if let (Some(ts), Some(elapsed)) = (fields.next(), fields.next()) {
        let code = fields.nth(1).unwrap_or_default();
        if time::parse_epoch(ts).is_some()
            && elapsed.iter().all(u8::is_ascii_digit)
            && memchr::memchr(b'/', code).is_some()
        {
            return Some(Format::Squid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(p: &Parser, line: &str) -> Record<'static> {
        let mut s = Scratch::default();
        let line: &'static str = Box::leak(line.to_owned().into_boxed_str());
        match p.parse(line.as_bytes(), &mut s).unwrap() {
            Line::Record(r) => r,
            Line::Skip => panic!("skipped {line}"),
        }
    }

    #[test]
    fn zeek_tsv_follows_fields_order() {
        let a = ZeekSchema::from_fields_line(b"#fields\tts\tid.orig_h\tserver_name");
        let b = ZeekSchema::from_fields_line(b"#fields\tserver_name\tts\tid.orig_h");
        let ra = rec(&Parser::Zeek(a), "1521911720.5\t10.0.0.1\tchatgpt.com");
        let rb = rec(&Parser::Zeek(b), "chatgpt.com\t1521911720.5\t10.0.0.1");
        assert_eq!(ra, rb);
        assert_eq!(&*ra.host, b"chatgpt.com");
        assert_eq!(&*ra.user, b"10.0.0.1");
    }

    #[test]
    fn zeek_truncated_and_hostless() {
        let p = Parser::Zeek(ZeekSchema::from_fields_line(
            b"#fields\tts\tid.orig_h\tserver_name",
        ));
        assert!(
            p.parse(b"1521911720.5\t10.0.0.1", &mut Scratch::default())
                .is_err()
        );
        let conn = Parser::Zeek(ZeekSchema::from_fields_line(
            b"#fields\tts\tid.orig_h\torig_bytes",
        ));
        let err = conn
            .parse(b"1\t10.0.0.1\t5", &mut Scratch::default())
            .unwrap_err();
        assert!(err.contains("no host field"), "{err}");
    }

    #[test]
    fn squid_connect_and_get() {
        let r = rec(
            &Parser::Squid,
            "1286536309.450    466 192.168.0.224 TCP_MISS/200 1190 CONNECT api.openai.com:443 alice DIRECT/1.2.3.4 -",
        );
        assert_eq!(
            (&*r.host, &*r.user, r.received),
            (&b"api.openai.com:443"[..], &b"alice"[..], 1190)
        );
        let r = rec(
            &Parser::Squid,
            "1286536308.779 180 192.168.0.224 TCP_MISS/200 411 GET http://www.google.com/x?y - DIRECT/209.85.229.147 text/html",
        );
        assert_eq!(
            (&*r.host, &*r.user),
            (&b"www.google.com"[..], &b"192.168.0.224"[..])
        );
        assert!(
            Parser::Squid
                .parse(
                    b"1286536308.779 180 192.168.0.224 TCP_MISS/200",
                    &mut Scratch::default()
                )
                .is_err()
        );
    }

    #[test]
    fn json_formats() {
        let r = rec(
            &Parser::Route53,
            r#"{"version":"1.100000","account_id":"1","region":"us-east-1","vpc_id":"vpc-1","query_timestamp":"2021-02-04T17:51:55Z","query_name":"claude.ai.","query_type":"A","query_class":"IN","rcode":"NOERROR","answers":[],"srcaddr":"10.1.2.3","srcport":"5353","transport":"UDP","srcids":{"instance":"i-1"}}"#,
        );
        assert_eq!((&*r.host, &*r.user), (&b"claude.ai."[..], &b"10.1.2.3"[..]));
        let r = rec(
            &Parser::Cloudflare,
            r#"{"Datetime":"2024-05-01T10:00:00Z","Email":"bob@example.com","HTTPHost":"chatgpt.com","SourceIP":"1.2.3.4","URL":"https://chatgpt.com/c/1"}"#,
        );
        assert_eq!(
            (&*r.host, &*r.user),
            (&b"chatgpt.com"[..], &b"bob@example.com"[..])
        );
        let r = rec(
            &Parser::Zscaler,
            r#"{"sourcetype":"zscalernss-web","event":{"datetime":"Mon Jun 20 15:29:11 2022","hostname":"gemini.google.com","user":"carol@example.com","ClientIP":"10.0.0.9","requestsize":"5000","responsesize":"72"}}"#,
        );
        assert_eq!(
            (&*r.host, &*r.user, r.sent, r.received),
            (
                &b"gemini.google.com"[..],
                &b"carol@example.com"[..],
                5000,
                72
            )
        );
        let r = rec(
            &Parser::ZeekJson,
            r#"{"ts":"2018-03-24T17:15:20.615923Z","id.orig_h":"10.164.94.120","server_name":"api.anthropic.com"}"#,
        );
        assert_eq!(&*r.host, b"api.anthropic.com");
        assert!(r.ts.is_some());
        assert!(
            Parser::Route53
                .parse(b"{\"query_name\":", &mut Scratch::default())
                .is_err()
        );
    }

    #[test]
    fn generic_csv_and_json() {
        let map = FieldMap::parse("host=dest,user=who,sent=up,time=when").unwrap();
        let p = Parser::delimited(b',', b"when,who,dest,up", &map).unwrap();
        let r = rec(&p, r#"2024-05-01T10:00:00Z,"doe, jane",claude.ai,12"#);
        assert_eq!(
            (&*r.host, &*r.user, r.sent),
            (&b"claude.ai"[..], &b"doe, jane"[..], 12)
        );
        assert!(
            Parser::delimited(b',', b"a,b", &map)
                .unwrap_err()
                .contains("column `dest`")
        );
        let p = Parser::JsonLines(FieldMap::parse("url=req.url,user=u").unwrap());
        let r = rec(&p, r#"{"req":{"url":"https://poe.com/chat"},"u":"dan"}"#);
        assert_eq!((&*r.host, &*r.user), (&b"poe.com"[..], &b"dan"[..]));
    }

    #[test]
    fn detection() {
        assert_eq!(
            detect(b"#separator \\x09\n#fields\tts\n"),
            Some(Format::Zeek)
        );
        assert_eq!(detect(b"1286536308.779    180 192.168.0.224 TCP_MISS/200 411 GET http://x/ - DIRECT/1 -\n"), Some(Format::Squid));
        assert_eq!(
            detect(b"{\"query_name\":\"a.\",\"srcaddr\":\"1\"}\n"),
            Some(Format::Route53)
        );
        assert_eq!(
            detect(b"{\"_path\":\"ssl\",\"id.orig_h\":\"1\"}\n"),
            Some(Format::ZeekJson)
        );
        assert_eq!(
            detect(b"{\"Datetime\":1,\"HTTPHost\":\"a\"}"),
            Some(Format::Cloudflare)
        );
        assert_eq!(
            detect(b"{\"sourcetype\":\"zscalernss-web\",\"event\":{}}"),
            Some(Format::Zscaler)
        );
        assert_eq!(detect(b"hello world\n"), None);
        assert_eq!(detect(b""), None);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(line in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let map = FieldMap::parse("host=h,user=u,time=t,sent=s").unwrap();
            let parsers = [
                Parser::Zeek(ZeekSchema::from_fields_line(b"#fields\tts\tid.orig_h\tserver_name\trequest_body_len")),
                Parser::Squid, Parser::ZeekJson, Parser::Route53, Parser::Cloudflare, Parser::Zscaler,
                Parser::delimited(b',', b"t,u,h,s", &map).unwrap(), Parser::JsonLines(map.clone()),
            ];
            let mut s = Scratch::default();
            for p in &parsers {
                let _ = p.parse(&line, &mut s);
            }
            let _ = detect(&line);
        }

        /// Whatever order `#fields` names the columns in, the record is the same.
        #[test]
        fn zeek_tsv_round_trip(order in proptest::strategy::Strategy::prop_shuffle(proptest::strategy::Just(vec![0usize, 1, 2, 3, 4])),
                               host in "[a-z]{1,10}\\.[a-z]{2,5}", user in "[a-z]{1,8}", sent in 0u64..1 << 40, secs in 1_000_000_000u64..2_000_000_000) {
            let names = ["ts", "host", "username", "request_body_len", "uid"];
            let values = [format!("{secs}.25"), host.clone(), user.clone(), sent.to_string(), "CabcDEF".to_owned()];
            let header = format!("#fields\t{}", order.iter().map(|&i| names[i]).collect::<Vec<_>>().join("\t"));
            let line = order.iter().map(|&i| values[i].as_str()).collect::<Vec<_>>().join("\t");
            let parser = Parser::Zeek(ZeekSchema::from_fields_line(header.as_bytes()));
            let mut s = Scratch::default();
            let Line::Record(r) = parser.parse(line.as_bytes(), &mut s).unwrap() else { panic!() };
            proptest::prop_assert_eq!(r.ts, Some(secs as i64 * 1_000_000 + 250_000));
            proptest::prop_assert_eq!(&*r.host, host.as_bytes());
            proptest::prop_assert_eq!(&*r.user, user.as_bytes());
            proptest::prop_assert_eq!(r.sent, sent);
        }

        #[test]
        fn squid_round_trip(ts in 1_000_000_000u64..2_000_000_000, ms in 0u32..1000, bytes in 0u64..1<<40,
                            host in "[a-z]{1,10}\\.[a-z]{2,5}", user in "[a-z]{1,8}") {
            let line = format!("{ts}.{ms:03}    17 10.0.0.1 TCP_TUNNEL/200 {bytes} CONNECT {host}:443 {user} HIER_DIRECT/1.1.1.1 -");
            let mut s = Scratch::default();
            let Line::Record(r) = Parser::Squid.parse(line.as_bytes(), &mut s).unwrap() else { panic!() };
            proptest::prop_assert_eq!(r.ts, Some(ts as i64 * 1_000_000 + i64::from(ms) * 1000));
            let expected = format!("{host}:443");
            proptest::prop_assert_eq!(&*r.host, expected.as_bytes());
            proptest::prop_assert_eq!(&*r.user, user.as_bytes());
            proptest::prop_assert_eq!(r.received, bytes);
        }
    }
}
