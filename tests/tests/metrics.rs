//! Prometheus metrics of a worker process (`worker --metrics-bind`), scraped over HTTP as
//! Prometheus does: executions by task, queue and outcome, run-time and start-delay
//! histograms, and the database's queue depths.

use std::process::Stdio;
use std::time::Duration;

use toosimple_core::State;
use toosimple_tests::tasks::{add, fail_with};
use toosimple_tests::{TestDb, backend_suite, wait_until};

const APP: &str = env!("CARGO_BIN_EXE_testapp");
const DEADLINE: Duration = Duration::from_secs(30);

backend_suite!(worker_metrics_count_and_time_executions_and_show_queue_depths);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the sample whose line starts with `name{labels}`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn worker_metrics_count_and_time_executions_and_show_queue_depths(db: &TestDb) {
    let port = free_port();
    let mut worker = db
        .app(APP)
        .args(["worker", "--tick", "200ms", "--label", "measured"])
        .args(["--metrics-bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let handles: Vec<_> = (0..3).map(|i| add::queue(i, 1).unwrap()).collect();
    let failed = fail_with::queue("no".into()).unwrap();
    wait_until("every execution ended", DEADLINE, || {
        handles
            .iter()
            .all(|h| h.state().unwrap() == State::Succeeded)
            && failed.state().unwrap() == State::Failed
    });
    // Left waiting: a task due in an hour.
    add::with()
        .on_queue("later")
        .after(Duration::from_secs(3600))
        .queue(1, 1)
        .unwrap();

    let url = format!("http://127.0.0.1:{port}/metrics");
    let response = ureq::get(&url).call().expect("scrape the worker");
    assert!(
        response
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/openmetrics-text"),
        "{:?}",
        response.header("content-type")
    );
    let text = response.into_string().unwrap();
    let _ = worker.kill();
    let _ = worker.wait();

    let series = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("no {s} in:\n{text}"));
    assert_eq!(
        series(r#"toosimple_executions_total{task="add",queue="default",outcome="succeeded"}"#),
        3.0
    );
    assert_eq!(
        series(r#"toosimple_executions_total{task="fail_with",queue="default",outcome="failed"}"#),
        1.0
    );
    assert_eq!(
        series(r#"toosimple_run_seconds_count{task="add",queue="default"}"#),
        3.0
    );
    assert!(series(r#"toosimple_run_seconds_sum{task="add",queue="default"}"#) >= 0.0);
    assert_eq!(
        series(r#"toosimple_run_seconds_bucket{le="+Inf",task="add",queue="default"}"#),
        3.0
    );
    assert_eq!(
        series(r#"toosimple_start_delay_seconds_count{task="fail_with",queue="default"}"#),
        1.0
    );
    assert_eq!(
        series(r#"toosimple_queue_depth{queue="default",state="succeeded"}"#),
        3.0
    );
    assert_eq!(
        series(r#"toosimple_queue_depth{queue="default",state="failed"}"#),
        1.0
    );
    assert_eq!(
        series(r#"toosimple_queue_depth{queue="later",state="sleeping"}"#),
        1.0
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}
