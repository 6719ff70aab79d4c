//! `AdminConfig`: the store to show, the password that guards it, the secret that seals its
//! cookies, and the session settings.

use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::http::HeaderName;
use axum_extra::extract::cookie::Key;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toosimple_core::Store;

/// The environment variable holding the admin password in clear.
pub const PASSWORD_ENV: &str = "TOOSIMPLE_ADMIN_PASSWORD";
/// The environment variable holding the admin password's argon2 hash (PHC string,
/// `$argon2id$v=19$...`), used instead of [`PASSWORD_ENV`] when set.
pub const PASSWORD_HASH_ENV: &str = "TOOSIMPLE_ADMIN_PASSWORD_HASH";
/// The environment variable holding the secret that signs and encrypts the session cookies:
/// at least 64 random bytes, in hex or base64 (`openssl rand -base64 64`).
pub const SECRET_ENV: &str = "TOOSIMPLE_ADMIN_SECRET";

/// The environment variable holding the token a Prometheus scraper sends for `/metrics`.
pub const METRICS_TOKEN_ENV: &str = "TOOSIMPLE_METRICS_TOKEN";

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
    /// The cookie secret is too short or neither hex nor base64.
    #[error(
        "the admin secret is not usable ({reason}): set {SECRET_ENV} to at least 64 random bytes \
         in hex or base64, e.g. `export {SECRET_ENV}=\"$(openssl rand -base64 64)\"`"
    )]
    BadSecret {
        /// What was wrong with it.
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

/// The key that encrypts and authenticates the admin's cookies (AES-256-GCM, through
/// axum-extra's private cookie jar).
///
/// Every admin process given the same secret accepts the sessions of the others, and its own
/// after a restart; a new secret logs everyone out.
///
/// ```
/// use toosimple_admin::Secret;
///
/// let secret = Secret::parse(&"ab".repeat(64))?; // 64 bytes in hex
/// assert!(Secret::parse("too short").is_err());
/// # Ok::<(), toosimple_admin::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Secret(pub(crate) Key);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// Fewest bytes of key material: what the cookie crate splits into its signing and
/// encryption keys.
const SECRET_MIN_BYTES: usize = 64;

impl Secret {
    /// A secret from raw bytes; at least 64 of them, and they must be random.
    pub fn from_bytes(bytes: &[u8]) -> Result<Secret, ConfigError> {
        Key::try_from(bytes)
            .map(Secret)
            .map_err(|_| ConfigError::BadSecret {
                reason: format!("{} bytes, fewer than {SECRET_MIN_BYTES}", bytes.len()),
            })
    }

    /// A secret written in hex or base64 (standard or URL-safe, padded or not). Whitespace is
    /// ignored, so `openssl rand -base64 64`'s wrapped lines can be pasted as they are.
    pub fn parse(text: &str) -> Result<Secret, ConfigError> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = decode_hex(&text)
            .or_else(|| {
                use base64::engine::general_purpose::{
                    STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
                };
                [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                    .iter()
                    .find_map(|engine| engine.decode(&text).ok())
            })
            .ok_or_else(|| ConfigError::BadSecret {
                reason: "neither hex nor base64".to_string(),
            })?;
        Secret::from_bytes(&bytes)
    }

    /// A random secret, good for this process only.
    pub fn generate() -> Secret {
        Secret(Key::generate())
    }

    /// Reads [`SECRET_ENV`]; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<Secret>, ConfigError> {
        match std::env::var(SECRET_ENV) {
            Ok(text) if !text.trim().is_empty() => Secret::parse(&text).map(Some),
            _ => Ok(None),
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
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
    pub(crate) secret: Option<Secret>,
    pub(crate) client_ip_header: Option<HeaderName>,
    pub(crate) metrics_token: Option<String>,
    pub(crate) exact_counts_up_to: i64,
}

impl AdminConfig {
    /// Serves `store`, guarded by `password`; sessions last 12 hours without use, and each
    /// failed login waits 1 second.
    ///
    /// Without a [`secret`](AdminConfig::secret), the router reads [`SECRET_ENV`] when it is
    /// built, and makes up a random one (with a warning) when that is unset.
    pub fn new(store: Store, password: Password) -> AdminConfig {
        AdminConfig {
            store,
            password,
            session_lifetime: Duration::from_secs(12 * 3600),
            failed_login_delay: Duration::from_secs(1),
            page_size: 50,
            secret: None,
            client_ip_header: None,
            metrics_token: None,
            exact_counts_up_to: toosimple_core::EXACT_COUNT_LIMIT,
        }
    }

    /// Serves `store` with the password ([`Password::from_env`]) and the cookie secret
    /// ([`Secret::from_env`]) from the environment.
    pub fn from_env(store: Store) -> Result<AdminConfig, ConfigError> {
        let mut config = AdminConfig::new(store, Password::from_env()?);
        if let Ok(token) = std::env::var(METRICS_TOKEN_ENV)
            && !token.trim().is_empty()
        {
            config = config.metrics_token(token.trim());
        }
        Ok(match Secret::from_env()? {
            Some(secret) => config.secret(secret),
            None => config,
        })
    }

    /// The secret that seals the session cookies. Give every replica of the admin the same
    /// one, and keep it across restarts, so that a login holds wherever the next request lands.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Behind a reverse proxy, the header it puts the client's address in (e.g.
    /// `x-forwarded-for`), so that failed logins are slowed per client rather than for all
    /// clients of the proxy at once. The last address of the header is used: the one the
    /// proxy itself appended, which the client cannot choose. Set it only when a proxy that
    /// appends to it is always in front: otherwise a client could name any address.
    pub fn client_ip_header(mut self, header: HeaderName) -> Self {
        self.client_ip_header = Some(header);
        self
    }

    /// How long a session lasts without a request.
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// How long a failed login waits before answering. The logins of one client take turns
    /// behind its failed ones, so this also bounds how many passwords per second one client
    /// can try, without slowing anyone else's login.
    pub fn failed_login_delay(mut self, delay: Duration) -> Self {
        self.failed_login_delay = delay;
        self
    }

    /// The token a Prometheus scraper sends (`Authorization: Bearer TOKEN`) to read
    /// `/metrics` without a session; without one, `/metrics` needs a login like every page.
    pub fn metrics_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_token = Some(token.into());
        self
    }

    /// How many executions of one state the overview counts one by one before it shows an
    /// estimate marked `≈` (default [`EXACT_COUNT_LIMIT`](toosimple_core::EXACT_COUNT_LIMIT),
    /// 10,000): the page reads at most this many rows per state, so that it stays fast
    /// beside millions of executions.
    pub fn exact_counts_up_to(mut self, rows: i64) -> Self {
        self.exact_counts_up_to = rows.max(0);
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

    #[test]
    fn secrets_are_hex_or_base64_of_64_bytes() {
        let bytes: Vec<u8> = (0..64).collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        for text in [
            hex,
            b64.clone(),
            url,
            format!("{}\n{}\n", &b64[..64], &b64[64..]),
        ] {
            let secret = Secret::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(secret.0.master(), &bytes[..]);
        }
        let short = Secret::parse(&"ab".repeat(63)).unwrap_err().to_string();
        assert!(
            short.contains("63 bytes") && short.contains(SECRET_ENV),
            "{short}"
        );
        assert!(Secret::parse("not base64!").is_err());
    }
}
