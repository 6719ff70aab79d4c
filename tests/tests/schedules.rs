//! Schedules: materialized exactly once, caught up on request, in their time zone.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};
use toosimple_core::{ScheduleDef, ScheduleExec, ScheduleState, State, TaskExec, TaskExecFilter};
use toosimple_tests::{TestDb, backend_suite, wait_until};

backend_suite!(
    catch_up_enqueues_every_missed_occurrence,
    without_catch_up_only_the_latest_runs,
    run_on_creation_runs_the_latest_occurrence_at_once,
    concurrent_passes_enqueue_each_occurrence_once,
    manual_schedules_only_run_on_demand,
    two_schedules_on_one_task_run_independently,
    removed_schedules_become_invalid,
    paris_time_zone_runs_each_local_occurrence_once_across_dst,
    eight_worker_processes_run_a_one_second_schedule_once_per_second,
);

fn at_args() -> toosimple_core::Result<Value> {
    Ok(json!({ "at": null }))
}

fn def(name: &'static str, cron: &'static str) -> ScheduleDef {
    ScheduleDef::new(name, "at_time", cron, at_args, "tests/schedules.rs").with_datetime_arg("at")
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap()
}

/// The executions of schedule `schedule`, oldest due first.
fn scheduled(db: &TestDb, schedule: &str) -> Vec<TaskExec> {
    use diesel::prelude::*;
    use toosimple_core::schema::task_execs::dsl as te;
    let mut conn = db.store.connection().unwrap();
    let ids: Vec<i64> = te::task_execs
        .filter(te::schedule.eq(schedule))
        .order(te::due)
        .select(te::id)
        .load(&mut *conn)
        .unwrap();
    ids.into_iter()
        .map(|id| TaskExec::get_in(&db.store, id).unwrap())
        .collect()
}

fn pass(
    db: &TestDb,
    defs: &[&ScheduleDef],
    now: DateTime<Utc>,
) -> toosimple_core::store::MaterializeReport {
    let names: Vec<&str> = defs.iter().map(|d| d.name()).collect();
    db.store.materialize_schedules(defs, &names, now).unwrap()
}

fn catch_up_enqueues_every_missed_occurrence(db: &TestDb) {
    let every_minute = def("every_minute", "* * * * *").with_catch_up(true);
    let start = minute(Utc::now()) + TimeDelta::seconds(10);
    let first = pass(db, &[&every_minute], start);
    assert_eq!(first.created, ["every_minute"]);
    assert!(first.enqueued.is_empty(), "a new schedule starts from now");
    // The workers were down for 30 minutes.
    let report = pass(db, &[&every_minute], start + TimeDelta::minutes(30));
    assert_eq!(report.enqueued.len(), 30);
    let execs = scheduled(db, "every_minute");
    assert_eq!(execs.len(), 30);
    for (i, exec) in execs.iter().enumerate() {
        let due = minute(start) + TimeDelta::minutes(i as i64 + 1);
        assert_eq!(exec.due, due);
        assert_eq!(exec.state, State::Sleeping);
        let at: DateTime<Utc> = exec.args["at"].as_str().unwrap().parse().unwrap();
        assert_eq!(at, due);
    }
    let row = &ScheduleExec::list_in(&db.store).unwrap()[0];
    assert_eq!(row.last_due, Some(minute(start) + TimeDelta::minutes(30)));
    assert_eq!(row.last_task, Some(execs[29].id));
    // A second pass at the same time finds nothing new.
    assert!(
        pass(db, &[&every_minute], start + TimeDelta::minutes(30))
            .enqueued
            .is_empty()
    );
    // The execution runs with its occurrence as argument.
    db.run_by_hand(execs[0].id);
    let result = TaskExec::get(execs[0].id).unwrap().result.unwrap();
    let at: DateTime<Utc> = result.as_str().unwrap().parse().unwrap();
    assert_eq!(at, execs[0].due);
}

fn without_catch_up_only_the_latest_runs(db: &TestDb) {
    let every_minute = def("latest_only", "* * * * *");
    let start = minute(Utc::now()) + TimeDelta::seconds(10);
    pass(db, &[&every_minute], start);
    let report = pass(db, &[&every_minute], start + TimeDelta::minutes(30));
    assert_eq!(report.enqueued.len(), 1);
    assert_eq!(report.enqueued[0].2, minute(start) + TimeDelta::minutes(30));
    assert_eq!(scheduled(db, "latest_only").len(), 1);
}

fn run_on_creation_runs_the_latest_occurrence_at_once(db: &TestDb) {
    let nightly = def("nightly", "0 3 * * *").with_run_on_creation(true);
    let now: DateTime<Utc> = "2026-06-10T12:00:00Z".parse().unwrap();
    let report = pass(db, &[&nightly], now);
    assert_eq!(report.enqueued.len(), 1);
    assert_eq!(
        report.enqueued[0].2,
        "2026-06-10T03:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert!(
        pass(db, &[&nightly], now + TimeDelta::hours(1))
            .enqueued
            .is_empty()
    );
    // Without run_on_creation, nothing runs before the next occurrence.
    let plain = def("plain_nightly", "0 3 * * *");
    assert!(pass(db, &[&plain], now).enqueued.is_empty());
}

