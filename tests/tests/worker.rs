//! The worker run in-process: order, queues, retries, failures, time-outs, rescue.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use toosimple_core::{State, TaskExec, TaskExecFilter};
use toosimple_tests::tasks::{
    always_fails, announced_sleep, async_sleepy_with_timeout, panics, record, record_high,
    record_q1, record_q2, sleepy_with_timeout,
};
use toosimple_tests::{TestDb, backend_suite, wait_until};
use toosimple_worker::Exit;
use toosimple_worker::clock::{Clock, TestClock};
use toosimple_worker::maintenance::rescue::{self, Rescuer};

backend_suite!(
    pgbouncer;
    runs_by_priority_then_due,
    runs_by_priority_then_due_across_the_queues_it_serves,
    serves_only_its_queues,
    excludes_queues,
    retries_with_doubling_delays_chained_by_replaced_by,
    panics_and_errors_are_failed_with_their_message,
    corrupt_arguments_make_the_execution_invalid,
    unknown_task_names_are_left_queued,
    async_tasks_are_cancelled_at_their_timeout,
    late_result_of_a_timed_out_sync_task_is_not_recorded,
    runs_sleeping_tasks_once_due,
    once_runs_one_round,
    rescues_the_tasks_of_a_silent_worker_exactly_once,
    graceful_shutdown_finishes_running_tasks,
    terminate_interrupts_and_replaces_running_tasks,
    release_unheld_requeues_only_this_workers_claims_it_does_not_run,
    the_heartbeat_goes_on_while_the_shared_pool_is_exhausted,
    unbounded_concurrency_and_claim_ahead_run_instead_of_overflowing,
);

fn execs(name: &str) -> Vec<TaskExec> {
    let mut all = TaskExec::list(&TaskExecFilter::default().task_name(name).limit(1000)).unwrap();
    all.reverse(); // oldest first
    all
}

