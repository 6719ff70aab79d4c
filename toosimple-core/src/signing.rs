//! Signed payloads, as django-q signs its packages: with a secret key set, each enqueued row
//! carries an HMAC-SHA256 of what it asks a worker to do (the task, its arguments and the
//! call's options), and a worker with the key runs only rows whose signature verifies. A row
//! written or changed outside toosimple (raw SQL, a compromised client without the key)
//! becomes `Invalid` instead of running.
//!
//! The key comes from [`SECRET_KEY_ENV`] when a [`Store`](crate::Store) connects, or from
//! [`Store::set_signing`](crate::Store::set_signing). Old keys listed in
//! [`SECRET_KEY_FALLBACKS_ENV`] (or [`Signing::fallback`]) still verify rows signed before a
//! rotation, but never sign.
//!
//! ```
//! use toosimple_core::Signing;
//!
//! let old = Signing::new("old secret");
//! let rotated = Signing::new("new secret").fallback("old secret");
//! let signature = old.sign("add", r#"{"a":1,"b":2}"#, "default", 0, None, None, None);
//! assert!(rotated.verify("add", r#"{"a":1,"b":2}"#, "default", 0, None, None, None, Some(&signature)));
//! assert!(!rotated.verify("add", r#"{"a":1,"b":3}"#, "default", 0, None, None, None, Some(&signature)));
//! ```

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::store::{ClaimedExec, NewTaskExec};

/// The environment variable holding the secret key rows are signed with.
pub const SECRET_KEY_ENV: &str = "TOOSIMPLE_SECRET_KEY";

/// The environment variable holding former keys, comma-separated: they verify rows signed
/// before a key rotation, and never sign (Django's `SECRET_KEY_FALLBACKS`).
pub const SECRET_KEY_FALLBACKS_ENV: &str = "TOOSIMPLE_SECRET_KEY_FALLBACKS";

/// What a worker records on a row whose signature does not verify.
pub const SIGNATURE_MISMATCH: &str =
    "signature does not match: the row was changed outside toosimple or the key differs";

/// The version tag that starts every signature, so that a later format can tell its own.
const VERSION: &str = "v1:";

/// The secret keys of a store: the current one signs and verifies, the fallbacks only verify.
///
/// What is signed: the task's name, its arguments (their canonical JSON, before any
/// [compression](crate::compression)), the queue, the priority, the call's time limit, its
/// result TTL and its hook. Not the due time or the retries left, which change as a row is
/// woken and retried: a retry copies the signature of the row it replaces.
#[derive(Clone)]
pub struct Signing {
    key: Vec<u8>,
    fallbacks: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a key.
        f.debug_struct("Signing")
            .field("fallbacks", &self.fallbacks.len())
            .finish_non_exhaustive()
    }
}

impl Signing {
    /// Signs and verifies with `key`.
    pub fn new(key: impl AsRef<[u8]>) -> Signing {
        Signing {
            key: key.as_ref().to_vec(),
            fallbacks: Vec::new(),
        }
    }

    /// Also accepts rows signed with `old_key` (a key rotation); it never signs.
    #[must_use]
    pub fn fallback(mut self, old_key: impl AsRef<[u8]>) -> Signing {
        self.fallbacks.push(old_key.as_ref().to_vec());
        self
    }

    /// The keys in [`SECRET_KEY_ENV`] and [`SECRET_KEY_FALLBACKS_ENV`]; `None` when no key is
    /// set (or it is empty), whatever the fallbacks say: without a key nothing is signed or
    /// checked.
    pub fn from_env() -> Option<Signing> {
        let key = std::env::var(SECRET_KEY_ENV).ok().filter(|k| !k.is_empty());
        let Some(key) = key else {
            if std::env::var(SECRET_KEY_FALLBACKS_ENV).is_ok_and(|f| !f.trim().is_empty()) {
                tracing::warn!(
                    "{SECRET_KEY_FALLBACKS_ENV} is set but {SECRET_KEY_ENV} is not: rows are neither signed nor checked; set {SECRET_KEY_ENV} to the current key"
                );
            }
            return None;
        };
        let fallbacks = std::env::var(SECRET_KEY_FALLBACKS_ENV).unwrap_or_default();
        Some(
            fallbacks
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .fold(Signing::new(key), Signing::fallback),
        )
    }

