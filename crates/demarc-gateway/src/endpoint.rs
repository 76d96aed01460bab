//! The API operations the gateway serves, by the path upstreams know them under and the label
//! metrics and the audit log use.

/// The API operation a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    ChatCompletions,
    /// The legacy text completions API (`prompt` in, `choices[].text` out).
    Completions,
    Responses,
    Embeddings,
    /// `GET /models`: the list.
    Models,
    /// `GET /models/{id}`: one model (the id travels as the request's model).
    Model,
    /// A URL or method the gateway does not serve; never sent upstream, only audited.
    Unrouted,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat/completions",
            Self::Completions => "completions",
            Self::Responses => "responses",
            Self::Embeddings => "embeddings",
            Self::Models | Self::Model => "models",
            Self::Unrouted => "",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Completions => "completions",
            Self::Responses => "responses",
            Self::Embeddings => "embeddings",
            Self::Models => "models",
            Self::Model => "model",
            Self::Unrouted => "unrouted",
        }
    }
}
