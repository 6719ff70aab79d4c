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
//! use toosimple_core::{SignedFields, Signing};
//!
//! let old = Signing::new("old secret");
//! let rotated = Signing::new("new secret").fallback("old secret");
//! let call = SignedFields::new("add", r#"{"a":1,"b":2}"#, "default");
//! let signature = old.sign(&call);
//! assert!(rotated.verify(&call, Some(&signature)));
//! let changed = SignedFields { args: r#"{"a":1,"b":3}"#, ..call };
//! assert!(!rotated.verify(&changed, Some(&signature)));
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
    pub fn sign(&self, fields: &SignedFields<'_>) -> String {
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
    pub fn verify(&self, fields: &SignedFields<'_>, signature: Option<&str>) -> bool {
        let Some(tag) = signature
            .and_then(|s| s.strip_prefix(VERSION))
            .and_then(decode_hex)
        else {
            return false;
        };
        std::iter::once(&self.key)
            .chain(&self.fallbacks)
            .any(|key| fields.mac(key).verify_slice(&tag).is_ok())
    }

    /// Signs `row` as it will be inserted.
    pub(crate) fn seal(&self, row: &mut NewTaskExec) {
        row.signature = Some(self.sign(&SignedFields {
            task_name: &row.task_name,
            args: &row.args,
            queue: &row.queue,
            priority: row.priority,
            timeout_ms: row.timeout_ms,
            result_ttl: row.result_ttl,
            hook: row.hook.as_deref(),
        }));
    }

    /// Checks a claimed row before it runs: `Err` holds the message to record on it
    /// ([`SIGNATURE_MISMATCH`]).
    #[doc(hidden)]
    pub fn check(&self, exec: &ClaimedExec) -> Result<(), String> {
        let fields = SignedFields {
            task_name: &exec.task_name,
            args: &exec.args,
            queue: &exec.queue,
            priority: exec.priority,
            timeout_ms: exec.timeout_ms,
            result_ttl: exec.result_ttl,
            hook: exec.hook.as_deref(),
        };
        if self.verify(&fields, exec.signature.as_deref()) {
            Ok(())
        } else {
            Err(SIGNATURE_MISMATCH.to_string())
        }
    }
}

/// The fields of a row that its signature covers: what it asks a worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedFields<'a> {
    /// The task's registered name.
    pub task_name: &'a str,
    /// The arguments' JSON as stored, before any compression.
    pub args: &'a str,
    /// The queue.
    pub queue: &'a str,
    /// The priority.
    pub priority: i32,
    /// The call's time limit in milliseconds, if it set one.
    pub timeout_ms: Option<i64>,
    /// The call's result TTL in seconds, if it set one.
    pub result_ttl: Option<i64>,
    /// The call's hook, if it set one.
    pub hook: Option<&'a str>,
}

impl<'a> SignedFields<'a> {
    /// A call of `task_name` with `args` on `queue`: priority 0, no time limit, TTL or hook
    /// (set the public fields for others).
    pub fn new(task_name: &'a str, args: &'a str, queue: &'a str) -> SignedFields<'a> {
        SignedFields {
            task_name,
            args,
            queue,
            priority: 0,
            timeout_ms: None,
            result_ttl: None,
            hook: None,
        }
    }

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
        s.sign(&SignedFields::new("t", args, "default"))
    }

    fn verify(s: &Signing, args: &str, signature: Option<&str>) -> bool {
        s.verify(&SignedFields::new("t", args, "default"), signature)
    }

    #[test]
    fn a_signature_verifies_its_own_fields_only() {
        let s = Signing::new("k");
        let sig = sign(&s, "{}");
        assert!(sig.starts_with("v1:") && sig.len() == 3 + 64, "{sig}");
        assert!(verify(&s, "{}", Some(&sig)));
        assert!(!verify(&s, "{\"a\":1}", Some(&sig)));
        let call = SignedFields::new("t", "{}", "default");
        for changed in [
            SignedFields {
                queue: "other",
                ..call
            },
            SignedFields {
                priority: 1,
                ..call
            },
            SignedFields {
                timeout_ms: Some(1),
                ..call
            },
            SignedFields {
                result_ttl: Some(1),
                ..call
            },
            SignedFields {
                hook: Some("h"),
                ..call
            },
        ] {
            assert!(!s.verify(&changed, Some(&sig)), "{changed:?}");
        }
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
            s.sign(&SignedFields::new("ab", "c", "q")),
            s.sign(&SignedFields::new("a", "bc", "q"))
        );
        let call = SignedFields::new("a", "b", "q");
        assert_ne!(
            s.sign(&SignedFields {
                timeout_ms: Some(1),
                ..call
            }),
            s.sign(&SignedFields {
                result_ttl: Some(1),
                ..call
            })
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