fn runs_by_priority_then_due(db: &TestDb) {
    db.create_side_effects();
    let now = Utc::now();
    // Due order among equal priorities; all due already.
    record::queue_at(now - TimeDelta::seconds(10), 3).unwrap();
    record::queue_at(now - TimeDelta::seconds(30), 1).unwrap();
    record_high::queue_at(now - TimeDelta::seconds(5), 20).unwrap();
    record::queue_at(now - TimeDelta::seconds(20), 2).unwrap();
    record_high::queue_at(now - TimeDelta::seconds(6), 10).unwrap();
    assert_eq!(db.worker().concurrency(1).until_done().run(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![10, 20, 1, 2, 3]);
}

/// The claim takes each served queue's best rows and merges them: the order is global, as if
/// all were one queue, whether the worker names its queues or excludes some.
fn runs_by_priority_then_due_across_the_queues_it_serves(db: &TestDb) {
    db.create_side_effects();
    let now = Utc::now();
    let at = |queue: &str, priority: i32, ago: i64, n: i64| {
        record::with()
            .on_queue(queue)
            .priority(priority)
            .at(now - TimeDelta::seconds(ago))
            .queue(n)
            .unwrap();
    };
    at("q1", 0, 10, 3);
    at("q2", 0, 30, 1);
    at("default", 2, 5, 20);
    at("q2", 2, 6, 10);
    at("q1", 0, 20, 2);
    // First in claim order, in a queue the workers do not serve.
    at("q3", 9, 60, 99);
    let excluding = db.worker().exclude_queues(["q3"]).concurrency(1);
    assert_eq!(excluding.until_done().run(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![10, 20, 1, 2, 3]);

    at("q1", 0, 10, 6);
    at("q2", 1, 1, 5);
    at("default", 7, 60, 98);
    at("q1", 0, 40, 4);
    let naming = db.worker().queues(["q1", "q2"]).concurrency(1);
    assert_eq!(naming.until_done().run(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![10, 20, 1, 2, 3, 5, 4, 6]);
    assert_eq!(
        db.count("state = 'queued'"),
        2,
        "q3's and default's rows wait"
    );
}

fn serves_only_its_queues(db: &TestDb) {
    db.create_side_effects();
    record_q1::queue(1).unwrap();
    record_q2::queue(2).unwrap();
    record::queue(3).unwrap();
    assert_eq!(db.worker().queues(["q1"]).until_done().run(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![1]);
    assert_eq!(db.count("state = 'queued'"), 2);
}

fn excludes_queues(db: &TestDb) {
    db.create_side_effects();
    record_q1::queue(1).unwrap();
    record_q2::queue(2).unwrap();
    record::queue(3).unwrap();
    assert_eq!(
        db.worker().exclude_queues(["q1"]).until_done().run(),
        Exit::Stopped
    );
    let mut done = db.side_effects();
    done.sort();
    assert_eq!(done, vec![2, 3]);
    assert_eq!(db.count("state = 'queued' AND queue = 'q1'"), 1);
}

fn retries_with_doubling_delays_chained_by_replaced_by(db: &TestDb) {
    always_fails::queue().unwrap();
    // The retry delays (1, 2, 4 s) pass when the test moves the clock, not in real time.
    let clock = TestClock::new();
    let worker = db.worker().clock(clock.clone());
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    for failures in 1..=4 {
        wait_until(
            &format!("{failures} failed execution(s)"),
            Duration::from_secs(10),
            || db.count("task_name = 'always_fails' AND state = 'failed'") == failures,
        );
        if failures < 4 {
            // The retry waits: the clock has not moved, so it cannot be due.
            assert_eq!(
                db.count("task_name = 'always_fails' AND state = 'sleeping'"),
                1
            );
            clock.advance(Duration::from_secs(1 << (failures - 1)));
        }
    }
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);

    let chain = execs("always_fails");
    assert_eq!(chain.len(), 4);
    for (i, exec) in chain.iter().enumerate() {
        assert_eq!(exec.state, State::Failed);
        assert_eq!(exec.error.as_deref(), Some("it always fails"));
        assert_eq!(exec.retries, 3 - i as i32);
        assert_eq!(exec.retry_delay, 1 << i);
        assert_eq!(exec.replaced_by, chain.get(i + 1).map(|next| next.id));
    }
    // Each retry is due `retry_delay` of the failed execution after it failed: 1, 2, 4 s.
    for pair in chain.windows(2) {
        let waited = pair[1].due - pair[0].finished.unwrap();
        assert_eq!(
            waited.num_milliseconds(),
            pair[0].retry_delay * 1000,
            "{pair:?}"
        );
        // Claimed by the round that saw the clock reach its due, not a moment before.
        assert_eq!(pair[1].started.unwrap(), pair[1].due);
    }
}

fn panics_and_errors_are_failed_with_their_message(db: &TestDb) {
    let panicked = panics::queue("the bridge is out".into()).unwrap();
    let failed = toosimple_tests::tasks::fail_with::queue("no disk".into()).unwrap();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let panicked = panicked.exec().unwrap();
    assert_eq!(panicked.state, State::Failed);
    assert_eq!(
        panicked.error.as_deref(),
        Some("panicked: the bridge is out")
    );
    let failed = failed.exec().unwrap();
    assert_eq!(
        (failed.state, failed.error.as_deref()),
        (State::Failed, Some("no disk"))
    );
    assert_eq!(failed.replaced_by, None);
}

fn corrupt_arguments_make_the_execution_invalid(db: &TestDb) {
    let not_json = record::queue(1).unwrap();
    let wrong_type = record::queue(2).unwrap();
    let missing = record::queue(3).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET args = '{{not json' WHERE id = {}",
        not_json.id()
    ));
    db.execute(&format!(
        "UPDATE task_execs SET args = '{{\"n\": \"two\"}}' WHERE id = {}",
        wrong_type.id()
    ));
    db.execute(&format!(
        "UPDATE task_execs SET args = '{{}}' WHERE id = {}",
        missing.id()
    ));
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let error = |h: &toosimple_core::TaskHandle<()>| {
        let exec = h.exec().unwrap();
        assert_eq!(exec.state, State::Invalid);
        exec.error.unwrap()
    };
    assert!(error(&not_json).starts_with("arguments are not valid JSON"));
    assert!(error(&wrong_type).contains("argument `n`: invalid type: string \"two\""));
    assert_eq!(error(&missing), "argument `n` is missing");
}

fn unknown_task_names_are_left_queued(db: &TestDb) {
    db.create_side_effects();
    let h = record::queue(1).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET task_name = 'renamed.later' WHERE id = {}",
        h.id()
    ));
    record::queue(2).unwrap();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![2]);
    assert_eq!(h.exec().unwrap().state, State::Queued);
}

