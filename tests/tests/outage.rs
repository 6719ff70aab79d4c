//! A PostgreSQL restart while a worker runs: no execution is lost and none runs twice.
//!
//! The test starts a private PostgreSQL server of its own (the shared test server is never
//! touched), runs a worker process on it, stops the server (`pg_ctl stop -m fast`) while tasks
//! are running and starts it again three seconds later. Most tasks write their side effect to a
//! file, outside the restarted database, so that every execution is counted whatever the
//! database went through.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
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
    let Some(server) = PrivatePostgres::start() else {
        return;
    };
    let url = server.create_database("toosimple");
    let store = toosimple_core::init(&url).expect("open the private database");
    {
        let mut conn = store.connection().expect("a connection");
        diesel::sql_query(
            "CREATE TABLE side_effects (id BIGSERIAL PRIMARY KEY, n BIGINT NOT NULL, pid BIGINT NOT NULL)",
        )
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
    server.pg_ctl(&["stop", "-m", "fast"]);
    let stopped = Utc::now().naive_utc();
    let ran_before_outage = line_count(&lines);
    std::thread::sleep(DOWN_FOR);
    let starting = Utc::now().naive_utc();
    server.start_server();
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

/// A private PostgreSQL server in a temporary folder, stopped and deleted when dropped.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Whether the server's programs run as the `postgres` user (the tests run as root, which
    /// `initdb` and `postgres` refuse).
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Initializes and starts a server on a free port; `None` (with the reason printed) when
    /// PostgreSQL is not installed, except in CI.
    fn start() -> Option<PrivatePostgres> {
        let skip = |reason: String| {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{reason} (CI=true: PostgreSQL tests must run)");
            }
            eprintln!("SKIPPED: {reason}");
        };
        let Some(bin) = server_bindir() else {
            skip("no PostgreSQL server programs (initdb, pg_ctl) found".to_string());
            return None;
        };
        let as_postgres = is_root();
        if as_postgres && !succeeds(Command::new("id").arg("postgres")) {
            skip("running as root without a `postgres` user to run PostgreSQL as".to_string());
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let server = PrivatePostgres {
            bin,
            dir: tempfile::tempdir().expect("a temporary folder"),
            port,
            as_postgres,
        };
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("postgres").arg(server.dir.path());
            assert!(
                succeeds(&mut chown),
                "chown the server's folder to postgres"
            );
        }
        let data = server.data();
        let initdb = server
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(initdb.status.success(), "initdb failed: {initdb:?}");
        server.start_server();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command running the server program `name`, as the `postgres` user when needed.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs `pg_ctl` on this server, panicking with the server's log when it fails.
    fn pg_ctl(&self, args: &[&str]) {
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl {args:?} failed: {output:?}\nserver log:\n{}",
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }

    /// Starts the server (again) on its port, and waits until it accepts connections.
    fn start_server(&self) {
        // Durability against a machine crash is not what is tested: skip the fsyncs.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.pg_ctl(&["-l", &log, "-o", &options, "start"]);
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database` and returns its URL.
    fn create_database(&self, database: &str) -> String {
        let mut admin =
            PgConnection::establish(&self.url("postgres")).expect("connect to the private server");
        diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .expect("create the database");
        self.url(database)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Whether or not it runs (the test may have failed while it was down); the temporary
        // folder is deleted after.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30", "-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The folder of `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn server_bindir() -> Option<PathBuf> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_programs(d)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_programs(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A worker process, killed when dropped if it still runs (when the test fails).
struct WorkerProcess(Child);

impl WorkerProcess {
    fn spawn(url: &str, log: &Path) -> WorkerProcess {
        let stderr = std::fs::File::create(log).expect("create the worker's log");
        let child = Command::new(APP)
            .args([
                "worker",
                "--tick",
                "0.1",
                "--concurrency",
                "4",
                "--label",
                "outage",
            ])
            .env("TOOSIMPLE_DATABASE_URL", url)
            .env("TOOSIMPLE_LOG", "info")
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
    let mut conn = PgConnection::establish(url).ok()?;
    te::task_execs
        .filter(te::state.eq_any(["sleeping", "queued", "processing"]))
        .count()
        .get_result(&mut conn)
        .ok()
}

fn side_effects(url: &str) -> Vec<i64> {
    use toosimple_tests::tasks::side_effects::dsl as se;
    let mut conn = PgConnection::establish(url).expect("connect");
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
        let mut conn = PgConnection::establish(url).expect("connect");
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
