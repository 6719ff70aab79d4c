//! Stopping and pinging workers from elsewhere (django-queue-manager's shell `stop`, `ping`
//! and `handled`, django-pq's `pqworker --terminate`): `app stop`, `app ping`, and the count
//! of executions each worker handled since it started, in `status`.
//!
//! A request is written on the worker's status row; the worker reads it back with its
//! heartbeat and stops as after the matching signal, with the same exit code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use toosimple_core::{State, StopRequest, TaskExec, TaskExecFilter, WorkerStatus};
use toosimple_tests::tasks::{add, announced_sleep, sleepy};
use toosimple_tests::{TestDb, backend_suite, wait_for_exit, wait_until};
use toosimple_worker::{Exit, Worker};

const APP: &str = env!("CARGO_BIN_EXE_testapp");
const DEADLINE: Duration = Duration::from_secs(30);

backend_suite!(
    stop_lets_the_running_task_finish_and_the_worker_exits_0,
    stop_terminate_interrupts_the_running_task_and_the_worker_exits_77,
    stop_all_stops_every_running_worker,
    stop_of_an_unknown_label_names_the_running_workers_and_writes_nothing,
    ping_answers_for_a_running_worker_only,
    status_shows_what_each_worker_runs_and_handled_since_it_started,
    an_in_process_worker_obeys_a_stop_request,
    stop_requests_only_escalate_and_a_restart_clears_them,
);

