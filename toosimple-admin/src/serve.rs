//! The routes, the headers every response gets, and serving the router alone.

use std::net::SocketAddr;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};

use crate::config::{AdminConfig, ConfigError, SECRET_ENV, Secret};
use crate::pages::{execs, flows, overview, queues, schedules, tasks, workers};
use crate::state::AppState;
use crate::{actions, auth, metrics};

const CSS: &str = include_str!("../assets/admin.css");

/// One route of the admin: its path, its methods, and whether it answers without a session.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The path under the mount prefix, with `{param}`s as axum writes them.
    pub path: &'static str,
    /// The methods it answers (`GET` also answers `HEAD`).
    pub methods: &'static [&'static str],
    /// Whether it answers without a session (the login form and the stylesheet).
    pub public: bool,
}

/// Writes the route table and the router from one list, so that a route cannot be served
/// without being in [`ROUTES`], which the tests walk to check that each needs a session.
macro_rules! routes {
    ($($path:literal $(($public:ident))? => $($method:ident $handler:expr),+;)*) => {
        /// Every route of the admin, as [`router`] serves them.
        #[doc(hidden)]
        pub const ROUTES: &[Route] = &[$(Route {
            path: $path,
            methods: &[$(stringify!($method)),+],
            public: routes!(@public $($public)?),
        }),*];

        fn routes() -> Router<AppState> {
            Router::new()$(.route(
                $path,
                MethodRouter::new()$(.on(MethodFilter::$method, $handler))+,
            ))*
        }
    };
    (@public public) => { true };
    (@public) => { false };
}

routes! {
    "/" => GET overview::overview;
    "/login" (public) => GET auth::login_page, POST auth::login;
    "/logout" => POST auth::logout;
    "/execs" => GET execs::list;
    "/execs/{id}" => GET execs::detail;
    "/execs/requeue" => POST actions::requeue;
    "/execs/cancel" => POST actions::cancel;
    "/execs/delete" => POST actions::delete;
    "/execs/purge" => POST actions::purge;
    "/schedules" => GET schedules::schedules;
    "/schedules/run" => POST actions::run_schedule;
    "/schedules/stored" => POST actions::stored_schedule;
    "/flows" => GET flows::list;
    "/flows/{id}" => GET flows::detail;
    "/queues" => GET queues::queues, POST actions::queue;
    "/workers" => GET workers::workers;
    "/workers/stop" => POST actions::stop_worker;
    "/tasks" => GET tasks::tasks;
    "/metrics" => GET metrics::metrics;
    "/static/admin.css" (public) => GET css;
}

/// The admin as a router to mount under any prefix (`app.nest("/admin", router(config))`) or
/// serve alone. Links and the session cookie follow the prefix it is mounted under.
///
/// Without a [`secret`](AdminConfig::secret) in `config`, it reads [`SECRET_ENV`]; when that
/// is unset too it seals its cookies with a random key and logs a warning (sessions then end
/// with the process and are not shared by replicas), and when it is malformed it logs the
/// error and does the same: [`serve`] and [`AdminConfig::from_env`] refuse it instead.
///
/// Failed logins are slowed per client address when the app is served with connect info
/// (`app.into_make_service_with_connect_info::<SocketAddr>()`, as [`serve`] does), or by the
/// header of [`AdminConfig::client_ip_header`]; otherwise all clients share one turn.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
/// use toosimple_admin::{AdminConfig, Password, Secret, router};
///
/// let store = toosimple_core::Store::connect(&url)?;
/// let config = AdminConfig::new(store, Password::plain("correct horse battery staple"))
///     .secret(Secret::parse(&"2f".repeat(64))?); // in real life, from a secret store
/// let app: axum::Router = axum::Router::new().nest("/ops/tasks", router(config));
/// # Ok(())
/// # }
/// ```
pub fn router(config: AdminConfig) -> Router {
    let secret = match config.secret.clone() {
        Some(secret) => secret,
        None => secret_from_env().unwrap_or_else(|e| {
            tracing::error!("admin: {e}; sealing sessions with a random key instead");
            Secret::generate()
        }),
    };
    routes()
        .layer(axum::middleware::map_response(security_headers))
        .with_state(AppState::new(config, secret))
}

/// [`SECRET_ENV`], or a random secret with a warning when it is unset.
fn secret_from_env() -> Result<Secret, ConfigError> {
    Ok(Secret::from_env()?.unwrap_or_else(|| {
        tracing::warn!(
            "admin: {SECRET_ENV} is not set: sessions are sealed with a random key, so a restart \
             logs everyone out and several admin processes do not share logins; set it to 64 \
             random bytes (`openssl rand -base64 64`)"
        );
        Secret::generate()
    }))
}

async fn css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(X_FRAME_OPTIONS, "DENY");
    set(REFERRER_POLICY, "same-origin");
    set(CACHE_CONTROL, "no-store");
    response
}

/// Serves the admin alone at the root of `addr` until Ctrl-C or SIGTERM, with each
/// connection's address for the failed-login slowdown. A malformed [`SECRET_ENV`] (when
/// `config` has no secret) is refused as an `InvalidInput` error.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = toosimple_admin::AdminConfig::from_env(toosimple_core::default_store()?)?;
/// toosimple_admin::serve(config, "127.0.0.1:8001".parse()?).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve(mut config: AdminConfig, addr: SocketAddr) -> std::io::Result<()> {
    if config.secret.is_none() {
        let secret = secret_from_env()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        config = config.secret(secret);
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!("admin listening on http://{local}/");
    eprintln!("toosimple admin: http://{local}/");
    let app = router(config).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
