//! A database server restart while a worker runs: no execution is lost and none runs twice,
//! on PostgreSQL and on MariaDB.
//!
//! The test starts a private server of its own (the shared test servers are never touched),
//! runs a worker process on it, stops the server cleanly (`pg_ctl stop -m fast`, SIGTERM to
//! `mariadbd`) while tasks are running and starts it again three seconds later. Most tasks write their side effect to a
//! file, outside the restarted database, so that every execution is counted whatever the
//! database went through.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use toosimple_chaos::mariadb::PrivateMariadb;
use toosimple_chaos::postgres::PrivatePostgres;
use toosimple_core::AnyConnection;
use toosimple_tests::tasks::{append_line, sleepy};

const APP: &str = env!("CARGO_BIN_EXE_testapp");

/// The tasks that run for long: one finishes while the server is down (its outcome waits in
/// the worker's memory), one runs through the whole outage.
const ENDS_DURING_OUTAGE: (i64, u64) = (0, 2_000);
const OUTLIVES_OUTAGE: (i64, u64) = (1, 6_000);
/// Short tasks writing to the file, and `sleepy` tasks writing to the database itself.
const SHORT: i64 = 300;
const SHORT_MS: u64 = 20;
const SLEEPY: i64 = 40;
const SLEEPY_MS: u64 = 100;
const DOWN_FOR: Duration = Duration::from_secs(3);

#[test]
fn postgres_restart_while_a_worker_runs_loses_and_repeats_nothing() {
    if let Some(server) = private_postgres() {
        restart_while_a_worker_runs_loses_and_repeats_nothing(server);
    }
}

#[test]
fn mariadb_restart_while_a_worker_runs_loses_and_repeats_nothing() {
    if let Some(server) = private_mariadb() {
        restart_while_a_worker_runs_loses_and_repeats_nothing(server);
    }
}

