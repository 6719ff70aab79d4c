//! Retention: django-pq's result TTL (a call's, a task's, the workers' default; 0 deletes at
//! once, keep keeps) and django-q's save limit, on SQLite and PostgreSQL.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use toosimple_core::{Error, State, TaskExec, TaskExecFilter, Ttl, task};
use toosimple_tests::tasks::{add, fail_with, note_execution};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::Exit;
use toosimple_worker::maintenance::retention::{self, Retention};

backend_suite!(
    a_calls_ttl_its_tasks_and_the_default_decide_how_long_a_row_stays,
    a_ttl_of_zero_deletes_once_recorded_after_the_hook_and_keeps_chains_whole,
    the_save_limit_keeps_the_newest_successes_every_failure_and_whole_chains,
    retention_deletes_in_batches_until_nothing_expired_is_left,
);

/// Kept a minute once finished.
#[task(ttl = 60)]
fn kept_a_minute() {}

/// Kept until purged, whatever the default.
#[task(ttl = -1)]
fn kept_for_ever() {}

/// Deleted as soon as it is recorded, once its hook has run.
#[task(ttl = 0, hook = note_execution)]
fn gone_at_once() {}

fn exists(id: i64) -> bool {
    match TaskExec::get(id) {
        Ok(_) => true,
        Err(Error::ExecNotFound { .. }) => false,
        Err(e) => panic!("{e}"),
    }
}

fn a_calls_ttl_its_tasks_and_the_default_decide_how_long_a_row_stays(db: &TestDb) {
    let task_ttl = kept_a_minute::queue().unwrap().id();
    let call_keeps = kept_a_minute::with().keep().queue().unwrap().id();
    let default = add::queue(1, 1).unwrap().id();
    let call_ttl = add::with()
        .ttl(Duration::from_secs(30))
        .queue(1, 2)
        .unwrap()
        .id();
    let task_keeps = kept_for_ever::queue().unwrap().id();
    let all = [task_ttl, call_keeps, default, call_ttl, task_keeps];
    for id in all {
        assert_eq!(db.run_by_hand(id), State::Succeeded);
    }
    let ttl = |id| TaskExec::get(id).unwrap().ttl;
    assert_eq!(ttl(task_ttl), Some(Ttl::After(Duration::from_secs(60))));
    assert_eq!(ttl(call_keeps), Some(Ttl::Keep));
    assert_eq!(ttl(default), None);
    assert_eq!(ttl(call_ttl), Some(Ttl::After(Duration::from_secs(30))));
    assert_eq!(ttl(task_keeps), Some(Ttl::Keep));

    // The newest finish time: every row finished at or before it.
    let finished = TaskExec::get(task_keeps).unwrap().finished.unwrap();
    let duty = Retention::new(retention::Config {
        default_ttl: Some(Ttl::After(Duration::from_secs(120))),
        ..retention::Config::default()
    });
    let at = |seconds| finished + TimeDelta::seconds(seconds);
    assert_eq!(duty.run_once(&db.store, at(29)).unwrap().deleted, 0);
    assert_eq!(duty.run_once(&db.store, at(31)).unwrap().deleted, 1);
    assert!(!exists(call_ttl));
    assert_eq!(duty.run_once(&db.store, at(61)).unwrap().deleted, 1);
    assert!(!exists(task_ttl));
    // Without a default, a row without a TTL of its own stays.
    let keeping = Retention::new(retention::Config::default());
    assert_eq!(keeping.run_once(&db.store, at(3_600)).unwrap().deleted, 0);
    assert_eq!(duty.run_once(&db.store, at(121)).unwrap().deleted, 1);
    assert!(!exists(default));
    // Keep means keep.
    assert_eq!(
        duty.run_once(&db.store, at(10 * 365 * 86_400))
            .unwrap()
            .deleted,
        0
    );
    assert!(exists(call_keeps) && exists(task_keeps));
}