fn async_tasks_are_cancelled_at_their_timeout(db: &TestDb) {
    db.create_side_effects();
    let slow = async_sleepy_with_timeout::queue(3_000, 1).unwrap();
    let fast = async_sleepy_with_timeout::queue(10, 2).unwrap();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let slow = slow.exec().unwrap();
    assert_eq!(
        (slow.state, slow.error.as_deref()),
        (State::Failed, Some("timed out after 1 s"))
    );
    assert_eq!(fast.state().unwrap(), State::Succeeded);
    // Cancelled: its future was dropped before its sleep ended (it records -1 then, never 1).
    wait_until(
        "the timed-out task to be cancelled",
        Duration::from_secs(10),
        || {
            let mut effects = db.side_effects();
            effects.sort();
            effects == vec![-1, 2]
        },
    );
}

fn late_result_of_a_timed_out_sync_task_is_not_recorded(db: &TestDb) {
    db.create_side_effects();
    let slow = sleepy_with_timeout::queue(2_000, 1).unwrap();
    let worker = db.worker();
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    wait_until(
        "the time-out to be recorded",
        Duration::from_secs(10),
        || slow.state().unwrap() == State::Failed,
    );
    // The thread cannot be stopped: it finishes later, and the worker drops its result.
    wait_until(
        "the abandoned thread to finish",
        Duration::from_secs(10),
        || db.side_effects() == vec![1],
    );
    // Once the worker has stopped, nothing more can write: the time-out must still stand.
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
    let slow = slow.exec().unwrap();
    assert_eq!(
        (slow.state, slow.error.as_deref()),
        (State::Failed, Some("timed out after 1 s"))
    );
}

fn runs_sleeping_tasks_once_due(db: &TestDb) {
    db.create_side_effects();
    let clock = TestClock::new();
    let soon = record::queue_at(clock.now() + TimeDelta::seconds(30), 1).unwrap();
    let later = record::queue_at(clock.now() + TimeDelta::hours(1), 2).unwrap();
    let worker = db.worker().clock(clock.clone());
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    wait_until("the worker to register", Duration::from_secs(10), || {
        !toosimple_core::WorkerStatus::list_in(&db.store)
            .unwrap()
            .is_empty()
    });
    assert_eq!(soon.state().unwrap(), State::Sleeping);
    clock.advance(Duration::from_secs(30));
    wait_until("the due task to run", Duration::from_secs(10), || {
        soon.state().unwrap() == State::Succeeded
    });
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
    let soon = soon.exec().unwrap();
    // Started when the clock reached its due (stored to the microsecond), not before.
    let late = soon.started.unwrap() - soon.due;
    assert!(
        late >= TimeDelta::zero() && late < TimeDelta::milliseconds(1),
        "{soon:?}"
    );
    assert_eq!(later.state().unwrap(), State::Sleeping);
}

fn once_runs_one_round(db: &TestDb) {
    db.create_side_effects();
    record::queue_many((0..5).map(|n| (n,))).unwrap();
    assert_eq!(db.worker().concurrency(2).once().run(), Exit::Stopped);
    assert_eq!(db.side_effects().len(), 2);
    assert_eq!(db.count("state = 'queued'"), 3);
}

fn rescues_the_tasks_of_a_silent_worker_exactly_once(db: &TestDb) {
    db.create_side_effects();
    let orphan = record::queue(7).unwrap();
    // A worker that claimed it and then went silent (as after kill -9), with a 1 s heartbeat
    // timeout; the rescuers look 5 s after its last beat (now: its replacement is due at once).
    let last_beat = Utc::now() - TimeDelta::seconds(5);
    db.store
        .register_worker(&toosimple_core::store::WorkerRegistration {
            tasks: &[],
            label: "dead-worker",
            queues: &[],
            excluded_queues: &[],
            heartbeat_timeout: 1.0,
            tick: 1.0,
            cluster: None,
            now: last_beat,
        })
        .unwrap();
    let now = last_beat + TimeDelta::seconds(5);
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'dead-worker' WHERE id = {}",
        orphan.id()
    ));
    // Several rescuers at once: each looks, one wins.
    let rescued: Vec<_> = (0..4)
        .map(|i| {
            let store = db.store.clone();
            let rescuer = Rescuer::new(format!("rescuer-{i}"), rescue::Config::default());
            std::thread::spawn(move || rescuer.run_once(&store, now).unwrap().rescued)
        })
        .map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        rescued.iter().map(Vec::len).sum::<usize>(),
        1,
        "{rescued:?}"
    );
    let exec = orphan.exec().unwrap();
    assert_eq!(exec.state, State::Interrupted);
    assert!(
        exec.error
            .unwrap()
            .contains("dead-worker sent no heartbeat")
    );
    // The replacement runs once on a live worker.
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![7]);
    assert_eq!(db.count("task_name = 'record'"), 2);
    assert_eq!(orphan.wait(Duration::from_secs(1)).ok(), Some(()));
}

