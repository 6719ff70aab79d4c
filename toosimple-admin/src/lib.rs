//! The toosimple admin: a web dashboard for task executions, schedules, workers and tasks.
//!
//! [`router`] returns an [`axum::Router`] that an application mounts under any prefix; the
//! `admin --bind 127.0.0.1:8001` subcommand of `toosimple_worker::main()` serves it alone
//! (through [`serve`]).
//!
//! ```no_run
//! use toosimple_admin::{AdminConfig, router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = toosimple_core::default_store()?;
//! // TOOSIMPLE_ADMIN_PASSWORD (or ..._HASH) and TOOSIMPLE_ADMIN_SECRET
//! let config = AdminConfig::from_env(store)?;
//! let app = axum::Router::new().nest("/admin", router(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! // With each connection's address, failed logins are slowed per client.
//! let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Under a prefix, the overview is the bare prefix (`/admin`): axum's `nest` does not send
//! `/admin/` to the nested router.
//!
//! # Pages
//! The overview (counts per state and queue, succeeded and failed per minute over the last
//! hour as server-rendered SVG, online workers), the executions list (filters by state, queue
//! and task, search by id, newest first, keyset paging so deep pages of large tables stay
//! fast), one execution (arguments, result, error, timestamps, worker, the `replaced_by` chain
//! both ways), schedules (cron in words, time zone, last and next due, overdue flag, last
//! execution, "run now"), workers (derived state, last tick, queues, exit code and log) and
//! the registered tasks. Times are shown in UTC. Pages are plain HTML and one stylesheet served by this crate: no
//! script, no CDN, and a layout that reads on a phone.
//!
//! # Actions
//! POST forms: requeue one or many executions, cancel pending ones, delete, purge finished
//! executions older than N days, run a schedule now. Each redirects back with a sentence
//! saying what it did ("Requeued 3 executions as #41, #42, #43").
//!
//! # Security
//! Every route but the login form and the stylesheet needs a session: the router is built from
//! one route table, which the tests walk. The password is `TOOSIMPLE_ADMIN_PASSWORD`, or its
//! argon2 hash in `TOOSIMPLE_ADMIN_PASSWORD_HASH` ([`Password`]); it is compared in constant
//! time.
//!
//! Sessions live in their cookie, sealed (AES-256-GCM) by axum-extra's private cookie jar under
//! a [`Secret`] from `TOOSIMPLE_ADMIN_SECRET` ([`AdminConfig::secret`]): the server keeps no
//! session, so a login holds across a restart and across every replica given the same secret.
//! Without one, each router makes up a key and logs a warning. A session expires
//! [`session_lifetime`](AdminConfig::session_lifetime) after its last request (the cookie is
//! sent again about once a minute to slide it). Logging out drops the cookie and refuses a copy
//! of it in this process until it would have expired; a new secret ends every session
//! everywhere.
//!
//! The cookies are `HttpOnly`, `SameSite=Strict`, scoped to the mount prefix (read through
//! axum's `NestedPath`), and `Secure` when the request came over https (directly, or as said by
//! `X-Forwarded-Proto` / `Forwarded`: a client lying about it only gets a cookie its plain-http
//! connection will not send back).
//!
//! Each session has a random CSRF token that every POST form carries, checked by one extractor
//! on every POST handler, the login form's included: the login page opens an anonymous session
//! for it. A missing or wrong token, or a body that is not a form, gets `403`. A `next=` or
//! `back=` target is followed only when it is a path under the prefix (no scheme, no `//`, no
//! backslash, no dot segment); anything else goes to the overview.
//!
//! Failed logins are slowed per client: each attempt waits for its client's turn before the
//! password is checked, and a failed one keeps the turn through
//! [`failed_login_delay`](AdminConfig::failed_login_delay), so one client gets about one guess
//! per delay however many it sends at once, and other clients are not held up. The client is
//! the connection's address ([`serve`] passes it; a router you serve yourself needs
//! `into_make_service_with_connect_info::<SocketAddr>()`, else all clients share one turn),
//! IPv6 by /64. `X-Forwarded-For` is not trusted unless named by
//! [`AdminConfig::client_ip_header`], which takes the header's last address, the one the proxy
//! in front appended.
//!
//! All data is HTML-escaped by the templates (maud), and pages are sent with a
//! `Content-Security-Policy` that allows no script at all.

#![warn(missing_docs)]

mod actions;
mod auth;
mod chart;
mod config;
mod layout;
mod metrics;
mod pages;
mod serve;
mod session;
mod state;
mod throttle;
pub mod views;

pub use crate::config::{
    AdminConfig, ConfigError, METRICS_TOKEN_ENV, PASSWORD_ENV, PASSWORD_HASH_ENV, Password,
    SECRET_ENV, Secret,
};
#[doc(hidden)]
pub use crate::serve::{ROUTES, Route};
pub use crate::serve::{router, serve};
