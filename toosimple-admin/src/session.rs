//! Sessions in private cookies.
//!
//! A session is a small JSON value sealed (AES-256-GCM, the cookie's name bound in) by
//! axum-extra's [`PrivateCookieJar`] under the admin's secret: the server keeps nothing, so a
//! session holds across a restart and across every replica given the same secret. It carries a
//! random id, its CSRF token, whether it has logged in, when it was issued, and when it was
//! last renewed (it expires a session lifetime after that).
//!
//! The login page opens an anonymous session too: its CSRF token is what the login form must
//! send back, so that a login form posted from another site is refused like any other form.
//!
//! What an action reports to the next page travels in a second private cookie, the flash.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie holding the session.
pub(crate) const COOKIE: &str = "toosimple_admin_session";
/// The cookie holding the message for the next page.
pub(crate) const FLASH_COOKIE: &str = "toosimple_admin_flash";

/// Longest flash text kept: a cookie over 4 KB is dropped by browsers.
const FLASH_TEXT_MAX: usize = 400;
/// Most execution links a flash keeps; the rest are counted.
const FLASH_LINKS_MAX: usize = 60;

/// Logouts remembered at once; past it the oldest are forgotten (they still expire).
const MAX_REVOKED: usize = 100_000;

/// What an action reports to the page it redirects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Flash {
    /// Whether the action failed.
    pub error: bool,
    /// The sentence, e.g. "requeued 3 executions as".
    pub text: String,
    /// Executions to link after the text (`#41, #42`).
    pub links: Vec<i64>,
    /// Executions left out of `links` to keep the cookie small.
    #[serde(default)]
    pub more: usize,
}

impl Flash {
    pub(crate) fn ok(text: impl Into<String>) -> Flash {
        Flash {
            error: false,
            text: text.into(),
            links: Vec::new(),
            more: 0,
        }
    }

    pub(crate) fn error(text: impl Into<String>) -> Flash {
        Flash {
            error: true,
            ..Flash::ok(text)
        }
    }

    pub(crate) fn with_links(mut self, links: Vec<i64>) -> Flash {
        self.links = links;
        self
    }

    /// The flash cut to what fits in a cookie.
    fn bounded(mut self) -> Flash {
        if let Some((cut, _)) = self.text.char_indices().nth(FLASH_TEXT_MAX) {
            self.text.truncate(cut);
            self.text.push('…');
        }
        if self.links.len() > FLASH_LINKS_MAX {
            self.more += self.links.len() - FLASH_LINKS_MAX;
            self.links.truncate(FLASH_LINKS_MAX);
        }
        self
    }
}

/// A session, as sealed in its cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// Random; names the session in the logout list.
    pub id: String,
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// Whether it has logged in.
    pub auth: bool,
    /// When it was issued, in seconds since the Unix epoch.
    pub iat: u64,
    /// When it was last renewed; it expires a session lifetime later.
    pub seen: u64,
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far ahead of this clock another replica's may be.
const CLOCK_SKEW: u64 = 60;

impl Session {
    /// A new session with fresh id and CSRF token.
    pub(crate) fn new(auth: bool) -> Session {
        let now = now();
        Session {
            id: random_hex(16),
            csrf: random_hex(32),
            auth,
            iat: now,
            seen: now,
        }
    }

    /// Whether `submitted` is this session's CSRF token, compared in constant time.
    pub(crate) fn csrf_matches(&self, submitted: &str) -> bool {
        let a = Sha256::digest(submitted.as_bytes());
        let b = Sha256::digest(self.csrf.as_bytes());
        a.ct_eq(&b).into()
    }

    /// Whether the session is still good at `now` for a lifetime of `lifetime`.
    fn live(&self, now: u64, lifetime: Duration) -> bool {
        self.seen.saturating_add(lifetime.as_secs()) > now
            && self.seen <= now + CLOCK_SKEW
            && self.iat <= self.seen
    }

    /// Whether the cookie is old enough to be sent again with a later `seen`: a sliding
    /// expiry without a `Set-Cookie` on every page.
    pub(crate) fn needs_renewal(&self, now: u64, lifetime: Duration) -> bool {
        let every = (lifetime.as_secs() / 4).clamp(1, 60);
        now.saturating_sub(self.seen) >= every
    }
}

