//! Reading a database URL: which backend, and how to show it without its password.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What a database URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file (or `:memory:`).
    Sqlite { path: String },
    /// A PostgreSQL server; the URL is handed to libpq as written, less `pgbouncer=true`.
    Postgres {
        url: String,
        /// Reached through a transaction-pooling proxy (PgBouncer, Supavisor): each
        /// transaction may run on another server session, so nothing may outlive one.
        pooled: bool,
    },
    /// A MariaDB or MySQL server; the URL is handed to the client library as written.
    Mysql { url: String },
}

impl Target {
    /// Reads `sqlite://path`, `sqlite:path`, `postgres://…`, `postgresql://…` or `mysql://…`.
    pub(crate) fn parse(url: &str) -> Result<Target> {
        if url.starts_with("mysql://") {
            return Ok(Target::Mysql {
                url: url.to_string(),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (url, pooled) = without_pooled_flag(url);
            return Ok(Target::Postgres { url, pooled });
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

/// The query parameter that marks a PostgreSQL URL as reaching the server through a
/// transaction-pooling proxy, as Prisma spells it: libpq knows no such parameter, so it is
/// taken out of the URL before libpq reads it.
pub(crate) const POOLED_PARAMETER: &str = "pgbouncer";

/// `url` without its `pgbouncer=…` parameters, and whether one said `true` (or `1`).
fn without_pooled_flag(url: &str) -> (String, bool) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), false);
    };
    let mut pooled = false;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((name, value)) if name == POOLED_PARAMETER => {
                pooled = value == "true" || value == "1";
                false
            }
            _ => true,
        })
        .collect();
    if kept.is_empty() {
        (base.to_string(), pooled)
    } else {
        (format!("{base}?{}", kept.join("&")), pooled)
    }
}

