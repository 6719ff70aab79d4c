//! Schedules created at run time (django-q's Schedule model, django-pq's `schedule_call`):
//! stored, listed, paused, resumed and removed through the API and `app schedule`, refused
//! before anything is stored when wrong, and materialized exactly once as `#[schedule]`s are.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use toosimple_core::store::QueueSelection;
use toosimple_core::{Every, NewSchedule, State, TaskExec, TaskExecFilter};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::maintenance::schedules::{Config, Materializer};

const APP: &str = env!("CARGO_BIN_EXE_testapp");

backend_suite!(
    a_stored_schedule_is_materialized_exactly_once_across_workers_and_repeats_n_times,
    the_window_and_the_week_days_filter_occurrences,
    pause_resume_and_remove,
    bad_input_is_refused_with_what_to_write_and_nothing_is_stored,
    the_cli_adds_lists_pauses_and_removes_and_a_worker_runs_it,
    only_the_workers_of_its_queue_materialize_it,
    its_hook_gets_each_run_and_its_result_is_the_latest_finished_run,
);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn materializer(label: &str) -> Materializer {
    Materializer::new(label, Config::default(), &QueueSelection::All)
}

fn executions(task: &str) -> Vec<TaskExec> {
    TaskExec::list(&TaskExecFilter::default().task_name(task)).unwrap()
}

fn a_stored_schedule_is_materialized_exactly_once_across_workers_and_repeats_n_times(db: &TestDb) {
    let start = at("2026-12-07T10:00:00Z");
    db.store
        .add_schedule(
            &NewSchedule::new("every-minute", "add", json!({"a": 1, "b": 2}))
                .every(Every::Seconds(60))
                .start(start)
                .repeat(2),
        )
        .unwrap();
    let (a, b) = (materializer("a"), materializer("b"));
    let now = start + TimeDelta::seconds(30);
    let first = a.run_once(&db.store, now).unwrap();
    let second = b.run_once(&db.store, now).unwrap();
    assert_eq!(first.enqueued.len(), 1, "{first:?}");
    assert!(
        second.enqueued.is_empty(),
        "the same occurrence once: {second:?}"
    );
    let made = executions("add");
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].due, start);
    assert_eq!(made[0].args, json!({"a": 1, "b": 2}));

    // The next minute: one more, then the repeats are used up.
    let later = start + TimeDelta::seconds(90);
    assert_eq!(b.run_once(&db.store, later).unwrap().enqueued.len(), 1);
    assert_eq!(a.run_once(&db.store, later).unwrap().enqueued.len(), 0);
    let much_later = start + TimeDelta::seconds(600);
    assert!(
        a.run_once(&db.store, much_later)
            .unwrap()
            .enqueued
            .is_empty()
    );
    assert_eq!(executions("add").len(), 2);
    let stored = &db.store.list_schedules().unwrap()[0];
    assert_eq!(stored.repeats_left, Some(0));
    assert_eq!(stored.next_due(much_later), None);
    // Its schedule_execs row is its own, not an unregistered schedule's.
    let rows = toosimple_core::ScheduleExec::list_in(&db.store).unwrap();
    let row = rows.iter().find(|r| r.name == "every-minute").unwrap();
    assert_eq!(row.state, toosimple_core::ScheduleState::Active);
}