/// Where the admin's cookies apply, and whether they need https.
#[derive(Debug, Clone)]
pub(crate) struct CookieScope {
    /// The mount prefix, or `/` at the root.
    pub path: String,
    /// Whether the request came over https.
    pub secure: bool,
}

impl CookieScope {
    fn cookie(&self, name: &'static str, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .path(self.path.clone())
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure)
            .build()
    }

    fn removal(&self, name: &'static str) -> Cookie<'static> {
        Cookie::build(name).path(self.path.clone()).build()
    }

    /// `jar` with `session` sealed in it.
    pub(crate) fn put_session(&self, jar: PrivateCookieJar, session: &Session) -> PrivateCookieJar {
        let value = serde_json::to_string(session).expect("a session serializes");
        jar.add(self.cookie(COOKIE, value))
    }

    /// `jar` telling the browser to drop its session.
    pub(crate) fn drop_session(&self, jar: PrivateCookieJar) -> PrivateCookieJar {
        jar.remove(self.removal(COOKIE))
    }

    /// `jar` with `flash` for the next page.
    pub(crate) fn put_flash(&self, jar: PrivateCookieJar, flash: Flash) -> PrivateCookieJar {
        let value = serde_json::to_string(&flash.bounded()).expect("a flash serializes");
        jar.add(self.cookie(FLASH_COOKIE, value))
    }

    /// The flash the jar holds, and the jar telling the browser to drop it.
    pub(crate) fn take_flash(&self, jar: PrivateCookieJar) -> (PrivateCookieJar, Option<Flash>) {
        match jar.get(FLASH_COOKIE) {
            Some(cookie) => {
                let flash = serde_json::from_str(cookie.value()).ok();
                (jar.remove(self.removal(FLASH_COOKIE)), flash)
            }
            None => (jar, None),
        }
    }
}

/// The sessions logged out in this process, until they would have expired anyway.
///
/// A sealed cookie cannot be recalled: logout clears it from the browser, and this list
/// refuses a copy of it here. Other replicas do not see the list; changing the secret ends
/// every session everywhere.
pub(crate) struct Sessions {
    lifetime: Duration,
    /// Session id → when its cookie would have expired.
    map: Mutex<HashMap<String, u64>>,
}

impl Sessions {
    pub(crate) fn new(lifetime: Duration) -> Sessions {
        Sessions {
            lifetime,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers that `session` logged out.
    pub(crate) fn revoke(&self, session: &Session) {
        let now = now();
        let mut map = self.lock();
        map.retain(|_, expires| *expires > now);
        while map.len() >= MAX_REVOKED {
            let Some(first) = map
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            map.remove(&first);
        }
        map.insert(
            session.id.clone(),
            session.seen.saturating_add(self.lifetime.as_secs()) + CLOCK_SKEW,
        );
    }

    /// The live, not logged-out session in `jar`.
    pub(crate) fn find(&self, jar: &PrivateCookieJar) -> Option<Session> {
        let session: Session = serde_json::from_str(jar.get(COOKIE)?.value()).ok()?;
        if !session.live(now(), self.lifetime) || self.lock().contains_key(&session.id) {
            return None;
        }
        Some(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_a_lifetime_after_they_were_last_seen() {
        let hour = Duration::from_secs(3600);
        let mut session = Session::new(true);
        let now = session.seen;
        assert!(session.live(now, hour));
        assert!(session.live(now + 3599, hour));
        assert!(!session.live(now + 3600, hour));
        assert!(!session.live(now, Duration::ZERO));
        session.seen = now + 3 * CLOCK_SKEW;
        assert!(!session.live(now, hour), "from the future");
        assert!(!session.needs_renewal(now + 3 * CLOCK_SKEW + 59, hour));
        assert!(session.needs_renewal(now + 3 * CLOCK_SKEW + 60, hour));
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        let session = Session::new(false);
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&session.csrf[..10]));
        assert_ne!(session.csrf, Session::new(false).csrf);
    }

    #[test]
    fn flashes_are_cut_to_fit_a_cookie() {
        let flash = Flash::ok("x".repeat(1000))
            .with_links((0..100).collect())
            .bounded();
        assert_eq!(flash.text.chars().count(), FLASH_TEXT_MAX + 1);
        assert_eq!(flash.links.len(), FLASH_LINKS_MAX);
        assert_eq!(flash.more, 100 - FLASH_LINKS_MAX);
    }
}
