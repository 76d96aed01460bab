//! A raw detection in the coordinates of the view a detector ran on, before the engine maps it
//! to the original text and attaches the policy's action.

use std::borrow::Cow;

use crate::Severity;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub kind: Cow<'static, str>,
    pub severity: Severity,
    pub score: f32,
    pub detail: Option<String>,
}

impl Hit {
    pub fn new(start: usize, end: usize, kind: &'static str, severity: Severity) -> Hit {
        Hit {
            start,
            end,
            kind: Cow::Borrowed(kind),
            severity,
            score: 1.0,
            detail: None,
        }
    }
}