/// The URL with any password replaced by `***`, for logs and error messages.
pub fn mask(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        // libpq looks for credentials up to the first `/` only: a `?` before the `@` is part
        // of the password, not the start of the query.
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            let end = scheme_end + 3 + at;
            out.replace_range(start..end, "***");
        }
    }
    // libpq also takes `?password=...`, and `sslpassword=...`: every one of them is hidden.
    let mut from = 0;
    while let Some(pos) = out[from..].find("password=") {
        let value_start = from + pos + "password=".len();
        let value_end = out[value_start..]
            .find('&')
            .map_or(out.len(), |i| value_start + i);
        out.replace_range(value_start..value_end, "***");
        from = value_start + "***".len();
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

    /// Finding: the credentials were looked for only up to the first `?`, so a password with a
    /// `?` in it (which libpq reads as a password) was printed in full.
    #[test]
    fn a_question_mark_in_the_password_is_masked() {
        assert_eq!(
            mask("postgres://bob:pa?ss@db:5432/app"),
            "postgres://bob:***@db:5432/app"
        );
        assert_eq!(mask("postgres://bob:pa?ss@db"), "postgres://bob:***@db");
        assert_eq!(
            mask("postgres://db/app?user=a@b"),
            "postgres://db/app?user=a@b"
        );
    }

    /// Finding: only the first `password=` of the query was masked, and `sslpassword=` (the
    /// client key's passphrase) comes first when written first, so the password after it
    /// was printed in full.
    #[test]
    fn every_password_parameter_is_masked() {
        assert_eq!(
            mask("postgres://db/app?sslpassword=k3y&user=a&password=pw"),
            "postgres://db/app?sslpassword=***&user=a&password=***"
        );
    }

    #[test]
    fn a_pooled_url_is_marked_and_libpq_never_sees_the_flag() {
        assert_eq!(
            Target::parse("postgres://u@h:6432/db?pgbouncer=true").unwrap(),
            Target::Postgres {
                url: "postgres://u@h:6432/db".into(),
                pooled: true
            }
        );
        assert_eq!(
            Target::parse("postgres://u@h/db?sslmode=require&pgbouncer=true&application_name=x")
                .unwrap(),
            Target::Postgres {
                url: "postgres://u@h/db?sslmode=require&application_name=x".into(),
                pooled: true
            }
        );
        assert_eq!(
            Target::parse("postgres://u@h/db?pgbouncer=false").unwrap(),
            Target::Postgres {
                url: "postgres://u@h/db".into(),
                pooled: false
            }
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
            Target::Postgres { pooled: false, .. }
        ));
        assert!(matches!(
            Target::parse("mysql://root@127.0.0.1:3306/db").unwrap(),
            Target::Mysql { .. }
        ));
        let err = Target::parse("mariadb://h/db").unwrap_err().to_string();
        assert!(err.contains("unsupported database URL"), "{err}");
        let err = Target::parse("sqlite:///no/such/folder/x.sqlite3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/folder"), "{err}");
    }

    mod fuzz {
        //! Bad database URLs never panic: any string reads as a target or as an error that says
        //! why, and masking never panics nor shows a password that libpq would read.

        use proptest::prelude::*;
        use proptest::test_runner::Config;

        use super::super::*;

        /// Few enough cases for the debug suite (`PROPTEST_CASES` runs a longer hunt); no
        /// regression files: a finding becomes a named test.
        fn config() -> Config {
            Config {
                cases: std::env::var("PROPTEST_CASES")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(256),
                failure_persistence: None,
                ..Config::default()
            }
        }

        /// Schemes, right and wrong, before any text.
        fn url_like() -> impl Strategy<Value = String> {
            let scheme = prop::sample::select(vec![
                "sqlite://",
                "sqlite:",
                "sqlite:///",
                "postgres://",
                "postgresql://",
                "POSTGRES://",
                "mysql://",
                "file:",
                "",
            ]);
            let rest = prop_oneof![
                any::<String>(),
                "[a-z:/@?=&%.#\\\\0-9\\x00 ]{0,30}",
                Just(":memory:".to_string()),
                Just(String::new()),
            ];
            (scheme, rest).prop_map(|(scheme, rest)| format!("{scheme}{rest}"))
        }

        /// Text libpq reads as a password in `user:PASSWORD@host`: anything but `@` (its end)
        /// and `/` (where libpq stops looking for one).
        fn password() -> impl Strategy<Value = String> {
            "[^@/]{1,20}".prop_map(|p| format!("S3CR3T{p}"))
        }

        fn check(url: &str) -> Result<(), TestCaseError> {
            let masked = mask(url);
            prop_assert_eq!(
                mask(&masked),
                masked.clone(),
                "masking twice changes {:?}",
                url
            );
            match Target::parse(url) {
                Ok(Target::Postgres { url: kept, pooled }) => {
                    if !pooled && !url.contains("pgbouncer=") {
                        prop_assert_eq!(kept, url);
                    }
                    prop_assert!(
                        url.starts_with("postgres://") || url.starts_with("postgresql://")
                    );
                }
                Ok(Target::Mysql { url: kept }) => {
                    prop_assert_eq!(kept, url);
                    prop_assert!(url.starts_with("mysql://"));
                }
                Ok(Target::Sqlite { path }) => {
                    prop_assert!(!path.is_empty());
                    prop_assert!(url.ends_with(&path) && url.starts_with("sqlite:"));
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_string_is_a_target_or_an_error(url in any::<String>()) {
                check(&url)?;
            }

            #[test]
            fn url_like_strings_are_a_target_or_an_error(url in url_like()) {
                check(&url)?;
            }

            #[test]
            fn passwords_are_masked_wherever_libpq_reads_them(
                user in "[a-z]{1,8}",
                password in password(),
                host in "[a-z0-9.]{1,12}(:[0-9]{1,5})?",
                db in "(/[a-z0-9_]{0,10})?",
                query in prop::collection::vec(
                    prop_oneof![
                        Just("sslmode=require".to_string()),
                        "application_name=[a-z]{0,6}",
                        password().prop_map(|p| format!("password={p}")),
                        password().prop_map(|p| format!("sslpassword={p}")),
                    ],
                    0..4,
                ),
            ) {
                let query: Vec<String> = query.iter().map(|q| q.replace(['&', '#'], "")).collect();
                let url = format!(
                    "postgres://{user}:{password}@{host}{db}{}{}",
                    if query.is_empty() { "" } else if db.is_empty() { "/?" } else { "?" },
                    query.join("&")
                );
                let masked = mask(&url);
                for secret in std::iter::once(password.as_str()).chain(
                    query.iter().filter_map(|q| q.split_once("password=").map(|(_, p)| p)),
                ) {
                    prop_assert!(!masked.contains(secret), "{secret:?} shown in {masked:?}");
                }
                prop_assert!(masked.contains(&host), "{masked:?} hides the host of {url:?}");
            }
        }
    }
}
