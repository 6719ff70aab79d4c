//! Failed logins are slowed per client.
//!
//! Each client has a turn: a login attempt waits for it before the password is checked, and a
//! failed one keeps it through the delay. So one client gets at most one guess per delay, even
//! with many attempts in flight (a correct guess sent behind wrong ones waits for them), while
//! other clients log in at full speed.
//!
//! A client is its IP address (IPv6 by /64, the block one host is usually given), taken from
//! the connection, or from the header named by
//! [`AdminConfig::client_ip_header`](crate::AdminConfig::client_ip_header) behind a proxy.
//! Without either (a router served without connect info), all clients share one turn.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use tokio::sync::OwnedMutexGuard;

use crate::state::AppState;

/// Who is logging in, as far as the slowdown can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("an unknown address"),
        }
    }
}

/// The address as one client: IPv4 as it is, IPv6 cut to its /64.
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The last address of a list header (`X-Forwarded-For: client, proxy1`): the one appended
/// by the proxy in front of us.
fn last_address(value: &str) -> Option<IpAddr> {
    let last = value.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let from_header = state.0.config.client_ip_header.as_ref().and_then(|name| {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .next_back()
                .and_then(last_address)
        });
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
        };
        Ok(Client(from_header.or_else(peer).map(client_of)))
    }
}

/// The turns of the clients now logging in.
#[derive(Default)]
pub(crate) struct Throttle {
    turns: Mutex<HashMap<Client, Arc<tokio::sync::Mutex<()>>>>,
}

impl Throttle {
    /// Waits for `client`'s turn; hold it through the failure delay.
    pub(crate) async fn turn(&self, client: Client) -> OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            // A turn nobody holds or waits for is only the map's: forget it, so that
            // addresses passing by do not pile up.
            turns.retain(|_, t| Arc::strong_count(t) > 1);
            turns.entry(client).or_default().clone()
        };
        turn.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            last_address("198.51.100.1, 192.0.2.7"),
            Some(ip("192.0.2.7"))
        );
        assert_eq!(last_address("192.0.2.7:4711"), Some(ip("192.0.2.7")));
        assert_eq!(last_address("unknown"), None);
    }

    #[tokio::test]
    async fn turns_are_per_client_and_forgotten_when_free() {
        let throttle = Throttle::default();
        let a = Client(Some("192.0.2.1".parse().unwrap()));
        let b = Client(Some("192.0.2.2".parse().unwrap()));
        let held = throttle.turn(a).await;
        // Another client's turn is free while a's is held.
        drop(throttle.turn(b).await);
        drop(held);
        drop(throttle.turn(a).await);
        let _c = throttle.turn(Client(None)).await;
        assert_eq!(throttle.turns.lock().unwrap().len(), 1);
    }
}
