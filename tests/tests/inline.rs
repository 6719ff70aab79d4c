//! A test's inline mode (`toosimple_worker::testing::inline`): `queue()` runs the task at once
//! in the caller's thread and records its row, on SQLite and PostgreSQL.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use diesel::Connection;
use toosimple_core::{Error, State, TaskExec, TaskExecFilter, task};
use toosimple_tests::tasks::{add, always_fails, fail_with, hooked, panics, refresh, shout};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::testing::inline;

backend_suite!(
    inline_queue_runs_the_task_in_the_callers_thread_and_records_it,
    inline_mode_leaves_what_is_not_due_now_to_the_queue,
    inline_async_tasks_run_inside_an_async_test_too,
);

/// The thread it ran on, as `{:?}` shows its id.
#[task]
fn thread_name() -> String {
    format!("{:?}", std::thread::current().id())
}

/// Enqueues `child` and returns its id: an inline task's own enqueues run inline too.
#[task]
fn parent(n: i64) -> Result<i64, String> {
    let child = add::queue(n, n).map_err(|e| e.to_string())?;
    match child.state().map_err(|e| e.to_string())? {
        State::Succeeded => Ok(child.id()),
        other => Err(format!("the child is {other}")),
    }
}

fn inline_queue_runs_the_task_in_the_callers_thread_and_records_it(db: &TestDb) {
    db.create_side_effects();
    let _inline = inline();
    let here = thread_name::queue().unwrap();
    // Ran before queue() returned: no worker, no wait.
    let exec = here.exec().unwrap();
    assert_eq!(exec.state, State::Succeeded, "{exec:?}");
    assert_eq!(
        here.wait(Duration::ZERO).unwrap(),
        format!("{:?}", std::thread::current().id())
    );
    assert_eq!(exec.worker.as_deref(), Some("inline"));
    assert!(exec.started.is_some() && exec.finished >= exec.started);

    assert_eq!(
        shout::queue("hi".into())
            .unwrap()
            .wait(Duration::ZERO)
            .unwrap(),
        "HI"
    );
    let failed = fail_with::queue("no".into()).unwrap().exec().unwrap();
    assert_eq!(
        (failed.state, failed.error.as_deref()),
        (State::Failed, Some("no"))
    );
    let panicked = panics::queue("boom".into()).unwrap().exec().unwrap();
    assert_eq!(panicked.state, State::Failed);
    assert_eq!(panicked.error.as_deref(), Some("panicked: boom"));

    // An inline task's enqueues run inline; its hook is called.
    let child = parent::queue(4).unwrap().wait(Duration::ZERO).unwrap();
    assert_eq!(
        TaskExec::get_in(&db.store, child).unwrap().result,
        Some(serde_json::json!(8))
    );
    let hooked = hooked::queue(true).unwrap();
    assert_eq!(db.side_effects(), vec![hooked.id()]);
    let many = add::queue_many([(1, 1), (2, 2)]).unwrap();
    for handle in &many {
        assert_eq!(handle.state().unwrap(), State::Succeeded);
    }
    let by_name = toosimple_core::enqueue_by_name(
        &db.store,
        "add",
        serde_json::json!({"a": 20, "b": 22}),
        None,
    )
    .unwrap();
    assert_eq!(by_name.wait(Duration::ZERO).unwrap(), serde_json::json!(42));
    // Nothing is left for a worker.
    assert_eq!(db.count("state IN ('queued', 'sleeping', 'processing')"), 0);
}

fn inline_mode_leaves_what_is_not_due_now_to_the_queue(db: &TestDb) {
    {
        let _inline = inline();
        // The first run fails now; its retry waits its delay in the queue (drain() runs it).
        let first = always_fails::queue().unwrap().exec().unwrap();
        assert_eq!(first.state, State::Failed);
        let retry = TaskExec::get_in(&db.store, first.replaced_by.expect("a retry")).unwrap();
        assert_eq!(retry.state, State::Sleeping);
        // A call for later waits for its time.
        let later = add::queue_at(Utc::now() + TimeDelta::hours(1), 1, 1).unwrap();
        assert_eq!(later.state().unwrap(), State::Sleeping);
        let after = add::with()
            .after(Duration::from_secs(60))
            .queue(1, 2)
            .unwrap();
        assert_eq!(after.state().unwrap(), State::Sleeping);
        // A row queued in the caller's transaction exists only at its commit: left queued.
        let mut conn = db.store.connection().unwrap();
        let in_tx = conn
            .transaction::<_, Error, _>(|conn| add::queue_in(conn, 2, 2))
            .unwrap();
        drop(conn);
        assert_eq!(in_tx.state().unwrap(), State::Queued);
        // A unique call folded into a pending duplicate does not run that one early.
        let pending = refresh::queue_at(Utc::now() + TimeDelta::hours(1), "k".into()).unwrap();
        let again = refresh::queue_at(Utc::now() + TimeDelta::hours(2), "k".into()).unwrap();
        assert_eq!(again.id(), pending.id());
        assert_eq!(pending.state().unwrap(), State::Sleeping);
    }
    // Off again once the guard is dropped.
    let queued = add::queue(3, 3).unwrap();
    assert_eq!(queued.state().unwrap(), State::Queued);
    let listed = TaskExec::list_in(
        &db.store,
        &TaskExecFilter::default().state(State::Processing),
    );
    assert_eq!(listed.unwrap(), vec![]);
}

fn inline_async_tasks_run_inside_an_async_test_too(db: &TestDb) {
    let _ = db;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let _inline = inline();
        let shouted = shout::queue("quiet".into()).unwrap();
        assert_eq!(shouted.wait(Duration::ZERO).unwrap(), "QUIET");
        let here = thread_name::queue().unwrap();
        assert_eq!(
            here.wait(Duration::ZERO).unwrap(),
            format!("{:?}", std::thread::current().id()),
            "a sync task still runs in the caller's thread"
        );
    });
}
