//! The routes, the headers every response gets, and serving the router alone.

use std::net::SocketAddr;

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::AdminConfig;
use crate::pages::{execs, overview, schedules, tasks, workers};
use crate::state::AppState;
use crate::{actions, auth};

const CSS: &str = include_str!("../assets/admin.css");

/// The admin as a router to mount under any prefix (`app.nest("/admin", router(config))`) or
/// serve alone. Links and the session cookie follow the prefix it is mounted under.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let url = format!("sqlite://{}", dir.path().join("t.sqlite3").display());
/// use toosimple_admin::{AdminConfig, Password, router};
///
/// let store = toosimple_core::Store::connect(&url)?;
/// let admin = router(AdminConfig::new(store, Password::plain("correct horse battery staple")));
/// let app: axum::Router = axum::Router::new().nest("/ops/tasks", admin);
/// # Ok(())
/// # }
/// ```
pub fn router(config: AdminConfig) -> Router {
    Router::new()
        .route("/", get(overview::overview))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/execs", get(execs::list))
        .route("/execs/{id}", get(execs::detail))
        .route("/execs/requeue", post(actions::requeue))
        .route("/execs/cancel", post(actions::cancel))
        .route("/execs/delete", post(actions::delete))
        .route("/execs/purge", post(actions::purge))
        .route("/schedules", get(schedules::schedules))
        .route("/schedules/run", post(actions::run_schedule))
        .route("/workers", get(workers::workers))
        .route("/tasks", get(tasks::tasks))
        .route("/static/admin.css", get(css))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(AppState::new(config))
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

/// Serves the admin alone at the root of `addr` until Ctrl-C or SIGTERM.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = toosimple_admin::AdminConfig::from_env(toosimple_core::default_store()?)?;
/// toosimple_admin::serve(config, "127.0.0.1:8001".parse()?).await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve(config: AdminConfig, addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!("admin listening on http://{local}/");
    eprintln!("toosimple admin: http://{local}/");
    axum::serve(listener, router(config))
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
