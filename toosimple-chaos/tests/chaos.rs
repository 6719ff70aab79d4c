//! The short chaos run of CI, on each backend: every fault kind injected at least once, and
//! nothing lost, nothing recorded twice, every invariant held.

use std::process::Command;

const CHAOS: &str = env!("CARGO_BIN_EXE_toosimple-chaos");

/// Faults need root (a tmpfs, a network namespace, a PostgreSQL server run as `postgres`, a
/// MariaDB server run as `mysql`):
/// elsewhere the run is skipped, with the reason, except in CI where it must run.
fn can_run() -> bool {
    if toosimple_chaos::postgres::is_root() {
        return true;
    }
    let reason = "the chaos run needs root (tmpfs, network namespace, private PostgreSQL)";
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{reason} (CI=true: it must run)");
    }
    eprintln!("SKIPPED: {reason}");
    false
}

fn short_run(backend: &str) {
    if !can_run() {
        return;
    }
    let output = Command::new(CHAOS)
        .args(["--backend", backend, "--tasks", "4000", "--workers", "4"])
        .args(["--seconds", "20", "--seed", "20261201", "--json"])
        .output()
        .expect("run toosimple-chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {stdout}{stderr}"));
    assert_eq!(report["lost"], 0, "{report:#}");
    assert_eq!(report["double_recorded"], 0, "{report:#}");
    assert_eq!(report["violations"], serde_json::json!([]), "{report:#}");
    let faults = report["faults"].as_object().expect("faults by kind");
    let expected = match backend {
        "sqlite" => vec![
            "kill -9",
            "SIGTERM",
            "SIGINT",
            "SIGSTOP/SIGCONT",
            "write contention",
            "full disk",
            "slow tasks (time-outs)",
        ],
        "mysql" => vec![
            "kill -9",
            "SIGTERM",
            "SIGINT",
            "SIGSTOP/SIGCONT",
            "database server restart",
            "write contention",
            "slow tasks (time-outs)",
        ],
        _ => vec![
            "kill -9",
            "SIGTERM",
            "SIGINT",
            "SIGSTOP/SIGCONT",
            "database server restart",
            "network partition",
            "write contention",
            "slow tasks (time-outs)",
        ],
    };
    for kind in expected {
        assert!(
            faults.get(kind).and_then(|n| n.as_u64()).unwrap_or(0) > 0,
            "{kind} was never injected: {report:#}"
        );
    }
    assert_eq!(report["passed"], true, "{report:#}");
    assert!(output.status.success(), "{report:#}");
}

#[test]
fn short_chaos_run_on_sqlite_loses_and_repeats_nothing() {
    short_run("sqlite");
}

#[test]
fn short_chaos_run_on_postgres_loses_and_repeats_nothing() {
    short_run("postgres");
}

/// On a private MariaDB server, restarted by the run.
#[test]
fn short_chaos_run_on_mariadb_loses_and_repeats_nothing() {
    short_run("mysql");
}
