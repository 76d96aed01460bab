//! A map from document paths (`applications[2].components[0].provider`) to line and column,
//! built from yaml-rust2's event stream (the parser the loader reads with). JSON is
//! flow-style YAML, so one parser serves both.
//!
//! serde gives positions only for syntax and type errors; semantic problems (an unknown
//! id, a duplicate id, a bad value) are found on typed values, and this map puts them back
//! in the file. It is built only when there is a problem to report.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

use crate::Location;
use crate::limits::MAX_DEPTH;

#[derive(Debug, Default)]
pub struct SourceMap {
    positions: HashMap<String, Location>,
}

enum Frame {
    Map {
        path: String,
        pending_key: Option<String>,
        expecting_key: bool,
    },
    Seq {
        path: String,
        next_index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, Location>,
    /// A block mapping's start mark may sit before its first key; the first key is where
    /// a reader looks, so the mapping's position is moved there when that key arrives.
    mapping_awaiting_first_key: Option<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Builder {
    /// The path of the node that starts now, advancing the parent's state.
    fn child_path(&mut self, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next_index }) => {
                let p = format!("{path}[{next_index}]");
                *next_index += 1;
                Some(p)
            }
            Some(Frame::Map {
                path,
                pending_key,
                expecting_key,
            }) => {
                if *expecting_key {
                    // A key: remember it; complex (non-scalar) keys get no path.
                    *pending_key = Some(scalar.unwrap_or("?").to_string());
                    *expecting_key = false;
                    None
                } else {
                    *expecting_key = true;
                    let key = pending_key.take().unwrap_or_default();
                    Some(join(path, &key))
                }
            }
        }
    }

    fn on_scalar(&mut self, value: &str, location: Location) {
        if let Some(path) = self.child_path(Some(value)) {
            self.positions.entry(path).or_insert(location);
        } else if let Some(Frame::Map {
            path,
            pending_key: Some(key),
            ..
        }) = self.stack.last()
        {
            // Record where the key itself is, so "unknown field" points at it.
            self.positions
                .insert(format!("{}#key", join(path, key)), location);
            if self.mapping_awaiting_first_key.as_ref() == Some(path) {
                self.positions.insert(path.clone(), location);
                self.mapping_awaiting_first_key = None;
            }
        }
    }

    fn on_start(&mut self, location: Location, map: bool) {
        let path = self.child_path(None).unwrap_or_default();
        self.positions.entry(path.clone()).or_insert(location);
        if map {
            self.mapping_awaiting_first_key = Some(path.clone());
            self.stack.push(Frame::Map {
                path,
                pending_key: None,
                expecting_key: true,
            });
        } else {
            self.stack.push(Frame::Seq {
                path,
                next_index: 0,
            });
        }
    }
}

impl SourceMap {
    /// Build the map from the first document; a document that does not parse, or nests
    /// deeper than the loader allows, gives whatever was read before that point.
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let (text, bom) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let mut parser = Parser::new_from_str(text);
        while let Ok((event, mark)) = parser.next_token() {
            let location = Location {
                line: mark.line(),
                // The byte-order mark is a character of the first line.
                column: mark.col() + 1 + usize::from(bom && mark.line() <= 1),
            };
            match event {
                Event::Scalar(value, ..) => builder.on_scalar(&value, location),
                Event::Alias(_) => {
                    if let Some(path) = builder.child_path(None) {
                        builder.positions.entry(path).or_insert(location);
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    if builder.stack.len() >= MAX_DEPTH {
                        break;
                    }
                    builder.on_start(location, matches!(event, Event::MappingStart(..)));
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    builder.stack.pop();
                }
                Event::DocumentEnd | Event::StreamEnd => break,
                _ => {}
            }
        }
        Self {
            positions: builder.positions,
        }
    }

    /// The position of `path`, or of its nearest ancestor that is in the file.
    pub fn find(&self, path: &str) -> Option<Location> {
        let mut current = path;
        loop {
            if let Some(l) = self.positions.get(current) {
                return Some(*l);
            }
            if current.is_empty() {
                return None;
            }
            current = parent_path(current);
        }
    }
}

impl SourceMap {
    /// The path of the node that starts at `location` (the deepest one, keys aside), so a
    /// problem located by serde can name its field.
    pub fn path_at(&self, location: Location) -> Option<String> {
        self.positions
            .iter()
            .filter(|(path, at)| **at == location && !path.ends_with("#key") && !path.is_empty())
            .max_by_key(|(path, _)| path.len())
            .map(|(path, _)| path.clone())
    }
}

fn parent_path(path: &str) -> &str {
    match path.rfind(['.', '[', '#']) {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_nested_paths_to_lines() {
        let text =
            "id: x\nareas:\n  - id: a\n    cells:\n      iaas: {owner: customer}\n  - id: b\n";
        let map = SourceMap::build(text);
        assert_eq!(map.find("id"), Some(Location { line: 1, column: 5 }));
        assert_eq!(
            map.find("areas[1].id"),
            Some(Location { line: 6, column: 9 })
        );
        assert_eq!(
            map.find("areas[0].cells.iaas.owner"),
            Some(Location {
                line: 5,
                column: 21
            })
        );
        assert_eq!(
            map.find("areas[0].id#key"),
            Some(Location { line: 3, column: 5 })
        );
        // Unknown descendants fall back to the nearest ancestor.
        assert_eq!(
            map.find("areas[1].cells.paas"),
            Some(Location { line: 6, column: 5 })
        );
    }

    #[test]
    fn works_on_json() {
        let text = "{\n  \"id\": \"x\",\n  \"areas\": [\n    {\"id\": \"a\"}\n  ]\n}\n";
        let map = SourceMap::build(text);
        assert_eq!(map.find("areas[0].id").map(|l| l.line), Some(4));
    }

    #[test]
    fn deep_nesting_stops_without_overflow() {
        let text = "[".repeat(100_000);
        // Returns (with whatever it read before the limit) instead of overflowing the stack.
        let map = SourceMap::build(&text);
        assert!(map.positions.len() <= MAX_DEPTH);
    }
}
