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
    /// A device id column (an endpoint agent's machine name), counted apart from users.
    pub device: Option<String>,
    /// The proxy's verdict (`allow`/`allowed`/`pass` or `block`/`blocked`/`deny`/`denied`).
    pub action: Option<String>,
}

/// Why a field mapping (`--map`) or a delimited log's header does not work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("`{0}` is not `field=column`")]
    NotAPair(String),
    #[error(
        "unknown field `{0}`; use host, url, user, src, device, time, sent, received or action"
    )]
    UnknownField(String),
    #[error("the mapping needs `host=COLUMN` or `url=COLUMN`")]
    NoHost,
    #[error("column `{column}` is not in the header line (columns: {known})")]
    NoSuchColumn { column: String, known: String },
}

impl FieldMap {
    /// Parse `host=dest_host,user=uname,src=src_ip,time=ts,sent=bytes_out,received=bytes_in,url=u`.
    pub fn parse(text: &str) -> Result<FieldMap, MappingError> {
        let mut map = FieldMap::default();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(MappingError::NotAPair(pair.to_owned()));
            };
            let slot = match key.trim() {
                "host" => &mut map.host,
                "url" => &mut map.url,
                "user" => &mut map.user,
                "src" => &mut map.src,
                "time" => &mut map.time,
                "sent" => &mut map.sent,
                "received" => &mut map.received,
                "device" => &mut map.device,
                "action" => &mut map.action,
                other => return Err(MappingError::UnknownField(other.to_owned())),
            };
            *slot = Some(value.trim().to_owned());
        }
        if map.host.is_none() && map.url.is_none() {
            return Err(MappingError::NoHost);
        }
        Ok(map)
    }
}

/// What kind of identity a record names: a person's user name, a source address, or a
/// device. They are counted apart: one person may show up under several addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdKind {
    #[default]
    User,
    Ip,
    Device,
}

impl IdKind {
    pub const ALL: [IdKind; 3] = [IdKind::User, IdKind::Ip, IdKind::Device];

    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::User => "user",
            IdKind::Ip => "ip",
            IdKind::Device => "device",
        }
    }

    pub fn from_name(name: &str) -> Option<IdKind> {
        IdKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What the proxy did with a request, where its log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// The log does not say (Zeek, DNS logs).
    #[default]
    Unknown,
    Allowed,
    Blocked,
}

/// A verdict word of a proxy log (`allow`, `Blocked`, `deny`, ...).
pub fn action_of(word: &[u8]) -> Action {
    let w = word.trim_ascii();
    let is = |s: &str| w.eq_ignore_ascii_case(s.as_bytes());
    if is("block") || is("blocked") || is("deny") || is("denied") || is("drop") || is("reject") {
        Action::Blocked
    } else if is("allow") || is("allowed") || is("pass") || is("permit") || is("accept") {
        Action::Allowed
    } else {
        Action::Unknown
    }
}

/// One web or DNS transaction, as much of it as the log tells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record<'a> {
    pub ts: Option<Micros>,
    /// The host name asked for (may carry a port or a trailing dot; the matcher copes).
    pub host: Cow<'a, [u8]>,
    /// The user name where the log has one, else the source address or device; may be empty.
    pub user: Cow<'a, [u8]>,
    /// What `user` is.
    pub id_kind: IdKind,
    /// Bytes sent and received; `None` where the log has no such field.
    pub sent: Option<u64>,
    pub received: Option<u64>,
    pub action: Action,
    /// A DNS lookup rather than a web request (repeats are deduplicated).
    pub dns: bool,
    /// The line had a time that could not be read: kept without a time, and counted.
    pub bad_time: bool,
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
    /// The host column is a DNS `query`.
    dns: bool,
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
        let host = find(&ZEEK_HOST_FIELDS);
        let mut schema = ZeekSchema {
            ts: find(&["ts"]),
            host,
            dns: host.is_some_and(|h| names.get(h).copied() == Some(&b"query"[..])),
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
    device: Option<usize>,
    action: Option<usize>,
}

/// Reusable per-thread space for parsers that need it (field positions of a CSV line).
#[derive(Debug, Default)]
pub struct Scratch {
    fields: Vec<(usize, usize)>,
}

