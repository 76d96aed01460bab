//! A streaming serde deserializer over yaml-rust2's event parser.
//!
//! Events are pulled as serde asks for them, so memory is the typed result plus what
//! anchors record; nothing holds the whole document as a tree. On top of the parser:
//!
//! - aliases replay their anchor's recorded events, counted against
//!   [`limits::MAX_ALIAS_EVENTS`] (an alias bomb stops there); anchored nodes are recorded
//!   once, in one log of at most as many events;
//! - merge keys (`<<: *base`, `<<: [*a, *b]`) add the base mappings' entries that the
//!   mapping does not write itself (written keys win; among bases, the earlier wins); the
//!   entries they add count against the alias budget too;
//! - duplicate keys are refused at the second one; nesting stops at [`limits::MAX_DEPTH`];
//! - YAML 1.2 core schema for untyped values: `true`/`false` are booleans, `yes`/`no`/
//!   `on`/`off` are text; a text field keeps a scalar as written (`1.50` stays `1.50`);
//! - exactly one document.
//!
//! Errors carry the position of the event being read and the document path
//! (`applications[0].status: unknown variant ...`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::iter::Peekable;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::limits;

/// Where an event starts: 1-based line, 0-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub line: usize,
    pub col: usize,
}

impl From<Marker> for Mark {
    fn from(m: Marker) -> Self {
        Self {
            line: m.line(),
            col: m.col(),
        }
    }
}

/// What kind of problem stopped the deserializer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Malformed YAML, reported by the scanner or parser.
    Syntax,
    /// A limit of [`limits`] was reached.
    Limit,
    /// The document does not fit the type, or breaks one of demarc's rules.
    Data,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeError {
    pub message: String,
    pub at: Option<Mark>,
    pub kind: Kind,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            at: None,
            kind: Kind::Data,
        }
    }
}

/// Deserialize the one document of `text` (without a byte-order mark).
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, DeError> {
    Deserializer::new(text).document()
}

type Located = (Event, Mark);

enum Segment {
    /// The key being read in the mapping `maps[i]`.
    Key(usize),
    Index(usize),
}

/// A mapping being read: its keys so far (duplicates are refused), where it starts, and
/// the entries its merge keys bring in, added at its end unless written.
#[derive(Default)]
struct MapFrame {
    keys: Vec<String>,
    /// For a large mapping, the keys' hashes (a hit is confirmed against `keys`).
    hashes: HashSet<u64>,
    merged: VecDeque<Entry>,
    /// Where the last merge key of the mapping is.
    merge_at: Option<Mark>,
}

/// One key-value pair of a merged mapping: the key's text (`None` for a complex key), the
/// events of the key and the value.
struct Entry {
    key: Option<String>,
    events: Vec<Located>,
}

/// Up to this many keys a mapping's duplicates are found by a linear scan.
const LINEAR_KEYS: usize = 16;

impl MapFrame {
    fn hash(key: &str) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
    }

    fn contains(&self, key: &str) -> bool {
        if self.keys.len() <= LINEAR_KEYS {
            return self.keys.iter().any(|k| k == key);
        }
        self.hashes.contains(&Self::hash(key)) && self.keys.iter().any(|k| k == key)
    }

    fn push(&mut self, key: String) {
        if self.keys.len() == LINEAR_KEYS {
            self.hashes = self.keys.iter().map(|k| Self::hash(k)).collect();
        }
        if self.keys.len() >= LINEAR_KEYS {
            self.hashes.insert(Self::hash(&key));
        }
        self.keys.push(key);
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.hashes.clear();
        self.merged.clear();
        self.merge_at = None;
    }
}

/// An alias expansion being replayed: the next event in the log, the end, and where the
/// alias was written.
struct Replay {
    next: usize,
    end: usize,
    alias: Mark,
}

struct Deserializer<'a> {
    parser: Parser<std::str::Chars<'a>>,
    peeked: Option<Located>,
    /// Where the last event taken starts.
    mark: Mark,
    /// Events of anchored nodes, appended while at least one anchor is being recorded.
    log: Vec<Located>,
    /// Anchor id to its node's events in `log`.
    anchors: HashMap<usize, (usize, usize)>,
    /// Anchored nodes being recorded: anchor id, start in `log`, `level` before the node,
    /// where the node starts.
    recording: Vec<(usize, usize, usize, Mark)>,
    /// Open collections among the events pulled so far (parser and replays).
    level: usize,
    replay: Vec<Replay>,
    replayed: usize,
    /// Merged entries put back in front of the stream, last out first; neither recorded
    /// nor counted again (they were when first pulled).
    injected: Vec<Located>,
    depth: usize,
    path: Vec<Segment>,
    maps: Vec<MapFrame>,
    spare_maps: Vec<MapFrame>,
}

