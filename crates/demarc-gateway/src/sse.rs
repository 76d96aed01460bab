//! Server-sent events: an incremental, bounded parser for what upstreams send, and the encoder
//! for what the gateway sends. Only the `event` and `data` fields matter to the gateway; `id`,
//! `retry` and comments are dropped (OpenAI-compatible APIs do not use them).

/// The largest single event accepted from an upstream (1 MiB); bigger is treated as malformed.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any (the Responses API names its events).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an upstream event exceeds {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("upstream event stream is not valid UTF-8")]
    InvalidUtf8,
}

/// Feed bytes as they arrive; complete events come out. Memory is bounded by
/// [`MAX_EVENT_BYTES`] plus one line.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous byte was `\r`, so a following `\n` belongs to the same line break.
    after_cr: bool,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse `bytes`, appending every event they complete to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Event>) -> Result<(), SseError> {
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            // Whole runs up to the next line break at a time, not byte by byte.
            let Some(at) = memchr::memchr2(b'\n', b'\r', bytes) else {
                self.extend_line(bytes)?;
                break;
            };
            self.after_cr = bytes[at] == b'\r';
            if self.line.is_empty() {
                // The whole line is in `bytes`: read in place, not copied first.
                if at > MAX_EVENT_BYTES {
                    return Err(SseError::TooLarge);
                }
                self.end_line(&bytes[..at], out)?;
            } else {
                self.extend_line(&bytes[..at])?;
                let line = std::mem::take(&mut self.line);
                let ended = self.end_line(&line, out);
                self.line = line;
                self.line.clear();
                ended?;
            }
            bytes = &bytes[at + 1..];
        }
        Ok(())
    }

    fn extend_line(&mut self, part: &[u8]) -> Result<(), SseError> {
        if self.line.len() + part.len() > MAX_EVENT_BYTES {
            return Err(SseError::TooLarge);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    /// The stream ended: an event not yet terminated by a blank line is discarded, as the
    /// SSE specification says.
    pub fn finish(&mut self) -> bool {
        let incomplete = self.has_data || !self.line.is_empty();
        *self = Self::default();
        incomplete
    }

    fn end_line(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), SseError> {
        if line.is_empty() {
            if self.has_data {
                out.push(Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event = None;
            self.has_data = false;
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        let (field, value) = match line.find(':') {
            Some(0) => ("", ""), // a comment
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                if self.data.len() + value.len() > MAX_EVENT_BYTES {
                    return Err(SseError::TooLarge);
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        Ok(())
    }
}

/// Append one event in wire form to `out`.
pub fn encode(event: Option<&str>, data: &str, out: &mut Vec<u8>) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn parses_events_with_names_and_multiline_data() {
        let got = parse_all(&[b"event: a\ndata: one\ndata: two\n\n: comment\ndata:x\r\n\r\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Event {
                event: Some("a".into()),
                data: "one\ntwo".into()
            }
        );
        assert_eq!(
            got[1],
            Event {
                event: None,
                data: "x".into()
            }
        );
    }

    #[test]
    fn unterminated_event_is_reported_at_finish() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        p.push(b"data: {\"half\"", &mut out).unwrap();
        assert!(out.is_empty());
        assert!(p.finish());
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(p.push(&big, &mut out), Err(SseError::TooLarge));
    }

    proptest! {
        /// However the bytes are split, the events are the same.
        #[test]
        fn chunking_does_not_change_events(
            datas in proptest::collection::vec("[a-z {}\":é]{0,20}", 1..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
            crlf in any::<bool>(),
        ) {
            let mut wire = Vec::new();
            for d in &datas { encode(Some("e"), d, &mut wire); }
            if crlf {
                wire = String::from_utf8(wire).unwrap().replace('\n', "\r\n").into_bytes();
            }
            let whole = parse_all(&[&wire]);
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points { chunks.push(&wire[last..p]); last = p; }
            chunks.push(&wire[last..]);
            prop_assert_eq!(&parse_all(&chunks), &whole);
            let expected: Vec<String> = datas.clone();
            let got: Vec<String> = whole.into_iter().map(|e| e.data).collect();
            prop_assert_eq!(got, expected);
        }

        /// Arbitrary bytes never panic and never grow memory past the bound.
        #[test]
        fn arbitrary_bytes_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut p = Parser::new();
            let mut out = Vec::new();
            let _ = p.push(&bytes, &mut out);
            p.finish();
        }
    }
}
