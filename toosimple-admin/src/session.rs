//! The in-memory session store.
//!
//! A session is a random 256-bit token in a cookie. The server keeps, per session, the
//! SHA-256 of its token (so the map lookup's timing says nothing useful about a valid token),
//! its CSRF token, whether it has logged in, its expiry, and the message the next page shows.
//! Sessions live in this process only: restarting the admin logs everyone out, and several
//! admin processes behind one load balancer each need their own login.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie holding the session token.
pub(crate) const COOKIE: &str = "toosimple_admin_session";

/// Most sessions kept at once; the oldest are dropped beyond it (anonymous login pages
/// cannot fill the memory).
const MAX_SESSIONS: usize = 10_000;

/// What an action reports to the page it redirects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    /// Whether the action failed.
    pub error: bool,
    /// The sentence, e.g. "requeued 3 executions as".
    pub text: String,
    /// Executions to link after the text (`#41, #42`).
    pub links: Vec<i64>,
}

impl Flash {
    pub(crate) fn ok(text: impl Into<String>) -> Flash {
        Flash {
            error: false,
            text: text.into(),
            links: Vec::new(),
        }
    }

    pub(crate) fn error(text: impl Into<String>) -> Flash {
        Flash {
            error: true,
            text: text.into(),
            links: Vec::new(),
        }
    }

    pub(crate) fn with_links(mut self, links: Vec<i64>) -> Flash {
        self.links = links;
        self
    }
}

struct Entry {
    csrf: String,
    logged_in: bool,
    expires: Instant,
    created: Instant,
    flash: Option<Flash>,
}

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The key of the session in the store (the token's digest).
    pub key: [u8; 32],
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// Whether it has logged in.
    pub logged_in: bool,
}

impl Session {
    /// Whether `submitted` is this session's CSRF token, compared in constant time.
    pub(crate) fn csrf_matches(&self, submitted: &str) -> bool {
        let a = Sha256::digest(submitted.as_bytes());
        let b = Sha256::digest(self.csrf.as_bytes());
        a.ct_eq(&b).into()
    }
}

/// Every live session of this process.
pub(crate) struct Sessions {
    lifetime: Duration,
    map: Mutex<HashMap<[u8; 32], Entry>>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub(crate) fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a session; returns its cookie token and its view.
    pub(crate) fn create(&self, logged_in: bool) -> (String, Session) {
        let token = random_token();
        let key = key_of(&token);
        let csrf = random_token();
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, e| e.expires > now);
        if map.len() >= MAX_SESSIONS {
            // Drop anonymous sessions first, then the oldest.
            map.retain(|_, e| e.logged_in);
            while map.len() >= MAX_SESSIONS {
                let Some(oldest) = map.iter().min_by_key(|(_, e)| e.created).map(|(k, _)| *k)
                else {
                    break;
                };
                map.remove(&oldest);
            }
        }
        map.insert(
            key,
            Entry {
                csrf: csrf.clone(),
                logged_in,
                expires: now + self.lifetime,
                created: now,
                flash: None,
            },
        );
        (
            token,
            Session {
                key,
                csrf,
                logged_in,
            },
        )
    }

    /// The live session of cookie token `token`, its lifetime renewed.
    pub(crate) fn find(&self, token: &str) -> Option<Session> {
        let key = key_of(token);
        let now = Instant::now();
        let mut map = self.lock();
        let entry = map.get_mut(&key)?;
        if entry.expires <= now {
            map.remove(&key);
            return None;
        }
        entry.expires = now + self.lifetime;
        Some(Session {
            key,
            csrf: entry.csrf.clone(),
            logged_in: entry.logged_in,
        })
    }

    /// Ends a session.
    pub(crate) fn remove(&self, key: &[u8; 32]) {
        self.lock().remove(key);
    }

    /// Leaves a message for the session's next page.
    pub(crate) fn set_flash(&self, key: &[u8; 32], flash: Flash) {
        if let Some(entry) = self.lock().get_mut(key) {
            entry.flash = Some(flash);
        }
    }

    /// Takes the session's pending message.
    pub(crate) fn take_flash(&self, key: &[u8; 32]) -> Option<Flash> {
        self.lock().get_mut(key).and_then(|e| e.flash.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_token_and_expire() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (token, session) = sessions.create(true);
        assert_eq!(sessions.find(&token).unwrap().csrf, session.csrf);
        assert!(sessions.find("nope").is_none());
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches(""));
        sessions.remove(&session.key);
        assert!(sessions.find(&token).is_none());

        let expired = Sessions::new(Duration::ZERO);
        let (token, _) = expired.create(true);
        assert!(expired.find(&token).is_none());
    }
}
