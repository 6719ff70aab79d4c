//! `AdminConfig`: the store to show, the password that guards it, and the session settings.

use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toosimple_core::Store;

/// The environment variable holding the admin password in clear.
pub const PASSWORD_ENV: &str = "TOOSIMPLE_ADMIN_PASSWORD";
/// The environment variable holding the admin password's argon2 hash (PHC string,
/// `$argon2id$v=19$...`), used instead of [`PASSWORD_ENV`] when set.
pub const PASSWORD_HASH_ENV: &str = "TOOSIMPLE_ADMIN_PASSWORD_HASH";

/// Why an [`AdminConfig`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Neither password variable is set (or both are empty).
    #[error(
        "the admin has no password: set {PASSWORD_ENV} (e.g. `export {PASSWORD_ENV}='a long secret'`), \
         or {PASSWORD_HASH_ENV} to its argon2 hash"
    )]
    NoPassword,
    /// The hash variable does not hold an argon2 PHC string.
    #[error(
        "{PASSWORD_HASH_ENV} is not an argon2 hash ({reason}): it must look like \
         `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`"
    )]
    BadHash {
        /// What the parser said.
        reason: String,
    },
}

/// The secret a user types to log in.
///
/// ```
/// use toosimple_admin::Password;
///
/// let password = Password::plain("s3cret");
/// assert!(password.verify("s3cret"));
/// assert!(!password.verify("guess"));
/// // An argon2 hash, as `argon2` or any PHC tool prints it:
/// assert!(Password::argon2_hash("not a hash").is_err());
/// ```
#[derive(Clone)]
pub enum Password {
    /// The password itself; compared through SHA-256 digests in constant time.
    Plain(String),
    /// An argon2 hash in PHC string format; verified by the argon2 crate.
    Argon2(String),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Password::Plain(_) => "Password::Plain(<hidden>)",
            Password::Argon2(_) => "Password::Argon2(<hash>)",
        })
    }
}

impl Password {
    /// A plain password.
    pub fn plain(password: impl Into<String>) -> Password {
        Password::Plain(password.into())
    }

    /// An argon2 PHC hash, checked for its format now rather than at the first login.
    pub fn argon2_hash(hash: impl Into<String>) -> Result<Password, ConfigError> {
        let hash = hash.into();
        PasswordHash::new(&hash).map_err(|e| ConfigError::BadHash {
            reason: e.to_string(),
        })?;
        Ok(Password::Argon2(hash))
    }

    /// Reads [`PASSWORD_HASH_ENV`], else [`PASSWORD_ENV`]; empty values count as unset.
    pub fn from_env() -> Result<Password, ConfigError> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        if let Some(hash) = var(PASSWORD_HASH_ENV) {
            return Password::argon2_hash(hash.trim());
        }
        var(PASSWORD_ENV)
            .map(Password::Plain)
            .ok_or(ConfigError::NoPassword)
    }

    /// Whether `attempt` is the password. Takes the same time whatever prefix matches;
    /// the argon2 check is slow on purpose, so call it off the async threads.
    pub fn verify(&self, attempt: &str) -> bool {
        match self {
            Password::Plain(expected) => {
                let a = Sha256::digest(attempt.as_bytes());
                let b = Sha256::digest(expected.as_bytes());
                a.ct_eq(&b).into()
            }
            Password::Argon2(hash) => match PasswordHash::new(hash) {
                Ok(parsed) => Argon2::default()
                    .verify_password(attempt.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            },
        }
    }
}

/// What [`router`](crate::router) serves: the store, the password, and session settings.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
/// let store = toosimple_core::Store::connect(&url)?;
/// let config = toosimple_admin::AdminConfig::new(store, toosimple_admin::Password::plain("s3cret"))
///     .session_lifetime(std::time::Duration::from_secs(3600));
/// let app: axum::Router = axum::Router::new().nest("/admin", toosimple_admin::router(config));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub(crate) store: Store,
    pub(crate) password: Password,
    pub(crate) session_lifetime: Duration,
    pub(crate) failed_login_delay: Duration,
    pub(crate) page_size: i64,
}

impl AdminConfig {
    /// Serves `store`, guarded by `password`; sessions last 12 hours without use, and each
    /// failed login waits 1 second.
    pub fn new(store: Store, password: Password) -> AdminConfig {
        AdminConfig {
            store,
            password,
            session_lifetime: Duration::from_secs(12 * 3600),
            failed_login_delay: Duration::from_secs(1),
            page_size: 50,
        }
    }

    /// Serves `store` with the password from the environment ([`Password::from_env`]).
    pub fn from_env(store: Store) -> Result<AdminConfig, ConfigError> {
        Ok(AdminConfig::new(store, Password::from_env()?))
    }

    /// How long a session lasts without a request.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// How long a failed login waits before answering. Failed logins take turns, so this
    /// also bounds how many passwords per second anyone can try.
    pub fn failed_login_delay(mut self, delay: Duration) -> Self {
        self.failed_login_delay = delay;
        self
    }

    /// How many executions a page of the list shows (default 50).
    pub fn page_size(mut self, rows: i64) -> Self {
        self.page_size = rows.clamp(1, 1000);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;
    use argon2::password_hash::SaltString;

    #[test]
    fn plain_password_verifies() {
        let p = Password::plain("secret");
        assert!(p.verify("secret"));
        assert!(!p.verify("secre"));
        assert!(!p.verify(""));
    }

    #[test]
    fn argon2_hash_verifies() {
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
        let hash = Argon2::default()
            .hash_password(b"secret", &salt)
            .unwrap()
            .to_string();
        let p = Password::argon2_hash(hash).unwrap();
        assert!(p.verify("secret"));
        assert!(!p.verify("Secret"));
        assert!(Password::argon2_hash("plain").is_err());
    }
}
