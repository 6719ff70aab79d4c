//! Each maintenance duty's `run_once`, called with a chosen time, and its `Config` checks.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use toosimple_core::store::{ClaimRequest, QueueSelection, WorkerRegistration};
use toosimple_core::{State, TaskExec, WorkerStatus};
use toosimple_tests::tasks::record;
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::clock::{Clock, DatabaseClock};
use toosimple_worker::maintenance::{heartbeat, rescue, retention, wake};

backend_suite!(
    heartbeat_writes_the_chosen_time,
    rescue_spares_a_worker_within_its_heartbeat_timeout_and_takes_it_after,
    rescue_spares_rows_a_silent_worker_claimed_within_its_heartbeat_timeout,
    rescue_that_waited_for_the_database_defers,
    wake_queues_what_is_due_at_the_chosen_time,
    a_round_wakes_due_rows_only_when_its_claim_comes_up_short,
    retention_keeps_executions_whose_call_set_no_ttl,
    database_clock_reads_the_database_time,
);

fn register(db: &TestDb, label: &str, heartbeat_timeout: f64, now: chrono::DateTime<Utc>) {
    db.store
        .register_worker(&WorkerRegistration {
            tasks: &[],
            label,
            queues: &[],
            excluded_queues: &[],
            heartbeat_timeout,
            tick: 1.0,
            cluster: None,
            now,
        })
        .unwrap();
}

fn heartbeat_writes_the_chosen_time(db: &TestDb) {
    let start = Utc::now();
    register(db, "w", 5.0, start);
    let beat = heartbeat::Heartbeat::new("w", heartbeat::Config::default(), Default::default());
    let at = start + TimeDelta::seconds(42);
    assert_eq!(beat.run_once(&db.store, at).unwrap().at, at);
    let status = &WorkerStatus::list_in(&db.store).unwrap()[0];
    assert_eq!(
        status.last_tick.timestamp_millis(),
        at.timestamp_millis(),
        "{status:?}"
    );
    assert_eq!(status.heartbeat_timeout, 5.0);
}

fn rescue_spares_a_worker_within_its_heartbeat_timeout_and_takes_it_after(db: &TestDb) {
    let start = Utc::now();
    register(db, "busy", 5.0, start);
    let task = record::queue(1).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'busy' WHERE id = {}",
        task.id()
    ));
    let rescuer = rescue::Rescuer::new("rescuer", rescue::Config::default());
    // 4.9 s after its last beat it is alive: nothing to rescue.
    let alive = start + TimeDelta::milliseconds(4_900);
    assert_eq!(rescuer.run_once(&db.store, alive).unwrap().rescued, vec![]);
    assert_eq!(task.state().unwrap(), State::Processing);
    // Past its heartbeat timeout it is dead: rescued once, by whichever rescuer comes first.
    let dead = start + TimeDelta::milliseconds(5_100);
    let rescued = rescuer.run_once(&db.store, dead).unwrap().rescued;
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].0, task.id());
    let other = rescue::Rescuer::new("other", rescue::Config::default());
    assert_eq!(other.run_once(&db.store, dead).unwrap().rescued, vec![]);
    let exec = task.exec().unwrap();
    assert_eq!(exec.state, State::Interrupted);
    assert!(
        exec.error
            .as_deref()
            .unwrap()
            .contains("busy sent no heartbeat for 5 s"),
        "{exec:?}"
    );
    // A worker never rescues its own executions.
    register(db, "self", 1.0, start);
    let own = record::queue(2).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'self' WHERE id = {}",
        own.id()
    ));
    let me = rescue::Rescuer::new("self", rescue::Config::default());
    let later = start + TimeDelta::seconds(60);
    assert_eq!(me.run_once(&db.store, later).unwrap().rescued, vec![]);
}

/// Found by the chaos run: a worker back from an outage claims before its heartbeat lands,
/// and a worker started just then (its own start saw no outage to wait out) rescued the rows
/// claimed a moment before. A claim is dated by the database: rows claimed within the
/// worker's heartbeat timeout show it alive and are left alone.
fn rescue_spares_rows_a_silent_worker_claimed_within_its_heartbeat_timeout(db: &TestDb) {
    static ALL: QueueSelection = QueueSelection::All;
    let start = Utc::now();
    register(db, "back", 5.0, start);
    let task = record::queue(1).unwrap();
    // Its heartbeat is 10 s old, but it claimed the row just now.
    let claimed_at = start + TimeDelta::seconds(10);
    let claimed = db
        .store
        .claim(&ClaimRequest {
            worker: "back",
            task_names: &["record"],
            queues: &ALL,
            limit: 1,
            now: claimed_at,
            settings: &[],
            in_order: false,
        })
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let rescuer = rescue::Rescuer::new("newcomer", rescue::Config::default());
    let soon = claimed_at + TimeDelta::milliseconds(4_900);
    assert_eq!(rescuer.run_once(&db.store, soon).unwrap().rescued, vec![]);
    assert_eq!(task.state().unwrap(), State::Processing);
    // Silent for its whole heartbeat timeout since the claim too: dead, and rescued.
    let later = claimed_at + TimeDelta::milliseconds(5_100);
    let rescued = rescuer.run_once(&db.store, later).unwrap().rescued;
    assert_eq!(rescued.len(), 1, "{rescued:?}");
    assert_eq!(task.state().unwrap(), State::Interrupted);
}

