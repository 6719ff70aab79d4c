//! The benchmark runs to its end on both backends with a small number of tasks, every task
//! done (it asserts that itself), and prints the figures it promises. A smoke test: no figure
//! is judged here, speed is read from release runs.

use std::process::Command;

fn run(backend: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_toosimple-bench"))
        .args([
            "--backend",
            backend,
            "--tasks",
            "300",
            "--latency-samples",
            "3",
            "--backlog",
            "1000",
            "--json",
        ])
        .output()
        .expect("run the benchmark");
    assert!(
        output.status.success(),
        "the benchmark failed on {backend}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}"))
}

fn check(figures: &serde_json::Value, backend: &str) {
    assert_eq!(figures["backend"], backend);
    assert_eq!(figures["tasks"], 300);
    assert_eq!(figures["backlog"], 1000);
    for key in [
        "enqueue_per_s",
        "enqueue_baseline_per_s",
        "enqueue_bulk_per_s",
        "drain_per_s",
        "drain_baseline_batched_per_s",
        "drain_baseline_per_row_per_s",
        "drain_backlog_per_s",
        "latency_p50_ms",
        "latency_p99_ms",
        "idle_cpu_percent",
        "idle_rss_mb",
    ] {
        let value = figures[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {figures}"));
        assert!(value >= 0.0, "{key} = {value}");
    }
    assert!(figures["drain_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn runs_to_the_end_on_sqlite() {
    check(&run("sqlite"), "sqlite");
}

#[test]
fn runs_to_the_end_on_postgres() {
    check(&run("postgres"), "postgres");
}