fn graceful_shutdown_finishes_running_tasks(db: &TestDb) {
    db.create_side_effects();
    let running_task = announced_sleep::queue(700, 1).unwrap();
    let queued = record::queue(2).unwrap();
    let worker = db.worker().concurrency(1);
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    // Its body runs: `Processing` alone may be a row claimed ahead and not started yet, which
    // a graceful stop hands back to the queue.
    wait_until("the task to start", Duration::from_secs(10), || {
        db.side_effects() == vec![1]
    });
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
    assert_eq!(running_task.state().unwrap(), State::Succeeded);
    assert_eq!(queued.state().unwrap(), State::Queued);
    let status = toosimple_core::WorkerStatus::list_in(&db.store).unwrap();
    assert_eq!(status[0].state(), toosimple_core::WorkerState::Stopped);
}

fn terminate_interrupts_and_replaces_running_tasks(db: &TestDb) {
    db.create_side_effects();
    let task = announced_sleep::queue(60_000, 1).unwrap();
    let worker = db.worker();
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    // Its body runs (a claimed row is `Processing` before its task is spawned).
    wait_until("the task to start", Duration::from_secs(10), || {
        db.side_effects() == vec![1]
    });
    assert_eq!(task.state().unwrap(), State::Processing);
    shutdown.terminate();
    assert_eq!(running.join().unwrap(), Exit::Terminated);
    let exec = task.exec().unwrap();
    assert_eq!(exec.state, State::Interrupted);
    let replacement = TaskExec::get(exec.replaced_by.unwrap()).unwrap();
    assert_eq!(replacement.state, State::Sleeping);
    assert_eq!(
        (replacement.retries, replacement.args),
        (exec.retries, exec.args)
    );
    let status = toosimple_core::WorkerStatus::list_in(&db.store).unwrap();
    assert_eq!(status[0].state(), toosimple_core::WorkerState::Terminated);
    // The async task was cancelled (it records -1 when dropped), not left running.
    wait_until("the task to be cancelled", Duration::from_secs(30), || {
        db.side_effects() == vec![1, -1]
    });
}

/// What a worker does after an outage (claims that committed while it saw an error are put
/// back): here the store call alone, on rows set up by hand. The outage itself, a PostgreSQL
/// restarted under a running worker, is `outage.rs`.
fn release_unheld_requeues_only_this_workers_claims_it_does_not_run(db: &TestDb) {
    let running = record::queue(1).unwrap();
    let lost = record::queue(2).unwrap();
    let other = record::queue(3).unwrap();
    for (h, worker) in [(&running, "w"), (&lost, "w"), (&other, "x")] {
        db.execute(&format!(
            "UPDATE task_execs SET state = 'processing', worker = '{worker}' WHERE id = {}",
            h.id()
        ));
    }
    assert_eq!(db.store.release_unheld("w", &[running.id()]).unwrap(), 1);
    let lost = lost.exec().unwrap();
    assert_eq!(
        (lost.state, lost.worker, lost.started),
        (State::Queued, None, None)
    );
    assert_eq!(running.state().unwrap(), State::Processing);
    assert_eq!(other.state().unwrap(), State::Processing);
}

/// An idle worker does not wait for its tick (a minute here): PostgreSQL's `LISTEN`, SQLite's
/// change counter wake it when executions are inserted.
// Only where a database tells its workers of new executions: MariaDB has no such signal, and
// PostgreSQL through a transaction-pooling proxy gets one only from a direct URL (`cli.rs`).
#[test]
fn sqlite_idle_workers_start_new_work_at_once() {
    idle_workers_start_new_work_at_once(&TestDb::sqlite());
}

#[test]
fn postgres_idle_workers_start_new_work_at_once() {
    if let Some(db) = TestDb::postgres() {
        idle_workers_start_new_work_at_once(&db);
    }
}