/// Found by the long chaos run on SQLite: a worker paused while it held the write lock
/// stalled every writer, heartbeats included; when it resumed, the first rescue pass saw
/// every live worker silent and rescued them all. A pass that waited for the database rescues
/// nothing, since the others' heartbeats waited too.
fn rescue_that_waited_for_the_database_defers(db: &TestDb) {
    use diesel::connection::SimpleConnection;
    let start = Utc::now();
    register(db, "stalled", 1.0, start);
    let task = record::queue(1).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'stalled' WHERE id = {}",
        task.id()
    ));
    let dead = start + TimeDelta::seconds(60);
    // Another connection holds what a rescue needs (SQLite's write lock, the heartbeat table
    // on a server) for longer than a rescue may wait.
    let mut holder = db.store.with_own_pool(1).connection().unwrap();
    let (lock, unlock) = match db.store.backend() {
        toosimple_core::Backend::Sqlite => ("BEGIN IMMEDIATE", "COMMIT"),
        toosimple_core::Backend::Postgres => (
            "BEGIN; LOCK TABLE worker_statuses IN ACCESS EXCLUSIVE MODE",
            "COMMIT",
        ),
        toosimple_core::Backend::Mysql => ("LOCK TABLES worker_statuses WRITE", "UNLOCK TABLES"),
    };
    holder.batch_execute(lock).unwrap();
    let hold = toosimple_core::store::RESCUE_MAX_WAIT + Duration::from_millis(500);
    let release = std::thread::spawn(move || {
        std::thread::sleep(hold);
        holder.batch_execute(unlock).unwrap();
    });
    let rescuer = rescue::Rescuer::new("rescuer", rescue::Config::default());
    let waited = rescuer.run_once(&db.store, dead).unwrap();
    release.join().unwrap();
    assert!(waited.deferred, "{waited:?}");
    assert_eq!(waited.rescued, vec![]);
    assert_eq!(task.state().unwrap(), State::Processing);
    // With the database free again, the next pass rescues.
    let next = rescuer.run_once(&db.store, dead).unwrap();
    assert!(!next.deferred);
    assert_eq!(next.rescued.len(), 1, "{next:?}");
}

fn wake_queues_what_is_due_at_the_chosen_time(db: &TestDb) {
    let due = Utc::now() + TimeDelta::hours(1);
    let task = record::queue_at(due, 1).unwrap();
    let duty = wake::Wake::new(wake::Config::default());
    let before = due - TimeDelta::milliseconds(1);
    assert_eq!(duty.run_once(&db.store, before).unwrap().woken, 0);
    assert_eq!(task.state().unwrap(), State::Sleeping);
    assert_eq!(duty.run_once(&db.store, due).unwrap().woken, 1);
    assert_eq!(task.state().unwrap(), State::Queued);
}

/// A round (`Store::exchange`) claims first; only a claim that comes up short wakes the due
/// sleeping rows and claims again, so a worker with a backlog spends no statement on waking.
fn a_round_wakes_due_rows_only_when_its_claim_comes_up_short(db: &TestDb) {
    static ALL: QueueSelection = QueueSelection::All;
    let due = Utc::now() + TimeDelta::hours(1);
    let sleeping = record::queue_at(due, 1).unwrap();
    let queued = record::queue(2).unwrap();
    let request = |limit: usize| ClaimRequest {
        worker: "w",
        task_names: &["record"],
        queues: &ALL,
        limit,
        now: due,
        settings: &[],
        in_order: false,
    };
    // One free slot, one queued row: the claim is full, the due row sleeps on.
    let full = db.store.exchange(&[], &request(1)).unwrap();
    assert_eq!(full.woken, 0);
    assert_eq!(
        full.claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [queued.id()]
    );
    assert_eq!(sleeping.state().unwrap(), State::Sleeping);
    // Two free slots, nothing queued: the round wakes the due row and claims it.
    let short = db.store.exchange(&[], &request(2)).unwrap();
    assert_eq!(short.woken, 1);
    assert_eq!(
        short.claimed.iter().map(|c| c.id).collect::<Vec<_>>(),
        [sleeping.id()]
    );
    assert_eq!(sleeping.state().unwrap(), State::Processing);
}