/// A `testapp worker` process logging to a file; killed if the test ends first.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    fn spawn(db: &TestDb, dir: &Path, label: &str) -> WorkerProcess {
        let log = dir.join(format!("{label}.log"));
        let child = db
            .app(APP)
            .args([
                "worker",
                "--label",
                label,
                "--tick",
                "200ms",
                "--concurrency",
                "2",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start a worker");
        let worker = WorkerProcess { child, log };
        wait_until(&format!("{label} registered"), DEADLINE, || {
            db.store
                .worker_status(label)
                .unwrap()
                .is_some_and(|w| w.stopped.is_none())
        });
        worker
    }

    /// Waits for the process to exit by itself; its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        let log = self.log.clone();
        wait_for_exit(&mut self.child, DEADLINE, "the worker", || {
            std::fs::read_to_string(&log).unwrap_or_default()
        })
        .code()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `testapp ARGS` on the test's database.
fn app(db: &TestDb, args: &[&str]) -> Output {
    db.app(APP).args(args).output().expect("run testapp")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn status(db: &TestDb, label: &str) -> WorkerStatus {
    db.store
        .worker_status(label)
        .unwrap()
        .expect("a status row")
}

fn stop_lets_the_running_task_finish_and_the_worker_exits_0(db: &TestDb) {
    db.create_side_effects();
    let dir = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::spawn(db, dir.path(), "graceful");
    let task = sleepy::queue(1_500, 1).unwrap();
    wait_until("the task running", DEADLINE, || {
        task.state().unwrap() == State::Processing
    });

    let out = app(db, &["stop", "graceful", "--wait"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("asked graceful to stop: it finishes its running tasks"),
        "{stdout}"
    );
    assert!(
        stdout.contains("graceful stopped at") && stdout.contains("(exit 0)"),
        "{stdout}"
    );
    assert_eq!(worker.exit_code(), Some(0), "{}", worker.log());
    assert_eq!(
        task.state().unwrap(),
        State::Succeeded,
        "the task ran to its end"
    );
    assert_eq!(db.side_effects(), [1]);
    let row = status(db, "graceful");
    assert_eq!(row.exit_code, Some(0));
    assert_eq!(row.stop_request, Some(StopRequest::Graceful));
    assert!(worker.log().contains("stop requested"), "{}", worker.log());
}

fn stop_terminate_interrupts_the_running_task_and_the_worker_exits_77(db: &TestDb) {
    db.create_side_effects();
    let dir = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::spawn(db, dir.path(), "doomed");
    let task = announced_sleep::queue(60_000, 1).unwrap();
    wait_until("the task started", DEADLINE, || db.side_effects() == [1]);

    let out = app(db, &["stop", "doomed", "--terminate", "--wait"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("asked doomed to terminate"), "{stdout}");
    assert!(
        stdout.contains("doomed terminated at") && stdout.contains("(exit 77)"),
        "{stdout}"
    );
    assert_eq!(worker.exit_code(), Some(77), "{}", worker.log());
    let exec = task.exec().unwrap();
    assert_eq!(exec.state, State::Interrupted);
    let replacement = exec.replaced_by.expect("a replacement");
    let state = TaskExec::get(replacement).unwrap().state;
    assert!(
        matches!(state, State::Sleeping | State::Queued),
        "waits for the next worker: {state}"
    );
    wait_until("the cancelled task's drop", DEADLINE, || {
        db.side_effects() == [1, -1]
    });
}

fn stop_all_stops_every_running_worker(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut first = WorkerProcess::spawn(db, dir.path(), "first");
    let mut second = WorkerProcess::spawn(db, dir.path(), "second");

    let out = app(db, &["stop", "--all", "--wait"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for label in ["first", "second"] {
        assert!(
            stdout.contains(&format!("{label} stopped at")),
            "{label}: {stdout}"
        );
    }
    assert_eq!(first.exit_code(), Some(0));
    assert_eq!(second.exit_code(), Some(0));

    let out = app(db, &["stop", "--all"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("no worker is running on "),
        "{}",
        text(&out.stdout)
    );
    let out = app(db, &["stop", "first"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("first has already stopped: stopped at"),
        "{}",
        text(&out.stdout)
    );
}

fn stop_of_an_unknown_label_names_the_running_workers_and_writes_nothing(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let _worker = WorkerProcess::spawn(db, dir.path(), "alive");

    let out = app(db, &["stop", "alive", "nobody"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no worker labelled `nobody`") && stderr.contains("Known: alive"),
        "{stderr}"
    );
    assert_eq!(
        status(db, "alive").stop_request,
        None,
        "nothing was written"
    );

    let out = app(db, &["stop"]);
    assert_eq!(out.status.code(), Some(2), "a label or --all is required");
    let out = app(db, &["stop", "alive", "--all"]);
    assert_eq!(out.status.code(), Some(2), "not both");
}

fn ping_answers_for_a_running_worker_only(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::spawn(db, dir.path(), "pinged");

    let out = app(db, &["ping", "pinged"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("pong from pinged in "), "{stdout}");
    assert!(stdout.contains("online, 0 task(s) running"), "{stdout}");

    // Paused: its heartbeat stops, and the ping gets no answer.
    let pid = worker.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = app(db, &["ping", "pinged", "--timeout", "600ms"]);
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no answer from pinged within 600ms"),
        "{stderr}"
    );

    assert!(app(db, &["stop", "pinged", "--wait"]).status.success());
    assert_eq!(worker.exit_code(), Some(0));
    let out = app(db, &["ping", "pinged"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pinged is not running: it stopped at"),
        "{stderr}"
    );
    let out = app(db, &["ping", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no worker labelled `ghost`"));
}

fn status_shows_what_each_worker_runs_and_handled_since_it_started(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut worker = WorkerProcess::spawn(db, dir.path(), "counter");
    for i in 0..5 {
        add::queue(i, 1).unwrap();
    }
    // Written with each heartbeat.
    wait_until("5 handled", DEADLINE, || status(db, "counter").handled == 5);
    db.create_side_effects();
    let long = announced_sleep::queue(60_000, 1).unwrap();
    wait_until("the long task started", DEADLINE, || {
        db.side_effects() == [1]
    });

    let out = app(db, &["status"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("counter "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let columns: Vec<&str> = line.split_whitespace().collect();
    // label, state, date, time, UTC, running, handled, queues
    assert_eq!(columns[1], "online", "{line}");
    assert_eq!(&columns[5..7], ["1", "5"], "{stdout}");

    let out = app(db, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &json["workers"][0];
    assert_eq!(row["label"], "counter");
    assert_eq!(row["handled"], 5);
    assert_eq!(row["running"], 1);

    // A restart under the same label counts from zero; the stop keeps the final count.
    assert!(
        app(db, &["stop", "counter", "--terminate", "--wait"])
            .status
            .success()
    );
    assert_eq!(worker.exit_code(), Some(77));
    assert_eq!(
        status(db, "counter").handled,
        5,
        "the interrupted one is not counted"
    );
    let _again = WorkerProcess::spawn(db, dir.path(), "counter");
    let row = status(db, "counter");
    assert_eq!((row.handled, row.stop_request), (0, None));
    assert_eq!(
        long.exec().unwrap().state,
        State::Interrupted,
        "{:?}",
        TaskExec::list(&TaskExecFilter::default())
    );
}

fn an_in_process_worker_obeys_a_stop_request(db: &TestDb) {
    let store = db.store.clone();
    let worker = std::thread::spawn(move || {
        Worker::new()
            .store(store)
            .label("in-process")
            .tick(Duration::from_millis(100))
            .concurrency(1)
            .run()
    });
    wait_until("registered", DEADLINE, || {
        db.store
            .worker_status("in-process")
            .unwrap()
            .is_some_and(|w| w.stopped.is_none())
    });
    let asked = db
        .store
        .request_stop(Some(&["in-process".to_string()]), StopRequest::Graceful)
        .unwrap();
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].state(),
        toosimple_core::WorkerState::Stopping,
        "{asked:?}"
    );
    assert_eq!(worker.join().unwrap(), Exit::Stopped);
    let row = status(db, "in-process");
    assert_eq!(row.exit_code, Some(0));
    assert_eq!(row.state(), toosimple_core::WorkerState::Stopped);
}

fn stop_requests_only_escalate_and_a_restart_clears_them(db: &TestDb) {
    let register = |label: &str| {
        db.store
            .register_worker(&toosimple_core::store::WorkerRegistration {
                label,
                queues: &[],
                excluded_queues: &[],
                heartbeat_timeout: 300.0,
                tick: 1.0,
                cluster: None,
                now: chrono::Utc::now(),
                tasks: &[],
            })
            .unwrap();
    };
    register("w");
    let ask = |request| {
        db.store
            .request_stop(Some(&["w".to_string()]), request)
            .unwrap();
        status(db, "w").stop_request
    };
    assert_eq!(ask(StopRequest::Graceful), Some(StopRequest::Graceful));
    assert_eq!(ask(StopRequest::Terminate), Some(StopRequest::Terminate));
    assert_eq!(
        ask(StopRequest::Graceful),
        Some(StopRequest::Terminate),
        "a graceful request does not soften a termination"
    );
    // The heartbeat reads it back.
    assert_eq!(
        db.store.heartbeat("w", chrono::Utc::now(), 3).unwrap(),
        Some(StopRequest::Terminate)
    );
    assert_eq!(status(db, "w").handled, 3);
    register("w");
    assert_eq!(status(db, "w").stop_request, None);
    assert_eq!(
        db.store.heartbeat("w", chrono::Utc::now(), 0).unwrap(),
        None
    );
}
