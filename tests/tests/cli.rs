//! The application binary's command line, run as a user runs it: worker processes, signals,
//! and every subcommand.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use toosimple_core::{State, TaskExec, TaskExecFilter};
use toosimple_tests::tasks::{add, record, sleepy};
use toosimple_tests::{TestDb, backend_suite, pgbouncer_suite, wait_until};

const APP: &str = env!("CARGO_BIN_EXE_testapp");

backend_suite!(
    four_worker_processes_run_each_task_exactly_once,
    sigterm_interrupts_the_running_task_and_exits_77,
    first_sigint_lets_the_running_task_finish_and_exits_0,
    second_sigint_terminates,
    killed_worker_is_rescued_once_by_another,
    killed_worker_with_a_full_claim_ahead_buffer_loses_nothing,
    paused_worker_resumed_after_its_rescue_has_its_late_outcome_refused,
    async_task_that_ends_as_its_paused_worker_resumes_is_not_timed_out,
    workers_paused_together_rescue_none_of_each_other,
    first_sigint_hands_back_the_claim_ahead_buffer_unstarted,
    until_done_and_once_exit_0,
    migrate_status_and_tasks,
    enqueue_requeue_cancel_and_purge,
    enqueue_reports_bad_input_clearly,
    enqueue_takes_one_calls_options,
    enqueue_and_worker_name_registered_hooks,
    status_names_queued_tasks_no_online_worker_knows,
    worker_and_enqueue_take_retention_settings,
    schedules_and_run_schedule,
    a_worker_that_cannot_start_exits_99_with_the_reason_recorded,
    duplicate_schedule_names_stop_the_worker_at_startup,
    until_done_warns_of_tasks_it_does_not_link_and_queues_no_task_uses,
    output_into_a_closed_pipe_ends_quietly,
    logs_into_a_pipe_have_no_colour_codes,
    status_marks_estimated_counts,
);

// The exactly-once test across processes, through a transaction-pooling proxy too.
pgbouncer_suite!(four_worker_processes_run_each_task_exactly_once);

