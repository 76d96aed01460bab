//! Errors of reading an outside document.

/// A document that cannot be read as what it claims to be: the JSON path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ImportError {
    /// JSON path in the document, e.g. `$.system-security-plan.control-implementation`.
    pub path: String,
    pub message: String,
}

impl ImportError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// A JSON value with the path it sits at, for reading outside documents with located errors.
#[derive(Clone, Copy)]
pub(crate) struct At<'a, 'p> {
    pub value: &'a serde_json::Value,
    pub path: &'p str,
}

pub(crate) type Result<T> = std::result::Result<T, ImportError>;

impl<'a, 'p> At<'a, 'p> {
    pub fn root(value: &'a serde_json::Value) -> Self {
        Self { value, path: "$" }
    }

    pub fn err(&self, message: impl Into<String>) -> ImportError {
        ImportError::new(self.path, message)
    }

    /// An object's field, `None` when absent or null; an error when this is not an object.
    pub fn get(&self, key: &str) -> Result<Option<(String, &'a serde_json::Value)>> {
        let obj = self
            .value
            .as_object()
            .ok_or_else(|| self.err(format!("expected an object, found {}", kind(self.value))))?;
        Ok(obj
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| (format!("{}.{key}", self.path), v)))
    }

    pub fn str_field(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key)? {
            None => Ok(None),
            Some((path, v)) => v.as_str().map(Some).ok_or_else(|| {
                ImportError::new(path, format!("expected a string, found {}", kind(v)))
            }),
        }
    }

    pub fn required_str(&self, key: &str) -> Result<&'a str> {
        self.str_field(key)?
            .ok_or_else(|| ImportError::new(format!("{}.{key}", self.path), "missing"))
    }

    /// An array field's items with their paths (absent: none).
    pub fn items(&self, key: &str) -> Result<Vec<(String, &'a serde_json::Value)>> {
        match self.get(key)? {
            None => Ok(Vec::new()),
            Some((path, v)) => {
                let arr = v.as_array().ok_or_else(|| {
                    ImportError::new(
                        path.clone(),
                        format!("expected an array, found {}", kind(v)),
                    )
                })?;
                Ok(arr
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{path}[{i}]"), item))
                    .collect())
            }
        }
    }
}

pub(crate) fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
