//! Options one call sets over its task's own (`task::with()`, `CallOptions`), and the
//! retention pass that honours a call's TTL, on SQLite and PostgreSQL.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use diesel::Connection;
use toosimple_core::{Error, State, TaskExec, TaskExecFilter, Ttl};
use toosimple_tests::tasks::{add, record, send, sleepy, sleepy_with_timeout};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::Exit;
use toosimple_worker::maintenance::retention;

backend_suite!(
    with_overrides_the_tasks_options_for_one_call,
    with_composes_with_a_due_time_bulk_and_transactions,
    options_no_worker_could_honour_are_refused_before_anything_is_stored,
    a_calls_time_limit_replaces_the_tasks_and_its_retry_keeps_it,
    retention_deletes_what_outlived_its_ttl_and_keeps_retry_chains_whole,
);

fn with_overrides_the_tasks_options_for_one_call(db: &TestDb) {
    let plain = add::queue(1, 2).unwrap().exec().unwrap();
    assert_eq!(
        (
            plain.queue.as_str(),
            plain.priority,
            plain.retries,
            plain.timeout,
            plain.ttl
        ),
        ("default", 0, 0, None, None)
    );
    let exec = add::with()
        .on_queue("bulk")
        .priority(-3)
        .retries(5)
        .retry_delay(Duration::from_millis(1_500))
        .timeout(Duration::from_millis(250))
        .ttl(Duration::from_secs(60))
        .queue(1, 2)
        .unwrap()
        .exec()
        .unwrap();
    assert_eq!(exec.state, State::Queued);
    assert_eq!(exec.queue, "bulk");
    assert_eq!(exec.priority, -3);
    assert_eq!(exec.retries, 5);
    assert_eq!(exec.retry_delay, 2, "whole seconds, rounded up");
    assert_eq!(exec.timeout, Some(Duration::from_millis(250)));
    assert_eq!(exec.ttl, Some(Ttl::After(Duration::from_secs(60))));
    // The task's own options still hold for what the call leaves out.
    let mail = send::with()
        .priority(9)
        .queue("ann@example.com".into())
        .unwrap()
        .exec()
        .unwrap();
    assert_eq!((mail.queue.as_str(), mail.priority), ("emails", 9));
    assert_eq!(db.count("1 = 1"), 3);
}

fn with_composes_with_a_due_time_bulk_and_transactions(db: &TestDb) {
    let before = Utc::now();
    let handles = add::with()
        .on_queue("later")
        .after(Duration::from_secs(3_600))
        .queue_many((0..3).map(|n| (n, n)))
        .unwrap();
    assert_eq!(handles.len(), 3);
    for handle in &handles {
        let exec = handle.exec().unwrap();
        assert_eq!(exec.state, State::Sleeping);
        assert_eq!(exec.queue, "later");
        let wait = exec.due - before;
        assert!(
            wait >= TimeDelta::seconds(3_599) && wait <= TimeDelta::seconds(3_610),
            "{exec:?}"
        );
    }
    let at = Utc::now() + TimeDelta::days(1);
    let exec = add::with().at(at).queue(5, 5).unwrap().exec().unwrap();
    assert_eq!(exec.state, State::Sleeping);
    assert_eq!(exec.due.timestamp_micros(), at.timestamp_micros());

    let mut conn = db.store.connection().unwrap();
    let rolled_back = conn.transaction::<(), Error, _>(|conn| {
        add::with().on_queue("tx").queue_in(conn, 1, 1)?;
        Err(Error::ExecNotFound { id: -1 }) // any error rolls the transaction back
    });
    assert!(rolled_back.is_err());
    assert_eq!(db.count("queue = 'tx'"), 0);
    let committed = conn
        .transaction::<_, Error, _>(|conn| add::with().on_queue("tx").queue_in(conn, 1, 1))
        .unwrap();
    assert_eq!(committed.exec().unwrap().queue, "tx");
}

