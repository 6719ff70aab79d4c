//! Queues with settings in the database (django-queue-manager's queues and their
//! `max_retries`, django-pq's `SerialQueue` and queues served in the order listed): paused
//! queues, concurrency limits held across worker processes, default retries and time limits,
//! in-order serving, and the `queue` commands.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use toosimple_core::{QueueChange, QueueSettings, State, TaskExec, TaskExecFilter};
use toosimple_tests::tasks::{
    fail_with, record, record_q1, record_q2, records_its_span, sleepy, sleepy_with_timeout,
};
use toosimple_tests::{TestDb, backend_suite, wait_until};

const APP: &str = env!("CARGO_BIN_EXE_testapp");

backend_suite!(
    an_unconfigured_queue_behaves_as_before,
    a_paused_queue_starts_nothing_until_resumed_and_its_running_task_finishes,
    limits_hold_across_worker_processes_while_other_queues_run_in_parallel,
    default_retries_and_time_limit_apply_only_to_executions_without_their_own,
    queues_served_in_order_come_before_priority,
    the_queue_commands_list_pause_resume_and_set_and_refuse_bad_input,
);

fn app(db: &TestDb, args: &[&str]) -> Output {
    let output = db.app(APP).args(args).output().expect("run the app");
    eprintln!(
        "$ app {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn executions(task: &str) -> Vec<TaskExec> {
    let mut all = TaskExec::list(&TaskExecFilter::default().task_name(task).limit(1_000)).unwrap();
    all.sort_by_key(|e| e.id);
    all
}

/// A worker process of the test application whose log goes to a file; killed if the test
/// ends first.
struct WorkerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl WorkerProcess {
    fn spawn(db: &TestDb, dir: &Path, label: &str, args: &[&str]) -> WorkerProcess {
        let log = dir.join(format!("{label}.log"));
        let file = std::fs::File::create(&log).expect("create the worker's log");
        let child = db
            .app(APP)
            .args(["worker", "--label", label, "--tick", "0.1"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start a worker");
        WorkerProcess {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGINT and waits for a clean exit.
    fn stop(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.log();
        assert_eq!(code, Some(0), "the worker stops cleanly:\n{log}");
        log
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The most runs of `range` (their `n`) at the same time, from the spans in `side_effects`
/// (`n` as a run starts, `-n` as it ends, in the order written).
fn most_at_once(effects: &[i64], range: std::ops::RangeInclusive<i64>) -> usize {
    let (mut running, mut most) = (0usize, 0usize);
    for &e in effects {
        if range.contains(&e) {
            running += 1;
            most = most.max(running);
        } else if range.contains(&-e) {
            running -= 1;
        }
    }
    most
}

/// A queue nobody configured has the defaults and runs as before; settings put back to the
/// defaults, or forgotten, change nothing either.
fn an_unconfigured_queue_behaves_as_before(db: &TestDb) {
    db.create_side_effects();
    let q1 = db.store.queue("q1").unwrap();
    assert_eq!(q1, QueueSettings::unconfigured("q1"));
    assert!(!q1.is_configured() && q1.is_default());
    assert!(db.store.queues().unwrap().is_empty());
    for n in 1..=3 {
        record_q1::queue(n).unwrap();
    }
    assert_eq!(db.worker().until_done().run().code(), 0);
    assert_eq!(db.side_effects(), vec![1, 2, 3]);

    // Configured, then back to the defaults: still served as before.
    db.store
        .set_queue("q1", &QueueChange::new().concurrency_limit(Some(1)))
        .unwrap();
    let back = db
        .store
        .set_queue("q1", &QueueChange::new().concurrency_limit(None))
        .unwrap();
    assert!(back.is_configured() && back.is_default(), "{back:?}");
    record_q1::queue(4).unwrap();
    assert_eq!(db.worker().until_done().run().code(), 0);
    assert!(db.store.reset_queue("q1").unwrap());
    assert!(!db.store.reset_queue("q1").unwrap());
    assert_eq!(
        db.store.queue("q1").unwrap(),
        QueueSettings::unconfigured("q1")
    );
    record_q1::queue(5).unwrap();
    assert_eq!(db.worker().until_done().run().code(), 0);
    assert_eq!(db.side_effects(), vec![1, 2, 3, 4, 5]);
}

/// Paused while one of its tasks runs: that task finishes, the worker (a process, which logs
/// the settings it read) starts nothing more from the queue while other queues run, and
/// starts it again once resumed. A worker started while it is paused leaves it alone.
fn a_paused_queue_starts_nothing_until_resumed_and_its_running_task_finishes(db: &TestDb) {
    db.create_side_effects();
    let dir = tempfile::tempdir().unwrap();
    let long = sleepy::with().on_queue("p").queue(1_500, 1).unwrap();
    let worker = WorkerProcess::spawn(db, dir.path(), "pausing", &["--concurrency", "4"]);
    wait_until("the long task to start", Duration::from_secs(30), || {
        long.state().unwrap() == State::Processing
    });
    let paused = app(db, &["queue", "pause", "p"]);
    assert!(paused.status.success(), "{}", stderr(&paused));
    assert!(
        stdout(&paused).starts_with("paused queue p"),
        "{}",
        stdout(&paused)
    );
    assert!(db.store.queue("p").unwrap().paused);
    // The worker's own word that it read the pause (within one of its ticks).
    wait_until(
        "the worker to see the pause",
        Duration::from_secs(30),
        || worker.log().contains("paused: true"),
    );
    let waiting = record::with().on_queue("p").queue(2).unwrap();
    let other = record::with().on_queue("other").queue(3).unwrap();
    wait_until(
        "the other queue's task and the running one to finish",
        Duration::from_secs(30),
        || other.state().unwrap() == State::Succeeded && long.state().unwrap() == State::Succeeded,
    );
    assert_eq!(waiting.state().unwrap(), State::Queued, "{}", worker.log());

    // A worker started now reads the pause before its first claim.
    assert_eq!(db.worker().label("late").until_done().run().code(), 0);
    assert_eq!(waiting.state().unwrap(), State::Queued);

    let resumed = app(db, &["queue", "resume", "p"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    wait_until("the waiting task to run", Duration::from_secs(30), || {
        waiting.state().unwrap() == State::Succeeded
    });
    worker.stop();
    let mut ran = db.side_effects();
    ran.sort_unstable();
    assert_eq!(ran, vec![1, 2, 3]);
}

/// Three worker processes with four slots each: a serial queue (limit 1) never runs two tasks
/// at once, a queue limited to 2 runs two at once and never three, and a queue without a
/// limit runs several at once meanwhile.
fn limits_hold_across_worker_processes_while_other_queues_run_in_parallel(db: &TestDb) {
    db.create_side_effects();
    db.store
        .set_queue("serial", &QueueChange::new().concurrency_limit(Some(1)))
        .unwrap();
    db.store
        .set_queue("pair", &QueueChange::new().concurrency_limit(Some(2)))
        .unwrap();
    for n in 1..=8 {
        records_its_span::with()
            .on_queue("serial")
            .queue(100, n)
            .unwrap();
    }
    for n in 11..=16 {
        records_its_span::with()
            .on_queue("pair")
            .queue(300, n)
            .unwrap();
    }
    for n in 21..=26 {
        records_its_span::with()
            .on_queue("wide")
            .queue(600, n)
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let workers: Vec<WorkerProcess> = ["w1", "w2", "w3"]
        .iter()
        .map(|label| WorkerProcess::spawn(db, dir.path(), label, &["--concurrency", "4"]))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while db.count("state IN ('sleeping', 'queued', 'processing')") > 0 {
        let running_serial = db.count("state = 'processing' AND queue = 'serial'");
        assert!(
            running_serial <= 1,
            "{running_serial} serial tasks hold a slot at once"
        );
        assert!(db.count("state = 'processing' AND queue = 'pair'") <= 2);
        assert!(
            Instant::now() < deadline,
            "unfinished after 90 s:\n{}",
            workers
                .iter()
                .map(WorkerProcess::log)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pids = {
        let mut conn = db.store.connection().unwrap();
        use diesel::prelude::*;
        use toosimple_tests::tasks::side_effects::dsl as se;
        let mut pids: Vec<i64> = se::side_effects.select(se::pid).load(&mut *conn).unwrap();
        pids.sort_unstable();
        pids.dedup();
        pids
    };
    for worker in workers {
        worker.stop();
    }
    assert_eq!(db.count("state = 'succeeded'"), 8 + 6 + 6);
    let effects = db.side_effects();
    assert_eq!(
        most_at_once(&effects, 1..=8),
        1,
        "two serial tasks overlapped: {effects:?}"
    );
    assert_eq!(
        most_at_once(&effects, 11..=16),
        2,
        "the pair queue runs two at once, never three: {effects:?}"
    );
    assert!(
        most_at_once(&effects, 21..=26) >= 2,
        "the unlimited queue ran in parallel: {effects:?}"
    );
    assert!(pids.len() >= 2, "several processes ran tasks: {pids:?}");
}

/// A queue's default retries go to executions that set none (given when claimed, and written
/// to the row), not to those whose call set theirs, even to 0; its default time limit fails an
/// execution without a limit of its own, and spares those with one (the task's or the call's).
fn default_retries_and_time_limit_apply_only_to_executions_without_their_own(db: &TestDb) {
    db.create_side_effects();
    db.store
        .set_queue(
            "flaky",
            &QueueChange::new()
                .default_retries(Some(2))
                .default_timeout(Some(Duration::from_millis(300))),
        )
        .unwrap();
    let defaulted = fail_with::with()
        .on_queue("flaky")
        .queue("defaulted".to_string())
        .unwrap();
    fail_with::with()
        .on_queue("flaky")
        .retries(0)
        .queue("none of its own".to_string())
        .unwrap();
    fail_with::with()
        .on_queue("flaky")
        .retries(1)
        .queue("one of its own".to_string())
        .unwrap();
    // Another queue: the defaults are flaky's only.
    fail_with::queue("elsewhere".to_string()).unwrap();
    let too_long = sleepy::with()
        .on_queue("flaky")
        .retries(0)
        .queue(1_500, 1)
        .unwrap();
    let own_task_limit = sleepy_with_timeout::with()
        .on_queue("flaky")
        .queue(600, 2)
        .unwrap();
    let own_call_limit = sleepy::with()
        .on_queue("flaky")
        .retries(0)
        .timeout(Duration::from_secs(5))
        .queue(600, 3)
        .unwrap();
    assert_eq!(db.worker().concurrency(8).until_done().run().code(), 0);

    let runs_of = |message: &str| {
        executions("fail_with")
            .into_iter()
            .filter(|e| e.args["message"] == message)
            .collect::<Vec<_>>()
    };
    let chain = runs_of("defaulted");
    assert_eq!(chain.len(), 3, "the first run and two retries: {chain:?}");
    assert_eq!(
        chain.iter().map(|e| e.retries).collect::<Vec<_>>(),
        vec![2, 1, 0],
        "the default was written to the claimed row"
    );
    assert_eq!(defaulted.exec().unwrap().retries, 2);
    assert!(chain.iter().all(|e| e.state == State::Failed));
    assert_eq!(runs_of("none of its own").len(), 1, "retries(0) is its own");
    assert_eq!(runs_of("one of its own").len(), 2);
    assert_eq!(runs_of("elsewhere").len(), 1);

    let timed_out = too_long.exec().unwrap();
    assert_eq!(timed_out.state, State::Failed, "{timed_out:?}");
    assert!(
        timed_out.error.as_deref().unwrap_or("").contains("time"),
        "{timed_out:?}"
    );
    assert_eq!(own_task_limit.exec().unwrap().state, State::Succeeded);
    assert_eq!(own_call_limit.exec().unwrap().state, State::Succeeded);
}

/// `--in-order` (django-pq's queue priority): every row of the first listed queue runs before
/// any of the second, whatever their priorities; without a queue list it is refused.
fn queues_served_in_order_come_before_priority(db: &TestDb) {
    db.create_side_effects();
    for n in 1..=3 {
        record_q2::with().priority(9).queue(n).unwrap();
    }
    for n in 11..=13 {
        record_q1::queue(n).unwrap();
    }
    let exit = db
        .worker()
        .queues(["q1", "q2"])
        .in_order(true)
        .concurrency(1)
        .claim_ahead(0)
        .until_done()
        .run();
    assert_eq!(exit.code(), 0);
    assert_eq!(db.side_effects(), vec![11, 12, 13, 1, 2, 3]);

    // With a limited queue listed first: its limit, then the next queue.
    db.store
        .set_queue("q1", &QueueChange::new().concurrency_limit(Some(1)))
        .unwrap();
    for n in 21..=22 {
        record_q1::queue(n).unwrap();
    }
    record_q2::queue(31).unwrap();
    let exit = db
        .worker()
        .queues(["q1", "q2"])
        .in_order(true)
        .concurrency(1)
        .claim_ahead(0)
        .until_done()
        .run();
    assert_eq!(exit.code(), 0);
    assert_eq!(db.side_effects()[6..], [21, 22, 31]);

    let refused = app(db, &["worker", "--in-order", "--until-done"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--queue"), "{}", stderr(&refused));
    match db.worker().in_order(true).until_done().run() {
        toosimple_worker::Exit::Crashed(reason) => {
            assert!(reason.contains("--in-order"), "{reason}")
        }
        other => panic!("in order without queues: {other:?}"),
    }
}

/// `queue set|pause|resume|list`: each prints what it did; `list` shows the configured queues
/// and those of the binary's tasks; bad input is refused with what to write, and nothing
/// changes.
fn the_queue_commands_list_pause_resume_and_set_and_refuse_bad_input(db: &TestDb) {
    let set = app(
        db,
        &[
            "queue",
            "set",
            "reports",
            "--limit",
            "1",
            "--retries",
            "3",
            "--timeout",
            "10m",
        ],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(
        stdout(&set).trim(),
        "queue reports: limit 1 (serial), retries 3, timeout 600s"
    );
    let reports = db.store.queue("reports").unwrap();
    assert_eq!(reports.concurrency_limit, Some(1));
    assert_eq!(reports.default_retries, Some(3));
    assert_eq!(reports.default_timeout, Some(Duration::from_secs(600)));

    for (args, expected) in [
        (vec!["--limit", "0"], "a limit of 0 would run nothing"),
        (vec!["--limit", "two"], "write a whole number from 1"),
        (vec!["--retries", "-2"], "-1 for ever, or none"),
        (vec!["--timeout", "0"], "above zero"),
    ] {
        let mut all = vec!["queue", "set", "reports"];
        all.extend(args.iter());
        let refused = app(db, &all);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&refused).contains(expected),
            "{args:?}: {}",
            stderr(&refused)
        );
    }
    let nothing = app(db, &["queue", "set", "reports"]);
    assert!(!nothing.status.success());
    assert!(
        stderr(&nothing).contains("nothing to change: give --limit N"),
        "{}",
        stderr(&nothing)
    );
    assert_eq!(
        db.store.queue("reports").unwrap(),
        reports,
        "nothing changed"
    );

    let paused = app(db, &["queue", "pause", "reports"]);
    assert!(paused.status.success(), "{}", stderr(&paused));
    let list = app(db, &["queue", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let listed = stdout(&list);
    let line = |queue: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{queue} ")))
            .unwrap_or_else(|| panic!("no line for {queue}:\n{listed}"))
            .to_string()
    };
    assert!(
        line("reports").ends_with("paused, limit 1 (serial), retries 3, timeout 600s"),
        "{listed}"
    );
    // The queues of the binary's tasks, with the defaults.
    assert!(line("q1").ends_with("defaults"), "{listed}");

    let resumed = app(db, &["queue", "resume", "reports"]);
    assert!(resumed.status.success());
    let cleared = app(
        db,
        &[
            "queue",
            "set",
            "reports",
            "--limit",
            "none",
            "--timeout",
            "none",
        ],
    );
    assert!(cleared.status.success(), "{}", stderr(&cleared));
    assert_eq!(stdout(&cleared).trim(), "queue reports: retries 3");
    let json = app(db, &["queue", "list", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let reports = value
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "reports")
        .unwrap();
    assert_eq!(reports["paused"], false);
    assert_eq!(reports["concurrency_limit"], serde_json::Value::Null);
    assert_eq!(reports["default_retries"], 3);
}
