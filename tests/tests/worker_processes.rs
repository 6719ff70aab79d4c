//! Two worker processes of the test application on one database, in the two situations that
//! used to get a live worker's tasks rescued and run twice: machines whose clocks disagree, and
//! async tasks that block their thread.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use toosimple_core::{State, TaskExec, TaskExecFilter, WorkerStatus};
use toosimple_tests::tasks::{blocks_its_thread, fails_noting_db_time, sleepy};
use toosimple_tests::{TestDb, backend_suite, wait_until};

const APP: &str = env!("CARGO_BIN_EXE_testapp");

backend_suite!(
    worker_with_blocking_async_tasks_keeps_its_heartbeat,
    worker_started_after_a_stall_rescues_nobody_who_beats_again,
);

/// A worker process whose stderr goes to a file; killed if the test ends first.
struct WorkerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts `testapp worker` with `args`; with `skew` (e.g. `+60s`), its wall clock is moved
    /// by libfaketime, preloaded into the process itself (the `faketime` wrapper would take
    /// the test's signals instead of the worker).
    fn spawn(
        db: &TestDb,
        dir: &Path,
        label: &str,
        args: &[&str],
        skew: Option<(&Path, &str)>,
    ) -> Self {
        let log = dir.join(format!("{label}.log"));
        let file = std::fs::File::create(&log).expect("create the worker's log");
        let mut command = Command::new(APP);
        if let Some((library, offset)) = skew {
            command
                .env("LD_PRELOAD", library)
                .env("FAKETIME", offset)
                // The wall clock only: timers and sleeps stay real.
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let child = command
            .env("TOOSIMPLE_DATABASE_URL", &db.url)
            .env("TOOSIMPLE_LOG", "info")
            .args(["worker", "--label", label, "--tick", "0.2"])
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

    /// Sends SIGINT and waits for a clean exit; returns the worker's log.
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
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the worker did not stop within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = std::fs::read_to_string(&self.log).expect("read the worker's log");
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

/// Waits for every execution to end; on a time-out, shows the rows and the workers' logs.
fn wait_for_every_execution(db: &TestDb, workers: &[&WorkerProcess]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.count("state IN ('sleeping', 'queued', 'processing')") > 0 {
        if Instant::now() > deadline {
            let logs: Vec<String> = workers
                .iter()
                .map(|w| std::fs::read_to_string(&w.log).unwrap_or_default())
                .collect();
            panic!(
                "executions still unfinished after 60 s: {:#?}\n{}",
                all_execs(db),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn registered(db: &TestDb, label: &str) -> bool {
    WorkerStatus::list_in(&db.store)
        .unwrap()
        .iter()
        .any(|w| w.label == label)
}

fn all_execs(db: &TestDb) -> Vec<TaskExec> {
    TaskExec::list_in(&db.store, &TaskExecFilter::default().limit(10_000)).unwrap()
}

/// Eight async tasks that block their thread for 2 s each, on a worker with eight slots and a
/// 3 s heartbeat timeout, beside a second worker: the first keeps beating, so nothing is
/// rescued and every task runs once; its log names the task that blocked.
fn worker_with_blocking_async_tasks_keeps_its_heartbeat(db: &TestDb) {
    db.create_side_effects();
    let dir = tempfile::tempdir().unwrap();
    blocks_its_thread::queue_many((0..8).map(|n| (2_000, n))).unwrap();
    let blocked = WorkerProcess::spawn(
        db,
        dir.path(),
        "blocked",
        &["--concurrency", "8", "--timeout", "3"],
        None,
    );
    wait_until("the eight tasks to start", Duration::from_secs(30), || {
        db.count("state = 'processing' AND worker = 'blocked'") == 8
    });
    let watcher = WorkerProcess::spawn(db, dir.path(), "watcher", &["--timeout", "3"], None);
    wait_until("the watcher to register", Duration::from_secs(30), || {
        registered(db, "watcher")
    });
    wait_for_every_execution(db, &[&blocked, &watcher]);
    let watcher_log = watcher.stop();
    let blocked_log = blocked.stop();

    let mut ran = db.side_effects();
    ran.sort_unstable();
    assert_eq!(
        ran,
        (0..8).collect::<Vec<_>>(),
        "each task ran exactly once"
    );
    let execs = all_execs(db);
    assert_eq!(execs.len(), 8, "no replacement: {execs:?}");
    for exec in &execs {
        assert_eq!(exec.state, State::Succeeded, "{exec:?}");
        assert_eq!(exec.worker.as_deref(), Some("blocked"), "{exec:?}");
    }
    assert!(!watcher_log.contains("rescued"), "{watcher_log}");
    assert!(
        blocked_log.contains("async task `blocks_its_thread`")
            && blocked_log.contains("blocked its executor thread for 2.")
            && blocked_log.contains("make it a sync task")
            && blocked_log.contains("spawn_blocking"),
        "{blocked_log}"
    );
}

/// Found by the long chaos run on SQLite: a worker started just after a stall (there, a
/// worker paused while it held the write lock had kept every other worker from beating) ran
/// its first rescue pass at once, found every live worker's heartbeat stale, and rescued
/// their running tasks. A worker that runs until stopped now waits a heartbeat timeout before
/// it first judges others; one that stays silent is still rescued (see
/// `killed_worker_is_rescued_once_by_another` in `cli.rs`).
fn worker_started_after_a_stall_rescues_nobody_who_beats_again(db: &TestDb) {
    db.create_side_effects();
    let dir = tempfile::tempdir().unwrap();
    let task = sleepy::queue(4_000, 1).unwrap();
    let stalled = WorkerProcess::spawn(
        db,
        dir.path(),
        "stalled",
        &["--timeout", "1.5", "--claim-ahead", "0"],
        None,
    );
    wait_until("the task to start", Duration::from_secs(30), || {
        task.state().unwrap() == State::Processing
    });
    let pid = stalled.child.as_ref().unwrap().id().to_string();
    let kill = |signal: &str| {
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
    };
    kill("-STOP");
    // The stall itself: silent past its heartbeat timeout.
    std::thread::sleep(Duration::from_millis(2_500));
    let newcomer = WorkerProcess::spawn(db, dir.path(), "newcomer", &["--timeout", "1.5"], None);
    wait_until("the newcomer to register", Duration::from_secs(30), || {
        registered(db, "newcomer")
    });
    kill("-CONT");
    wait_for_every_execution(db, &[&stalled, &newcomer]);
    let newcomer_log = newcomer.stop();
    stalled.stop();
    let exec = task.exec().unwrap();
    assert_eq!(
        exec.state,
        State::Succeeded,
        "a live worker was rescued: {exec:?}\n{newcomer_log}"
    );
    assert_eq!(all_execs(db).len(), 1, "no replacement");
    assert_eq!(db.side_effects(), vec![1]);
    assert!(!newcomer_log.contains("rescued"), "{newcomer_log}");
}

/// Debian's libfaketime (package `faketime`), multi-threaded flavour; `None` (with the reason
/// printed) when it is missing outside CI, a failure in CI.
fn libfaketime() -> Option<PathBuf> {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(|dir| Path::new(dir).join("faketime/libfaketimeMT.so.1"))
    .find(|path| path.exists());
    if found.is_some() {
        return found;
    }
    let reason = "libfaketime is not installed (apt-get install faketime)";
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{reason} (CI=true: the clock skew test must run)");
    }
    eprintln!("SKIPPED: {reason}");
    None
}

#[derive(QueryableByName)]
struct RunTime {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
    /// Microseconds since the epoch (the multi-backend connection reads no `timestamptz`).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    at: i64,
}

/// PostgreSQL only: SQLite's workers share one machine, hence one clock.
///
/// A worker whose machine runs 60 s fast beside an honest one, heartbeat timeout 5 s: both use
/// the database's clock, so neither takes the other for dead (no rescue, each task runs once),
/// and no retry runs before its delay by the database's clock.
#[test]
fn postgres_workers_with_clocks_60_s_apart_rescue_nobody_and_retry_on_time() {
    let Some(db) = TestDb::postgres() else { return };
    let Some(faketime) = libfaketime() else {
        return;
    };
    db.create_side_effects();
    db.execute("CREATE TABLE run_times (n BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())");
    let dir = tempfile::tempdir().unwrap();
    let args = ["--concurrency", "3", "--timeout", "5"];
    let honest = WorkerProcess::spawn(&db, dir.path(), "honest", &args, None);
    let fast = WorkerProcess::spawn(&db, dir.path(), "fast", &args, Some((&faketime, "+60s")));
    wait_until("both workers to register", Duration::from_secs(30), || {
        registered(&db, "honest") && registered(&db, "fast")
    });
    // Long enough to be running while the other worker rescues, at each of its ticks.
    sleepy::queue_many((0..12).map(|n| (700, n))).unwrap();
    fails_noting_db_time::queue_many((0..3).map(|n| (n,))).unwrap();
    wait_for_every_execution(&db, &[&honest, &fast]);
    let honest_log = honest.stop();
    let fast_log = fast.stop();

    assert!(
        fast_log.contains("this machine's clock is 60.0 s ahead of the database's")
            || fast_log.contains("this machine's clock is 59.9 s ahead of the database's"),
        "the fast worker measured its offset:\n{fast_log}"
    );
    for log in [&honest_log, &fast_log] {
        assert!(!log.contains("rescued"), "{log}");
        assert!(!log.contains("dropped the outcome"), "{log}");
    }
    let execs = all_execs(&db);
    assert_eq!(
        execs.len(),
        12 + 3 * 3,
        "no rescue replacement, two retries each: {execs:?}"
    );
    assert_eq!(db.count("error LIKE '%rescued by%'"), 0);
    let mut ran = db.side_effects();
    ran.sort_unstable();
    assert_eq!(
        ran,
        (0..12).collect::<Vec<_>>(),
        "each task ran exactly once"
    );
    let pids = {
        let mut conn = db.store.connection().unwrap();
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT COUNT(DISTINCT pid) AS n FROM side_effects")
            .get_result::<Count>(&mut *conn)
            .unwrap()
            .n
    };
    assert_eq!(
        pids, 2,
        "both workers ran tasks, so each could have rescued the other's"
    );

    // By the database's clock, each retry ran at least its delay (2 then 4 s) after the run it
    // retries; a worker trusting a clock 60 s fast would run it at once.
    let times: Vec<RunTime> = {
        let mut conn = db.store.connection().unwrap();
        diesel::sql_query(
            "SELECT n, (extract(epoch FROM at) * 1000000)::bigint AS at \
             FROM run_times ORDER BY n, at",
        )
        .load(&mut *conn)
        .unwrap()
    };
    assert_eq!(times.len(), 9);
    for n in 0..3 {
        let runs: Vec<_> = times.iter().filter(|t| t.n == n).map(|t| t.at).collect();
        for (i, pair) in runs.windows(2).enumerate() {
            let waited = (pair[1] - pair[0]) / 1000;
            let delay = 2_000 << i;
            // A few milliseconds of slack for the clock offset's measurement (half a round
            // trip); a worker trusting a clock 60 s fast runs the retry at once.
            assert!(
                waited >= delay - 50,
                "run {n}, retry {i}: {waited} ms < {delay} ms"
            );
        }
    }
}
