//! `app cluster`: a supervisor running worker processes and restarting those that die
//! (django-q's sentinel), with the worker's signal semantics, and recycling after a number of
//! tasks.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use toosimple_core::{State, TaskExec, TaskExecFilter, WorkerStatus};
use toosimple_tests::tasks::{add, announced_sleep};
use toosimple_tests::{TestDb, backend_suite, wait_for_exit, wait_until};

const APP: &str = env!("CARGO_BIN_EXE_testapp");
const DEADLINE: Duration = Duration::from_secs(30);

backend_suite!(
    a_killed_worker_comes_back_and_its_task_is_rescued_once,
    sigint_stops_every_worker_gracefully_and_the_cluster_exits_0,
    sigterm_terminates_every_worker_and_the_cluster_exits_77,
    a_worker_is_recycled_after_max_tasks,
    a_worker_stopped_on_request_is_not_restarted,
    a_worker_above_the_memory_limit_is_recycled,
);

/// `testapp cluster` with its log in a file; killed if the test ends first.
struct ClusterProcess {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ClusterProcess {
    fn spawn(db: &TestDb, args: &[&str]) -> ClusterProcess {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("cluster.log");
        let child = db
            .app(APP)
            .env("NO_COLOR", "1")
            .args(["cluster", "--label", "c", "--tick", "200ms"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start a cluster");
        ClusterProcess {
            child,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    fn exit_code(&mut self) -> Option<i32> {
        let log = self.log.clone();
        wait_for_exit(&mut self.child, DEADLINE, "the cluster", || {
            std::fs::read_to_string(&log).unwrap_or_default()
        })
        .code()
    }
}

impl Drop for ClusterProcess {
    /// SIGTERM, so that the supervisor terminates its children (a SIGKILL would leave them
    /// to their parent-death signal).
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

fn online(db: &TestDb, label: &str) -> Option<WorkerStatus> {
    db.store
        .worker_status(label)
        .unwrap()
        .filter(|w| w.stopped.is_none())
}

/// The process id of a worker, read from the cluster's log line "worker process started".
fn pid_of(cluster: &ClusterProcess, label: &str) -> u32 {
    let log = cluster.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("worker process started") && l.contains(&format!("worker={label} ")))
        .unwrap_or_else(|| panic!("no start of {label} in:\n{log}"));
    line.split("pid=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"))
}

fn a_killed_worker_comes_back_and_its_task_is_rescued_once(db: &TestDb) {
    db.create_side_effects();
    let mut cluster = ClusterProcess::spawn(db, &["--processes", "2", "--concurrency", "1"]);
    wait_until("both workers online", DEADLINE, || {
        online(db, "c.1").is_some() && online(db, "c.2").is_some()
    });
    let task = announced_sleep::queue(1_000, 7).unwrap();
    wait_until("the task started", DEADLINE, || db.side_effects() == [7]);
    let victim = task.exec().unwrap().worker.expect("a worker runs it");
    let pid = pid_of(&cluster, &victim);

    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    // It comes back under its label; registering again interrupts what it left running.
    wait_until("the killed worker back", DEADLINE, || {
        online(db, &victim).is_some_and(|w| w.restarts == 1)
    });
    wait_until("the task rescued and run", DEADLINE, || {
        task.exec()
            .unwrap()
            .replaced_by
            .is_some_and(|id| TaskExec::get(id).unwrap().state == State::Succeeded)
    });
    let all = TaskExec::list(&TaskExecFilter::default()).unwrap();
    assert_eq!(all.len(), 2, "one replacement: {all:#?}");
    assert_eq!(task.exec().unwrap().state, State::Interrupted);
    assert_eq!(
        db.side_effects(),
        [7, 7],
        "run twice: before the kill, after it"
    );
    let log = cluster.log();
    assert!(
        log.contains("worker process died (killed by signal 9)") && log.contains("restart #1"),
        "{log}"
    );
    assert_ne!(pid_of(&cluster, &victim), pid, "a new process");
    cluster.signal("-INT");
    assert_eq!(cluster.exit_code(), Some(0), "{}", cluster.log());
}

fn sigint_stops_every_worker_gracefully_and_the_cluster_exits_0(db: &TestDb) {
    db.create_side_effects();
    let mut cluster = ClusterProcess::spawn(db, &["--processes", "2", "--concurrency", "1"]);
    wait_until("both workers online", DEADLINE, || {
        online(db, "c.1").is_some() && online(db, "c.2").is_some()
    });
    let task = announced_sleep::queue(1_500, 1).unwrap();
    wait_until("the task started", DEADLINE, || db.side_effects() == [1]);
    cluster.signal("-INT");
    assert_eq!(cluster.exit_code(), Some(0), "{}", cluster.log());
    assert_eq!(
        task.state().unwrap(),
        State::Succeeded,
        "finished, not interrupted"
    );
    for label in ["c.1", "c.2"] {
        let w = db.store.worker_status(label).unwrap().unwrap();
        assert_eq!(w.exit_code, Some(0), "{w:?}");
        assert_eq!(w.cluster.as_deref(), Some("c"));
    }
}

fn sigterm_terminates_every_worker_and_the_cluster_exits_77(db: &TestDb) {
    db.create_side_effects();
    let mut cluster = ClusterProcess::spawn(db, &["--processes", "2", "--concurrency", "1"]);
    wait_until("both workers online", DEADLINE, || {
        online(db, "c.1").is_some() && online(db, "c.2").is_some()
    });
    let task = announced_sleep::queue(60_000, 1).unwrap();
    wait_until("the task started", DEADLINE, || db.side_effects() == [1]);
    cluster.signal("-TERM");
    assert_eq!(cluster.exit_code(), Some(77), "{}", cluster.log());
    assert_eq!(task.state().unwrap(), State::Interrupted);
    for label in ["c.1", "c.2"] {
        let w = db.store.worker_status(label).unwrap().unwrap();
        assert_eq!(w.exit_code, Some(77), "{w:?}");
    }
}

fn a_worker_is_recycled_after_max_tasks(db: &TestDb) {
    let mut cluster = ClusterProcess::spawn(
        db,
        &["--processes", "1", "--concurrency", "1", "--max-tasks", "3"],
    );
    wait_until("the worker online", DEADLINE, || {
        online(db, "c.1").is_some()
    });
    let handles: Vec<_> = (0..7).map(|i| add::queue(i, 1).unwrap()).collect();
    wait_until("every task run", DEADLINE, || {
        handles
            .iter()
            .all(|h| h.state().unwrap() == State::Succeeded)
    });
    // 7 tasks, at most 3 per process: two recycles.
    wait_until("recycled twice", DEADLINE, || {
        online(db, "c.1").is_some_and(|w| w.restarts == 2)
    });
    let log = cluster.log();
    assert_eq!(
        log.matches("recycled after --max-tasks").count(),
        2,
        "{log}"
    );
    assert!(!log.contains("died"), "{log}");
    cluster.signal("-INT");
    assert_eq!(cluster.exit_code(), Some(0), "{}", cluster.log());
}

fn a_worker_stopped_on_request_is_not_restarted(db: &TestDb) {
    let mut cluster = ClusterProcess::spawn(db, &["--processes", "2"]);
    wait_until("both workers online", DEADLINE, || {
        online(db, "c.1").is_some() && online(db, "c.2").is_some()
    });
    let out = db
        .app(APP)
        .args(["stop", "c.1", "--wait"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the supervisor saw it", DEADLINE, || {
        cluster.log().contains("stopped on request")
    });
    assert!(online(db, "c.1").is_none());
    assert!(online(db, "c.2").is_some());
    // The last one stopping ends the cluster.
    let out = db
        .app(APP)
        .args(["stop", "c.2", "--wait"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(cluster.exit_code(), Some(0), "{}", cluster.log());
}

fn a_worker_above_the_memory_limit_is_recycled(db: &TestDb) {
    // Every worker process holds more than a megabyte.
    let mut cluster = ClusterProcess::spawn(db, &["--processes", "1", "--max-memory", "1MB"]);
    wait_until("recycled for its memory", DEADLINE, || {
        online(db, "c.1").is_some_and(|w| w.restarts >= 1)
    });
    let log = cluster.log();
    assert!(
        log.contains("worker uses more memory than --max-memory")
            && log.contains("recycled (memory limit)"),
        "{log}"
    );
    assert!(!log.contains("died"), "a recycle is no death: {log}");
    cluster.signal("-INT");
    assert_eq!(cluster.exit_code(), Some(0), "{}", cluster.log());
}
