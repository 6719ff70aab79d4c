//! A database whose disk fills up: every enqueue that returns `Ok` stored its row, the first
//! failure says the database is full, and a worker loses and repeats nothing.
//!
//! SQLite's file lives on a small tmpfs that the test mounts (CI runs as root); PostgreSQL's
//! tables live in a tablespace on one.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use diesel::Connection;
use toosimple_core::Error;
use toosimple_tests::tasks::{add, append_line, refresh};
use toosimple_tests::tmpfs::Tmpfs;
use toosimple_tests::{TestDb, wait_until};

const ENQUEUES: i64 = 20_000;

/// Checks that `error` is the full-database error, naming the file.
fn assert_full(error: &Error, db_file: &Path) {
    match error {
        Error::DatabaseFull { location, code, .. } => {
            assert_eq!(*code, "SQLITE_FULL", "{error}");
            let file = std::fs::canonicalize(db_file).unwrap();
            assert_eq!(location, &file.display().to_string(), "{error}");
            let message = error.to_string();
            assert!(
                message.contains("is full (SQLITE_FULL)") && message.contains("free space"),
                "{message}"
            );
        }
        other => panic!("expected Error::DatabaseFull, got: {}", other.report()),
    }
}

/// Runs `attempt` `count` times; returns how many returned `Ok` and the first error.
fn attempt_all(count: i64, mut attempt: impl FnMut(i64) -> Result<usize, Error>) -> (i64, Error) {
    let mut stored = 0;
    let mut first_error = None;
    for i in 0..count {
        match attempt(i) {
            Ok(n) => stored += n as i64,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    (stored, first_error.expect("the disk never filled up"))
}

/// Enqueues `count` `append_line` tasks of `ms` each, writing to a ledger file off the
/// database's disk: the ledger's folder and path.
fn line_tasks(count: i64, ms: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let ledger_dir = tempfile::tempdir().unwrap();
    let ledger = ledger_dir.path().join("ledger.txt");
    let path = ledger.display().to_string();
    append_line::queue_many((0..count).map(|n| (path.clone(), n, ms))).unwrap();
    (ledger_dir, ledger)
}

fn sqlite_on_tmpfs(size: &str) -> Option<(Tmpfs, TestDb)> {
    let disk = Tmpfs::mount(size)?;
    let db = TestDb::sqlite_in(disk.path());
    Some((disk, db))
}

#[test]
fn queue_on_a_full_disk_says_so_and_every_ok_is_stored() {
    let Some((disk, db)) = sqlite_on_tmpfs("1m") else {
        return;
    };
    let (stored, error) = attempt_all(ENQUEUES, |i| add::queue(i, 1).map(|_| 1));
    assert_full(&error, &disk.path().join("test.sqlite3"));
    assert!(
        error.to_string().contains("the task was not queued"),
        "{error}"
    );
    assert!(stored > 0 && stored < ENQUEUES, "{stored} stored");
    assert_eq!(db.count("task_name = 'add'"), stored);
}

#[test]
fn queue_many_on_a_full_disk_says_so_and_every_ok_is_stored() {
    let Some((disk, db)) = sqlite_on_tmpfs("1m") else {
        return;
    };
    let (stored, error) = attempt_all(ENQUEUES / 100, |i| {
        add::queue_many((0..100).map(|j| (i * 100 + j, 1))).map(|h| h.len())
    });
    assert_full(&error, &disk.path().join("test.sqlite3"));
    assert!(stored > 0, "{stored} stored");
    assert_eq!(db.count("task_name = 'add'"), stored);
}

#[test]
fn unique_queue_on_a_full_disk_says_so_and_every_ok_is_stored() {
    let Some((disk, db)) = sqlite_on_tmpfs("1m") else {
        return;
    };
    let (stored, error) = attempt_all(ENQUEUES, |i| refresh::queue(format!("key-{i}")).map(|_| 1));
    assert_full(&error, &disk.path().join("test.sqlite3"));
    assert!(stored > 0, "{stored} stored");
    assert_eq!(db.count("task_name = 'refresh'"), stored);
}

#[test]
fn queue_in_a_transaction_on_a_full_disk_says_so_and_every_commit_is_stored() {
    let Some((disk, db)) = sqlite_on_tmpfs("1m") else {
        return;
    };
    let mut conn = db.store.connection().unwrap();
    let (stored, error) = attempt_all(ENQUEUES, |i| {
        conn.transaction::<_, Error, _>(|c| add::queue_in(c, i, 1))
            .map(|_| 1)
    });
    // The failure shows either inside the transaction (naming the file) or at its commit.
    match &error {
        Error::DatabaseFull { location, .. } if location == "the database" => {
            assert!(error.to_string().contains("rolled back"), "{error}")
        }
        _ => assert_full(&error, &disk.path().join("test.sqlite3")),
    }
    assert!(stored > 0, "{stored} stored");
    assert_eq!(db.count("task_name = 'add'"), stored);
}

#[test]
fn cli_enqueue_on_a_full_disk_fails_with_the_reason() {
    let Some((disk, db)) = sqlite_on_tmpfs("1m") else {
        return;
    };
    // An open connection keeps SQLite's WAL file: without it the CLI could not even open the
    // database on a full disk (which would fail too, but earlier).
    let mut held = db.store.connection().unwrap();
    let before = count_rows(&mut held);
    disk.fill();
    let out = db
        .app(env!("CARGO_BIN_EXE_testapp"))
        .args(["enqueue", "add", r#"{"a": 1, "b": 2}"#])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "enqueue succeeded on a full disk");
    assert!(
        stderr.contains("is full (SQLITE_FULL): the task was not queued"),
        "{stderr}"
    );
    assert_eq!(count_rows(&mut held), before);
}

fn count_rows(conn: &mut toosimple_core::store::StoreConnection) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM task_execs")
        .load::<N>(&mut **conn)
        .unwrap()[0]
        .n
}

/// The exact pattern: one autocommit `INSERT … RETURNING` whose commit fails (the change fits
/// in SQLite's page cache; writing it out at commit does not). It must be an error.
#[test]
fn autocommit_insert_returning_reports_its_failed_commit() {
    let Some((disk, db)) = sqlite_on_tmpfs("1m") else {
        return;
    };
    // Warm the connection and the page cache: the insert below then needs no new disk page
    // until its commit writes the WAL.
    add::queue(0, 0).unwrap();
    disk.fill();
    let error = add::queue(1, 1).expect_err("the commit cannot have succeeded");
    assert_full(&error, &disk.path().join("test.sqlite3"));
    assert_eq!(db.count("task_name = 'add'"), 1);
}

/// Upstream behaviour behind the defect, kept as evidence for a report to diesel: its
/// `get_result` returns the row of an autocommit insert whose commit failed. When this test
/// starts failing, diesel checks `sqlite3_reset` and the workaround can be reconsidered.
#[test]
fn diesel_get_result_still_hides_a_failed_autocommit() {
    use diesel::prelude::*;
    let Some(disk) = Tmpfs::mount("1m") else {
        return;
    };
    let path = disk.path().join("plain.sqlite3");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("INSERT INTO t (v) VALUES ('warm')")
        .execute(&mut conn)
        .unwrap();
    disk.fill();
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let returned = diesel::sql_query("INSERT INTO t (v) VALUES ('lost') RETURNING id")
        .get_result::<Id>(&mut conn);
    let stored: i64 = {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .load::<N>(&mut conn)
            .unwrap()[0]
            .n
    };
    assert_eq!(stored, 1, "the failed commit stored nothing");
    assert!(
        returned.is_ok_and(|r| r.id == 2),
        "diesel now reports the failed commit of an autocommit INSERT … RETURNING"
    );
}

/// A worker draining while its disk fills up and then gets space back: every task runs and
/// is recorded exactly once, and the condition is logged once, not per round.
#[test]
fn worker_on_a_disk_that_fills_up_loses_and_repeats_nothing() {
    let Some((disk, db)) = sqlite_on_tmpfs("4m") else {
        return;
    };
    const TASKS: i64 = 300;
    let (ledger_dir, ledger) = line_tasks(TASKS, 5);
    let lines = || -> Vec<i64> {
        std::fs::read_to_string(&ledger)
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    };
    let log = ledger_dir.path().join("worker.log");
    let mut worker = spawn_worker_logging_outages(
        &db,
        &log,
        &[
            "worker",
            "--until-done",
            "--concurrency",
            "4",
            "--tick",
            "1",
        ],
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(
        "the worker to run some tasks",
        Duration::from_secs(30),
        || lines().len() >= 20,
    );
    let filler = disk.fill();
    wait_until(
        "the worker to log the full disk",
        Duration::from_secs(30),
        || read_log().contains("SQLITE_FULL"),
    );
    // Several rounds fail before space returns: the condition must still be logged once.
    wait_until(
        "the worker to retry three times",
        Duration::from_secs(30),
        || read_log().matches("still unavailable").count() >= 3,
    );
    let ran_while_full = lines().len();
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while worker.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = worker.kill();
            panic!(
                "the worker did not finish within 60 s of space returning ({} of {TASKS} ran):\n{}",
                lines().len(),
                read_log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = worker.wait().unwrap();
    let log_text = read_log();
    assert!(status.success(), "worker exited {status}: {log_text}");
    assert!(ran_while_full < TASKS as usize, "the disk filled too late");
    let mut ran = lines();
    ran.sort_unstable();
    assert_eq!(
        ran,
        (0..TASKS).collect::<Vec<_>>(),
        "each task ran exactly once"
    );
    assert_eq!(db.count("state = 'succeeded'"), TASKS, "{log_text}");
    assert_eq!(
        db.count("1 = 1"),
        TASKS,
        "no retry or replacement was needed"
    );
    // Once at the levels a user reads; each retry says it again only at debug level.
    let reports = log_text
        .lines()
        .filter(|l| l.contains("SQLITE_FULL") && !l.contains(" DEBUG "))
        .count();
    assert_eq!(reports, 1, "logged once per outage:\n{log_text}");
}

/// Found by the chaos run: a worker restarted while the disk was full exited 99 at its
/// registration. It waits instead, as a running worker does, and runs once there is room.
#[test]
fn worker_started_on_a_full_disk_waits_and_runs_once_there_is_room() {
    let Some((disk, db)) = sqlite_on_tmpfs("4m") else {
        return;
    };
    const TASKS: i64 = 20;
    let (ledger_dir, _ledger) = line_tasks(TASKS, 1);
    let filler = disk.fill();
    let log = ledger_dir.path().join("worker.log");
    let mut worker =
        spawn_worker_logging_outages(&db, &log, &["worker", "--until-done", "--tick", "0.2"]);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(
        "the worker to log the full disk",
        Duration::from_secs(30),
        || read_log().contains("SQLITE_FULL"),
    );
    wait_until("the worker to retry twice", Duration::from_secs(30), || {
        read_log().matches("still unavailable").count() >= 2 || !running(&mut worker)
    });
    assert!(
        running(&mut worker),
        "the worker gave up on a full disk:\n{}",
        read_log()
    );
    std::fs::remove_file(&filler).unwrap();
    wait_until(
        "the worker to finish once there is room",
        Duration::from_secs(60),
        || !running(&mut worker),
    );
    let status = worker.wait().unwrap();
    assert!(status.success(), "worker exited {status}: {}", read_log());
    assert_eq!(db.count("state = 'succeeded'"), TASKS, "{}", read_log());
}

/// The test app's worker with `args`, its log (outage retries included) in `log`.
fn spawn_worker_logging_outages(db: &TestDb, log: &Path, args: &[&str]) -> std::process::Child {
    db.app(env!("CARGO_BIN_EXE_testapp"))
        .env(
            "TOOSIMPLE_LOG",
            "info,toosimple_worker::worker::outage=debug",
        )
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn running(child: &mut std::process::Child) -> bool {
    child.try_wait().unwrap().is_none()
}

/// The tables of a fresh PostgreSQL schema in a tablespace on a small tmpfs; dropped with it.
struct FullTablespace {
    admin_url: String,
    schema: String,
    tablespace: String,
    url: String,
    _disk: Tmpfs,
}

impl FullTablespace {
    fn create(size: &str) -> Option<FullTablespace> {
        use diesel::prelude::*;
        let disk = Tmpfs::mount(size)?;
        let admin_url = TestDb::postgres_admin_url();
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is unreachable: {e}"));
        // The server writes the tablespace's files as its own user.
        let owner = std::process::Command::new("chown")
            .args(["postgres:postgres"])
            .arg(disk.path())
            .status()
            .unwrap();
        assert!(owner.success(), "chown the tablespace folder");
        let suffix = format!("{}_{:08x}", std::process::id(), rand::random::<u32>());
        let (schema, tablespace) = (format!("full_{suffix}"), format!("full_ts_{suffix}"));
        for sql in [
            format!(
                "CREATE TABLESPACE {tablespace} LOCATION '{}'",
                disk.path().display()
            ),
            format!("CREATE SCHEMA {schema}"),
        ] {
            diesel::sql_query(&sql)
                .execute(&mut admin)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{admin_url}{separator}options=-csearch_path%3D{schema}%20-cdefault_tablespace%3D{tablespace}"
        );
        Some(FullTablespace {
            admin_url,
            schema,
            tablespace,
            url,
            _disk: disk,
        })
    }
}

impl Drop for FullTablespace {
    fn drop(&mut self) {
        use diesel::prelude::*;
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            for sql in [
                format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
                format!("DROP TABLESPACE IF EXISTS {}", self.tablespace),
            ] {
                let _ = diesel::sql_query(sql).execute(&mut admin);
            }
        }
    }
}

#[test]
fn postgres_queue_on_a_full_tablespace_says_so_and_every_ok_is_stored() {
    use diesel::prelude::*;
    let Some(space) = FullTablespace::create("1m") else {
        return;
    };
    let store = toosimple_core::init(&space.url).expect("migrate into the tablespace");
    let (stored, error) = attempt_all(ENQUEUES, |i| add::queue(i, 1).map(|_| 1));
    match &error {
        Error::DatabaseFull { code, .. } => {
            assert_eq!(*code, "disk full", "{}", error.report());
            assert!(
                error.to_string().contains("the task was not queued"),
                "{error}"
            );
        }
        other => panic!("expected Error::DatabaseFull, got: {}", other.report()),
    }
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = store.connection().unwrap();
    let rows = diesel::sql_query("SELECT COUNT(*) AS n FROM task_execs")
        .load::<N>(&mut *conn)
        .unwrap()[0]
        .n;
    assert!(stored > 0, "{stored} stored");
    assert_eq!(rows, stored);
}
