//! A streaming serde deserializer over yaml-rust2's event parser.
//!
//! serde_yaml first loads every event of the document into memory (about ten times the
//! file's size), then deserializes; this one pulls events as it goes, so memory is the
//! typed result plus what anchors record. Aliases replay their anchor's recorded events,
//! with a budget against alias bombs; nesting is limited against stack overflow.
//!
//! Errors carry the line and column of the event being read, and the document path
//! (`applications[0].status: unknown variant ...`), as serde_yaml's do.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Deepest nesting accepted (serde_yaml uses 128 too).
const MAX_DEPTH: usize = 128;
/// Most events replayed through aliases in one document.
const MAX_ALIAS_EVENTS: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    /// 1-based line and column.
    pub location: Option<(usize, usize)>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            message: msg.to_string(),
            location: None,
        }
    }
}

/// Deserialize one YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    let mut de = Deserializer::new(text);
    let value = de.document()?;
    Ok(value)
}

/// An event and where it starts.
type Located = (Event, Marker);

enum Segment {
    Key(String),
    Index(usize),
}

struct Deserializer<'a> {
    parser: Parser<std::str::Chars<'a>>,
    peeked: Option<(Event, Marker)>,
    /// Where the last event taken was: 1-based line, 0-based column.
    mark: (usize, usize),
    anchors: HashMap<usize, Vec<Located>>,
    /// Anchored nodes being recorded: anchor id, events so far, open collections.
    recording: Vec<(usize, Vec<Located>, usize)>,
    /// Alias expansions being replayed, innermost last.
    replay: Vec<std::vec::IntoIter<Located>>,
    replayed: usize,
    depth: usize,
    path: Vec<Segment>,
}

impl<'a> Deserializer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            parser: Parser::new_from_str(text),
            peeked: None,
            mark: (1, 0),
            anchors: HashMap::new(),
            recording: Vec::new(),
            replay: Vec::new(),
            replayed: 0,
            depth: 0,
            path: Vec::new(),
        }
    }

    fn document<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        self.expect_stream_start()?;
        let value = match self.peek()? {
            // An empty stream is an empty (null) document.
            Event::StreamEnd => T::deserialize(NullDeserializer).map_err(|e| self.locate(e))?,
            _ => {
                if matches!(self.peek()?, Event::DocumentStart) {
                    self.next()?;
                }
                let value = T::deserialize(&mut *self).map_err(|e| self.locate(e))?;
                if matches!(self.peek()?, Event::DocumentEnd) {
                    self.next()?;
                }
                value
            }
        };
        match self.next()? {
            Event::StreamEnd => Ok(value),
            _ => Err(self.error(
                "deserializing from YAML containing more than one document is not supported",
            )),
        }
    }

    fn expect_stream_start(&mut self) -> Result<(), Error> {
        match self.next()? {
            Event::StreamStart => Ok(()),
            _ => Err(self.error("expected the start of a YAML stream")),
        }
    }

    /// An error at the current position, with the current path.
    fn error(&self, message: impl fmt::Display) -> Error {
        self.locate(Error {
            message: message.to_string(),
            location: None,
        })
    }

    fn locate(&self, mut e: Error) -> Error {
        if e.location.is_none() {
            e.location = Some((self.mark.0, self.mark.1 + 1));
            if !self.path.is_empty() {
                e.message = format!("{}: {}", self.path_string(), e.message);
            }
        }
        e
    }

    fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Segment::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
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

    /// The next event from a replayed alias or the parser, with aliases expanded.
    fn pull(&mut self) -> Result<(Event, Marker), Error> {
        loop {
            while let Some(it) = self.replay.last_mut() {
                match it.next() {
                    Some(ev) => {
                        self.replayed += 1;
                        if self.replayed > MAX_ALIAS_EVENTS {
                            return Err(self.error("too many alias expansions in this document"));
                        }
                        self.record(&ev, false);
                        return Ok(ev);
                    }
                    None => {
                        self.replay.pop();
                    }
                }
            }
            let (event, mark) = self.parser.next_token().map_err(|e| Error {
                message: e.info().to_string(),
                location: Some((e.marker().line(), e.marker().col() + 1)),
            })?;
            if let Event::Alias(id) = event {
                self.mark = (mark.line(), mark.col());
                let events = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| self.error("unknown anchor"))?;
                self.replay.push(events.into_iter());
                continue;
            }
            let ev = (event, mark);
            self.record(&ev, true);
            return Ok(ev);
        }
    }

    /// Add `ev` to every open recording, and start or finish recordings.
    fn record(&mut self, ev: &(Event, Marker), from_source: bool) {
        for (_, events, open) in &mut self.recording {
            events.push(ev.clone());
            match ev.0 {
                Event::SequenceStart(..) | Event::MappingStart(..) => *open += 1,
                Event::SequenceEnd | Event::MappingEnd => *open -= 1,
                _ => {}
            }
        }
        let anchor = match &ev.0 {
            Event::Scalar(_, _, a, _) | Event::SequenceStart(a, _) | Event::MappingStart(a, _) => {
                *a
            }
            _ => 0,
        };
        if anchor != 0 && from_source {
            let open = usize::from(!matches!(ev.0, Event::Scalar(..)));
            self.recording.push((anchor, vec![ev.clone()], open));
        }
        while let Some((_, _, 0)) = self.recording.last() {
            if let Some((id, events, _)) = self.recording.pop() {
                self.anchors.insert(id, events);
            }
        }
    }

    fn peek(&mut self) -> Result<&Event, Error> {
        if self.peeked.is_none() {
            self.peeked = Some(self.pull()?);
        }
        match &self.peeked {
            Some((e, _)) => Ok(e),
            None => Err(self.error("unexpected end of input")),
        }
    }

    fn next(&mut self) -> Result<Event, Error> {
        let (event, mark) = match self.peeked.take() {
            Some(ev) => ev,
            None => self.pull()?,
        };
        self.mark = (mark.line(), mark.col());
        Ok(event)
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    /// Skip one node.
    fn skip(&mut self) -> Result<(), Error> {
        let mut open = 0usize;
        loop {
            match self.next()? {
                Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
                Event::SequenceEnd | Event::MappingEnd => open = open.saturating_sub(1),
                Event::StreamEnd | Event::DocumentEnd => {
                    return Err(self.error("unexpected end of document"));
                }
                _ => {}
            }
            if open == 0 {
                return Ok(());
            }
        }
    }

    fn unexpected(&self, event: &Event, visitor: &dyn de::Expected) -> Error {
        let unexpected = match event {
            Event::SequenceStart(..) => de::Unexpected::Seq,
            Event::MappingStart(..) => de::Unexpected::Map,
            Event::Scalar(v, style, ..) if is_null(v, *style) => de::Unexpected::Unit,
            Event::Scalar(v, ..) => de::Unexpected::Str(v),
            _ => de::Unexpected::Other("end of collection"),
        };
        self.locate(<Error as de::Error>::invalid_type(unexpected, visitor))
    }

    /// The next node as a scalar string, or an invalid-type error.
    fn scalar(&mut self, visitor: &dyn de::Expected) -> Result<(String, TScalarStyle), Error> {
        match self.next()? {
            Event::Scalar(v, style, ..) => Ok((v, style)),
            other => {
                let e = self.unexpected(&other, visitor);
                Err(e)
            }
        }
    }
}