fn a_ttl_of_zero_deletes_once_recorded_after_the_hook_and_keeps_chains_whole(db: &TestDb) {
    db.create_side_effects();
    let gone = gone_at_once::queue().unwrap().id();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert!(!exists(gone), "deleted once recorded");
    // Its hook ran first, and saw its finished row (the hook notes a missing one negated).
    assert_eq!(db.side_effects(), vec![gone]);

    // The workers' default of 0, and the calls that set their own.
    let plain = add::queue(1, 1).unwrap().id();
    let kept = add::with().keep().queue(1, 2).unwrap().id();
    let an_hour = add::with()
        .ttl(Duration::from_secs(3_600))
        .queue(1, 3)
        .unwrap()
        .id();
    // A chain: the failed first run stays while its retry does, then goes with it.
    let first = fail_with::with()
        .retries(1)
        .retry_delay(Duration::ZERO)
        .queue("no".into())
        .unwrap()
        .id();
    let worker = db.worker().result_ttl(Duration::ZERO);
    assert_eq!(worker.until_done().run(), Exit::Stopped);
    assert!(!exists(plain));
    assert!(exists(kept) && exists(an_hour));
    assert!(
        exists(first),
        "an earlier run stays until its retry is gone"
    );
    let left: Vec<i64> = TaskExec::list_in(&db.store, &TaskExecFilter::default())
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left.len(), 3, "the retry went at once: {left:?}");
    let duty = Retention::new(retention::Config {
        default_ttl: Some(Ttl::After(Duration::ZERO)),
        ..retention::Config::default()
    });
    assert_eq!(duty.run_once(&db.store, Utc::now()).unwrap().deleted, 1);
    assert!(!exists(first));
}

fn the_save_limit_keeps_the_newest_successes_every_failure_and_whole_chains(db: &TestDb) {
    let marker = tempfile::tempdir().unwrap();
    let marker = marker.path().join("ran").display().to_string();
    let run = |handle: toosimple_core::TaskHandle<i64>| {
        db.run_by_hand(handle.id());
        handle.id()
    };
    let oldest = run(add::queue(1, 0).unwrap());
    let old = run(add::queue(2, 0).unwrap());
    // A chain: a failure, then the success that ended it.
    let chain_start = toosimple_tests::tasks::fails_once::queue(marker, 1, 1).unwrap();
    db.run_by_hand(chain_start.id());
    let chain_end = chain_start.exec().unwrap().replaced_by.unwrap();
    assert_eq!(db.run_by_hand(chain_end), State::Succeeded);
    let failed = fail_with::queue("no".into()).unwrap().id();
    db.run_by_hand(failed);
    let own_ttl = run(add::with()
        .ttl(Duration::from_secs(3_600))
        .queue(3, 0)
        .unwrap());
    let older = run(add::queue(4, 0).unwrap());
    let newer = run(add::queue(5, 0).unwrap());
    let newest = run(add::queue(6, 0).unwrap());

    let duty = Retention::new(retention::Config {
        save_limit: Some(2),
        ..retention::Config::default()
    });
    let report = duty.run_once(&db.store, Utc::now()).unwrap();
    assert_eq!(report.over_save_limit, 3);
    for gone in [oldest, old, older] {
        assert!(!exists(gone), "{gone}");
    }
    for kept in [newer, newest, failed, chain_start.id(), chain_end, own_ttl] {
        assert!(exists(kept), "{kept}");
    }
    assert_eq!(
        duty.run_once(&db.store, Utc::now())
            .unwrap()
            .over_save_limit,
        0
    );
}

fn retention_deletes_in_batches_until_nothing_expired_is_left(db: &TestDb) {
    let expired = 1_234;
    add::with()
        .ttl(Duration::from_secs(60))
        .queue_many((0..expired).map(|n| (n, n)))
        .unwrap();
    db.execute("UPDATE task_execs SET state = 'succeeded', finished = '2000-01-01 00:00:00'");
    add::with()
        .ttl(Duration::from_secs(60))
        .queue(1, 1)
        .unwrap();
    let duty = Retention::new(retention::Config::default());
    let report = duty.run_once(&db.store, Utc::now()).unwrap();
    assert_eq!(
        report.deleted,
        expired as usize,
        "in statements of {}",
        retention::RETENTION_BATCH
    );
    assert_eq!(db.count("1 = 1"), 1, "the queued one stays");
}