fn the_window_and_the_week_days_filter_occurrences(db: &TestDb) {
    // 2026-12-07 is a Monday.
    db.store
        .add_schedule(
            &NewSchedule::new("hourly-mornings", "add", json!({"a": 2, "b": 2}))
                .every(Every::Seconds(3600))
                .start(at("2026-12-07T00:00:00Z"))
                .between("02:00/04:30".parse().unwrap())
                .weekdays("mon".parse().unwrap()),
        )
        .unwrap();
    let m = materializer("w");
    let report = m.run_once(&db.store, at("2026-12-07T05:30:00Z")).unwrap();
    assert_eq!(report.enqueued.len(), 1);
    assert_eq!(
        report.enqueued[0].2,
        at("2026-12-07T04:00:00Z"),
        "the last inside the window"
    );
    // Tuesday morning is no Monday.
    assert!(
        m.run_once(&db.store, at("2026-12-08T03:30:00Z"))
            .unwrap()
            .enqueued
            .is_empty()
    );
    let report = m.run_once(&db.store, at("2026-12-14T02:10:00Z")).unwrap();
    assert_eq!(report.enqueued[0].2, at("2026-12-14T02:00:00Z"));

    db.store
        .add_schedule(
            &NewSchedule::new("cron-until", "add", json!({"a": 3, "b": 3}))
                .every(Every::Cron {
                    expr: "0 9 * * *".into(),
                    tz: "Europe/Paris".into(),
                })
                .start(at("2026-12-01T00:00:00Z"))
                .until(at("2026-12-09T00:00:00Z")),
        )
        .unwrap();
    let report = m.run_once(&db.store, at("2026-12-08T12:00:00Z")).unwrap();
    let dues: Vec<_> = report
        .enqueued
        .iter()
        .filter(|e| e.0 == "cron-until")
        .collect();
    assert_eq!(dues.len(), 1);
    assert_eq!(dues[0].2, at("2026-12-08T08:00:00Z"), "09:00 in Paris");
    assert!(
        m.run_once(&db.store, at("2026-12-10T12:00:00Z"))
            .unwrap()
            .enqueued
            .iter()
            .all(|e| e.0 != "cron-until"),
        "nothing after its end"
    );
}

fn pause_resume_and_remove(db: &TestDb) {
    let start = Utc::now() - TimeDelta::seconds(3600);
    db.store
        .add_schedule(
            &NewSchedule::new("paused", "add", json!({"a": 1, "b": 1}))
                .every(Every::Seconds(60))
                .start(start),
        )
        .unwrap();
    let m = materializer("w");
    assert!(db.store.pause_schedule("paused", true).unwrap().paused);
    assert!(
        m.run_once(&db.store, Utc::now())
            .unwrap()
            .enqueued
            .is_empty()
    );
    let resumed = db.store.pause_schedule("paused", false).unwrap();
    assert!(!resumed.paused);
    // What fell due while paused is not caught up: the next minute is.
    assert!(
        m.run_once(&db.store, Utc::now())
            .unwrap()
            .enqueued
            .is_empty()
    );
    let report = m
        .run_once(&db.store, Utc::now() + TimeDelta::seconds(61))
        .unwrap();
    assert_eq!(report.enqueued.len(), 1, "{report:?}");
    db.store.remove_schedule("paused").unwrap();
    assert!(db.store.list_schedules().unwrap().is_empty());
    assert!(
        m.run_once(&db.store, Utc::now() + TimeDelta::seconds(300))
            .unwrap()
            .enqueued
            .is_empty()
    );
    assert_eq!(executions("add").len(), 1, "its execution stays");
    for error in [
        db.store.remove_schedule("paused").unwrap_err(),
        db.store.pause_schedule("ghost", true).unwrap_err(),
    ] {
        assert!(
            error.to_string().contains("`app schedule list` lists them"),
            "{error}"
        );
    }
}

