//! `worker --reload`: the worker restarts itself when its binary changes on disk (as after
//! `cargo build`), finishing its running tasks first.

use std::process::{Command, Stdio};
use std::time::Duration;

use toosimple_core::State;
use toosimple_tests::tasks::{add, sleepy};
use toosimple_tests::{TestDb, backend_suite, wait_until};

const APP: &str = env!("CARGO_BIN_EXE_testapp");
const DEADLINE: Duration = Duration::from_secs(30);

backend_suite!(a_rebuilt_binary_restarts_the_worker_after_its_running_task);

/// Puts a fresh copy of the test application at `path` the way a build does: written beside
/// it, then renamed over it (a running binary cannot be written in place).
fn build_into(path: &std::path::Path) {
    let fresh = path.with_extension("new");
    std::fs::copy(APP, &fresh).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

fn a_rebuilt_binary_restarts_the_worker_after_its_running_task(db: &TestDb) {
    db.create_side_effects();
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("app");
    build_into(&binary);
    let log = dir.path().join("worker.log");
    let mut worker = Command::new(&binary)
        .env("TOOSIMPLE_DATABASE_URL", &db.url)
        .env("TOOSIMPLE_LOG", "info")
        .env("NO_COLOR", "1")
        .args([
            "worker",
            "--reload",
            "--tick",
            "200ms",
            "--label",
            "dev-{pid}",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let label = format!("dev-{}", worker.id());
    let registered = |db: &TestDb| {
        db.store
            .worker_status(&label)
            .unwrap()
            .filter(|w| w.stopped.is_none())
    };
    wait_until("the worker registered", DEADLINE, || {
        registered(db).is_some()
    });
    let first_start = registered(db).unwrap().started;
    let long = sleepy::queue(1_500, 1).unwrap();
    wait_until("the task running", DEADLINE, || {
        long.state().unwrap() == State::Processing
    });

    build_into(&binary);
    // Same process, same label, registered anew.
    wait_until("the worker back after the reload", DEADLINE, || {
        registered(db).is_some_and(|w| w.started > first_start)
    });
    assert_eq!(
        long.state().unwrap(),
        State::Succeeded,
        "the running task finished before the restart"
    );
    assert_eq!(db.side_effects(), [1]);
    let after = add::queue(2, 3).unwrap();
    assert_eq!(
        after.wait(DEADLINE).unwrap(),
        5,
        "the new process runs tasks"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("the binary changed: finishing running tasks, then restarting"),
        "{text}"
    );
    assert_eq!(text.matches("worker started").count(), 2, "{text}");
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the same process goes on"
    );

    assert!(
        Command::new("kill")
            .args(["-INT", &worker.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = worker.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
}
