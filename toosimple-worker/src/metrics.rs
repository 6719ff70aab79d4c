//! Prometheus metrics of a worker process (`worker --metrics-bind ADDR`), through
//! prometheus-client: what this process ran, and the database's queue depths at each scrape.
//!
//! - `toosimple_executions_total{task, queue, outcome}`: executions that ended here
//!   (`succeeded`, `failed`, `invalid`, `interrupted`);
//! - `toosimple_run_seconds{task, queue}`: a histogram of their run times;
//! - `toosimple_start_delay_seconds{task, queue}`: a histogram of the time from when each
//!   was due (its enqueue, for one queued to run now) to its start here;
//! - `toosimple_queue_depth{queue, state}`: executions per queue and state in the database,
//!   read when scraped.
//!
//! Without `--metrics-bind` the worker keeps no metrics, and its per-task path only checks
//! that they are off.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use toosimple_core::store::Outcome;
use toosimple_core::{Error, Store, TaskExec};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Ended {
    task: String,
    queue: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Task {
    task: String,
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Depth {
    queue: String,
    state: String,
}

fn run_buckets() -> Histogram {
    // 1 ms to about 4.4 minutes.
    Histogram::new(exponential_buckets(0.001, 4.0, 10))
}

fn delay_buckets() -> Histogram {
    // 1 ms to about 4.4 minutes.
    Histogram::new(exponential_buckets(0.001, 4.0, 10))
}

/// The metrics of one worker process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    executions: Family<Ended, Counter>,
    run_seconds: Family<Task, Histogram, fn() -> Histogram>,
    start_delay_seconds: Family<Task, Histogram, fn() -> Histogram>,
    queue_depth: Family<Depth, Gauge>,
    /// Scrapes take turns: each refreshes the queue depths, then encodes.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics, registered under their names.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let executions = Family::<Ended, Counter>::default();
        let run_seconds: Family<Task, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(run_buckets);
        let start_delay_seconds: Family<Task, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(delay_buckets);
        let queue_depth = Family::<Depth, Gauge>::default();
        registry.register(
            "toosimple_executions",
            "Executions that ended in this worker process, by task, queue and outcome",
            executions.clone(),
        );
        registry.register(
            "toosimple_run_seconds",
            "Run time of the executions that ended in this worker process",
            run_seconds.clone(),
        );
        registry.register(
            "toosimple_start_delay_seconds",
            "Time from an execution's due time (its enqueue, for one queued to run now) to its start in this worker process",
            start_delay_seconds.clone(),
        );
        registry.register(
            "toosimple_queue_depth",
            "Executions in the database per queue and state, when scraped",
            queue_depth.clone(),
        );
        Metrics {
            registry,
            executions,
            run_seconds,
            start_delay_seconds,
            queue_depth,
            scrape: Mutex::new(()),
        }
    }

    /// Notes that an execution of `task` on `queue` started `delay` seconds after its due time.
    pub(crate) fn started(&self, task: &str, queue: &str, delay: f64) {
        self.start_delay_seconds
            .get_or_create(&Task {
                task: task.to_string(),
                queue: queue.to_string(),
            })
            .observe(delay.max(0.0));
    }

    /// Notes that an execution of `task` on `queue` ended with `outcome` after `run` seconds.
    pub(crate) fn ended(&self, task: &str, queue: &str, outcome: &Outcome, run: f64) {
        let outcome = match outcome {
            Outcome::Succeeded(_) => "succeeded",
            Outcome::Failed(_) => "failed",
            Outcome::Invalid(_) => "invalid",
            Outcome::Interrupted(_) => "interrupted",
            Outcome::Cancelled(_) => "cancelled",
        };
        self.executions
            .get_or_create(&Ended {
                task: task.to_string(),
                queue: queue.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.run_seconds
            .get_or_create(&Task {
                task: task.to_string(),
                queue: queue.to_string(),
            })
            .observe(run);
    }

    /// The metrics in Prometheus's text format, with the queue depths read from `store` now.
    pub fn encode(&self, store: &Store) -> Result<String, Error> {
        let _turn = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        let counts = TaskExec::counts_in(store)?;
        self.queue_depth.clear();
        for count in counts {
            self.queue_depth
                .get_or_create(&Depth {
                    queue: count.queue,
                    state: count.state.as_str().to_string(),
                })
                .set(count.count);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|e| Error::Runtime(format!("cannot encode the metrics: {e}")))?;
        Ok(text)
    }
}

/// Serves `metrics` at `GET /metrics` on `listener` until the returned task is aborted.
pub(crate) fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    store: Store,
) -> tokio::task::JoinHandle<()> {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (metrics, store) = (metrics.clone(), store.clone());
            async move {
                match tokio::task::spawn_blocking(move || metrics.encode(&store)).await {
                    Ok(Ok(text)) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
                    Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e.report()).into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the metrics endpoint stopped: {e}");
        }
    })
}