    /// The signature of a row with these fields, with the current key: `v1:` and the
    /// HMAC-SHA256 in hexadecimal.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &self,
        task_name: &str,
        args: &str,
        queue: &str,
        priority: i32,
        timeout_ms: Option<i64>,
        result_ttl: Option<i64>,
        hook: Option<&str>,
    ) -> String {
        let fields = Fields {
            task_name,
            args,
            queue,
            priority,
            timeout_ms,
            result_ttl,
            hook,
        };
        let tag = fields.mac(&self.key).finalize().into_bytes();
        let mut out = String::with_capacity(VERSION.len() + 64);
        out.push_str(VERSION);
        for byte in tag.iter() {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// Whether `signature` is the signature of these fields under the current key or a
    /// fallback (compared in constant time). A missing signature never verifies.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        task_name: &str,
        args: &str,
        queue: &str,
        priority: i32,
        timeout_ms: Option<i64>,
        result_ttl: Option<i64>,
        hook: Option<&str>,
        signature: Option<&str>,
    ) -> bool {
        let Some(tag) = signature
            .and_then(|s| s.strip_prefix(VERSION))
            .and_then(decode_hex)
        else {
            return false;
        };
        let fields = Fields {
            task_name,
            args,
            queue,
            priority,
            timeout_ms,
            result_ttl,
            hook,
        };
        std::iter::once(&self.key)
            .chain(&self.fallbacks)
            .any(|key| fields.mac(key).verify_slice(&tag).is_ok())
    }

    /// Signs `row` as it will be inserted.
    pub(crate) fn seal(&self, row: &mut NewTaskExec) {
        row.signature = Some(self.sign(
            &row.task_name,
            &row.args,
            &row.queue,
            row.priority,
            row.timeout_ms,
            row.result_ttl,
            row.hook.as_deref(),
        ));
    }

    /// Checks a claimed row before it runs: `Err` holds the message to record on it
    /// ([`SIGNATURE_MISMATCH`]).
    #[doc(hidden)]
    pub fn check(&self, exec: &ClaimedExec) -> Result<(), String> {
        if self.verify(
            &exec.task_name,
            &exec.args,
            &exec.queue,
            exec.priority,
            exec.timeout_ms,
            exec.result_ttl,
            exec.hook.as_deref(),
            exec.signature.as_deref(),
        ) {
            Ok(())
        } else {
            Err(SIGNATURE_MISMATCH.to_string())
        }
    }
}

/// The signed fields of a row.
struct Fields<'a> {
    task_name: &'a str,
    args: &'a str,
    queue: &'a str,
    priority: i32,
    timeout_ms: Option<i64>,
    result_ttl: Option<i64>,
    hook: Option<&'a str>,
}

impl Fields<'_> {
    /// The MAC over the fields, each length-prefixed so that no two rows give the same bytes.
    fn mac(&self, key: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
        let mut text = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_be_bytes());
            mac.update(bytes);
        };
        text(b"toosimple task v1");
        text(self.task_name.as_bytes());
        text(self.args.as_bytes());
        text(self.queue.as_bytes());
        text(&self.priority.to_be_bytes());
        let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
        text(optional(self.timeout_ms).as_bytes());
        text(optional(self.result_ttl).as_bytes());
        text(self.hook.unwrap_or("").as_bytes());
        mac
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(s: &Signing, args: &str) -> String {
        s.sign("t", args, "default", 0, None, None, None)
    }

    fn verify(s: &Signing, args: &str, signature: Option<&str>) -> bool {
        s.verify("t", args, "default", 0, None, None, None, signature)
    }

    #[test]
    fn a_signature_verifies_its_own_fields_only() {
        let s = Signing::new("k");
        let sig = sign(&s, "{}");
        assert!(sig.starts_with("v1:") && sig.len() == 3 + 64, "{sig}");
        assert!(verify(&s, "{}", Some(&sig)));
        assert!(!verify(&s, "{\"a\":1}", Some(&sig)));
        assert!(!s.verify("t", "{}", "other", 0, None, None, None, Some(&sig)));
        assert!(!s.verify("t", "{}", "default", 1, None, None, None, Some(&sig)));
        assert!(!s.verify("t", "{}", "default", 0, Some(1), None, None, Some(&sig)));
        assert!(!s.verify("t", "{}", "default", 0, None, None, Some("h"), Some(&sig)));
        assert!(!verify(&s, "{}", None));
        assert!(!verify(&s, "{}", Some("v1:zz")));
        assert!(!verify(&s, "{}", Some(&sig[3..])));
        assert!(!verify(&Signing::new("other"), "{}", Some(&sig)));
    }

    #[test]
    fn fallbacks_verify_but_never_sign() {
        let old = Signing::new("old");
        let new = Signing::new("new").fallback("older").fallback("old");
        let by_old = sign(&old, "{}");
        assert!(verify(&new, "{}", Some(&by_old)));
        assert_eq!(sign(&new, "{}"), sign(&Signing::new("new"), "{}"));
        assert!(!verify(&old, "{}", Some(&sign(&new, "{}"))));
    }

    #[test]
    fn fields_do_not_run_into_each_other() {
        let s = Signing::new("k");
        assert_ne!(
            s.sign("ab", "c", "q", 0, None, None, None),
            s.sign("a", "bc", "q", 0, None, None, None)
        );
        assert_ne!(
            s.sign("a", "b", "q", 0, Some(1), None, None),
            s.sign("a", "b", "q", 0, None, Some(1), None)
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!("{:?}", Signing::new("hunter2").fallback("older"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("older"),
            "{shown}"
        );
    }
}