fn restart_while_a_worker_runs_loses_and_repeats_nothing(server: Server) {
    let url = server.create_database("toosimple").unwrap();
    let store = toosimple_core::init(&url).expect("open the private database");
    {
        let mut conn = store.connection().expect("a connection");
        diesel::sql_query(format!(
            "CREATE TABLE side_effects (id {}, n BIGINT NOT NULL, pid BIGINT NOT NULL)",
            server.id_column()
        ))
        .execute(&mut *conn)
        .expect("create side_effects");
    }

    let sink = tempfile::tempdir().expect("a temporary folder");
    let lines = sink.path().join("lines.txt");
    let path = lines.display().to_string();
    // The long ones first: they are claimed first and hold two of the four slots.
    append_line::queue_many([
        (path.clone(), ENDS_DURING_OUTAGE.0, ENDS_DURING_OUTAGE.1),
        (path.clone(), OUTLIVES_OUTAGE.0, OUTLIVES_OUTAGE.1),
    ])
    .unwrap();
    // Then both kinds mixed, so that both run when the server goes down.
    for chunk in 0..10 {
        let (short, sleepy) = (SHORT / 10, SLEEPY / 10);
        let short = (chunk * short..(chunk + 1) * short).map(|i| (path.clone(), 100 + i, SHORT_MS));
        append_line::queue_many(short).unwrap();
        let sleepy = (chunk * sleepy..(chunk + 1) * sleepy).map(|i| (SLEEPY_MS, 1_000 + i));
        sleepy::queue_many(sleepy).unwrap();
    }
    let total = 2 + SHORT + SLEEPY;

    let log = sink.path().join("worker.log");
    let worker = WorkerProcess::spawn(&url, &log);
    // Both long tasks are running by now: they were claimed with the first short ones.
    wait_until("some tasks to run", Duration::from_secs(30), || {
        line_count(&lines) >= 20
    });
    assert!(
        line_count(&lines) < 2 + SHORT as usize,
        "the outage must come mid-run"
    );

    let stopping = Utc::now().naive_utc();
    server.stop_server("fast").unwrap();
    let stopped = Utc::now().naive_utc();
    let ran_before_outage = line_count(&lines);
    std::thread::sleep(DOWN_FOR);
    let starting = Utc::now().naive_utc();
    server.start_server().unwrap();
    let started = Utc::now().naive_utc();
    eprintln!(
        "server down from {stopping} (stopped at {stopped}) to {starting} (up at {started}); \
         {ran_before_outage} lines written before it was down"
    );

    wait_until("every execution to end", Duration::from_secs(60), || {
        unfinished(&url).is_some_and(|n| n == 0)
    });
    worker.signal("INT");
    let code = worker.exit_code(Duration::from_secs(20));
    let stderr = std::fs::read_to_string(&log).expect("read the worker's log");
    assert_eq!(
        code, 0,
        "the worker stops cleanly after the outage:\n{stderr}"
    );

    for line in stderr
        .lines()
        .filter(|l| !l.contains("task started") && !l.contains("task ended"))
    {
        eprintln!("worker: {line}");
    }
    // The log tells of one outage, once, and of its end, once.
    assert_eq!(
        stderr.matches("database unavailable").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("database available again").count(),
        1,
        "{stderr}"
    );
    // Nothing was rescued, interrupted or dropped, and the worker did not crash.
    assert!(
        !stderr.contains(" WARN ") && !stderr.contains("crashed"),
        "{stderr}"
    );

    let execs = Execs::load(&url);
    assert_eq!(
        execs.rows.len() as i64,
        total,
        "no execution was added (no retry, no rescue)"
    );

    // Every file task succeeded, and its line was written exactly once.
    let mut written: Vec<i64> = std::fs::read_to_string(&lines)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    written.sort_unstable();
    let expected: Vec<i64> = [ENDS_DURING_OUTAGE.0, OUTLIVES_OUTAGE.0]
        .into_iter()
        .chain(100..100 + SHORT)
        .collect();
    assert_eq!(written, expected, "each file task ran exactly once");
    for row in execs.rows.iter().filter(|r| r.task_name == "append_line") {
        assert_eq!(row.state, "succeeded", "{row:?}");
    }

    // A `sleepy` task writes through its own connection, which the restart may break: it then
    // fails, legitimately, with nothing written. Either way it ran once.
    let recorded = side_effects(&url);
    let mut failed = 0;
    for row in execs.rows.iter().filter(|r| r.task_name == "sleepy") {
        let n = row.n();
        let times = recorded.iter().filter(|&&m| m == n).count();
        match row.state.as_str() {
            "succeeded" => assert_eq!(times, 1, "{row:?}"),
            "failed" => {
                failed += 1;
                assert!(row.error.is_some() && times == 0, "{row:?}");
            }
            _ => panic!("a sleepy execution ended neither succeeded nor failed: {row:?}"),
        }
    }
    assert_eq!(
        recorded.len(),
        SLEEPY as usize - failed,
        "no stray side effect"
    );

    // The scenario happened as planned: a task ended while the server was down and its outcome
    // was written after, and a task claimed before the outage ended after it.
    let during = execs.by_n("append_line", ENDS_DURING_OUTAGE.0);
    let finished = during.finished.unwrap();
    assert!(
        stopped < finished && finished < starting,
        "{during:?} should have ended while the server was down ({stopped} to {starting})"
    );
    let through = execs.by_n("append_line", OUTLIVES_OUTAGE.0);
    assert!(
        through.started.unwrap() < stopping && started < through.finished.unwrap(),
        "{through:?} should have run from before {stopping} to after {started}"
    );
    eprintln!("{failed} sleepy task(s) failed on a broken connection");
}

/// Found by the chaos run: a worker restarted while PostgreSQL was down exited 99 at its
/// registration. It waits instead, as a running worker does, and runs once the server is up.
#[test]
fn worker_started_while_postgres_is_down_waits_and_then_runs() {
    if let Some(server) = private_postgres() {
        worker_started_while_the_server_is_down_waits_and_then_runs(server);
    }
}

#[test]
fn worker_started_while_mariadb_is_down_waits_and_then_runs() {
    if let Some(server) = private_mariadb() {
        worker_started_while_the_server_is_down_waits_and_then_runs(server);
    }
}

fn worker_started_while_the_server_is_down_waits_and_then_runs(server: Server) {
    let (url, sink, lines) = with_line_tasks(&server, 5, 1);
    server.stop_server("fast").unwrap();

    let log = sink.path().join("worker.log");
    let mut worker = WorkerProcess::spawn_with(&url, &log, &["--label", "late"]);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(
        "the worker to log the outage",
        Duration::from_secs(30),
        || read_log().contains("database unavailable"),
    );
    // Long enough for a worker that gives up to have exited.
    std::thread::sleep(Duration::from_millis(500));
    assert!(worker.running(), "the worker gave up:\n{}", read_log());
    server.start_server().unwrap();
    wait_until("every task to run", Duration::from_secs(60), || {
        unfinished(&url) == Some(0)
    });
    assert_eq!(line_count(&lines), 5, "each task ran once");
    worker.signal("INT");
    assert_eq!(
        worker.exit_code(Duration::from_secs(20)),
        0,
        "{}",
        read_log()
    );
}

