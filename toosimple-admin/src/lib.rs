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
//! let config = AdminConfig::from_env(store)?; // TOOSIMPLE_ADMIN_PASSWORD or ..._HASH
//! let app = axum::Router::new().nest("/admin", router(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
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
//! Every page but the login form needs a session. The password is
//! `TOOSIMPLE_ADMIN_PASSWORD`, or its argon2 hash in `TOOSIMPLE_ADMIN_PASSWORD_HASH`
//! ([`Password`]); it is compared in constant time, and each failed login waits (failed
//! logins take turns, so guesses are limited to about one per
//! [`failed_login_delay`](AdminConfig::failed_login_delay)).
//!
//! Sessions are kept in memory by the router (a restart logs everyone out; several admin
//! processes each need their own login): the cookie holds a random 256-bit token, `HttpOnly`,
//! `SameSite=Strict`, scoped to the mount prefix, and `Secure` when the request came over
//! https (directly, or as said by `X-Forwarded-Proto` / `Forwarded`). Each session has a
//! random CSRF token that every POST form carries; a missing or wrong one gets `403`. All
//! data is HTML-escaped by the templates (maud), and pages are sent with a
//! `Content-Security-Policy` that allows no script at all.

mod actions;
mod auth;
mod chart;
mod config;
mod layout;
mod pages;
mod serve;
mod session;
mod state;
mod throttle;

pub use crate::config::{
    AdminConfig, ConfigError, PASSWORD_ENV, PASSWORD_HASH_ENV, Password, SECRET_ENV, Secret,
};
#[doc(hidden)]
pub use crate::serve::{ROUTES, Route};
pub use crate::serve::{router, serve};
