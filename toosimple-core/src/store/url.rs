//! Reading a database URL: which backend, and how to show it without its password.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What a database URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file (or `:memory:`).
    Sqlite { path: String },
    /// A PostgreSQL server; the URL is handed to libpq as written.
    Postgres { url: String },
}

impl Target {
    /// Reads `sqlite://path`, `sqlite:path`, `postgres://…` or `postgresql://…`.
    pub(crate) fn parse(url: &str) -> Result<Target> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres {
                url: url.to_string(),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| Error::UnsupportedUrl { url: mask(url) })?;
        if path.is_empty() {
            return Err(Error::UnsupportedUrl { url: mask(url) });
        }
        if path != ":memory:" {
            let file = Path::new(path);
            if let Some(folder) = file.parent().filter(|f| !f.as_os_str().is_empty())
                && !folder.is_dir()
            {
                return Err(Error::SqliteFolderMissing {
                    path: PathBuf::from(path),
                    folder: folder.to_path_buf(),
                });
            }
        }
        Ok(Target::Sqlite {
            path: path.to_string(),
        })
    }

    pub(crate) fn is_memory(&self) -> bool {
        matches!(self, Target::Sqlite { path } if path == ":memory:")
    }
}

/// The URL with any password replaced by `***`, for logs and error messages.
pub fn mask(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            let end = scheme_end + 3 + at;
            out.replace_range(start..end, "***");
        }
    }
    // libpq also takes `?password=...`.
    if let Some(pos) = out.find("password=") {
        let value_start = pos + "password=".len();
        let value_end = out[value_start..]
            .find('&')
            .map_or(out.len(), |i| value_start + i);
        out.replace_range(value_start..value_end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask("postgres://bob:s3cr@t@db:5432/app"),
            "postgres://bob:***@db:5432/app"
        );
        assert_eq!(mask("postgres://bob@db/app"), "postgres://bob@db/app");
        assert_eq!(
            mask("postgres://db/app?user=a&password=x&sslmode=require"),
            "postgres://db/app?user=a&password=***&sslmode=require"
        );
        assert_eq!(
            mask("sqlite://toosimple.sqlite3"),
            "sqlite://toosimple.sqlite3"
        );
    }

    #[test]
    fn parses_schemes() {
        assert_eq!(
            Target::parse("sqlite://x.sqlite3").unwrap(),
            Target::Sqlite {
                path: "x.sqlite3".into()
            }
        );
        assert!(matches!(
            Target::parse("postgresql://h/db").unwrap(),
            Target::Postgres { .. }
        ));
        let err = Target::parse("mysql://h/db").unwrap_err().to_string();
        assert!(err.contains("unsupported database URL"), "{err}");
        let err = Target::parse("sqlite:///no/such/folder/x.sqlite3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/folder"), "{err}");
    }
}