/// The app run in `folder` on `url`, with no database of a test's: for what a user sees on a
/// database that does not exist yet.
fn app_in(folder: &std::path::Path, url: &str, args: &[&str]) -> Output {
    let output = Command::new(APP)
        .current_dir(folder)
        .env("TOOSIMPLE_DATABASE_URL", url)
        .env("TOOSIMPLE_LOG", "info")
        .env("NO_COLOR", "1")
        .env("TOOSIMPLE_ADMIN_PASSWORD", "correct horse battery staple")
        .args(args)
        .output()
        .expect("run the app");
    eprintln!(
        "$ app {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Finding: `status` (and the other commands that only look at executions) run from another
/// folder created an empty `toosimple.sqlite3` there and answered "(no executions)".
#[test]
fn read_only_commands_do_not_create_a_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let folder = std::fs::canonicalize(dir.path()).unwrap();
    let file = folder.join("toosimple.sqlite3");
    for url in [
        "sqlite://toosimple.sqlite3",
        &format!("sqlite://{}", file.display()),
    ] {
        for args in [
            &["status"][..],
            &["schedules"],
            &["cancel", "1"],
            &["requeue", "1"],
            &["purge", "--older-than", "7d"],
            &["admin", "--bind", "127.0.0.1:0"],
        ] {
            let output = app_in(&folder, url, args);
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            let stderr = stderr(&output);
            assert!(
                stderr.contains(&format!("there is no database at {}", file.display()))
                    && stderr.contains("a worker, `enqueue` or `migrate` creates it"),
                "{args:?}: {stderr}"
            );
            assert!(!file.exists(), "{args:?} created {}", file.display());
        }
        // `tasks` reads the binary, not the database.
        let tasks = app_in(&folder, url, &["tasks"]);
        assert!(tasks.status.success() && stdout(&tasks).contains("mail.send"));
        assert!(!file.exists(), "`tasks` created {}", file.display());
    }
    // Once it exists, they answer from it.
    let migrate = app_in(&folder, "sqlite://toosimple.sqlite3", &["migrate"]);
    assert_eq!(
        stdout(&migrate),
        format!(
            "created a new database at {0}\nmigrations applied to {0}\n",
            file.display()
        )
    );
    let status = app_in(&folder, "sqlite://toosimple.sqlite3", &["status"]);
    assert!(status.status.success() && stdout(&status).contains("(no executions)"));
}

/// Finding: a worker run from another folder created a fresh database there and exited 0
/// (`--until-done`), its log naming only the relative URL.
#[test]
fn a_worker_that_creates_its_database_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let folder = std::fs::canonicalize(dir.path()).unwrap();
    let file = folder.join("app.sqlite3");
    let url = "sqlite://app.sqlite3";
    let first = app_in(&folder, url, &["worker", "--until-done"]);
    assert_eq!(first.status.code(), Some(0));
    let log = stderr(&first);
    assert!(
        log.contains(&format!(
            "created a new, empty database at {}; is this the one your app uses?",
            file.display()
        )) && log.contains(&format!("database={}", file.display())),
        "{log}"
    );
    let again = app_in(&folder, url, &["worker", "--until-done"]);
    let log = stderr(&again);
    assert!(!log.contains("created a new"), "{log}");
    assert!(
        log.contains(&format!("database={}", file.display())),
        "{log}"
    );
    // Enqueueing creates it too, and says nothing: that is where the work goes.
    let other = folder.join("other.sqlite3");
    let enqueue = app_in(
        &folder,
        "sqlite://other.sqlite3",
        &["enqueue", "record", r#"{"n": 1}"#],
    );
    assert!(enqueue.status.success() && other.exists());
}

/// Finding: `--tick 0` busy-looped, `--concurrency 0` became 1, `--timeout 5 --tick 10` was
/// taken, `--tick 1s` was refused while `purge` took units. Each bad flag exits 2 before any
/// database is touched, saying what to write.
#[test]
fn flags_that_make_no_sense_are_refused_with_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("toosimple.sqlite3");
    let url = format!("sqlite://{}", file.display());
    for (args, says) in [
        (
            &["worker", "--tick", "0"][..],
            &[
                "invalid value '0' for '--tick <DURATION>'",
                "at least 10ms",
                "busy loop",
                "1s",
            ][..],
        ),
        (&["worker", "--tick=-1"], &["cannot be negative", "500ms"]),
        (
            &["worker", "--tick", "1x"],
            &["unknown time unit \"x\"", "write e.g. 500ms, 1s"],
        ),
        (
            &["worker", "--concurrency", "0"],
            &["for '--concurrency <N>'", "runs nothing: write 1 or more"],
        ),
        (
            &["worker", "--timeout", "5", "--tick", "10"],
            &[
                "the heartbeat timeout (--timeout 5s) must be longer than the tick (--tick 10s)",
                "write e.g. --timeout 30s or a shorter --tick",
                "Usage: testapp worker",
            ],
        ),
        // The default tick (1s) against a timeout written with a unit.
        (
            &["worker", "--timeout", "500ms"],
            &["(--timeout 500ms) must be longer than the tick (--tick 1s)"],
        ),
        (
            &["worker", "--queue", "emails,,default"],
            &["an empty queue name", "emails,default"],
        ),
        (&["worker", "--exclude-queue", ""], &["an empty queue name"]),
        (&["worker", "--label", " "], &["a worker needs a name"]),
        (
            &["purge", "--older-than", "7"],
            &["\"7\" has no unit", "7d, 7h, 7m or 7s"],
        ),
        (
            &["purge", "--older-than", "7 days ago"],
            &["write e.g. 500ms"],
        ),
        (&["cancel", "0"], &["a number from 1 up"]),
        (
            &["admin", "--bind", "8001"],
            &["write an address and port, e.g. 127.0.0.1:8001"],
        ),
    ] {
        let output = app_in(dir.path(), &url, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = stderr(&output);
        for text in says {
            assert!(
                stderr.contains(text),
                "{args:?} should say {text:?}:\n{stderr}"
            );
        }
        assert!(!file.exists(), "{args:?} touched the database");
    }
}

/// Finding: `--queue emails,default` served one queue named "emails,default"; `--tick 1s`
/// was refused. Commas split, the flag repeats, and durations take units.
#[test]
fn queues_split_on_commas_and_durations_take_units() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.sqlite3").display());
    let once = app_in(
        dir.path(),
        &url,
        &[
            "worker",
            "--once",
            "--queue",
            "emails,default",
            "--queue",
            "reports",
            "--tick",
            "250ms",
            "--timeout",
            "1m",
            "--label",
            "split",
        ],
    );
    assert_eq!(once.status.code(), Some(0), "{}", stderr(&once));
    let status = app_in(dir.path(), &url, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let worker = &status["workers"][0];
    assert_eq!(worker["label"], "split");
    assert_eq!(worker["queues"], json!(["emails", "default", "reports"]));
    assert_eq!(worker["heartbeat_timeout"], json!(60.0));
    let purge = app_in(dir.path(), &url, &["purge", "--older-than", "1h 30m"]);
    assert_eq!(
        stdout(&purge),
        "deleted 0 finished execution(s) older than 90 minutes\n"
    );
}

/// Finding: `app --help` and `--version` said "Worker runtime and manage-style CLI for
/// toosimple" and "toosimple-worker 0.1.0". Through `toosimple_worker::main()`, which cannot
/// know the app's version, they name the binary; the help tells exit codes, signals and
/// `TOOSIMPLE_LOG`.
#[test]
fn help_and_version_are_the_applications() {
    let dir = tempfile::tempdir().unwrap();
    let url = "sqlite://toosimple.sqlite3";
    let version = app_in(dir.path(), url, &["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        stdout(&version),
        format!("testapp (toosimple-worker {})\n", env!("CARGO_PKG_VERSION"))
    );
    let help = app_in(dir.path(), url, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = stdout(&help);
    assert!(!help.contains("manage-style"), "{help}");
    for text in [
        "Background tasks of this application",
        "Usage: testapp [OPTIONS] <COMMAND>",
        "TOOSIMPLE_LOG ",
        "TOOSIMPLE_DATABASE_URL",
        "SIGTERM or a second SIGINT",
        "  2   the command line is wrong",
        "  77  a worker terminated",
        "  99  a worker crashed",
    ] {
        assert!(help.contains(text), "--help should say {text:?}:\n{help}");
    }
    let worker = stdout(&app_in(dir.path(), url, &["worker", "--help"]));
    for text in [
        "first SIGINT",
        "(exit 77)",
        "exits 99",
        "TOOSIMPLE_LOG",
        "500ms",
    ] {
        assert!(
            worker.contains(text),
            "worker --help should say {text:?}:\n{worker}"
        );
    }
    // A mistyped log filter is said, not taken for silence.
    let output = Command::new(APP)
        .current_dir(dir.path())
        .env("TOOSIMPLE_DATABASE_URL", url)
        .env("TOOSIMPLE_LOG", "info,toosimple_worker=loud")
        .args(["tasks"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        stderr(&output)
            .contains("warning: TOOSIMPLE_LOG=\"info,toosimple_worker=loud\" is not a log filter")
            && stderr(&output).contains("write e.g. info, debug or info,toosimple_worker=debug"),
        "{}",
        stderr(&output)
    );
    // Without a command, the help, and a usage error's code.
    let bare = app_in(dir.path(), url, &[]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(stderr(&bare).contains("Usage: testapp [OPTIONS] <COMMAND>"));
    assert!(!dir.path().join("toosimple.sqlite3").exists());
}

/// `cli!()` reads the calling crate's Cargo metadata, not toosimple-worker's: here this test
/// crate's (an integration test has no binary name, so the package's).
#[test]
fn the_cli_macro_names_the_calling_crate() {
    let mut command = toosimple_worker::cli!().command().clone();
    assert_eq!(
        command.render_version(),
        format!("toosimple-tests {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = command.render_help().to_string();
    assert!(
        help.starts_with("End-to-end tests of toosimple on SQLite and PostgreSQL"),
        "{help}"
    );
}

fn run(db: &TestDb, args: &[&str]) -> Output {
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

fn spawn_worker(db: &TestDb, args: &[&str]) -> Child {
    db.app(APP)
        .arg("worker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a worker")
}

/// A worker whose log lines (stderr) arrive on the returned channel, and are echoed.
fn spawn_logged_worker(db: &TestDb, args: &[&str]) -> (Child, std::sync::mpsc::Receiver<String>) {
    spawn_logged_worker_with(db, args, &[])
}

/// [`spawn_logged_worker`] with more environment variables.
fn spawn_logged_worker_with(
    db: &TestDb,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = db
        .app(APP)
        .arg("worker")
        .args(args)
        .envs(envs.iter().copied())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a worker");
    let stderr = child.stderr.take().expect("the worker's stderr");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("{line}");
            let _ = lines.send(line);
        }
    });
    (child, received)
}

/// Waits for a log line containing `text`, panicking after `timeout`.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, text: &str, timeout: Duration) {
    read_line(lines, text, timeout);
}

/// The first log line containing `text`, panicking after `timeout`.
fn read_line(lines: &std::sync::mpsc::Receiver<String>, text: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(text) => return line,
            Ok(_) => {}
            Err(e) => panic!("no log line with {text:?} within {timeout:?}: {e}"),
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

fn exit_code(mut child: Child, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the worker did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Through PgBouncer in transaction mode a session's `LISTEN` cannot hold: a worker of a
/// pooled URL polls at its tick and says so at its start, or, given `TOOSIMPLE_LISTEN_URL` (a
/// direct URL of the same database), listens there and starts new work at once.
#[test]
fn a_pooled_worker_listens_on_the_listen_url_or_says_it_polls() {
    let Some(db) = TestDb::pgbouncer() else {
        return;
    };
    db.create_side_effects();
    let (polling, lines) = spawn_logged_worker(&db, &["--label", "polling", "--tick", "60"]);
    let started = read_line(&lines, "worker started", Duration::from_secs(20));
    assert!(
        started.contains("polling at each tick") && started.contains("TOOSIMPLE_LISTEN_URL"),
        "{started}"
    );
    signal(&polling, "INT");
    assert_eq!(exit_code(polling, Duration::from_secs(20)), 0);

    let direct = db
        .direct_url()
        .expect("a PgBouncer database has a direct URL");
    let (listening, lines) = spawn_logged_worker_with(
        &db,
        &["--label", "listening", "--tick", "60"],
        &[("TOOSIMPLE_LISTEN_URL", &direct)],
    );
    let started = read_line(&lines, "worker started", Duration::from_secs(20));
    assert!(started.contains("LISTEN on"), "{started}");
    // Its first claims are done: it now sleeps until its tick, a minute away, or a wake-up.
    std::thread::sleep(Duration::from_millis(500));
    for n in 0..3 {
        let task = record::queue(n).unwrap();
        let enqueued = Instant::now();
        wait_until("the task to run", Duration::from_secs(10), || {
            task.state().unwrap() == State::Succeeded
        });
        assert!(
            enqueued.elapsed() < Duration::from_secs(2),
            "{:?}",
            enqueued.elapsed()
        );
    }
    signal(&listening, "INT");
    assert_eq!(exit_code(listening, Duration::from_secs(20)), 0);
    assert_eq!(db.side_effects(), vec![0, 1, 2]);
}

fn four_worker_processes_run_each_task_exactly_once(db: &TestDb) {
    const TASKS: i64 = 1_000;
    db.create_side_effects();
    // 10 ms each: one worker alone would need seconds, so every process that starts takes
    // part, and exactly-once is tested across processes, not inside one.
    sleepy::queue_many((0..TASKS).map(|n| (10, n))).unwrap();
    let workers: Vec<Child> = (0..4)
        .map(|i| {
            spawn_worker(
                db,
                &[
                    "--until-done",
                    "--concurrency",
                    "4",
                    "--label",
                    &format!("w{i}"),
                ],
            )
        })
        .collect();
    for worker in workers {
        assert_eq!(exit_code(worker, Duration::from_secs(120)), 0);
    }
    let mut done = db.side_effects();
    assert_eq!(done.len(), TASKS as usize, "each task ran once");
    done.sort();
    done.dedup();
    assert_eq!(done.len(), TASKS as usize, "no task ran twice");
    assert_eq!(db.count("state <> 'succeeded'"), 0);
    // Every execution records the worker that ran it, and several workers took part.
    assert_eq!(db.count("worker IS NOT NULL"), TASKS);
    let took_part = (0..4)
        .filter(|i| db.count(&format!("worker = 'w{i}'")) > 0)
        .count();
    assert!(took_part >= 2, "only {took_part} worker(s) ran tasks");
}

fn sigterm_interrupts_the_running_task_and_exits_77(db: &TestDb) {
    db.create_side_effects();
    let task = sleepy::queue(5_000, 1).unwrap();
    let (worker, log) = spawn_logged_worker(db, &["--label", "victim"]);
    // Running, not only claimed: a claim not started yet is handed back unrun, not interrupted.
    wait_for_line(&log, "task started", Duration::from_secs(20));
    assert_eq!(task.state().unwrap(), State::Processing);
    signal(&worker, "TERM");
    assert_eq!(exit_code(worker, Duration::from_secs(20)), 77);
    let exec = task.exec().unwrap();
    assert_eq!(exec.state, State::Interrupted);
    assert_eq!(exec.error.as_deref(), Some("worker victim was terminated"));
    let replacement = TaskExec::get(exec.replaced_by.unwrap()).unwrap();
    assert_eq!(replacement.state, State::Sleeping);
    assert_eq!(replacement.args, json!({"ms": 5_000, "n": 1}));
    assert!(db.side_effects().is_empty());
}

fn first_sigint_lets_the_running_task_finish_and_exits_0(db: &TestDb) {
    db.create_side_effects();
    let task = sleepy::queue(1_500, 1).unwrap();
    let next = record::queue(2).unwrap();
    let (worker, log) = spawn_logged_worker(db, &["--concurrency", "1"]);
    // Running, not only claimed: a claim not started yet is handed back unrun at SIGINT.
    wait_for_line(&log, "task started", Duration::from_secs(20));
    assert_eq!(task.state().unwrap(), State::Processing);
    signal(&worker, "INT");
    assert_eq!(exit_code(worker, Duration::from_secs(20)), 0);
    assert_eq!(task.state().unwrap(), State::Succeeded);
    assert_eq!(db.side_effects(), vec![1]);
    assert_eq!(
        next.state().unwrap(),
        State::Queued,
        "nothing is claimed after SIGINT"
    );
}

fn second_sigint_terminates(db: &TestDb) {
    let task = sleepy::queue(10_000, 1).unwrap();
    let (worker, log) = spawn_logged_worker(db, &[]);
    // Running, not only claimed: a claim not started yet is handed back unrun at the first
    // SIGINT (seen on MariaDB, whose claim commits a moment before the task starts).
    wait_for_line(&log, "task started", Duration::from_secs(20));
    assert_eq!(task.state().unwrap(), State::Processing);
    signal(&worker, "INT");
    // Two signals sent at once may arrive as one: the second goes once the first was read.
    wait_for_line(
        &log,
        "SIGINT: finishing running tasks",
        Duration::from_secs(20),
    );
    signal(&worker, "INT");
    assert_eq!(exit_code(worker, Duration::from_secs(20)), 77);
    assert_eq!(task.state().unwrap(), State::Interrupted);
}

/// Waits until the one worker registered in `db` counts as timed out (its heartbeat is older
/// than its timeout): rescuers started after that take its tasks.
fn wait_for_the_only_worker_to_time_out(db: &TestDb) {
    wait_until(
        "the killed worker to time out",
        Duration::from_secs(20),
        || {
            toosimple_core::WorkerStatus::list_in(&db.store).unwrap()[0].state()
                == toosimple_core::WorkerState::TimedOut
        },
    );
}

fn killed_worker_is_rescued_once_by_another(db: &TestDb) {
    db.create_side_effects();
    let task = sleepy::queue(1_000, 1).unwrap();
    let victim = spawn_worker(
        db,
        &["--label", "doomed", "--timeout", "1", "--tick", "0.2"],
    );
    wait_until("the task to start", Duration::from_secs(20), || {
        task.state().unwrap() == State::Processing
    });
    signal(&victim, "KILL");
    assert_eq!(exit_code(victim, Duration::from_secs(20)), -1);
    wait_for_the_only_worker_to_time_out(db);
    // Two rescuers look at the same time; the task is replaced once and runs once.
    let rescuers: Vec<Child> = (0..2)
        .map(|i| {
            spawn_worker(
                db,
                &["--until-done", "--tick", "0.2", "--label", &format!("r{i}")],
            )
        })
        .collect();
    wait_until("the rescue", Duration::from_secs(20), || {
        task.state().unwrap() == State::Interrupted
    });
    let replacement = task.exec().unwrap().replaced_by.unwrap();
    wait_until("the replacement to run", Duration::from_secs(20), || {
        TaskExec::get(replacement).unwrap().state == State::Succeeded
    });
    for rescuer in rescuers {
        assert_eq!(exit_code(rescuer, Duration::from_secs(20)), 0);
    }
    assert_eq!(db.count("task_name = 'sleepy'"), 2);
    assert_eq!(db.side_effects(), vec![1]);
    let exec = task.exec().unwrap();
    assert!(
        exec.error
            .unwrap()
            .contains("worker doomed sent no heartbeat")
    );
}

/// Queues ten quick `record` tasks (0..10), then five `sleepy` ones of `sleep_ms` (100..105),
/// and starts worker `label` with one slot and a claim-ahead buffer of four. Returns when the
/// first `sleepy` runs with the other four in its buffer: the quick tasks taught it that its
/// tasks are short, so it claims ahead, and the slow one holds the slot.
fn worker_with_a_full_buffer(db: &TestDb, label: &str, sleep_ms: u64) -> Child {
    db.create_side_effects();
    record::queue_many((0..10).map(|n| (n,))).unwrap();
    sleepy::queue_many((100..105).map(|n| (sleep_ms, n))).unwrap();
    let worker = spawn_worker(
        db,
        &[
            "--label",
            label,
            "--concurrency",
            "1",
            "--claim-ahead",
            "4",
            "--timeout",
            "1",
            "--tick",
            "0.2",
        ],
    );
    let held = format!("state = 'processing' AND worker = '{label}' AND task_name = 'sleepy'");
    wait_until(
        "one sleepy task to run and four to wait in the buffer",
        Duration::from_secs(20),
        || db.count(&held) == 5,
    );
    assert_eq!(db.side_effects().len(), 10, "only the quick tasks have run");
    worker
}

/// Every task's side effect, sorted: each of the quick and the sleepy tasks exactly once.
fn assert_each_ran_once(db: &TestDb) {
    let mut ran = db.side_effects();
    ran.sort_unstable();
    let expected: Vec<i64> = (0..10).chain(100..105).collect();
    assert_eq!(ran, expected);
}

fn killed_worker_with_a_full_claim_ahead_buffer_loses_nothing(db: &TestDb) {
    let victim = worker_with_a_full_buffer(db, "doomed", 10_000);
    signal(&victim, "KILL");
    assert_eq!(exit_code(victim, Duration::from_secs(20)), -1);
    wait_for_the_only_worker_to_time_out(db);
    let rescuer = spawn_worker(
        db,
        &[
            "--until-done",
            "--tick",
            "0.2",
            "--concurrency",
            "5",
            "--label",
            "rescuer",
        ],
    );
    assert_eq!(exit_code(rescuer, Duration::from_secs(60)), 0);
    // The running one and the four buffered ones are rescued alike: interrupted once, each
    // with one replacement, which ran.
    assert_eq!(
        db.count("state = 'interrupted' AND replaced_by IS NOT NULL"),
        5
    );
    assert_eq!(db.count("state = 'interrupted'"), 5);
    assert_eq!(db.count("state = 'succeeded'"), 15);
    assert_eq!(db.count("state NOT IN ('succeeded', 'interrupted')"), 0);
    assert_each_ran_once(db);
}

fn first_sigint_hands_back_the_claim_ahead_buffer_unstarted(db: &TestDb) {
    let worker = worker_with_a_full_buffer(db, "stopping", 1_500);
    signal(&worker, "INT");
    assert_eq!(exit_code(worker, Duration::from_secs(20)), 0);
    // The running task finished; the buffered ones are back in the queue as if never
    // claimed: not interrupted, no replacement, no worker.
    assert_eq!(db.count("task_name = 'sleepy' AND state = 'succeeded'"), 1);
    assert_eq!(
        db.count(
            "task_name = 'sleepy' AND state = 'queued' AND worker IS NULL AND started IS NULL"
        ),
        4
    );
    assert_eq!(db.count("state = 'interrupted'"), 0);
    let rest = run(db, &["worker", "--until-done", "--concurrency", "4"]);
    assert_eq!(rest.status.code(), Some(0));
    assert_eq!(db.count("state = 'succeeded'"), 15);
    assert_each_ran_once(db);
}

/// Found by the long chaos run: a worker paused (or starved, or its whole machine frozen) past
/// the heartbeat timeout came back to find every other worker's heartbeat stale, theirs
/// having stalled with it (on SQLite, behind the write lock it held), and rescued their
/// running tasks. A worker whose own loop or heartbeat stalled waits a heartbeat timeout
/// before it judges others.
fn workers_paused_together_rescue_none_of_each_other(db: &TestDb) {
    db.create_side_effects();
    sleepy::queue_many((1..=4).map(|n| (6_000, n))).unwrap();
    let args = |label: &'static str| {
        [
            "--label",
            label,
            "--timeout",
            "1.5",
            "--tick",
            "0.2",
            "--concurrency",
            "2",
            "--claim-ahead",
            "0",
        ]
    };
    let a = spawn_worker(db, &args("a"));
    let b = spawn_worker(db, &args("b"));
    wait_until("both workers to run tasks", Duration::from_secs(30), || {
        db.count("state = 'processing' AND worker = 'a'") > 0
            && db.count("state = 'processing' AND worker = 'b'") > 0
    });
    signal(&a, "STOP");
    signal(&b, "STOP");
    // The fault itself: the whole "machine" frozen for twice the heartbeat timeout.
    std::thread::sleep(Duration::from_secs(3));
    signal(&a, "CONT");
    signal(&b, "CONT");
    wait_until("every task to end", Duration::from_secs(60), || {
        db.count("state IN ('queued', 'sleeping', 'processing')") == 0
    });
    signal(&a, "INT");
    signal(&b, "INT");
    assert_eq!(exit_code(a, Duration::from_secs(20)), 0);
    assert_eq!(exit_code(b, Duration::from_secs(20)), 0);
    assert_eq!(
        db.count("state = 'interrupted'"),
        0,
        "a live worker was rescued"
    );
    assert_eq!(db.count("state = 'succeeded'"), 4);
}

/// Found by the chaos run: a worker paused while an async task slept, and resumed after the
/// task's time limit, recorded the task as timed out although its body then ran to its end
/// (its side effect happened, and the retry repeated it). The limit now races the task in
/// the task itself, which is polled first: a task that gets to its end succeeds.
fn async_task_that_ends_as_its_paused_worker_resumes_is_not_timed_out(db: &TestDb) {
    use toosimple_tests::tasks::async_sleepy_with_timeout;
    db.create_side_effects();
    // Well within its 1 s limit when the worker is not paused.
    let task = async_sleepy_with_timeout::queue(600, 7).unwrap();
    let (worker, lines) = spawn_logged_worker(
        db,
        &["--timeout", "60", "--tick", "0.2", "--concurrency", "1"],
    );
    wait_for_line(&lines, "task started", Duration::from_secs(20));
    signal(&worker, "STOP");
    // The fault itself: a pause longer than the task's limit.
    std::thread::sleep(Duration::from_millis(2_000));
    signal(&worker, "CONT");
    wait_until("the task to end", Duration::from_secs(20), || {
        task.state().unwrap().is_finished()
    });
    signal(&worker, "INT");
    assert_eq!(exit_code(worker, Duration::from_secs(20)), 0);
    let exec = task.exec().unwrap();
    assert_eq!((exec.state, exec.error), (State::Succeeded, None));
    assert_eq!(db.side_effects(), vec![7]);
}

/// Fencing: a worker paused (SIGSTOP) past its heartbeat timeout has its task rescued by
/// another; resumed, it finishes the task's body, and the outcome it then tries to record is
/// refused, logged, and changes nothing: the rescue's record of the row stands.
fn paused_worker_resumed_after_its_rescue_has_its_late_outcome_refused(db: &TestDb) {
    db.create_side_effects();
    let task = sleepy::queue(2_000, 1).unwrap();
    let (paused, lines) = spawn_logged_worker(
        db,
        &[
            "--label",
            "paused",
            "--timeout",
            "1",
            "--tick",
            "0.2",
            "--concurrency",
            "1",
        ],
    );
    wait_until("the task to start", Duration::from_secs(20), || {
        task.state().unwrap() == State::Processing
    });
    signal(&paused, "STOP");
    wait_until(
        "the paused worker to time out",
        Duration::from_secs(20),
        || {
            toosimple_core::WorkerStatus::list_in(&db.store)
                .unwrap()
                .iter()
                .any(|s| s.label == "paused" && s.state() == toosimple_core::WorkerState::TimedOut)
        },
    );
    let rescuer = spawn_worker(db, &["--until-done", "--tick", "0.2", "--label", "rescuer"]);
    assert_eq!(exit_code(rescuer, Duration::from_secs(60)), 0);
    let rescued = task.exec().unwrap();
    assert_eq!(rescued.state, State::Interrupted);
    let replacement = TaskExec::get(rescued.replaced_by.unwrap()).unwrap();
    assert_eq!(replacement.state, State::Succeeded);

    signal(&paused, "CONT");
    wait_for_line(
        &lines,
        "dropped the outcome of executions another worker had rescued",
        Duration::from_secs(30),
    );
    signal(&paused, "INT");
    assert_eq!(exit_code(paused, Duration::from_secs(20)), 0);
    let after = task.exec().unwrap();
    assert_eq!(
        (after.state, after.error, after.finished, after.worker),
        (
            rescued.state,
            rescued.error,
            rescued.finished,
            rescued.worker
        )
    );
    assert_eq!(
        db.count("task_name = 'sleepy'"),
        2,
        "no further replacement"
    );
    // At least once: the paused run's body and its replacement's both ran.
    assert_eq!(db.side_effects(), vec![1, 1]);
}

fn until_done_and_once_exit_0(db: &TestDb) {
    db.create_side_effects();
    record::queue_many((0..3).map(|n| (n,))).unwrap();
    let once = run(db, &["worker", "--once", "--concurrency", "1"]);
    assert_eq!(once.status.code(), Some(0));
    assert_eq!(db.side_effects().len(), 1);
    // PostgreSQL here trusts local connections, so a password in the URL is accepted and
    // must never be shown; SQLite URLs have none.
    const PASSWORD: &str = "s3cret-pw";
    let url = db.url.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{PASSWORD}@"),
        1,
    );
    let done = db
        .app(APP)
        .env("TOOSIMPLE_DATABASE_URL", &url)
        .args([
            "worker",
            "--until_done",
            "--no_schedules",
            "--exclude_queue",
            "q1",
        ])
        .output()
        .expect("run the app");
    assert_eq!(done.status.code(), Some(0));
    assert_eq!(db.side_effects().len(), 3);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("worker started") && stderr.contains("task ended"),
        "{stderr}"
    );
    // The database's password never reaches the log.
    if url.starts_with("postgres") {
        assert!(url.contains(PASSWORD), "{url}");
        assert!(stderr.contains("postgres:***@"), "{stderr}");
    }
    assert!(!stderr.contains(PASSWORD), "{stderr}");
}

fn migrate_status_and_tasks(db: &TestDb) {
    let migrate = run(db, &["migrate"]);
    assert!(migrate.status.success());
    assert!(stdout(&migrate).contains("migrations applied"));

    add::queue(1, 2).unwrap();
    add::queue(3, 4).unwrap();
    let status = run(db, &["status"]);
    assert!(status.status.success());
    let text = stdout(&status);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["default", "queued", "2"]),
        "{text}"
    );

    run(db, &["worker", "--until-done", "--label", "status-check"]);
    let status = run(db, &["status", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        value["counts"],
        json!([{"queue": "default", "state": "succeeded", "count": 2}])
    );
    assert_eq!(value["workers"][0]["label"], "status-check");
    assert_eq!(value["workers"][0]["state"], "stopped");

    // Finding: `status` listed every worker that ever stopped. One stopped long ago is
    // hidden, and counted; `--all` lists it.
    run(db, &["worker", "--until-done", "--label", "long-gone"]);
    db.execute(
        "UPDATE worker_statuses SET stopped = '2020-01-01 00:00:00', \
         last_tick = '2020-01-01 00:00:00' WHERE label = 'long-gone'",
    );
    let text = stdout(&run(db, &["status"]));
    assert!(
        text.contains("status-check")
            && !text.contains("long-gone")
            && text.contains(
                "(1 worker stopped over an hour ago not shown: `status --all` lists every worker)"
            ),
        "{text}"
    );
    let text = stdout(&run(db, &["status", "--all"]));
    assert!(
        text.contains("status-check") && text.contains("long-gone"),
        "{text}"
    );
    let value: serde_json::Value =
        serde_json::from_slice(&run(db, &["status", "--json"]).stdout).unwrap();
    assert_eq!(value["workers"].as_array().unwrap().len(), 1);

    let tasks = run(db, &["tasks"]);
    let text = stdout(&tasks);
    let send = text
        .lines()
        .find(|l| l.starts_with("mail.send"))
        .expect("mail.send listed");
    let columns: Vec<&str> = send.split_whitespace().collect();
    assert_eq!(
        &columns[..7],
        ["mail.send", "emails", "5", "3", "2s", "yes", "30s"]
    );
}

fn enqueue_requeue_cancel_and_purge(db: &TestDb) {
    let enqueue = run(db, &["enqueue", "add", r#"{"a": 20, "b": 22}"#]);
    assert!(enqueue.status.success());
    let first = TaskExec::list(&Default::default()).unwrap()[0].clone();
    assert_eq!(
        stdout(&enqueue).trim(),
        format!("enqueued add as #{} (queued)", first.id)
    );
    assert_eq!(first.args, json!({"a": 20, "b": 22}));

    let later = run(
        db,
        &[
            "enqueue",
            "add",
            r#"{"a": 1, "b": 1}"#,
            "--due",
            "2037-01-01T00:00:00Z",
        ],
    );
    assert!(stdout(&later).contains("(sleeping)"));

    run(db, &["worker", "--until-done"]);
    assert_eq!(TaskExec::get(first.id).unwrap().result, Some(json!(42)));

    let requeue = run(db, &["requeue", &first.id.to_string()]);
    assert!(requeue.status.success());
    let copy = TaskExec::list(&Default::default()).unwrap()[0].clone();
    assert_eq!(
        stdout(&requeue).trim(),
        format!("requeued #{} as #{}", first.id, copy.id)
    );
    assert_eq!(
        (copy.state, copy.args.clone()),
        (State::Queued, first.args.clone())
    );

    let cancel = run(db, &["cancel", &copy.id.to_string()]);
    assert_eq!(stdout(&cancel).trim(), format!("cancelled #{}", copy.id));
    // Finding: cancelling a finished execution exited 0, as if it had worked.
    let again = run(db, &["cancel", &first.id.to_string()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again).trim(),
        format!(
            "error: cannot cancel #{}: it has already finished (succeeded); only sleeping, queued or running executions can be cancelled",
            first.id
        )
    );
    assert_eq!(stdout(&again), "");
    let missing = run(db, &["cancel", "987654"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no task execution with id 987654"));

    // A running execution: `show` and `status` give its progress; `cancel` records a request,
    // shown until its worker honours it.
    let running = add::queue(5, 6).unwrap().id();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'w', progress = 0.25, \
         progress_message = 'a quarter' WHERE id = {running}"
    ));
    let show = run(db, &["show", &running.to_string()]);
    assert!(show.status.success());
    assert!(
        stdout(&show).contains("progress:  25% a quarter"),
        "{}",
        stdout(&show)
    );
    let cancel = run(db, &["cancel", &running.to_string()]);
    assert!(cancel.status.success());
    assert!(
        stdout(&cancel).starts_with(&format!("cancel requested for #{running}: it is running")),
        "{}",
        stdout(&cancel)
    );
    let show = run(db, &["show", &running.to_string()]);
    assert!(
        stdout(&show).contains("cancel requested at "),
        "{}",
        stdout(&show)
    );
    let status = run(db, &["status"]);
    assert!(
        stdout(&status).contains("25% a quarter (cancel requested)"),
        "{}",
        stdout(&status)
    );
    let shown = run(db, &["show", &running.to_string(), "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["progress"]["fraction"], json!(0.25));
    assert!(shown["cancel_requested"].is_string(), "{shown}");
    // No worker runs it: out of the way of the purge below.
    db.execute(&format!("DELETE FROM task_execs WHERE id = {running}"));

    // Nothing is old enough yet; then everything finished is.
    // Finding: the age was shown as "604800s".
    let keep = run(db, &["purge", "--older-than", "7d"]);
    assert_eq!(
        stdout(&keep).trim(),
        "deleted 0 finished execution(s) older than 7 days"
    );
    let keep = run(db, &["purge", "--older-than", "1h"]);
    assert_eq!(
        stdout(&keep).trim(),
        "deleted 0 finished execution(s) older than 1 hour"
    );
    // Two hours pass for the finished rows (their times moved back, not waited for).
    db.age_finished(chrono::TimeDelta::hours(2));
    let purge = run(db, &["purge", "--older_than", "1h", "--state", "cancelled"]);
    assert!(stdout(&purge).contains("deleted 1"), "{}", stdout(&purge));
    let purge = run(db, &["purge", "--older-than", "1h"]);
    assert!(stdout(&purge).contains("deleted 1"), "{}", stdout(&purge));
    assert_eq!(db.count("1 = 1"), 1, "only the sleeping one is left");

    // MariaDB and MySQL receive diesel's times as TIMESTAMP values, whose range ends in 2038:
    // a later due is refused there by name, with nothing stored; the others store it.
    let far = run(
        db,
        &[
            "enqueue",
            "add",
            r#"{"a": 1, "b": 1}"#,
            "--due",
            "2100-01-01T00:00:00Z",
        ],
    );
    if db.store.backend() == toosimple_core::Backend::Mysql {
        assert_eq!(far.status.code(), Some(1));
        assert!(
            stderr(&far).contains("due 2100-01-01 00:00:00 UTC is outside"),
            "{}",
            stderr(&far)
        );
    } else {
        assert!(stdout(&far).contains("(sleeping)"), "{}", stdout(&far));
    }
}

/// `enqueue`'s options for one call are stored on the row; options no worker could honour exit
/// 2 with what to write, and store nothing.
fn enqueue_takes_one_calls_options(db: &TestDb) {
    let done = run(
        db,
        &[
            "enqueue",
            "add",
            r#"{"a": 1, "b": 2}"#,
            "--queue",
            "bulk",
            "--priority",
            "-1",
            "--retries",
            "2",
            "--retry-delay",
            "5s",
            "--timeout",
            "1500ms",
            "--ttl",
            "7d",
            "--due",
            "2030-01-01T08:00:00Z",
        ],
    );
    assert_eq!(done.status.code(), Some(0));
    assert!(stdout(&done).contains("(sleeping)"), "{}", stdout(&done));
    let exec = &TaskExec::list_in(&db.store, &TaskExecFilter::default()).unwrap()[0];
    assert_eq!(exec.queue, "bulk");
    assert_eq!(exec.priority, -1);
    assert_eq!(exec.retries, 2);
    assert_eq!(exec.retry_delay, 5);
    assert_eq!(exec.timeout, Some(Duration::from_millis(1_500)));
    assert_eq!(
        exec.ttl,
        Some(toosimple_core::Ttl::After(Duration::from_secs(7 * 86_400)))
    );
    assert_eq!(exec.due.to_rfc3339(), "2030-01-01T08:00:00+00:00");
    for (flag, value, says) in [
        ("--timeout", "0", "a time limit of 0 fails every run"),
        ("--retries", "-2", "-2"),
        ("--queue", "", "queue"),
        ("--ttl", "soon", "soon"),
    ] {
        let refused = run(db, &["enqueue", "add", r#"{"a": 1, "b": 2}"#, flag, value]);
        assert_eq!(refused.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(flag) && stderr.contains(says), "{stderr}");
    }
    assert_eq!(db.count("1 = 1"), 1);
}

fn enqueue_and_worker_name_registered_hooks(db: &TestDb) {
    db.create_side_effects();
    let hooked = run(
        db,
        &[
            "enqueue",
            "add",
            r#"{"a": 1, "b": 2}"#,
            "--hook",
            "note_execution",
        ],
    );
    assert_eq!(hooked.status.code(), Some(0));
    let failing = run(db, &["enqueue", "fail_with", r#"{"message": "no"}"#]);
    assert_eq!(failing.status.code(), Some(0));
    let execs = TaskExec::list_in(&db.store, &TaskExecFilter::default()).unwrap();
    let (failed, added) = (execs[0].id, execs[1].id);
    assert_eq!(execs[1].hook.as_deref(), Some("note_execution"));
    // The call's hook notes the sum; the worker's error hook notes the failure.
    let worked = run(
        db,
        &["worker", "--until-done", "--error-hook", "note_execution"],
    );
    assert_eq!(worked.status.code(), Some(0));
    let mut noted = db.side_effects();
    noted.sort_unstable();
    assert_eq!(noted, vec![added, failed]);
    // An unknown name is a usage error that lists the registered hooks; nothing is stored.
    for args in [
        &["enqueue", "add", r#"{"a": 1, "b": 2}"#, "--hook", "nope"][..],
        &["worker", "--until-done", "--error-hook", "nope"][..],
    ] {
        let refused = run(db, args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("hook `nope` is not registered")
                && stderr.contains("failing_hook, hooks.panicking, note_execution"),
            "{stderr}"
        );
    }
    assert_eq!(db.count("1 = 1"), 2);
}

fn status_names_queued_tasks_no_online_worker_knows(db: &TestDb) {
    add::queue(1, 2).unwrap();
    record::queue(1).unwrap();
    record::queue(2).unwrap();
    // A task this binary does not even link, left by an older deploy.
    db.execute(
        "INSERT INTO task_execs (task_name, args, queue, priority, state, due, created, retries, retry_delay) \
         VALUES ('legacy.report', '{}', 'reports', 0, 'queued', '2030-01-01 00:00:00', '2030-01-01 00:00:00', 0, 0)",
    );
    let section = "queued, but unknown to every online worker";
    // No worker online: nothing to say (nothing runs anything).
    assert!(!stdout(&run(db, &["status"])).contains(section));
    // An online worker that links `add` only.
    let now = chrono::Utc::now();
    db.store
        .register_worker(&toosimple_core::store::WorkerRegistration {
            tasks: &["add"],
            label: "adder",
            queues: &[],
            excluded_queues: &[],
            heartbeat_timeout: 300.0,
            tick: 1.0,
            cluster: None,
            now,
        })
        .unwrap();
    let unknown = TaskExec::unknown_to_online_workers_in(&db.store, now).unwrap();
    let listed: Vec<(&str, &str, i64)> = unknown
        .iter()
        .map(|c| (c.task.as_str(), c.queue.as_str(), c.count))
        .collect();
    assert_eq!(
        listed,
        [("legacy.report", "reports", 1), ("record", "default", 2)]
    );
    let text = stdout(&run(db, &["status"]));
    let after = &text[text.find(section).expect("the section")..];
    assert!(
        after.contains("legacy.report") && after.contains("record"),
        "{text}"
    );
    assert!(!after.lines().any(|l| l.starts_with("add ")), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&run(db, &["status", "--json"]).stdout).unwrap();
    assert_eq!(json["unknown_to_online_workers"][1]["task"], "record");
    assert_eq!(json["unknown_to_online_workers"][1]["count"], 2);
    // Once it stopped, no worker is online again.
    db.store
        .stop_worker("adder", now, toosimple_core::EXIT_STOPPED, None, None)
        .unwrap();
    assert!(
        TaskExec::unknown_to_online_workers_in(&db.store, now)
            .unwrap()
            .is_empty()
    );
}

fn worker_and_enqueue_take_retention_settings(db: &TestDb) {
    let kept = run(
        db,
        &["enqueue", "add", r#"{"a": 1, "b": 1}"#, "--ttl", "keep"],
    );
    assert_eq!(kept.status.code(), Some(0));
    let also_kept = run(
        db,
        &["enqueue", "add", r#"{"a": 1, "b": 2}"#, "--ttl", "-1"],
    );
    assert_eq!(also_kept.status.code(), Some(0));
    let plain = run(db, &["enqueue", "add", r#"{"a": 1, "b": 3}"#]);
    assert_eq!(plain.status.code(), Some(0));
    let execs = TaskExec::list_in(&db.store, &TaskExecFilter::default()).unwrap();
    assert_eq!(execs[2].ttl, Some(toosimple_core::Ttl::Keep));
    assert_eq!(execs[1].ttl, Some(toosimple_core::Ttl::Keep));
    assert_eq!(execs[0].ttl, None);
    // A default of 0 deletes what sets no TTL as soon as it is recorded.
    let worked = run(
        db,
        &[
            "worker",
            "--until-done",
            "--result-ttl",
            "0",
            "--save-limit",
            "5",
        ],
    );
    assert_eq!(worked.status.code(), Some(0));
    assert_eq!(db.count("1 = 1"), 2);
    assert_eq!(db.count(&format!("id = {}", execs[0].id)), 0);
    for (flag, value) in [("--result-ttl", "soon"), ("--save-limit", "many")] {
        let refused = run(db, &["worker", "--until-done", flag, value]);
        assert_eq!(refused.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(flag), "{stderr}");
    }
    let refused = run(
        db,
        &["enqueue", "add", r#"{"a": 1, "b": 1}"#, "--ttl", "forever"],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`keep` (-1)"));
}

fn enqueue_reports_bad_input_clearly(db: &TestDb) {
    let unknown = run(db, &["enqueue", "nope", "{}"]);
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("task `nope` is not registered") && stderr.contains("mail.send"),
        "{stderr}"
    );

    let bad_json = run(db, &["enqueue", "add", "{a: 1"]);
    assert_eq!(bad_json.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_json.stderr).contains("invalid ARGS: not valid JSON"));

    // Arguments that would make the execution `Invalid` are refused before anything is stored.
    for (args, reason) in [
        (
            r#"{"a": "x", "b": 1}"#,
            "argument `a`: invalid type: string \"x\", expected i64",
        ),
        (r#"{"a": 1}"#, "argument `b` is missing"),
        (r#"{"a": 1, "b": 2, "c": 3}"#, "unexpected argument `c`"),
    ] {
        let refused = run(db, &["enqueue", "add", args]);
        assert_eq!(refused.status.code(), Some(1), "{args}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("invalid arguments for task `add`")
                && stderr.contains(reason)
                && stderr.contains("nothing was enqueued"),
            "{stderr}"
        );
    }

    let bad_due = run(db, &["enqueue", "add", "{}", "--due", "tomorrow"]);
    assert_eq!(bad_due.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad_due.stderr);
    assert!(
        said.contains("for '--due <DUE>'")
            && said.contains("write an RFC 3339 date such as 2030-01-01T08:00:00Z"),
        "{said}"
    );
    assert_eq!(db.count("1 = 1"), 0, "nothing was enqueued");

    let bad_flag = run(db, &["worker", "--once", "--until-done"]);
    assert_eq!(bad_flag.status.code(), Some(2));
}

fn schedules_and_run_schedule(db: &TestDb) {
    // Finding: with none linked, `schedules` printed only its header.
    let none = db
        .app(env!("CARGO_BIN_EXE_dupapp"))
        .arg("schedules")
        .output()
        .unwrap();
    assert!(none.status.success());
    assert!(
        stdout(&none).contains("(no schedules: none is linked into this binary"),
        "{}",
        stdout(&none)
    );

    // A worker registers the schedule. Finding: the registration time was shown as its last
    // occurrence.
    run(db, &["worker", "--until-done"]);
    let listed = run(db, &["schedules"]);
    assert!(listed.status.success());
    let text = stdout(&listed);
    let morning = text
        .lines()
        .find(|l| l.starts_with("morning"))
        .expect("morning listed");
    assert!(
        morning.contains("manual") && morning.contains("Manual: only when run on demand"),
        "{text}"
    );
    assert_eq!(morning.split_whitespace().nth(3), Some("never"), "{text}");
    let value: serde_json::Value =
        serde_json::from_slice(&run(db, &["schedules", "--json"]).stdout).unwrap();
    assert_eq!(value[0]["last_due"], serde_json::Value::Null);

    let ran = run(db, &["run-schedule", "morning"]);
    assert!(ran.status.success());
    let exec = TaskExec::list(&Default::default()).unwrap()[0].clone();
    assert_eq!(
        stdout(&ran).trim(),
        format!("enqueued schedule morning as #{}", exec.id)
    );
    assert_eq!(
        (exec.task_name.as_str(), exec.state),
        ("morning", State::Queued)
    );
    run(db, &["worker", "--until-done"]);

    let json = run(db, &["schedules", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value[0]["name"], "morning");
    assert_eq!(value[0]["last_task"], exec.id);
    assert_eq!(value[0]["last_task_state"], "succeeded");
    assert_eq!(value[0]["next_due"], serde_json::Value::Null);

    let unknown = run(db, &["run_schedule", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no schedule named `nope`"));
}

fn a_worker_that_cannot_start_exits_99_with_the_reason_recorded(db: &TestDb) {
    let output = db
        .app(env!("CARGO_BIN_EXE_dupapp"))
        .args(["worker", "--label", "broken"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(99));
    let status = toosimple_core::WorkerStatus::list_in(&db.store).unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].label, "broken");
    assert_eq!(status[0].state(), toosimple_core::WorkerState::Crashed);
    let log = status[0].exit_log.clone().unwrap();
    assert!(
        log.contains("task name `invoice` is defined twice"),
        "{log}"
    );
}

fn duplicate_schedule_names_stop_the_worker_at_startup(db: &TestDb) {
    let output = db
        .app(env!("CARGO_BIN_EXE_dupschedapp"))
        .args(["worker", "--once"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(99));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("schedule name `report` is used twice"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("dupschedapp.rs:").count(), 2, "{stderr}");
    // Without schedules the same program runs.
    let output = db
        .app(env!("CARGO_BIN_EXE_dupschedapp"))
        .args(["worker", "--once", "--no-schedules"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
}

/// Finding: executions of a task the worker binary does not link (the README's mail example
/// without `use toosimple_mail as _;`) stayed queued while `worker --until-done` exited 0
/// without a word; so did `--queue nonexistent`.
fn until_done_warns_of_tasks_it_does_not_link_and_queues_no_task_uses(db: &TestDb) {
    db.create_side_effects();
    record::queue_many((0..3).map(|n| (n,))).unwrap();
    // toosimple-mail's task, which the test binaries do not link.
    toosimple_core::enqueue_by_name(&db.store, "mail.send", json!({}), None).unwrap();
    db.execute(
        "UPDATE task_execs SET task_name = 'toosimple_mail.send' WHERE task_name = 'mail.send'",
    );
    // schedapp links only its own task.
    let output = db
        .app(env!("CARGO_BIN_EXE_schedapp"))
        .env("NO_COLOR", "1")
        .args(["worker", "--until-done", "--no-schedules"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let log = stderr(&output);
    let record = "3 queued executions of `record`, a task this binary does not link";
    let mail = "1 queued execution of `toosimple_mail.send`, a task this binary does not link: no worker of this binary will run it; add `use toosimple_mail as _;`";
    // Once at start, once at the exit.
    assert_eq!(log.matches(record).count(), 2, "{log}");
    assert_eq!(log.matches(mail).count(), 2, "{log}");
    assert_eq!(db.count("state = 'queued'"), 4);

    let output = run(db, &["worker", "--until-done", "--queue", "nonexistent"]);
    assert_eq!(output.status.code(), Some(0));
    let log = stderr(&output);
    assert!(
        log.contains("no task linked into this binary uses queue `nonexistent`"),
        "{log}"
    );
    // This binary links `record`: nothing to say about it, and it runs.
    let output = run(db, &["worker", "--until-done"]);
    let log = stderr(&output);
    assert!(!log.contains("of `record`") && log.contains(mail), "{log}");
    assert_eq!(db.count("task_name = 'record' AND state = 'succeeded'"), 3);
}

/// Finding: `status | head` panicked with "failed printing to stdout: Broken pipe" and a
/// backtrace once `head` had read its lines.
fn output_into_a_closed_pipe_ends_quietly(db: &TestDb) {
    add::queue(1, 2).unwrap();
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["tasks"],
        &["schedules"],
        &["schedules", "--json"],
    ] {
        // The reading end is gone before the app writes: its first line meets the closed pipe.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = db
            .app(APP)
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// Finding: ANSI colour codes went into log files and pipes unless NO_COLOR was set.
fn logs_into_a_pipe_have_no_colour_codes(db: &TestDb) {
    record::queue(1).unwrap();
    db.create_side_effects();
    let output = db
        .app(APP)
        .env_remove("NO_COLOR")
        .args(["worker", "--until-done"])
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(log.contains("worker started"), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// Adds `n` failed executions (up to 100,000) in one statement, as a long history holds.
fn insert_failed(db: &TestDb, n: i64) {
    let digits = "(SELECT 0 AS x UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    db.execute(&format!(
        "INSERT INTO task_execs (task_name, args, queue, priority, state, due, created, finished, \
         retries, retry_delay) SELECT 'add', '{{}}', 'default', 0, 'failed', \
         '2026-12-01 00:00:00', '2026-12-01 00:00:00', '2026-12-01 00:00:01', 0, 0 \
         FROM {digits} AS a, {digits} AS b, {digits} AS c, {digits} AS d, {digits} AS e \
         WHERE a.x * 10000 + b.x * 1000 + c.x * 100 + d.x * 10 + e.x < {n}"
    ));
}

fn status_marks_estimated_counts(db: &TestDb) {
    run(db, &["migrate"]);
    add::queue(1, 2).unwrap();
    insert_failed(db, toosimple_core::EXACT_COUNT_LIMIT + 1);
    let status = run(db, &["status"]);
    assert!(status.status.success());
    let text = stdout(&status);
    // Queued: counted. Failed: more than `status` counts one by one, so estimated and marked.
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["default", "queued", "1"]),
        "{text}"
    );
    let failed = text
        .lines()
        .find(|l| l.split_whitespace().take(2).collect::<Vec<_>>() == ["default", "failed"])
        .unwrap_or_else(|| panic!("{text}"));
    assert!(failed.contains('≈'), "{text}");
    assert!(text.contains("(≈: an estimate;"), "{text}");

    let status = run(db, &["status", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let counts = value["counts"].as_array().unwrap();
    let failed = counts.iter().find(|c| c["state"] == "failed").unwrap();
    assert_eq!(failed["approximate"], true, "{value}");
    assert!(failed["count"].as_i64().unwrap() > toosimple_core::EXACT_COUNT_LIMIT);
    let queued = counts.iter().find(|c| c["state"] == "queued").unwrap();
    assert_eq!(
        queued,
        &json!({"queue": "default", "state": "queued", "count": 1})
    );
}
