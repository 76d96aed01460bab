//! Which backend a URL names, and the default URL.

use std::path::PathBuf;

use crate::error::{Result, StoreError};

/// The two backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…` / `postgresql://…`, `sqlite://PATH` / `sqlite:PATH`, or a bare path.
    pub(crate) fn parse(url: &str) -> Result<Location> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        if url.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.contains('?') || path == ":memory:" {
                return Err(invalid("expected `sqlite://PATH` naming a file"));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return Err(invalid(&format!(
                "unknown scheme `{scheme}`; use `sqlite://PATH`, a file path or `postgres://…`"
            )));
        }
        Ok(Location::Sqlite(PathBuf::from(url)))
    }

    #[cfg(test)]
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }

    /// How the location appears in messages: the path, or the URL without its password.
    pub(crate) fn display(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => redact(url),
        }
    }
}

/// The URL with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The store URL used when none is given: `DEMARC_DB` when set and not empty,
/// otherwise the SQLite file `$XDG_DATA_HOME/demarc/demarc.db`
/// (`~/.local/share/demarc/demarc.db` when `XDG_DATA_HOME` is unset), or
/// `demarc.db` in the current directory when no home directory is known.
/// The file and its directory are created on first use.
pub fn default_url() -> String {
    if let Some(url) = non_empty_env("DEMARC_DB") {
        return url;
    }
    let dir = non_empty_env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|home| PathBuf::from(home).join(".local/share")));
    match dir {
        Some(dir) => format!(
            "sqlite://{}",
            dir.join("demarc").join("demarc.db").display()
        ),
        None => "sqlite://demarc.db".to_owned(),
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_url_form() {
        assert_eq!(
            Location::parse("sqlite:///tmp/a.db").unwrap(),
            Location::Sqlite("/tmp/a.db".into())
        );
        assert_eq!(
            Location::parse("sqlite://a.db").unwrap(),
            Location::Sqlite("a.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:a.db").unwrap(),
            Location::Sqlite("a.db".into())
        );
        assert_eq!(
            Location::parse("/var/x.db").unwrap(),
            Location::Sqlite("/var/x.db".into())
        );
        assert_eq!(
            Location::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            Location::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert!(Location::parse("mysql://h/db").is_err());
        assert!(Location::parse("").is_err());
        assert!(Location::parse("sqlite::memory:").is_err());
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("/tmp/x.db"), "/tmp/x.db");
    }
}