impl<'a> Deserializer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            parser: Parser::new_from_str(text),
            peeked: None,
            mark: Mark { line: 1, col: 0 },
            log: Vec::new(),
            anchors: HashMap::new(),
            recording: Vec::new(),
            level: 0,
            replay: Vec::new(),
            replayed: 0,
            injected: Vec::new(),
            depth: 0,
            path: Vec::new(),
            maps: Vec::new(),
            spare_maps: Vec::new(),
        }
    }

    fn document<T: DeserializeOwned>(&mut self) -> Result<T, DeError> {
        match self.next()? {
            Event::StreamStart => {}
            _ => return Err(self.syntax("expected the start of a YAML stream")),
        }
        if matches!(self.peek()?, Event::StreamEnd) {
            // No document at all (empty, or only comments): null.
            return T::deserialize(NullDeserializer).map_err(|e| self.locate(e));
        }
        if matches!(self.peek()?, Event::DocumentStart) {
            self.next()?;
        }
        let value = T::deserialize(&mut *self).map_err(|e| self.locate(e))?;
        if matches!(self.peek()?, Event::DocumentEnd) {
            self.next()?;
        }
        match self.next()? {
            Event::StreamEnd => Ok(value),
            _ => Err(DeError {
                message: "a second document: a file holds exactly one YAML document".into(),
                at: Some(self.mark),
                kind: Kind::Data,
            }),
        }
    }

    fn syntax(&self, message: &str) -> DeError {
        DeError {
            message: message.to_string(),
            at: Some(self.mark),
            kind: Kind::Syntax,
        }
    }

    /// An error at the current position, with the current path.
    fn error(&self, message: impl fmt::Display) -> DeError {
        self.locate(de::Error::custom(message))
    }

    fn limit(&self, message: String, at: Mark) -> DeError {
        self.locate_at(
            DeError {
                message,
                at: None,
                kind: Kind::Limit,
            },
            at,
        )
    }

    fn locate(&self, e: DeError) -> DeError {
        self.locate_at(e, self.mark)
    }

    /// Give an error that has no position yet `at`, and the path it was found at (serde's
    /// unknown-field message names the field itself, and stays as it is).
    fn locate_at(&self, mut e: DeError, at: Mark) -> DeError {
        if e.at.is_none() {
            e.at = Some(at);
            if !self.path.is_empty() && !e.message.starts_with("unknown field") {
                e.message = format!("{}: {}", self.path_string(), e.message);
            }
        }
        e
    }

    fn path_string(&self) -> String {
        let mut s = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(map) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    if let Some(key) = self.maps.get(*map).and_then(|m| m.keys.last()) {
                        s.push_str(key);
                    }
                }
                Segment::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        s
    }

    /// The next event: injected merge entries first, then alias replays, then the parser;
    /// aliases are expanded and anchored nodes recorded.
    fn pull(&mut self) -> Result<Located, DeError> {
        if let Some(ev) = self.injected.pop() {
            return Ok(ev);
        }
        loop {
            if let Some(r) = self.replay.last_mut() {
                if r.next < r.end {
                    let ev = self.log[r.next].clone();
                    r.next += 1;
                    self.replayed += 1;
                    if self.replayed > limits::MAX_ALIAS_EVENTS {
                        let at = self.replay.first().map_or(self.mark, |r| r.alias);
                        return Err(self.alias_budget(at));
                    }
                    self.record(&ev, false)?;
                    return Ok(ev);
                }
                self.replay.pop();
                continue;
            }
            let (event, marker) = self.parser.next_token().map_err(|e| DeError {
                message: e.info().to_string(),
                at: Some(Mark::from(*e.marker())),
                kind: Kind::Syntax,
            })?;
            let mark = Mark::from(marker);
            if let Event::Alias(id) = event {
                self.mark = mark;
                let Some(&(start, end)) = self.anchors.get(&id) else {
                    // The parser refuses unknown anchors; an alias inside its own anchored
                    // node is what is left.
                    return Err(self.error("an alias refers to a node that contains it"));
                };
                self.replay.push(Replay {
                    next: start,
                    end,
                    alias: mark,
                });
                continue;
            }
            let ev = (event, mark);
            self.record(&ev, true)?;
            return Ok(ev);
        }
    }

    /// Log `ev` while anchors are being recorded; start and finish recordings. The log
    /// holds at most [`limits::MAX_ALIAS_EVENTS`] events.
    fn record(&mut self, ev: &Located, from_source: bool) -> Result<(), DeError> {
        let anchor = match &ev.0 {
            Event::Scalar(_, _, a, _) | Event::SequenceStart(a, _) | Event::MappingStart(a, _)
                if from_source =>
            {
                *a
            }
            _ => 0,
        };
        if anchor != 0 {
            self.recording
                .push((anchor, self.log.len(), self.level, ev.1));
        }
        if let Some(&(_, _, _, at)) = self.recording.first() {
            if self.log.len() >= limits::MAX_ALIAS_EVENTS {
                return Err(self.limit(
                    format!(
                        "anchor budget exceeded: anchored nodes hold more than {} events",
                        limits::MAX_ALIAS_EVENTS
                    ),
                    at,
                ));
            }
            self.log.push(ev.clone());
        }
        match ev.0 {
            Event::SequenceStart(..) | Event::MappingStart(..) => self.level += 1,
            Event::SequenceEnd | Event::MappingEnd => self.level = self.level.saturating_sub(1),
            _ => {}
        }
        while let Some(&(id, start, level, _)) = self.recording.last() {
            if level != self.level {
                break;
            }
            self.recording.pop();
            self.anchors.insert(id, (start, self.log.len()));
        }
        Ok(())
    }

    fn peek_located(&mut self) -> Result<&Located, DeError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.pull()?);
        }
        match &self.peeked {
            Some(ev) => Ok(ev),
            None => Err(self.syntax("unexpected end of input")),
        }
    }

    fn peek(&mut self) -> Result<&Event, DeError> {
        Ok(&self.peek_located()?.0)
    }

    fn next(&mut self) -> Result<Event, DeError> {
        let (event, mark) = match self.peeked.take() {
            Some(ev) => ev,
            None => self.pull()?,
        };
        self.mark = mark;
        Ok(event)
    }

    fn enter(&mut self) -> Result<(), DeError> {
        self.depth += 1;
        if self.depth > limits::MAX_DEPTH {
            return Err(self.limit(
                format!(
                    "nesting depth limit exceeded: more than {} levels",
                    limits::MAX_DEPTH
                ),
                self.mark,
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The events of one whole node, aliases expanded.
    fn node_events(&mut self) -> Result<Vec<Located>, DeError> {
        let mut events = Vec::new();
        let mut open = 0usize;
        loop {
            let ev = match self.peeked.take() {
                Some(ev) => ev,
                None => self.pull()?,
            };
            self.mark = ev.1;
            match ev.0 {
                Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
                Event::SequenceEnd | Event::MappingEnd => open = open.saturating_sub(1),
                Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {
                    return Err(self.syntax("unexpected end of document"));
                }
                _ => {}
            }
            events.push(ev);
            if open == 0 {
                return Ok(events);
            }
        }
    }

    /// Skip one node.
    fn skip(&mut self) -> Result<(), DeError> {
        let mut open = 0usize;
        loop {
            match self.next()? {
                Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
                Event::SequenceEnd | Event::MappingEnd => open = open.saturating_sub(1),
                Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {
                    return Err(self.syntax("unexpected end of document"));
                }
                _ => {}
            }
            if open == 0 {
                return Ok(());
            }
        }
    }

    fn unexpected(&self, event: &Event, expected: &dyn de::Expected) -> DeError {
        let unexpected = match event {
            Event::SequenceStart(..) => de::Unexpected::Seq,
            Event::MappingStart(..) => de::Unexpected::Map,
            Event::Scalar(v, style, ..) if is_null(v, *style) => de::Unexpected::Other("null"),
            Event::Scalar(v, ..) => de::Unexpected::Str(v),
            _ => de::Unexpected::Other("the end of a collection"),
        };
        self.locate(de::Error::invalid_type(unexpected, expected))
    }

    /// The next node as a scalar, or an invalid-type error.
    fn scalar(&mut self, expected: &dyn de::Expected) -> Result<(String, TScalarStyle), DeError> {
        match self.next()? {
            Event::Scalar(v, style, ..) => Ok((v, style)),
            other => Err(self.unexpected(&other, expected)),
        }
    }

    /// The next node as text: any scalar as written, but not null.
    fn text(&mut self, expected: &dyn de::Expected) -> Result<String, DeError> {
        match self.next()? {
            Event::Scalar(v, style, ..) if !is_null(&v, style) => Ok(v),
            other => Err(self.unexpected(&other, expected)),
        }
    }

    fn invalid_scalar(&self, v: &str, style: TScalarStyle, expected: &dyn de::Expected) -> DeError {
        let unexpected = if is_null(v, style) {
            de::Unexpected::Other("null")
        } else {
            de::Unexpected::Str(v)
        };
        self.locate(de::Error::invalid_type(unexpected, expected))
    }

    fn open_map(&mut self) -> usize {
        let frame = self.spare_maps.pop().unwrap_or_default();
        self.maps.push(frame);
        self.maps.len() - 1
    }

    fn close_map(&mut self) {
        if let Some(mut frame) = self.maps.pop() {
            frame.clear();
            self.spare_maps.push(frame);
        }
    }

    /// After `<<`: read the merged mapping(s) and queue their entries on mapping `map`.
    fn read_merge(&mut self, map: usize) -> Result<(), DeError> {
        let merge_at = self.mark;
        let mut events = self.node_events()?.into_iter().peekable();
        let mut entries = VecDeque::new();
        match events.peek().map(|e| &e.0) {
            Some(Event::MappingStart(..)) => self.merge_source(&mut events, &mut entries)?,
            Some(Event::SequenceStart(..)) => {
                events.next();
                while let Some((event, at)) = events.peek() {
                    match event {
                        Event::SequenceEnd => break,
                        Event::MappingStart(..) => self.merge_source(&mut events, &mut entries)?,
                        _ => return Err(self.merge_error(*at)),
                    }
                }
            }
            _ => return Err(self.merge_error(self.mark)),
        }
        if let Some(frame) = self.maps.get_mut(map) {
            frame.merged.extend(entries);
            frame.merge_at = Some(merge_at);
        }
        Ok(())
    }

    /// The entries of one merged mapping, taken from `events`, which start with it.
    fn merge_source(
        &self,
        events: &mut Peekable<std::vec::IntoIter<Located>>,
        entries: &mut VecDeque<Entry>,
    ) -> Result<(), DeError> {
        events.next();
        let mut seen = HashSet::new();
        loop {
            match events.peek() {
                None => return Ok(()),
                Some((Event::MappingEnd, _)) => {
                    events.next();
                    return Ok(());
                }
                _ => {}
            }
            let mut entry = Vec::new();
            take_node(events, &mut entry);
            let key = match entry.first() {
                Some((Event::Scalar(text, ..), at)) => {
                    if text != "<<" && !seen.insert(text.clone()) {
                        return Err(self.locate_at(
                            de::Error::custom(format!("duplicate mapping key `{text}`")),
                            *at,
                        ));
                    }
                    Some(text.clone())
                }
                _ => None,
            };
            take_node(events, &mut entry);
            entries.push_back(Entry { key, events: entry });
        }
    }

    fn merge_error(&self, at: Mark) -> DeError {
        self.locate_at(
            de::Error::custom(
                "a merge key `<<` takes a mapping, an alias of one, or a list of them",
            ),
            at,
        )
    }

    /// Put the next merged entry that mapping `map` does not write itself in front of the
    /// stream, before the peeked end of the mapping; false when none is left. Merged events
    /// count against the alias budget, as replayed ones do.
    fn inject_merged(&mut self, map: usize) -> Result<bool, DeError> {
        loop {
            let Some(frame) = self.maps.get_mut(map) else {
                return Ok(false);
            };
            let Some(entry) = frame.merged.pop_front() else {
                return Ok(false);
            };
            if entry.key.as_deref().is_some_and(|k| frame.contains(k)) {
                continue;
            }
            let at = frame.merge_at.unwrap_or(self.mark);
            self.replayed += entry.events.len();
            if self.replayed > limits::MAX_ALIAS_EVENTS {
                return Err(self.alias_budget(at));
            }
            if let Some(end) = self.peeked.take() {
                self.injected.push(end);
            }
            self.injected.extend(entry.events.into_iter().rev());
            return Ok(true);
        }
    }

    fn alias_budget(&self, at: Mark) -> DeError {
        self.limit(
            format!(
                "alias budget exceeded: aliases and merge keys expand to more than {} events",
                limits::MAX_ALIAS_EVENTS
            ),
            at,
        )
    }
}

/// Move the events of one node from `events` to `out`.
fn take_node(events: &mut impl Iterator<Item = Located>, out: &mut Vec<Located>) {
    let mut open = 0usize;
    for ev in events.by_ref() {
        match ev.0 {
            Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
            Event::SequenceEnd | Event::MappingEnd => open = open.saturating_sub(1),
            _ => {}
        }
        out.push(ev);
        if open == 0 {
            return;
        }
    }
}

fn is_plain(style: TScalarStyle) -> bool {
    matches!(style, TScalarStyle::Plain)
}

fn is_null(v: &str, style: TScalarStyle) -> bool {
    is_plain(style) && matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

/// YAML 1.2 core schema booleans only.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn parse_int(v: &str) -> Option<i128> {
    let (neg, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let n = if let Some(h) = digits.strip_prefix("0x") {
        if neg || h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        if neg || o.is_empty() || !o.bytes().all(|b| matches!(b, b'0'..=b'7')) {
            return None;
        }
        i128::from_str_radix(o, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

fn parse_float(v: &str) -> Option<f64> {
    match v {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let numeric = v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if numeric { v.parse().ok() } else { None }
}

/// A plain scalar as an untyped value: null, boolean, integer, float, or text.
fn visit_plain<'de, V: Visitor<'de>>(v: String, visitor: V) -> Result<V::Value, DeError> {
    if is_null(&v, TScalarStyle::Plain) {
        return visitor.visit_unit();
    }
    if let Some(b) = parse_bool(&v) {
        return visitor.visit_bool(b);
    }
    if let Some(n) = parse_int(&v) {
        if let Ok(n) = u64::try_from(n) {
            return visitor.visit_u64(n);
        }
        if let Ok(n) = i64::try_from(n) {
            return visitor.visit_i64(n);
        }
    }
    if let Some(f) = parse_float(&v) {
        return visitor.visit_f64(f);
    }
    visitor.visit_string(v)
}

macro_rules! deserialize_integer {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let (v, style) = self.scalar(&visitor)?;
            match parse_int(&v).filter(|_| is_plain(style)) {
                Some(n) => {
                    match <$ty>::try_from(n) {
                        Ok(n) => visitor.$visit(n),
                        Err(_) => Err(self
                            .locate(de::Error::invalid_value(de::Unexpected::Str(&v), &visitor))),
                    }
                }
                None => Err(self.invalid_scalar(&v, style, &visitor)),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.peek()? {
            Event::SequenceStart(..) => self.deserialize_seq(visitor),
            Event::MappingStart(..) => self.deserialize_map(visitor),
            _ => {
                let (v, style) = self.scalar(&visitor)?;
                if is_plain(style) {
                    visit_plain(v, visitor)
                } else {
                    visitor.visit_string(v)
                }
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (v, style) = self.scalar(&visitor)?;
        match parse_bool(&v).filter(|_| is_plain(style)) {
            Some(b) => visitor.visit_bool(b),
            None => Err(self.invalid_scalar(&v, style, &visitor)),
        }
    }

    deserialize_integer!(deserialize_i8, visit_i8, i8);
    deserialize_integer!(deserialize_i16, visit_i16, i16);
    deserialize_integer!(deserialize_i32, visit_i32, i32);
    deserialize_integer!(deserialize_i64, visit_i64, i64);
    deserialize_integer!(deserialize_i128, visit_i128, i128);
    deserialize_integer!(deserialize_u8, visit_u8, u8);
    deserialize_integer!(deserialize_u16, visit_u16, u16);
    deserialize_integer!(deserialize_u32, visit_u32, u32);
    deserialize_integer!(deserialize_u64, visit_u64, u64);
    deserialize_integer!(deserialize_u128, visit_u128, u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (v, style) = self.scalar(&visitor)?;
        match parse_float(&v).filter(|_| is_plain(style)) {
            Some(f) => visitor.visit_f64(f),
            None => Err(self.invalid_scalar(&v, style, &visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let v = self.text(&visitor)?;
        visitor.visit_string(v)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if let Event::Scalar(v, style, ..) = self.peek()?
            && is_null(v, *style)
        {
            self.next()?;
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (v, style) = self.scalar(&visitor)?;
        if is_null(&v, style) {
            visitor.visit_unit()
        } else {
            Err(self.invalid_scalar(&v, style, &visitor))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.next()? {
            Event::SequenceStart(..) => {
                let start = self.mark;
                self.enter()?;
                let value = visitor
                    .visit_seq(SeqAccess {
                        de: &mut *self,
                        index: 0,
                    })
                    .map_err(|e| self.locate_at(e, start))?;
                match self.next()? {
                    Event::SequenceEnd => {}
                    _ => return Err(self.error("invalid length: the list has more elements")),
                }
                self.leave();
                Ok(value)
            }
            // An empty value where a list is expected reads as an empty list.
            Event::Scalar(v, style, ..) if is_null(&v, style) => visitor.visit_seq(EmptySeq),
            other => Err(self.unexpected(&other, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.next()? {
            Event::MappingStart(..) => {
                let start = self.mark;
                self.enter()?;
                let map = self.open_map();
                let value = visitor
                    .visit_map(MapAccess {
                        de: &mut *self,
                        map,
                    })
                    .map_err(|e| self.locate_at(e, start))?;
                match self.next()? {
                    Event::MappingEnd => {}
                    _ => return Err(self.error("the mapping has entries left over")),
                }
                self.close_map();
                self.leave();
                Ok(value)
            }
            // An empty value where a mapping is expected reads as an empty mapping.
            Event::Scalar(v, style, ..) if is_null(&v, style) => visitor.visit_map(EmptyMap),
            other => Err(self.unexpected(&other, &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.peek()? {
            Event::Scalar(..) => {
                let v = self.text(&visitor)?;
                visitor.visit_enum(v.into_deserializer())
            }
            Event::MappingStart(..) => {
                self.next()?;
                self.enter()?;
                let value = visitor.visit_enum(EnumAccess { de: &mut *self })?;
                match self.next()? {
                    Event::MappingEnd => {}
                    _ => return Err(self.error("a variant is written as a mapping with one key")),
                }
                self.leave();
                Ok(value)
            }
            _ => {
                let ev = self.next()?;
                Err(self.unexpected(&ev, &visitor))
            }
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.skip()?;
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, 'b> {
    de: &'a mut Deserializer<'b>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if matches!(self.de.peek()?, Event::SequenceEnd) {
            return Ok(None);
        }
        self.de.path.push(Segment::Index(self.index));
        self.index += 1;
        let value = seed
            .deserialize(&mut *self.de)
            .map_err(|e| self.de.locate(e));
        self.de.path.pop();
        value.map(Some)
    }
}

struct MapAccess<'a, 'b> {
    de: &'a mut Deserializer<'b>,
    /// This mapping's frame in `de.maps`.
    map: usize,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        loop {
            match self.de.peek()? {
                Event::MappingEnd => {
                    if self.de.inject_merged(self.map)? {
                        continue;
                    }
                    return Ok(None);
                }
                Event::Scalar(v, TScalarStyle::Plain, ..) if v == "<<" => {
                    self.de.next()?;
                    self.de.read_merge(self.map)?;
                    continue;
                }
                Event::Scalar(..) => {}
                _ => {
                    self.de.next()?;
                    return Err(self.de.error("a mapping key must be a scalar"));
                }
            }
            let Event::Scalar(key, style, ..) = self.de.next()? else {
                return Err(self.de.error("a mapping key must be a scalar"));
            };
            if is_null(&key, style) {
                return Err(self.de.error("a mapping key is empty or null"));
            }
            let frame = self.de.maps.get(self.map);
            if frame.is_some_and(|f| f.contains(&key)) {
                return Err(self.de.error(format!("duplicate mapping key `{key}`")));
            }
            let value = seed
                .deserialize(KeyDeserializer { key: &key, style })
                .map_err(|e| self.de.locate(e))?;
            if let Some(frame) = self.de.maps.get_mut(self.map) {
                frame.push(key);
            }
            self.de.path.push(Segment::Key(self.map));
            return Ok(Some(value));
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = seed
            .deserialize(&mut *self.de)
            .map_err(|e| self.de.locate(e));
        self.de.path.pop();
        value
    }
}

/// A mapping key, already read: text to the field visitors, typed for typed keys.
struct KeyDeserializer<'k> {
    key: &'k str,
    style: TScalarStyle,
}

macro_rules! deserialize_key_integer {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match parse_int(self.key)
                .filter(|_| is_plain(self.style))
                .and_then(|n| <$ty>::try_from(n).ok())
            {
                Some(n) => visitor.$visit(n),
                None => visitor.visit_str(self.key),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for KeyDeserializer<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_str(self.key)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match parse_bool(self.key).filter(|_| is_plain(self.style)) {
            Some(b) => visitor.visit_bool(b),
            None => visitor.visit_str(self.key),
        }
    }

    deserialize_key_integer!(deserialize_i8, visit_i8, i8);
    deserialize_key_integer!(deserialize_i16, visit_i16, i16);
    deserialize_key_integer!(deserialize_i32, visit_i32, i32);
    deserialize_key_integer!(deserialize_i64, visit_i64, i64);
    deserialize_key_integer!(deserialize_u8, visit_u8, u8);
    deserialize_key_integer!(deserialize_u16, visit_u16, u16);
    deserialize_key_integer!(deserialize_u32, visit_u32, u32);
    deserialize_key_integer!(deserialize_u64, visit_u64, u64);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(self.key.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct EnumAccess<'a, 'b> {
    de: &'a mut Deserializer<'b>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'_, '_> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAccess<'_, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        de::Deserialize::deserialize(&mut *self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(&mut *self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(&mut *self.de, visitor)
    }
}

struct EmptySeq;

impl<'de> de::SeqAccess<'de> for EmptySeq {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _: T,
    ) -> Result<Option<T::Value>, DeError> {
        Ok(None)
    }
}

struct EmptyMap;

impl<'de> de::MapAccess<'de> for EmptyMap {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        _: K,
    ) -> Result<Option<K::Value>, DeError> {
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("a mapping value without a key"))
    }
}

/// A file with no document: null, or an empty mapping where a struct is expected.
struct NullDeserializer;

impl<'de> de::Deserializer<'de> for NullDeserializer {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_none()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(EmptyMap)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(EmptyMap)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{Value, json};

    use crate::{Error, from_text};

    fn value(text: &str) -> Result<Value, Error> {
        from_text("t.yaml", text)
    }

    fn at(e: &Error) -> (usize, usize) {
        e.location.map_or((0, 0), |l| (l.line, l.column))
    }

    #[test]
    fn merge_keys_written_keys_win_and_earlier_bases_win() {
        let v =
            value("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  w: 0\n  <<: [*a, *b]\n  x: 3\n")
                .unwrap();
        assert_eq!(v["c"], json!({"w": 0, "x": 3, "y": 1, "z": 2}));
        // A base that merges in turn: its own keys win over what it merges.
        let v = value("a: &a {x: 1, y: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}\n").unwrap();
        assert_eq!(v["c"], json!({"x": 1, "y": 2, "z": 3}));
        // An inline mapping merges too; a quoted `<<` is an ordinary key.
        let v = value("c: {<<: {x: 1}, '<<': 2}\n").unwrap();
        assert_eq!(v["c"], json!({"x": 1, "<<": 2}));
    }

    #[test]
    fn merge_key_errors_are_located() {
        let e = value("a: 1\nc:\n  <<: 5\n").unwrap_err();
        assert_eq!(at(&e), (3, 7), "{e}");
        assert!(e.message.contains("merge key"), "{}", e.message);
        let e = value("c:\n  <<: [{x: 1}, 2]\n").unwrap_err();
        assert_eq!(at(&e).0, 2, "{e}");
        let e = value("c:\n  <<: {x: 1, x: 2}\n").unwrap_err();
        assert!(
            e.message.contains("duplicate mapping key `x`"),
            "{}",
            e.message
        );
        assert_eq!(at(&e), (2, 14), "{e}");
    }

    #[test]
    fn an_anchored_mapping_with_a_merge_replays_with_it() {
        let v = value("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: *b\n").unwrap();
        assert_eq!(v["c"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn merges_count_against_the_alias_budget() {
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i}: {i}")).collect();
        let mut text = format!("base: &b {{{}}}\n", keys.join(", "));
        for i in 0..400 {
            text.push_str(&format!("m{i}: {{<<: *b, own: 1}}\n"));
        }
        let e = value(&text).unwrap_err();
        assert!(e.message.contains("budget"), "{}", e.message);
        assert!(e.help.is_some());
        assert!(e.location.is_some_and(|l| l.line > 1), "{e}");
    }

    #[test]
    fn anchored_nodes_hold_at_most_the_budget() {
        let text = format!(
            "a: &a [{}]\n",
            "x, ".repeat(crate::limits::MAX_ALIAS_EVENTS)
        );
        let e = value(&text).unwrap_err();
        assert!(e.message.contains("anchor budget"), "{}", e.message);
        assert_eq!(at(&e), (1, 7), "{e}");
        // Without the anchor the same list is fine.
        assert!(value(&text.replace("&a ", "")).is_ok());
    }

    #[test]
    fn an_alias_inside_its_own_anchor_is_refused() {
        let e = value("a: &a [1, *a]\n").unwrap_err();
        assert!(e.location.is_some(), "{e}");
    }

    #[test]
    fn wrong_types_name_their_path_and_missing_fields_their_mapping() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Item {
            id: String,
            count: u32,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            items: Vec<Item>,
        }
        let e = from_text::<Doc>("t.yaml", "items:\n  - id: a\n    count: many\n").unwrap_err();
        assert!(
            e.message.starts_with("items[0].count: invalid type"),
            "{}",
            e.message
        );
        assert_eq!(at(&e), (3, 12));
        let e =
            from_text::<Doc>("t.yaml", "items:\n  - id: a\n    count: 1\n  - id: b\n").unwrap_err();
        assert_eq!(e.message, "items[1]: missing field `count`");
        assert_eq!(at(&e).0, 4, "{e}");
        // Unknown fields keep serde's own wording (the help names the field).
        let e = from_text::<Doc>("t.yaml", "items:\n  - id: a\n    cuont: 1\n").unwrap_err();
        assert!(
            e.message.starts_with("unknown field `cuont`"),
            "{}",
            e.message
        );
        assert_eq!(e.help.as_deref(), Some("did you mean `count`?"));
    }

    #[test]
    fn untyped_scalars_follow_the_yaml_1_2_core_schema() {
        let v = value(
            "a: 12\nb: -3\nc: 1.5\nd: 0x1F\ne: 1e3\nf: .inf\ng: Null\nh: TRUE\ni: 1_000\nj: '12'\nk: +7\nl: 0o17\nm: nan\n",
        )
        .unwrap();
        assert_eq!(v["a"], json!(12));
        assert_eq!(v["b"], json!(-3));
        assert_eq!(v["c"], json!(1.5));
        assert_eq!(v["d"], json!(31));
        assert_eq!(v["e"], json!(1000.0));
        assert_eq!(v["f"], Value::Null); // serde_json has no infinity
        assert_eq!(v["g"], Value::Null);
        assert_eq!(v["h"], json!(true));
        assert_eq!(v["i"], json!("1_000"));
        assert_eq!(v["j"], json!("12"));
        assert_eq!(v["k"], json!(7));
        assert_eq!(v["l"], json!(15));
        assert_eq!(v["m"], json!("nan"));
    }

    #[test]
    fn keys_must_be_scalars_and_not_empty() {
        let e = value("a: 1\n: x\n").unwrap_err();
        assert_eq!(at(&e).0, 2, "{e}");
        let e = value("? [a, b]\n: x\n").unwrap_err();
        assert!(e.message.contains("scalar"), "{}", e.message);
    }

    #[test]
    fn an_empty_file_is_null() {
        assert_eq!(value("").unwrap(), Value::Null);
        assert_eq!(value("# only a comment\n").unwrap(), Value::Null);
        assert_eq!(value("---\n").unwrap(), Value::Null);
    }

    #[test]
    fn a_bom_does_not_shift_locations_off_the_first_line() {
        let e = value("\u{feff}a: [\n").unwrap_err();
        assert!(e.location.is_some(), "{e}");
        let e = from_text::<std::collections::BTreeMap<String, u8>>("t.yaml", "\u{feff}a: x\n")
            .unwrap_err();
        // The BOM is the first character: `x` is the fifth.
        assert_eq!(at(&e), (1, 5), "{e}");
    }
}