fn concurrent_passes_enqueue_each_occurrence_once(db: &TestDb) {
    static EVERY_MINUTE: ScheduleDef = ScheduleDef::new(
        "busy",
        "at_time",
        "* * * * *",
        at_args,
        "tests/schedules.rs",
    )
    .with_datetime_arg("at")
    .with_catch_up(true);
    let start = minute(Utc::now()) + TimeDelta::seconds(10);
    pass(db, &[&EVERY_MINUTE], start);
    let later = start + TimeDelta::minutes(20);
    let passes: Vec<_> = (0..8)
        .map(|_| {
            let store = db.store.clone();
            std::thread::spawn(move || {
                store
                    .materialize_schedules(&[&EVERY_MINUTE], &["busy"], later)
                    .unwrap()
                    .enqueued
                    .len()
            })
        })
        .collect();
    let total: usize = passes.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, 20);
    let execs = scheduled(db, "busy");
    assert_eq!(execs.len(), 20);
    let mut dues: Vec<_> = execs.iter().map(|e| e.due).collect();
    dues.dedup();
    assert_eq!(dues.len(), 20);
}

fn manual_schedules_only_run_on_demand(db: &TestDb) {
    let by_hand = def("by_hand", "manual");
    let now = Utc::now();
    pass(db, &[&by_hand], now);
    assert!(
        pass(db, &[&by_hand], now + TimeDelta::days(400))
            .enqueued
            .is_empty()
    );
    // `morning` (the library's manual schedule) runs when asked, outside its cron.
    let handle = toosimple_core::run_schedule(&db.store, "morning").unwrap();
    let exec = handle.exec().unwrap();
    assert_eq!(
        (exec.task_name.as_str(), exec.state),
        ("morning", State::Queued)
    );
    assert_eq!(exec.args, json!({"name": "John"}));
    db.run_by_hand(exec.id);
    assert_eq!(
        handle.wait(Duration::from_secs(5)).unwrap(),
        json!("Good morning John !")
    );
    let err = toosimple_core::run_schedule(&db.store, "nope")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no schedule named `nope`") && err.contains("morning"),
        "{err}"
    );
}