fn retention_keeps_executions_whose_call_set_no_ttl(db: &TestDb) {
    let task = record::queue(1).unwrap();
    db.run_by_hand(task.id());
    let duty = retention::Retention::new(retention::Config::default());
    let far = Utc::now() + TimeDelta::days(3650);
    assert_eq!(
        duty.run_once(&db.store, far).unwrap(),
        retention::Report::default()
    );
    assert!(TaskExec::get_in(&db.store, task.id()).is_ok());
}

fn database_clock_reads_the_database_time(db: &TestDb) {
    let clock = DatabaseClock::new();
    let offset = clock.sync(&db.store).unwrap();
    // The test server runs on this machine: its clock agrees with ours within a round trip.
    assert!(offset.abs() < TimeDelta::milliseconds(500), "{offset}");
    assert_eq!(clock.offset(), offset);
    let read = db.store.database_now().unwrap();
    assert!((clock.now() - read).abs() < TimeDelta::milliseconds(500));
}

#[test]
fn configs_have_named_defaults_and_refuse_nonsense() {
    assert_eq!(
        heartbeat::Config::default().heartbeat_timeout,
        heartbeat::DEFAULT_HEARTBEAT_TIMEOUT
    );
    assert_eq!(
        retention::Config::default().interval,
        retention::DEFAULT_RETENTION_INTERVAL
    );
    assert!(heartbeat::Config::default().validate().is_ok());
    let error = heartbeat::Config {
        interval: Duration::from_secs(2),
        heartbeat_timeout: Duration::from_secs(1),
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("--timeout") && error.contains("longer than the tick"),
        "{error}"
    );
    let error = rescue::Config {
        interval: Duration::ZERO,
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(error.contains("--tick"), "{error}");
    assert!(
        wake::Config {
            interval: Duration::ZERO
        }
        .validate()
        .is_err()
    );
    assert!(retention::Config::default().validate().is_ok());
}

/// Found by the long chaos run on PostgreSQL: a rescue reads the heartbeats, then updates the
/// rows in a later statement, which sees the commits made in between. A worker that
/// registered and claimed there had its fresh rows rescued as those of "a worker with no
/// status row", and one that beat there was rescued as silent. Each update now checks its
/// judgement again in its own statement. (On SQLite the rescue holds the write lock
/// throughout: nothing can commit in between.)
#[test]
fn postgres_rescue_spares_what_a_worker_committed_while_it_was_judging() {
    use toosimple_core::store::AFTER_RESCUE_JUDGED;
    let Some(db) = TestDb::postgres() else { return };
    static ALL: QueueSelection = QueueSelection::All;
    let start = Utc::now();
    // "silent" looks dead at the rescue's `now`, and beats while the rescue judges it.
    register(&db, "silent", 1.0, start);
    let silent_task = record::queue(1).unwrap();
    let claim = |worker: &'static str, now| {
        db.store
            .claim(&ClaimRequest {
                worker,
                task_names: &["record"],
                queues: &ALL,
                limit: 1,
                now,
                settings: &[],
                in_order: false,
            })
            .unwrap()
    };
    assert_eq!(claim("silent", start).len(), 1);
    let newcomer_task = record::queue(2).unwrap();
    let now = start + TimeDelta::seconds(60);
    let store = db.store.with_own_pool(1);
    *AFTER_RESCUE_JUDGED.lock().unwrap() = Some(Box::new(move || {
        // What two other workers commit while the rescue judges: a beat, and a newcomer's
        // registration and claim.
        heartbeat::Heartbeat::new("silent", heartbeat::Config::default(), Default::default())
            .run_once(&store, now)
            .unwrap();
        store
            .register_worker(&WorkerRegistration {
                tasks: &[],
                label: "newcomer",
                queues: &[],
                excluded_queues: &[],
                heartbeat_timeout: 5.0,
                tick: 1.0,
                cluster: None,
                now,
            })
            .unwrap();
        store
            .claim(&ClaimRequest {
                worker: "newcomer",
                task_names: &["record"],
                queues: &ALL,
                limit: 1,
                now,
                settings: &[],
                in_order: false,
            })
            .unwrap();
    }));
    let rescuer = rescue::Rescuer::new("rescuer", rescue::Config::default());
    let report = rescuer.run_once(&db.store, now);
    *AFTER_RESCUE_JUDGED.lock().unwrap() = None;
    assert_eq!(report.unwrap().rescued, vec![]);
    assert_eq!(silent_task.state().unwrap(), State::Processing);
    assert_eq!(newcomer_task.state().unwrap(), State::Processing);
    assert_eq!(
        newcomer_task.exec().unwrap().worker.as_deref(),
        Some("newcomer")
    );
}