impl Parser {
    /// A parser for a generic CSV/TSV log, from its header line and the mapping.
    pub fn delimited(separator: u8, header: &[u8], map: &FieldMap) -> Result<Parser, MappingError> {
        let mut scratch = Scratch::default();
        split_delimited(header, separator, &mut scratch.fields);
        let names: Vec<&[u8]> = scratch
            .fields
            .iter()
            .map(|&(a, b)| header[a..b].trim_ascii())
            .collect();
        let column = |wanted: &Option<String>| -> Result<Option<usize>, MappingError> {
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
                        MappingError::NoSuchColumn {
                            column: w.clone(),
                            known: known.join(", "),
                        }
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
            device: column(&map.device)?,
            action: column(&map.action)?,
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

/// A time field in any documented form (epoch seconds, RFC 3339 / ISO 8601 as `zeek-cut -d`
/// writes it, ctime); an unreadable one gives no time and `true`.
fn read_time(field: &[u8]) -> (Option<Micros>, bool) {
    if unset(field) {
        return (None, false);
    }
    match time::parse_any(field) {
        Some(t) => (Some(t), false),
        None => (None, true),
    }
}

/// A byte count where the log has the field (`has`), unknown (`None`) where it has not or the
/// value is unset.
fn optional_number(has: bool, field: &[u8], name: &'static str) -> Result<Option<u64>, Malformed> {
    if !has || unset(field) {
        return Ok(None);
    }
    number(field, name).map(Some)
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
        if let Some(&slot) = schema.slots.get(column)
            && slot != NO_SLOT
        {
            slots[usize::from(slot)] = &line[start..tab];
        }
        column += 1;
        start = tab + 1;
    }
    if let Some(&slot) = schema.slots.get(column)
        && slot != NO_SLOT
    {
        slots[usize::from(slot)] = &line[start..];
    }
    column += 1;
    if column != schema.columns {
        return Err(Cow::Owned(format!(
            "{column} fields where `#fields` names {}",
            schema.columns
        )));
    }
    let [ts, host, src, user, sent, received] = slots;
    let (ts, bad_time) = read_time(ts);
    let host = if unset(host) { &b""[..] } else { host };
    let (user, id_kind) = if !unset(user) {
        (user, IdKind::User)
    } else if !unset(src) {
        (src, IdKind::Ip)
    } else {
        (&b""[..], IdKind::User)
    };
    Ok(Line::Record(Record {
        ts,
        host: Cow::Borrowed(host),
        user: Cow::Borrowed(user),
        id_kind,
        sent: optional_number(schema.sent.is_some(), sent, "request_body_len")?,
        received: optional_number(schema.received.is_some(), received, "response_body_len")?,
        action: Action::Unknown,
        dns: schema.dns,
        bad_time,
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

/// Squid's `CODE/STATUS`: `TCP_DENIED/403` is a refusal; a `407` is the proxy asking for
/// credentials (the retry says more), not a verdict.
fn squid_action(code: &[u8]) -> Action {
    if code.ends_with(b"/407") {
        Action::Unknown
    } else if memchr::memmem::find(code, b"DENIED").is_some() {
        Action::Blocked
    } else {
        Action::Allowed
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
    let (user, id_kind) = if unset(fields[7]) {
        (fields[2], IdKind::Ip)
    } else {
        (fields[7], IdKind::User)
    };
    Ok(Line::Record(Record {
        ts: Some(ts),
        host: Cow::Borrowed(host_of_url(fields[6])),
        user: Cow::Borrowed(user),
        id_kind,
        sent: None,
        received: Some(received),
        action: squid_action(fields[3]),
        dns: false,
        bad_time: false,
    }))
}

/// A JSON timestamp: epoch seconds (number or string) or an RFC 3339 / ctime string.
#[derive(Debug, Default)]
struct JsonTime(Option<Micros>, bool);

impl<'de> Deserialize<'de> for JsonTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = JsonTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<JsonTime, E> {
                let t = time::parse_epoch(format!("{v:.6}").as_bytes());
                Ok(JsonTime(t, t.is_none()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<JsonTime, E> {
                let t = time::parse_epoch(v.to_string().as_bytes());
                Ok(JsonTime(t, t.is_none()))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<JsonTime, E> {
                Ok(JsonTime(None, true))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsonTime, E> {
                if v.is_empty() || v == "-" {
                    return Ok(JsonTime(None, false));
                }
                let t = time::parse_any(v.as_bytes());
                Ok(JsonTime(t, t.is_none()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<JsonTime, E> {
                Ok(JsonTime(None, false))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count written as a number or a string; `None` when absent or unset.
#[derive(Debug, Default, Clone, Copy)]
struct LooseU64(Option<u64>);

impl<'de> Deserialize<'de> for LooseU64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = LooseU64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LooseU64, E> {
                Ok(LooseU64(Some(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<LooseU64, E> {
                u64::try_from(v)
                    .map(|v| LooseU64(Some(v)))
                    .map_err(|_| E::custom("negative byte count"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<LooseU64, E> {
                if (0.0..1.8e19).contains(&v) {
                    Ok(LooseU64(Some(v as u64)))
                } else {
                    Err(E::custom("byte count out of range"))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LooseU64, E> {
                if v.is_empty() || v == "-" || v == "None" {
                    return Ok(LooseU64(None));
                }
                v.parse()
                    .map(|v| LooseU64(Some(v)))
                    .map_err(|_| E::custom(format!("`{v}` is not a byte count")))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<LooseU64, E> {
                Ok(LooseU64(None))
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
        let web = first_set([self.server_name, self.host]);
        let dns = web.is_none() && first_set([self.query.clone()]).is_some();
        let (user, id_kind) = match first_set([self.username]) {
            Some(u) => (Some(u), IdKind::User),
            None => (first_set([self.orig_h]), IdKind::Ip),
        };
        Record {
            ts: self.ts.0,
            bad_time: self.ts.1,
            host: text(web.or(self.query)),
            user: text(user),
            id_kind,
            sent: self.request_body_len.0,
            received: self.response_body_len.0,
            action: Action::Unknown,
            dns,
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
            bad_time: self.query_timestamp.1,
            host: text(Some(self.query_name)),
            user: text(self.srcaddr),
            id_kind: IdKind::Ip,
            sent: None,
            received: None,
            action: Action::Unknown,
            dns: true,
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
    #[serde(borrow, default)]
    action: Text<'a>,
}

impl<'a> JsonFormat<'a> for Cloudflare<'a> {
    fn record(self) -> Record<'a> {
        let host = match first_set([self.http_host]) {
            Some(h) => text(Some(h)),
            None => url_host(self.url),
        };
        let (user, id_kind) = match first_set([self.email]) {
            Some(u) => (Some(u), IdKind::User),
            None => (
                first_set([self.source_internal_ip, self.source_ip]),
                IdKind::Ip,
            ),
        };
        Record {
            ts: self.datetime.0,
            bad_time: self.datetime.1,
            host,
            user: text(user),
            id_kind,
            sent: None,
            received: None,
            action: self
                .action
                .map_or(Action::Unknown, |a| action_of(a.as_bytes())),
            dns: false,
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
    #[serde(borrow, default)]
    action: Text<'a>,
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
        let (user, id_kind) = match first_set([e.user]) {
            Some(u) => (Some(u), IdKind::User),
            None => (first_set([e.client_ip]), IdKind::Ip),
        };
        Record {
            ts: e.datetime.0,
            bad_time: e.datetime.1,
            host,
            user: text(user),
            id_kind,
            sent: e.requestsize.0,
            received: e.responsesize.0,
            action: e
                .action
                .map_or(Action::Unknown, |a| action_of(a.as_bytes())),
            dns: false,
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
    let (user, id_kind) = match (get(columns.user)?, get(columns.device)?) {
        (u, _) if !unset(u) => (u, IdKind::User),
        (_, d) if !unset(d) => (d, IdKind::Device),
        _ => (get(columns.src)?, IdKind::Ip),
    };
    let (ts, bad_time) = read_time(get(columns.time)?);
    Ok(Line::Record(Record {
        ts,
        bad_time,
        host: Cow::Borrowed(host),
        user: Cow::Borrowed(if unset(user) { b"" } else { user }),
        id_kind,
        sent: optional_number(columns.sent.is_some(), get(columns.sent)?, "sent")?,
        received: optional_number(
            columns.received.is_some(),
            get(columns.received)?,
            "received",
        )?,
        action: action_of(get(columns.action)?),
        dns: false,
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
    let (user, id_kind) = match (string(&map.user), string(&map.device)) {
        (Some(u), _) => (u, IdKind::User),
        (None, Some(d)) => (d, IdKind::Device),
        (None, None) => (string(&map.src).unwrap_or_default(), IdKind::Ip),
    };
    let (ts, bad_time) = match string(&map.time) {
        None => (None, false),
        Some(t) => read_time(t.as_bytes()),
    };
    let bytes = |path: &Option<String>| -> Result<Option<u64>, Malformed> {
        match lookup(&value, path) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or(Cow::Borrowed("a byte count is not a whole number")),
            Some(serde_json::Value::String(s)) => optional_number(true, s.as_bytes(), "bytes"),
            Some(_) => Err(Cow::Borrowed("a byte count is not a number")),
        }
    };
    Ok(Line::Record(Record {
        ts,
        bad_time,
        host: Cow::Owned(host),
        user: Cow::Owned(user.into_bytes()),
        id_kind,
        sent: bytes(&map.sent)?,
        received: bytes(&map.received)?,
        action: string(&map.action).map_or(Action::Unknown, |a| action_of(a.as_bytes())),
        dns: false,
    }))
}

/// Whether the first bytes of a file are not text: a NUL byte, or more than 1 in 10 bytes that
/// are control characters other than tab, CR and LF, in the first 4 KiB.
pub fn looks_binary(sample: &[u8]) -> bool {
    let head = &sample[..sample.len().min(4096)];
    if memchr::memchr(0, head).is_some() {
        return true;
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
        .count();
    control * 10 > head.len()
}

/// Guess the format from the first bytes of a file. `None`: not recognised.
pub fn detect(sample: &[u8]) -> Option<Format> {
    if looks_binary(sample) {
        return None;
    }
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
            (&b"api.openai.com:443"[..], &b"alice"[..], Some(1190))
        );
        assert_eq!(
            (r.sent, r.action, r.id_kind),
            (None, Action::Allowed, IdKind::User)
        );
        let r = rec(
            &Parser::Squid,
            "1286536309.450    466 192.168.0.224 TCP_DENIED/403 0 CONNECT claude.ai:443 - HIER_NONE/- -",
        );
        assert_eq!(
            (r.action, r.id_kind, &*r.user),
            (Action::Blocked, IdKind::Ip, &b"192.168.0.224"[..])
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
                Some(5000),
                Some(72)
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
    fn zeek_iso_times_dns_and_unreadable_times() {
        // As `zeek-cut -c -d` writes it.
        let p = Parser::Zeek(ZeekSchema::from_fields_line(
            b"#fields\tts\tuid\tid.orig_h\tquery",
        ));
        let r = rec(&p, "2018-03-24T17:15:20+0000\tC1\t10.0.0.1\tapi.openai.com");
        assert_eq!(r.ts, time::parse_rfc3339(b"2018-03-24T17:15:20Z"));
        assert!(r.dns && r.sent.is_none() && r.id_kind == IdKind::Ip);
        let r = rec(&p, "not-a-time\tC1\t10.0.0.1\tapi.openai.com");
        assert_eq!((r.ts, r.bad_time), (None, true));
    }

    #[test]
    fn binary_input_is_refused() {
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0".to_vec();
        elf.extend(std::iter::repeat_n(0u8, 100));
        assert!(looks_binary(&elf));
        assert_eq!(detect(&elf), None);
        assert!(!looks_binary(
            b"1700000000.1 1 10.0.0.1 TCP_MISS/200 1 GET http://a.b/ - -\n"
        ));
    }

    #[test]
    fn generic_csv_and_json() {
        let map = FieldMap::parse("host=dest,user=who,sent=up,time=when").unwrap();
        let p = Parser::delimited(b',', b"when,who,dest,up", &map).unwrap();
        let r = rec(&p, r#"2024-05-01T10:00:00Z,"doe, jane",claude.ai,12"#);
        assert_eq!(
            (&*r.host, &*r.user, r.sent),
            (&b"claude.ai"[..], &b"doe, jane"[..], Some(12))
        );
        // A time that cannot be read keeps the record, without a time.
        let r = rec(&p, r#"yesterday-ish,"doe, jane",claude.ai,12"#);
        assert_eq!((r.ts, r.bad_time, r.received), (None, true, None));
        assert!(
            Parser::delimited(b',', b"a,b", &map)
                .unwrap_err()
                .to_string()
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
            proptest::prop_assert_eq!(r.sent, Some(sent));
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
            proptest::prop_assert_eq!(r.received, Some(bytes));
        }
    }
}