/// MariaDB has no notification a client can wait on (see the README): an idle worker finds
/// new work at its next tick, and says so when it starts.
#[test]
fn mysql_idle_workers_find_new_work_at_their_next_tick() {
    let Some(db) = TestDb::mysql() else { return };
    assert!(
        db.store.wakeup_source().starts_with("polling at each tick"),
        "{}",
        db.store.wakeup_source()
    );
    db.create_side_effects();
    let worker = db.worker().tick(Duration::from_millis(300));
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    wait_until("the worker to register", Duration::from_secs(10), || {
        !toosimple_core::WorkerStatus::list_in(&db.store)
            .unwrap()
            .is_empty()
    });
    for n in 0..3 {
        let task = record::queue(n).unwrap();
        let enqueued = std::time::Instant::now();
        wait_until("the task to run", Duration::from_secs(5), || {
            task.state().unwrap() == State::Succeeded
        });
        // A tick, a claim and the run, with room for a loaded machine; never the 60 s of a
        // worker that missed it.
        assert!(
            enqueued.elapsed() < Duration::from_secs(2),
            "{:?}",
            enqueued.elapsed()
        );
    }
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![0, 1, 2]);
}

fn idle_workers_start_new_work_at_once(db: &TestDb) {
    db.create_side_effects();
    let worker = db.worker().tick(Duration::from_secs(60));
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    wait_until("the worker to register", Duration::from_secs(10), || {
        !toosimple_core::WorkerStatus::list_in(&db.store)
            .unwrap()
            .is_empty()
    });
    // Once a first task ran, the worker is idle in its wait: its next tick is a minute away.
    let first = record::queue(-1).unwrap();
    wait_until("a first task to run", Duration::from_secs(10), || {
        first.state().unwrap() == State::Succeeded
    });
    for n in 0..3 {
        let task = record::queue(n).unwrap();
        let enqueued = std::time::Instant::now();
        wait_until("the task to run", Duration::from_secs(5), || {
            task.state().unwrap() == State::Succeeded
        });
        assert!(
            enqueued.elapsed() < Duration::from_secs(2),
            "{:?}",
            enqueued.elapsed()
        );
    }
    // A bulk enqueue too (on PostgreSQL it goes through COPY, whose trigger notifies).
    let bulk = record::queue_many((100..250).map(|n| (n,))).unwrap();
    let last = bulk.last().unwrap();
    wait_until("the bulk to run", Duration::from_secs(10), || {
        last.state().unwrap() == State::Succeeded
    });
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
    let mut effects = db.side_effects();
    effects.sort_unstable();
    let expected: Vec<i64> = [-1, 0, 1, 2].into_iter().chain(100..250).collect();
    assert_eq!(effects, expected);
}

/// Tasks (or the application) holding every connection of the store's pool must not stop the
/// heartbeat: it has a connection of its own, else the worker would be taken for dead.
fn the_heartbeat_goes_on_while_the_shared_pool_is_exhausted(db: &TestDb) {
    let worker = db.worker();
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    let beat = || {
        toosimple_core::WorkerStatus::list_in(&db.store)
            .unwrap()
            .first()
            .map(|w| w.last_tick)
    };
    wait_until("the worker to register", Duration::from_secs(10), || {
        beat().is_some()
    });
    // The store's pool holds 10; the next checkout waits out its 5 s time-out and fails.
    let held: Vec<_> = (0..10).map(|_| db.store.connection().unwrap()).collect();
    assert!(
        db.store.connection().is_err(),
        "the shared pool is exhausted"
    );
    // Read through a store of its own: the test needs a connection too.
    let reader = db.store.with_own_pool(1);
    let last_tick = || toosimple_core::WorkerStatus::list_in(&reader).unwrap()[0].last_tick;
    let before = last_tick();
    wait_until(
        "a beat while the pool is exhausted",
        Duration::from_secs(10),
        || last_tick() > before,
    );
    drop(held);
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);
}

/// Found by the property tests: `concurrency(usize::MAX)` (or `--concurrency
/// 18446744073709551615`) overflowed the claim's size (a panic in debug builds, a wrapped
/// limit in release); it means "as many as there are".
fn unbounded_concurrency_and_claim_ahead_run_instead_of_overflowing(db: &TestDb) {
    db.create_side_effects();
    record::queue_many((0..5).map(|n| (n,))).unwrap();
    let exit = db
        .worker()
        .concurrency(usize::MAX)
        .claim_ahead(usize::MAX)
        .until_done()
        .run();
    assert_eq!(exit, Exit::Stopped);
    let mut effects = db.side_effects();
    effects.sort_unstable();
    assert_eq!(effects, vec![0, 1, 2, 3, 4]);
}