fn is_plain(style: TScalarStyle) -> bool {
    matches!(style, TScalarStyle::Plain)
}

fn is_null(v: &str, style: TScalarStyle) -> bool {
    is_plain(style) && matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn parse_i128(v: &str) -> Option<i128> {
    let (neg, digits) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let n = if let Some(h) = digits.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = digits.strip_prefix("0o") {
        i128::from_str_radix(o, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -n } else { n })
}

fn parse_f64(v: &str) -> Option<f64> {
    match v {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let looks_numeric = v.bytes().any(|b| b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if looks_numeric { v.parse().ok() } else { None }
}

macro_rules! deserialize_integer {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let (v, style) = self.scalar(&visitor)?;
            match parse_i128(&v).filter(|_| is_plain(style)) {
                Some(n) => match <$ty>::try_from(n) {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => Err(self.locate(<Error as de::Error>::invalid_value(
                        de::Unexpected::Str(&v),
                        &visitor,
                    ))),
                },
                None => Err(self.locate(<Error as de::Error>::invalid_type(
                    de::Unexpected::Str(&v),
                    &visitor,
                ))),
            }
        }
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek()? {
            Event::SequenceStart(..) => self.deserialize_seq(visitor),
            Event::MappingStart(..) => self.deserialize_map(visitor),
            _ => {
                let (v, style) = self.scalar(&visitor)?;
                if !is_plain(style) {
                    return visitor.visit_string(v);
                }
                if is_null(&v, style) {
                    return visitor.visit_unit();
                }
                if let Some(b) = parse_bool(&v) {
                    return visitor.visit_bool(b);
                }
                if let Some(n) = parse_i128(&v) {
                    if let Ok(n) = u64::try_from(n) {
                        return visitor.visit_u64(n);
                    }
                    if let Ok(n) = i64::try_from(n) {
                        return visitor.visit_i64(n);
                    }
                }
                if let Some(f) = parse_f64(&v) {
                    return visitor.visit_f64(f);
                }
                visitor.visit_string(v)
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (v, style) = self.scalar(&visitor)?;
        match parse_bool(&v).filter(|_| is_plain(style)) {
            Some(b) => visitor.visit_bool(b),
            None => Err(self.locate(<Error as de::Error>::invalid_type(
                de::Unexpected::Str(&v),
                &visitor,
            ))),
        }
    }

    deserialize_integer!(deserialize_i8, visit_i8, i8);
    deserialize_integer!(deserialize_i16, visit_i16, i16);
    deserialize_integer!(deserialize_i32, visit_i32, i32);
    deserialize_integer!(deserialize_i64, visit_i64, i64);
    deserialize_integer!(deserialize_u8, visit_u8, u8);
    deserialize_integer!(deserialize_u16, visit_u16, u16);
    deserialize_integer!(deserialize_u32, visit_u32, u32);
    deserialize_integer!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (v, style) = self.scalar(&visitor)?;
        match parse_f64(&v).filter(|_| is_plain(style)) {
            Some(f) => visitor.visit_f64(f),
            None => Err(self.locate(<Error as de::Error>::invalid_type(
                de::Unexpected::Str(&v),
                &visitor,
            ))),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (v, _) = self.scalar(&visitor)?;
        visitor.visit_string(v)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Event::Scalar(v, style, ..) = self.peek()? {
            if is_null(v, *style) {
                self.next()?;
                return visitor.visit_none();
            }
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let (v, style) = self.scalar(&visitor)?;
        if is_null(&v, style) {
            visitor.visit_unit()
        } else {
            Err(self.locate(<Error as de::Error>::invalid_type(
                de::Unexpected::Str(&v),
                &visitor,
            )))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next()? {
            Event::SequenceStart(..) => {
                self.enter()?;
                let value = visitor.visit_seq(SeqAccess {
                    de: &mut *self,
                    index: 0,
                })?;
                match self.next()? {
                    Event::SequenceEnd => {}
                    _ => return Err(self.error("expected the end of a sequence")),
                }
                self.depth -= 1;
                Ok(value)
            }
            // An empty value where a sequence is expected reads as an empty sequence.
            Event::Scalar(v, style, ..) if is_null(&v, style) => visitor.visit_seq(EmptySeq),
            other => Err(self.unexpected(&other, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next()? {
            Event::MappingStart(..) => {
                self.enter()?;
                let value = visitor.visit_map(MapAccess { de: &mut *self })?;
                match self.next()? {
                    Event::MappingEnd => {}
                    _ => return Err(self.error("expected the end of a mapping")),
                }
                self.depth -= 1;
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
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.peek()? {
            Event::Scalar(..) => {
                let (v, _) = self.scalar(&visitor)?;
                visitor.visit_enum(v.into_deserializer())
            }
            Event::MappingStart(..) => {
                self.next()?;
                self.enter()?;
                let value = visitor.visit_enum(EnumAccess { de: &mut *self })?;
                match self.next()? {
                    Event::MappingEnd => {}
                    _ => return Err(self.error("expected a mapping with a single key for an enum")),
                }
                self.depth -= 1;
                Ok(value)
            }
            _ => {
                let ev = self.next()?;
                Err(self.unexpected(&ev, &visitor))
            }
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip()?;
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, 'b> {
    de: &'a mut Deserializer<'b>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
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
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match self.de.peek()? {
            Event::MappingEnd => return Ok(None),
            // libyaml (and so serde_yaml) rejects `: value` with no key; so do we.
            Event::Scalar(v, style, ..) if is_null(v, *style) => {
                self.de.next()?;
                return Err(self.de.error("a mapping key is empty or null"));
            }
            Event::Scalar(v, ..) => v.clone(),
            _ => String::new(),
        };
        let value = seed
            .deserialize(&mut *self.de)
            .map_err(|e| self.de.locate(e))?;
        self.de.path.push(Segment::Key(key));
        Ok(Some(value))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = seed
            .deserialize(&mut *self.de)
            .map_err(|e| self.de.locate(e));
        self.de.path.pop();
        value
    }
}

struct EnumAccess<'a, 'b> {
    de: &'a mut Deserializer<'b>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'_, '_> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAccess<'_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(&mut *self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(&mut *self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(&mut *self.de, visitor)
    }
}

struct EmptySeq;

impl<'de> de::SeqAccess<'de> for EmptySeq {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        _: T,
    ) -> Result<Option<T::Value>, Error> {
        Ok(None)
    }
}

struct EmptyMap;

impl<'de> de::MapAccess<'de> for EmptyMap {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, _: K) -> Result<Option<K::Value>, Error> {
        Ok(None)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("no value"))
    }
}

/// The empty document: null, or an empty mapping where a struct is expected.
struct NullDeserializer;

impl<'de> de::Deserializer<'de> for NullDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_none()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(EmptyMap)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(EmptyMap)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct enum identifier ignored_any
    }
}