/// Found by the chaos run: after a PostgreSQL restart longer than the heartbeat timeout,
/// every worker's heartbeat is stale, the live ones' too, and the first worker back rescued
/// the running tasks of the others. Rescue waits a heartbeat timeout after an outage, so
/// that live workers beat again first.
#[test]
fn an_outage_longer_than_the_heartbeat_timeout_rescues_no_live_worker() {
    if let Some(server) = private_postgres() {
        long_outage_rescues_no_live_worker(server);
    }
}

#[test]
fn a_mariadb_outage_longer_than_the_heartbeat_timeout_rescues_no_live_worker() {
    if let Some(server) = private_mariadb() {
        long_outage_rescues_no_live_worker(server);
    }
}

fn long_outage_rescues_no_live_worker(server: Server) {
    // Long tasks, so that both workers hold running ones through the outage.
    let (url, sink, _lines) = with_line_tasks(&server, 6, 8_000);
    let logs = [sink.path().join("a.log"), sink.path().join("b.log")];
    let workers: Vec<WorkerProcess> = ["a", "b"]
        .iter()
        .zip(&logs)
        .map(|(label, log)| {
            WorkerProcess::spawn_with(
                &url,
                log,
                &[
                    "--label",
                    label,
                    "--timeout",
                    "1.5",
                    "--concurrency",
                    "3",
                    "--claim-ahead",
                    "0",
                ],
            )
        })
        .collect();
    let processing = || {
        use toosimple_core::schema::task_execs::dsl as te;
        let mut conn = AnyConnection::establish(&url).ok()?;
        te::task_execs
            .filter(te::state.eq("processing"))
            .select(te::worker)
            .load::<Option<String>>(&mut conn)
            .ok()
    };
    wait_until("both workers to run tasks", Duration::from_secs(30), || {
        processing().is_some_and(|w| {
            w.contains(&Some("a".to_string())) && w.contains(&Some("b".to_string()))
        })
    });
    server.stop_server("fast").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    server.start_server().unwrap();
    let logs_text = || -> String {
        logs.iter()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while unfinished(&url) != Some(0) {
        assert!(
            Instant::now() < deadline,
            "not every task ended within 60 s of the restart:\n{}",
            logs_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for worker in &workers {
        worker.signal("INT");
    }
    for worker in workers {
        worker.exit_code(Duration::from_secs(20));
    }
    let text = logs_text();
    assert!(!text.contains("rescued the executions"), "{text}");
    let execs = Execs::load(&url);
    assert_eq!(execs.rows.len(), 6, "no replacement: {:?}", execs.rows);
    assert!(
        execs.rows.iter().all(|r| r.state == "succeeded"),
        "{:?}",
        execs.rows
    );
}

/// A migrated database on `server` holding `count` `append_line` tasks of `ms` each, writing
/// to a file in a temporary folder: the URL, the folder and the file.
fn with_line_tasks(
    server: &Server,
    count: i64,
    ms: u64,
) -> (String, tempfile::TempDir, std::path::PathBuf) {
    let url = server.create_database("toosimple").unwrap();
    toosimple_core::init(&url).expect("open the private database");
    let sink = tempfile::tempdir().expect("a temporary folder");
    let lines = sink.path().join("lines.txt");
    let path = lines.display().to_string();
    append_line::queue_many((0..count).map(|n| (path.clone(), n, ms))).unwrap();
    (url, sink, lines)
}

/// The private server a test restarts (the chaos harness's).
enum Server {
    Postgres(PrivatePostgres),
    Mariadb(PrivateMariadb),
}

impl Server {
    fn create_database(&self, name: &str) -> Result<String, String> {
        match self {
            Server::Postgres(server) => server.create_database(name),
            Server::Mariadb(server) => server.create_database(name),
        }
    }

    fn stop_server(&self, mode: &str) -> Result<(), String> {
        match self {
            Server::Postgres(server) => server.stop_server(mode),
            Server::Mariadb(server) => server.stop_server(mode),
        }
    }

    fn start_server(&self) -> Result<(), String> {
        match self {
            Server::Postgres(server) => server.start_server(),
            Server::Mariadb(server) => server.start_server(),
        }
    }

    /// An auto-numbered primary key column, as this server spells it.
    fn id_column(&self) -> &'static str {
        match self {
            Server::Postgres(_) => "BIGSERIAL PRIMARY KEY",
            Server::Mariadb(_) => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        }
    }
}

/// A private PostgreSQL server, or `None` with the reason printed when PostgreSQL is not
/// installed, except in CI.
fn private_postgres() -> Option<Server> {
    // Durability against a machine crash is not what is tested: skip the fsyncs.
    required(PrivatePostgres::start(&[], &["fsync=off"]).map(Server::Postgres))
}

/// A private MariaDB server, or `None` with the reason printed when MariaDB is not installed,
/// except in CI.
fn private_mariadb() -> Option<Server> {
    required(PrivateMariadb::start().map(Server::Mariadb))
}

fn required(started: Result<Server, String>) -> Option<Server> {
    match started {
        Ok(server) => Some(server),
        Err(reason) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{reason} (CI=true: the outage tests must run)")
        }
        Err(reason) => {
            eprintln!("SKIPPED: {reason}");
            None
        }
    }
}

/// A worker process, killed when dropped if it still runs (when the test fails).
struct WorkerProcess(Child);

impl WorkerProcess {
    fn spawn(url: &str, log: &Path) -> WorkerProcess {
        WorkerProcess::spawn_with(url, log, &["--label", "outage", "--concurrency", "4"])
    }

    fn spawn_with(url: &str, log: &Path, args: &[&str]) -> WorkerProcess {
        let stderr = std::fs::File::create(log).expect("create the worker's log");
        let child = Command::new(APP)
            .args(["worker", "--tick", "0.1"])
            .args(args)
            .env("TOOSIMPLE_DATABASE_URL", url)
            .env(
                "TOOSIMPLE_LOG",
                "info,toosimple_worker::worker::outage=debug",
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start a worker");
        WorkerProcess(child)
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    fn exit_code(mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the worker did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Polls `condition` every 50 ms until it holds, panicking with `what` after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

/// How many executions have not ended, on a fresh connection (the pooled ones die with the
/// server); `None` while the server is unreachable.
fn unfinished(url: &str) -> Option<i64> {
    use toosimple_core::schema::task_execs::dsl as te;
    let mut conn = AnyConnection::establish(url).ok()?;
    te::task_execs
        .filter(te::state.eq_any(["sleeping", "queued", "processing"]))
        .count()
        .get_result(&mut conn)
        .ok()
}

fn side_effects(url: &str) -> Vec<i64> {
    use toosimple_tests::tasks::side_effects::dsl as se;
    let mut conn = AnyConnection::establish(url).expect("connect");
    se::side_effects
        .order(se::id)
        .select(se::n)
        .load(&mut conn)
        .expect("read side_effects")
}

#[derive(Debug, Queryable)]
struct Exec {
    task_name: String,
    args: String,
    state: String,
    started: Option<NaiveDateTime>,
    finished: Option<NaiveDateTime>,
    error: Option<String>,
}

impl Exec {
    /// The task's argument `n`.
    fn n(&self) -> i64 {
        let args: serde_json::Value = serde_json::from_str(&self.args).unwrap();
        args["n"]
            .as_i64()
            .unwrap_or_else(|| panic!("no n in {self:?}"))
    }
}

struct Execs {
    rows: Vec<Exec>,
}

impl Execs {
    fn load(url: &str) -> Execs {
        use toosimple_core::schema::task_execs::dsl as te;
        let mut conn = AnyConnection::establish(url).expect("connect");
        let rows = te::task_execs
            .order(te::id)
            .select((
                te::task_name,
                te::args,
                te::state,
                te::started,
                te::finished,
                te::error,
            ))
            .load(&mut conn)
            .expect("read task_execs");
        Execs { rows }
    }

    fn by_n(&self, task: &str, n: i64) -> &Exec {
        self.rows
            .iter()
            .find(|r| r.task_name == task && r.n() == n)
            .unwrap_or_else(|| panic!("no {task} execution with n = {n}"))
    }
}