fn two_schedules_on_one_task_run_independently(db: &TestDb) {
    let hourly = def("hourly", "0 * * * *").with_catch_up(true);
    let quarterly = def("quarter_past", "15 * * * *").with_catch_up(true);
    let start: DateTime<Utc> = "2026-06-10T00:30:00Z".parse().unwrap();
    pass(db, &[&hourly, &quarterly], start);
    let report = pass(db, &[&hourly, &quarterly], start + TimeDelta::hours(3));
    let mut got: Vec<(String, String)> = report
        .enqueued
        .iter()
        .map(|(name, _, due)| (name.clone(), due.format("%H:%M").to_string()))
        .collect();
    got.sort();
    let expected: Vec<(String, String)> = [
        ("hourly", "01:00"),
        ("hourly", "02:00"),
        ("hourly", "03:00"),
        ("quarter_past", "01:15"),
        ("quarter_past", "02:15"),
        ("quarter_past", "03:15"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, expected);
}

fn removed_schedules_become_invalid(db: &TestDb) {
    let old = def("old_report", "* * * * *").with_catch_up(true);
    let start = Utc::now();
    pass(db, &[&old], start);
    // A new version of the program no longer has it.
    let report = db
        .store
        .materialize_schedules(&[], &[], start + TimeDelta::hours(1))
        .unwrap();
    assert_eq!(report.invalidated, 1);
    assert!(report.enqueued.is_empty());
    let row = &ScheduleExec::list_in(&db.store).unwrap()[0];
    assert_eq!(
        (row.name.as_str(), row.state),
        ("old_report", ScheduleState::Invalid)
    );
    assert_eq!(db.count("1 = 1"), 0, "nothing was enqueued for it");
}

fn paris_time_zone_runs_each_local_occurrence_once_across_dst(db: &TestDb) {
    let paris = def("paris", "30 2 * * *")
        .with_tz("Europe/Paris")
        .with_catch_up(true);
    let start: DateTime<Utc> = "2026-03-27T12:00:00Z".parse().unwrap();
    pass(db, &[&paris], start);
    // Across the spring-forward night (Mar 29, 02:30 does not exist) ...
    let spring = pass(db, &[&paris], "2026-03-31T12:00:00Z".parse().unwrap());
    let dues: Vec<String> = spring.enqueued.iter().map(|e| e.2.to_rfc3339()).collect();
    assert_eq!(
        dues,
        [
            "2026-03-28T01:30:00+00:00", // 02:30 CET
            "2026-03-29T01:00:00+00:00", // 03:00 CEST: the missing 02:30 runs at 03:00
            "2026-03-30T00:30:00+00:00", // 02:30 CEST
            "2026-03-31T00:30:00+00:00",
        ]
    );
    // ... and the fall-back night (Oct 25, 02:30 happens twice): once per local day.
    db.execute("UPDATE schedule_execs SET last_due = '2026-10-23 12:00:00'");
    let fall = pass(db, &[&paris], "2026-10-26T12:00:00Z".parse().unwrap());
    let dues: Vec<String> = fall.enqueued.iter().map(|e| e.2.to_rfc3339()).collect();
    assert_eq!(
        dues,
        [
            "2026-10-24T00:30:00+00:00", // 02:30 CEST
            "2026-10-25T00:30:00+00:00", // the first 02:30 (CEST) only
            "2026-10-26T01:30:00+00:00", // 02:30 CET
        ]
    );
}

const SCHEDAPP: &str = env!("CARGO_BIN_EXE_schedapp");

fn eight_worker_processes_run_a_one_second_schedule_once_per_second(db: &TestDb) {
    // A tick of 5 s: the workers must wake for each occurrence, not only at their tick.
    let workers: Vec<Child> = (0..8)
        .map(|i| {
            Command::new(SCHEDAPP)
                .args(["worker", "--tick", "5", "--label", &format!("s{i}")])
                .env("TOOSIMPLE_DATABASE_URL", &db.url)
                .env("TOOSIMPLE_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let started = Utc::now();
    wait_until("ten occurrences to run", Duration::from_secs(40), || {
        db.count("task_name = 'every_second' AND state = 'succeeded'") >= 10
    });
    for worker in &workers {
        Command::new("kill")
            .args(["-INT", &worker.id().to_string()])
            .status()
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for mut worker in workers {
        loop {
            if let Some(status) = worker.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0));
                break;
            }
            assert!(Instant::now() < deadline, "a worker did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut execs = TaskExec::list(
        &TaskExecFilter::default()
            .task_name("every_second")
            .limit(1_000),
    )
    .unwrap();
    execs.sort_by_key(|e| e.due);
    let dues: Vec<DateTime<Utc>> = execs.iter().map(|e| e.due).collect();
    assert!(
        dues.len() >= 8,
        "expected about 10 occurrences, got {dues:?}"
    );
    for pair in dues.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            TimeDelta::seconds(1),
            "a gap or a duplicate: {dues:?}"
        );
    }
    assert!(
        dues[0] <= started + TimeDelta::seconds(3),
        "the first ran late: {dues:?}"
    );
    for exec in &execs {
        assert_eq!(
            exec.args["at"]
                .as_str()
                .unwrap()
                .parse::<DateTime<Utc>>()
                .unwrap(),
            exec.due
        );
        assert!(
            matches!(exec.state, State::Succeeded),
            "occurrence {} is {} (the workers stop gracefully)",
            exec.due,
            exec.state
        );
    }
    // Started about as its occurrence came, not at the 5 s tick: typically well within a
    // second, and none a tick late (one stall of a loaded machine is caught up, not missed).
    let mut late: Vec<TimeDelta> = execs
        .iter()
        .map(|exec| exec.started.unwrap() - exec.due)
        .collect();
    late.sort();
    assert!(
        late[late.len() / 2] < TimeDelta::milliseconds(1_000),
        "the median occurrence started late: {late:?}"
    );
    assert!(
        late[late.len() - 1] < TimeDelta::seconds(5),
        "an occurrence waited for the tick: {late:?}"
    );
}

/// The seed's schedules belong to a queue (`default` unless set), and a `--queue x` worker
/// materializes only x's: a schedule without a queue of its own follows its task's. It used
/// to be materialized by every worker, `--queue reports` ones too.
#[test]
fn a_schedule_without_a_queue_of_its_own_follows_its_tasks_queue() {
    use toosimple_core::store::QueueSelection;
    use toosimple_worker::maintenance::schedules::{Config, Materializer};
    // The one schedule linked here is `morning`'s, a task of queue `default`, with no queue.
    let morning = toosimple_core::schedules();
    assert_eq!(morning.len(), 1, "{morning:?}");
    assert_eq!(morning[0].queue(), None);
    let serves =
        |queues: QueueSelection| !Materializer::new("w", Config::default(), &queues).is_empty();
    assert!(serves(QueueSelection::All));
    assert!(serves(QueueSelection::Only(vec!["default".to_string()])));
    assert!(!serves(QueueSelection::Only(vec!["reports".to_string()])));
    assert!(!serves(QueueSelection::Except(vec!["default".to_string()])));
    assert!(serves(QueueSelection::Except(vec!["reports".to_string()])));
}