fn options_no_worker_could_honour_are_refused_before_anything_is_stored(db: &TestDb) {
    let refusals = [
        (add::with().on_queue(" "), "the queue name is empty"),
        (
            add::with().retries(-2),
            "retries must be -1 (for ever) or more",
        ),
        (
            add::with().timeout(Duration::ZERO),
            "a time limit of 0 fails every run",
        ),
    ];
    for (call, reason) in refusals {
        let error = call.queue(1, 2).unwrap_err();
        assert!(matches!(error, Error::InvalidOptions { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("invalid options for task `add`")
                && message.contains(reason)
                && message.contains("nothing was enqueued"),
            "{message}"
        );
    }
    let error = add::with()
        .retries(-2)
        .queue_many([(1, 1), (2, 2)])
        .unwrap_err();
    assert!(matches!(error, Error::InvalidOptions { .. }), "{error:?}");
    assert_eq!(db.count("1 = 1"), 0);
}

fn a_calls_time_limit_replaces_the_tasks_and_its_retry_keeps_it(db: &TestDb) {
    db.create_side_effects();
    // No limit of its own: the call's 200 ms fails a 1.5 s run, and its retry has it too.
    let limited = sleepy::with()
        .timeout(Duration::from_millis(200))
        .retries(1)
        .retry_delay(Duration::ZERO)
        .queue(1_500, 1)
        .unwrap();
    // A task limited to 1 s, given 5 s for this call: its 1.5 s run succeeds.
    let extended = sleepy_with_timeout::with()
        .timeout(Duration::from_secs(5))
        .queue(1_500, 2)
        .unwrap();
    assert_eq!(db.worker().concurrency(4).until_done().run(), Exit::Stopped);

    let first = limited.exec().unwrap();
    assert_eq!(first.state, State::Failed, "{first:?}");
    assert_eq!(first.error.as_deref(), Some("timed out after 0.2 s"));
    let retry = TaskExec::get_in(&db.store, first.replaced_by.expect("retried")).unwrap();
    assert_eq!(retry.state, State::Failed, "{retry:?}");
    assert_eq!(retry.timeout, Some(Duration::from_millis(200)));
    assert_eq!(retry.error.as_deref(), Some("timed out after 0.2 s"));
    assert_eq!(retry.retries, 0);
    let extended = extended.exec().unwrap();
    assert_eq!(extended.state, State::Succeeded, "{extended:?}");
}

fn retention_deletes_what_outlived_its_ttl_and_keeps_retry_chains_whole(db: &TestDb) {
    db.create_side_effects();
    let duty = retention::Retention::new(retention::Config::default());
    let kept = record::queue(1).unwrap();
    let short = record::with()
        .ttl(Duration::from_secs(60))
        .queue(2)
        .unwrap();
    // A chain of two (an earlier run replaced by a later one), each with a 60 s TTL.
    let earlier = record::with()
        .ttl(Duration::from_secs(60))
        .queue(3)
        .unwrap();
    for handle in [&kept, &short, &earlier] {
        assert_eq!(db.run_by_hand(handle.id()), State::Succeeded);
    }
    let later = record::with()
        .ttl(Duration::from_secs(3_600))
        .queue(4)
        .unwrap();
    assert_eq!(db.run_by_hand(later.id()), State::Succeeded);
    db.execute(&format!(
        "UPDATE task_execs SET replaced_by = {} WHERE id = {}",
        later.id(),
        earlier.id()
    ));
    let finished = short.exec().unwrap().finished.unwrap();

    let not_yet = duty
        .run_once(&db.store, finished + TimeDelta::seconds(59))
        .unwrap();
    assert_eq!(not_yet.deleted, 0);
    // Past 60 s: the short one goes; the chain's earlier run stays while its replacement does.
    let past = duty
        .run_once(&db.store, finished + TimeDelta::seconds(61))
        .unwrap();
    assert_eq!(past.deleted, 1);
    assert!(matches!(short.exec(), Err(Error::ExecNotFound { .. })));
    assert!(earlier.exec().is_ok(), "a chain keeps its earlier runs");
    // Past the last run's TTL the whole chain goes, in one pass; the row without a TTL stays.
    let end = duty
        .run_once(&db.store, finished + TimeDelta::seconds(3_700))
        .unwrap();
    assert_eq!(end.deleted, 2);
    let left: Vec<i64> = TaskExec::list_in(&db.store, &TaskExecFilter::default())
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![kept.id()]);
    let far = duty
        .run_once(&db.store, Utc::now() + TimeDelta::days(3_650))
        .unwrap();
    assert_eq!(far.deleted, 0);
}
