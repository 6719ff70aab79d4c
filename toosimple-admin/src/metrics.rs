//! `GET /metrics`: the database's view for Prometheus, in its text format (prometheus-client):
//! `toosimple_queue_depth{queue, state}` and `toosimple_workers{state}`, read at each scrape.
//! What each worker process ran (counters by task, queue and outcome, run-time and
//! start-delay histograms) is served by the worker itself (`worker --metrics-bind`).
//!
//! A scraper authenticates with `Authorization: Bearer <TOOSIMPLE_METRICS_TOKEN>`
//! ([`AdminConfig::metrics_token`](crate::AdminConfig::metrics_token)); a logged-in session
//! works too, and anything else is sent to the login page as for every other page.

use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;
use toosimple_core::{TaskExec, WorkerStatus};

use crate::auth::Authed;
use crate::state::{AppError, AppState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Depth {
    queue: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Workers {
    state: String,
}

/// A scraper with the metrics token, or a logged-in user.
pub(crate) struct Scraper;

impl FromRequestParts<AppState> for Scraper {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(token) = &state.0.config.metrics_token {
            let sent = parts
                .headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if bool::from(sent.as_bytes().ct_eq(token.as_bytes())) && !token.is_empty() {
                return Ok(Scraper);
            }
        }
        Authed::from_request_parts(parts, state)
            .await
            .map(|_| Scraper)
    }
}

pub(crate) async fn metrics(
    _: Scraper,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let (counts, workers) = state
        .db(|store| Ok((TaskExec::counts_in(store)?, WorkerStatus::list_in(store)?)))
        .await?;
    let mut registry = Registry::default();
    let depth = Family::<Depth, Gauge>::default();
    registry.register(
        "toosimple_queue_depth",
        "Executions in the database per queue and state",
        depth.clone(),
    );
    for count in counts {
        depth
            .get_or_create(&Depth {
                queue: count.queue,
                state: count.state.as_str().to_string(),
            })
            .set(count.count);
    }
    let by_state = Family::<Workers, Gauge>::default();
    registry.register(
        "toosimple_workers",
        "Workers recorded in the database, by state",
        by_state.clone(),
    );
    let now = Utc::now();
    for w in &workers {
        by_state
            .get_or_create(&Workers {
                state: w.state_at(now).as_str().to_string(),
            })
            .inc();
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| AppError::Internal(format!("cannot encode the metrics: {e}")))?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