fn bad_input_is_refused_with_what_to_write_and_nothing_is_stored(db: &TestDb) {
    db.store
        .add_schedule(
            &NewSchedule::new("taken", "add", json!({"a": 1, "b": 1})).every(Every::Seconds(5)),
        )
        .unwrap();
    let cases = [
        (
            NewSchedule::new("s", "nope", json!({})).every(Every::Seconds(5)),
            "task `nope` is not registered",
        ),
        (
            NewSchedule::new("s", "add", json!({"a": "one"})).every(Every::Seconds(5)),
            "invalid arguments for task `add`",
        ),
        (
            NewSchedule::new("s", "add", json!({"a": 1, "b": 1})).every(Every::Seconds(0)),
            "an interval of 0 would run without end: write e.g. --interval 30s",
        ),
        (
            NewSchedule::new("s", "add", json!({"a": 1, "b": 1})),
            "say when it runs: a cron expression",
        ),
        (
            NewSchedule::new("s", "add", json!({"a": 1, "b": 1})).every(Every::Cron {
                expr: "61 * * * *".into(),
                tz: "UTC".into(),
            }),
            "invalid schedule \"61 * * * *\"",
        ),
        (
            NewSchedule::new("morning", "add", json!({"a": 1, "b": 1})).every(Every::Seconds(5)),
            "a #[schedule] of this binary has this name",
        ),
        (
            NewSchedule::new("taken", "add", json!({"a": 1, "b": 1})).every(Every::Seconds(5)),
            "a stored schedule has this name already",
        ),
        (
            NewSchedule::new("s", "add", json!({"a": 1, "b": 1}))
                .every(Every::Seconds(5))
                .start(at("2030-01-01T00:00:00Z"))
                .until(at("2029-01-01T00:00:00Z")),
            "it would end",
        ),
    ];
    for (schedule, expected) in cases {
        let error = db.store.add_schedule(&schedule).unwrap_err().to_string();
        assert!(error.contains(expected), "{expected:?} in {error:?}");
    }
    let names: Vec<String> = db
        .store
        .list_schedules()
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["taken"], "nothing else was stored");
}

fn app(db: &TestDb, args: &[&str]) -> std::process::Output {
    db.app(APP).args(args).output().unwrap()
}

