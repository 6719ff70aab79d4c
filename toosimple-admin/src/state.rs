//! What every handler shares: the configuration, the cookie key, the logged-out sessions,
//! the login turns, and running database work off the async threads.

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::Key;
use toosimple_core::Store;

use crate::config::{AdminConfig, Secret};
use crate::session::Sessions;
use crate::throttle::Throttle;

/// The router's state: cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState(pub Arc<Shared>);

pub(crate) struct Shared {
    pub config: AdminConfig,
    /// Seals the cookies.
    pub key: Key,
    pub sessions: Sessions,
    pub throttle: Throttle,
}

impl AppState {
    /// The state of a router on `config`, sealing its cookies with `secret`.
    pub(crate) fn new(config: AdminConfig, secret: Secret) -> AppState {
        AppState(Arc::new(Shared {
            key: secret.0,
            sessions: Sessions::new(config.session_lifetime),
            throttle: Throttle::default(),
            config,
        }))
    }

    /// Runs blocking database work `f` on tokio's blocking pool.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let store = self.0.config.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| AppError::Internal(format!("the database task stopped: {e}")))?
    }
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.0.key.clone()
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// Something asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request the admin cannot act on.
    #[error("{0}")]
    BadRequest(String),
    /// A toosimple operation failed.
    #[error(transparent)]
    Core(#[from] toosimple_core::Error),
    /// One of the admin's own queries failed.
    #[error("database error while {action}: {source}")]
    Query {
        action: &'static str,
        source: diesel::result::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub(crate) fn query(action: &'static str) -> impl FnOnce(diesel::result::Error) -> AppError {
        move |source| AppError::Query { action, source }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::NotFound(_) | AppError::Core(toosimple_core::Error::ExecNotFound { .. }) => {
                StatusCode::NOT_FOUND
            }
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            AppError::Core(e) => e.report(),
            other => other.to_string(),
        };
        if status.is_server_error() {
            tracing::error!("admin: {message}");
        }
        (status, error_page(status, &message)).into_response()
    }
}

/// A bare page for errors (no navigation: it may be shown before the prefix is known).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Html<String> {
    let markup = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (status.as_u16()) " · toosimple admin" }
            }
            body {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p class="error" { (message) }
            }
        }
    };
    Html(markup.into_string())
}