fn the_cli_adds_lists_pauses_and_removes_and_a_worker_runs_it(db: &TestDb) {
    let out = app(
        db,
        &[
            "schedule",
            "add",
            "sum",
            "add",
            r#"{"a": 20, "b": 22}"#,
            "--interval",
            "1h",
            "--repeat",
            "3",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("stored schedule sum (every 3600 s); next due "),
        "{stdout}"
    );
    // Refused before anything is stored, with what to write.
    for (args, expected) in [
        (
            vec!["--interval", "0"],
            "an interval under a second would run without end",
        ),
        (
            vec!["--interval", "5s", "--between", "2:00-18:30"],
            "HH:MM/HH:MM",
        ),
        (
            vec!["--interval", "5s", "--weekdays", "mon,caturday"],
            "e.g. mon,tue,wed,thu,fri",
        ),
        (
            vec!["--interval", "5s", "--repeat", "someday"],
            "neither a number of occurrences",
        ),
        (vec![], "--cron <EXPR>"),
    ] {
        let mut argv = vec!["schedule", "add", "bad", "add", r#"{"a": 1, "b": 2}"#];
        argv.extend(args);
        let out = app(db, &argv);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {stderr}");
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
    let out = app(
        db,
        &[
            "schedule",
            "add",
            "bad",
            "add",
            r#"{"a": "x"}"#,
            "--cron",
            "0 * * * *",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(db.store.list_schedules().unwrap().len(), 1);

    // A worker materializes its first occurrence (due at once) and runs it.
    let out = app(db, &["worker", "--until-done", "--tick", "100ms"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = executions("add");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, State::Succeeded);
    assert_eq!(runs[0].result, Some(json!(42)));

    let list = String::from_utf8_lossy(&app(db, &["schedule", "list"]).stdout).into_owned();
    let line = list
        .lines()
        .find(|l| l.starts_with("sum "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        line.contains("every 3600 s") && line.contains(" 2 "),
        "{line}"
    );
    assert!(app(db, &["schedule", "pause", "sum"]).status.success());
    let json: serde_json::Value =
        serde_json::from_slice(&app(db, &["schedule", "list", "--json"]).stdout).unwrap();
    assert_eq!(json[0]["paused"], true);
    assert_eq!(json[0]["repeats_left"], 2);
    assert!(app(db, &["schedule", "resume", "sum"]).status.success());
    assert!(app(db, &["schedule", "remove", "sum"]).status.success());
    let out = app(db, &["schedule", "remove", "sum"]);
    assert_eq!(out.status.code(), Some(1));
}

fn only_the_workers_of_its_queue_materialize_it(db: &TestDb) {
    db.store
        .add_schedule(
            &NewSchedule::new("reports", "add", json!({"a": 1, "b": 1}))
                .every(Every::Seconds(60))
                .on_queue("reports"),
        )
        .unwrap();
    let elsewhere = Materializer::new(
        "other",
        Config::default(),
        &QueueSelection::Only(vec!["emails".into()]),
    );
    assert!(
        elsewhere
            .run_once(&db.store, Utc::now())
            .unwrap()
            .enqueued
            .is_empty()
    );
    let serving = Materializer::new(
        "reporter",
        Config::default(),
        &QueueSelection::Only(vec!["reports".into()]),
    );
    assert_eq!(
        serving
            .run_once(&db.store, Utc::now())
            .unwrap()
            .enqueued
            .len(),
        1
    );
    assert_eq!(executions("add")[0].queue, "reports");
}

fn its_hook_gets_each_run_and_its_result_is_the_latest_finished_run(db: &TestDb) {
    db.create_side_effects();
    let folder = tempfile::tempdir().unwrap();
    let marker = folder.path().join("ran-once").display().to_string();
    let start = at("2026-12-07T10:00:00Z");
    let schedule = |hook: &str| {
        NewSchedule::new(
            "retried-sum",
            "fails_once",
            json!({"marker": marker, "a": 20, "b": 22}),
        )
        .every(Every::Seconds(3600))
        .start(start)
        .hook(hook)
    };
    // An unknown hook is refused, and nothing is stored.
    let refused = db
        .store
        .add_schedule(&schedule("no_such_hook"))
        .unwrap_err();
    assert!(refused.to_string().contains("no_such_hook"), "{refused}");
    assert!(db.store.list_schedules().unwrap().is_empty());

    let stored = db.store.add_schedule(&schedule("note_execution")).unwrap();
    assert_eq!(stored.hook.as_deref(), Some("note_execution"));
    assert_eq!(db.store.latest_schedule_run("retried-sum").unwrap(), None);
    let made = materializer("a")
        .run_once(&db.store, start + TimeDelta::seconds(1))
        .unwrap();
    assert_eq!(made.enqueued.len(), 1, "{made:?}");
    // Enqueued but not run: no finished run yet.
    assert_eq!(db.store.schedule_result("retried-sum").unwrap(), None);

    assert_eq!(
        db.worker().until_done().schedules(false).run(),
        toosimple_worker::Exit::Stopped
    );
    let first = TaskExec::get_in(&db.store, made.enqueued[0].1).unwrap();
    assert_eq!(first.state, State::Failed);
    assert_eq!(first.hook.as_deref(), Some("note_execution"));
    let retry = first.replaced_by.expect("retried once");
    // The hook got both runs, the failed one and its retry.
    let mut noted = db.side_effects();
    noted.sort_unstable();
    assert_eq!(noted, vec![first.id, retry]);

    // The latest run is the end of the occurrence's retry chain.
    let latest = db
        .store
        .latest_schedule_run("retried-sum")
        .unwrap()
        .unwrap();
    assert_eq!((latest.id, latest.state), (retry, State::Succeeded));
    assert_eq!(
        db.store.schedule_result("retried-sum").unwrap(),
        Some(json!(42))
    );
    let out = app(db, &["schedule", "result", "retried-sum"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Succeeded") || stdout.contains("succeeded"),
        "{stdout}"
    );
    assert!(stdout.contains("result: 42"), "{stdout}");
    let list = String::from_utf8_lossy(&app(db, &["schedule", "list"]).stdout).into_owned();
    assert!(list.contains("hook note_execution"), "{list}");
    let out = app(db, &["schedule", "result", "never-stored"]);
    assert_eq!(out.status.code(), Some(1));
}
