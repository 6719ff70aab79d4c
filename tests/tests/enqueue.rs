//! Enqueueing, reading back, unique tasks, cancelling and waiting, on SQLite and PostgreSQL.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use diesel::Connection;
use serde_json::json;
use toosimple_core::{Cancellation, Error, State, TaskExec, TaskExecFilter, TaskHandle};
use toosimple_tests::tasks::{
    Everything, add, echo, fail_with, fails_once, many_args, nothing, refresh, send, shout,
};
use toosimple_tests::{TestDb, backend_suite};

backend_suite!(
    pgbouncer;
    round_trips_argument_and_result_types,
    queue_stores_a_queued_row_with_the_task_options,
    queue_at_stores_a_sleeping_row_with_its_due,
    queue_many_inserts_ten_thousand_in_one_call,
    queue_in_commits_with_the_caller_transaction,
    queue_in_rolls_back_with_the_caller_transaction,
    unique_from_eight_threads_gives_one_pending_row,
    unique_sleeping_duplicate_is_woken_by_queue,
    unique_earlier_due_moves_sleeping_duplicate_earlier,
    unique_later_due_leaves_sleeping_duplicate,
    unique_allows_a_new_row_once_the_pending_one_ran,
    cancel_cancels_pending_and_asks_running,
    wait_times_out_on_a_queued_task,
    wait_returns_the_result_when_done,
    wait_reports_failure_with_the_message,
    wait_follows_the_retry_chain,
    get_names_a_missing_id,
    list_filters_by_state_queue_and_name_newest_first,
    enqueue_by_name_checks_the_task,
);

fn round_trips_argument_and_result_types(db: &TestDb) {
    let value = Everything::sample();
    let h = echo::queue(value.clone()).unwrap();
    assert_eq!(h.exec().unwrap().args["value"]["text"], json!(value.text));
    assert_eq!(db.run_by_hand(h.id()), State::Succeeded);
    assert_eq!(h.wait(Duration::from_secs(5)).unwrap(), value);

    let args = (
        "ünïcödé 🚀".to_string(),
        Some(i64::MIN),
        vec!["a".to_string(), String::new()],
        f64::MAX,
    );
    let h = many_args::queue(args.0.clone(), args.1, args.2.clone(), args.3).unwrap();
    assert_eq!(db.run_by_hand(h.id()), State::Succeeded);
    assert_eq!(h.wait(Duration::from_secs(5)).unwrap(), args);

    let h = many_args::queue(String::new(), None, vec![], 0.1).unwrap();
    db.run_by_hand(h.id());
    assert_eq!(
        h.wait(Duration::from_secs(5)).unwrap(),
        (String::new(), None, vec![], 0.1)
    );

    let h: TaskHandle<()> = nothing::queue().unwrap();
    assert_eq!(h.exec().unwrap().args, json!({}));
    db.run_by_hand(h.id());
    h.wait(Duration::from_secs(5)).unwrap();

    let h = shout::queue("ça va".to_string()).unwrap();
    db.run_by_hand(h.id());
    assert_eq!(h.wait(Duration::from_secs(5)).unwrap(), "ÇA VA");
}

fn queue_stores_a_queued_row_with_the_task_options(_db: &TestDb) {
    let before = Utc::now() - TimeDelta::seconds(1);
    let h = send::queue("ann@example.com".to_string()).unwrap();
    let exec = h.exec().unwrap();
    assert_eq!(exec.id, h.id());
    assert_eq!(exec.task_name, "mail.send");
    assert_eq!(exec.queue, "emails");
    assert_eq!(exec.priority, 5);
    assert_eq!(exec.retries, 3);
    assert_eq!(exec.retry_delay, 2);
    assert_eq!(exec.state, State::Queued);
    assert_eq!(exec.args, json!({"to": "ann@example.com"}));
    assert!(exec.due >= before && exec.created >= before);
    assert_eq!(exec.started, None);
    assert_eq!(exec.result, None);
    assert_eq!(exec, TaskExec::get(h.id()).unwrap());
    assert_eq!(h.state().unwrap(), State::Queued);

    let plain = add::queue(1, 2).unwrap().exec().unwrap();
    assert_eq!(
        (
            plain.task_name.as_str(),
            plain.queue.as_str(),
            plain.priority
        ),
        ("add", "default", 0)
    );
}

fn queue_at_stores_a_sleeping_row_with_its_due(_db: &TestDb) {
    let due = Utc::now() + TimeDelta::hours(1);
    let h = add::queue_at(due, 2, 3).unwrap();
    let exec = h.exec().unwrap();
    assert_eq!(exec.state, State::Sleeping);
    assert_eq!(exec.due.timestamp_micros(), due.timestamp_micros());
    // A due in the past still sleeps until a worker wakes it, as in django-toosimple-q.
    let past = add::queue_at(Utc::now() - TimeDelta::hours(1), 2, 3).unwrap();
    assert_eq!(past.state().unwrap(), State::Sleeping);
}

fn queue_many_inserts_ten_thousand_in_one_call(db: &TestDb) {
    let handles = add::queue_many((0..10_000).map(|i| (i, 1))).unwrap();
    assert_eq!(handles.len(), 10_000);
    assert_eq!(db.count("task_name = 'add' AND state = 'queued'"), 10_000);
    // Handles come back in the order of the arguments.
    for i in [0usize, 1, 999, 1000, 5_000, 9_999] {
        assert_eq!(handles[i].exec().unwrap().args, json!({"a": i, "b": 1}));
    }
    let mut ids: Vec<i64> = handles.iter().map(|h| h.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10_000);

    let unique =
        refresh::queue_many(vec![("a".to_string(),), ("b".into(),), ("a".into(),)]).unwrap();
    assert_eq!(unique[0].id(), unique[2].id());
    assert!(unique[2].is_duplicate() && !unique[0].is_duplicate());
    assert_eq!(db.count("task_name = 'refresh'"), 2);
}

fn queue_in_commits_with_the_caller_transaction(db: &TestDb) {
    let mut conn = db.store.connection().unwrap();
    db.execute("CREATE TABLE subscribers (email VARCHAR(255) PRIMARY KEY)");
    let handle = conn
        .transaction::<_, Error, _>(|conn| {
            diesel::RunQueryDsl::execute(
                diesel::sql_query("INSERT INTO subscribers (email) VALUES ('ann@example.com')"),
                conn,
            )
            .unwrap();
            send::queue_in(conn, "ann@example.com".to_string())
        })
        .unwrap();
    assert_eq!(handle.exec().unwrap().state, State::Queued);
    assert_eq!(db.count("task_name = 'mail.send'"), 1);
}

fn queue_in_rolls_back_with_the_caller_transaction(db: &TestDb) {
    let mut conn = db.store.connection().unwrap();
    let mut enqueued = None;
    let outcome = conn.transaction::<(), Error, _>(|conn| {
        enqueued = Some(send::queue_in(conn, "bob@example.com".to_string())?.id());
        Err(Error::ExecNotFound { id: -1 }) // any error rolls the transaction back
    });
    assert!(outcome.is_err());
    assert_eq!(db.count("task_name = 'mail.send'"), 0);
    assert!(matches!(
        TaskExec::get(enqueued.unwrap()),
        Err(Error::ExecNotFound { .. })
    ));
}

fn unique_from_eight_threads_gives_one_pending_row(db: &TestDb) {
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                refresh::queue("same".to_string()).unwrap()
            })
        })
        .collect();
    let handles: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(handles.len(), 8);
    assert!(handles.iter().all(|h| h.id() == handles[0].id()));
    assert_eq!(handles.iter().filter(|h| !h.is_duplicate()).count(), 1);
    assert_eq!(db.count("task_name = 'refresh'"), 1);
    // Different arguments are a different unique key.
    refresh::queue("other".to_string()).unwrap();
    assert_eq!(db.count("task_name = 'refresh'"), 2);
}

fn unique_sleeping_duplicate_is_woken_by_queue(_db: &TestDb) {
    let sleeping = refresh::queue_at(Utc::now() + TimeDelta::hours(1), "k".into()).unwrap();
    let now = refresh::queue("k".into()).unwrap();
    assert!(now.is_duplicate());
    assert_eq!(now.id(), sleeping.id());
    let exec = sleeping.exec().unwrap();
    assert_eq!(exec.state, State::Queued);
    assert!(exec.due <= Utc::now());
    // A queued duplicate is left as it is, whatever due is asked for.
    let later = refresh::queue_at(Utc::now() + TimeDelta::hours(2), "k".into()).unwrap();
    assert_eq!(later.id(), sleeping.id());
    assert_eq!(sleeping.exec().unwrap(), exec);
}

fn unique_earlier_due_moves_sleeping_duplicate_earlier(_db: &TestDb) {
    let in_two_hours = Utc::now() + TimeDelta::hours(2);
    let in_one_hour = Utc::now() + TimeDelta::hours(1);
    let first = refresh::queue_at(in_two_hours, "k".into()).unwrap();
    let second = refresh::queue_at(in_one_hour, "k".into()).unwrap();
    assert!(second.is_duplicate());
    assert_eq!(second.id(), first.id());
    let exec = first.exec().unwrap();
    assert_eq!(exec.state, State::Sleeping);
    assert_eq!(exec.due.timestamp_micros(), in_one_hour.timestamp_micros());
}

fn unique_later_due_leaves_sleeping_duplicate(_db: &TestDb) {
    let in_one_hour = Utc::now() + TimeDelta::hours(1);
    let first = refresh::queue_at(in_one_hour, "k".into()).unwrap();
    let second = refresh::queue_at(in_one_hour + TimeDelta::hours(1), "k".into()).unwrap();
    assert_eq!(second.id(), first.id());
    let exec = first.exec().unwrap();
    assert_eq!(exec.state, State::Sleeping);
    assert_eq!(exec.due.timestamp_micros(), in_one_hour.timestamp_micros());
}

fn unique_allows_a_new_row_once_the_pending_one_ran(db: &TestDb) {
    let first = refresh::queue("k".into()).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing' WHERE id = {}",
        first.id()
    ));
    let second = refresh::queue("k".into()).unwrap();
    assert_ne!(second.id(), first.id());
    assert!(!second.is_duplicate());
    db.run_by_hand(first.id());
    let third = refresh::queue("k".into()).unwrap();
    assert_eq!(third.id(), second.id());
}

fn cancel_cancels_pending_and_asks_running(db: &TestDb) {
    let queued = add::queue(1, 1).unwrap();
    let sleeping = add::queue_at(Utc::now() + TimeDelta::hours(1), 1, 1).unwrap();
    let running = add::queue(2, 2).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing' WHERE id = {}",
        running.id()
    ));

    assert_eq!(queued.cancel().unwrap(), Cancellation::Cancelled);
    assert_eq!(sleeping.cancel().unwrap(), Cancellation::Cancelled);
    // A running one gets a cancel request, for its worker to honour; it stays Processing.
    assert_eq!(running.cancel().unwrap(), Cancellation::Requested);
    assert_eq!(queued.state().unwrap(), State::Cancelled);
    assert!(queued.exec().unwrap().finished.is_some());
    assert_eq!(sleeping.state().unwrap(), State::Cancelled);
    let asked = running.exec().unwrap();
    assert_eq!(asked.state, State::Processing);
    let requested = asked.cancel_requested.expect("a cancel request");
    // Asking again keeps the first request.
    assert_eq!(running.cancel().unwrap(), Cancellation::Requested);
    assert_eq!(running.exec().unwrap().cancel_requested, Some(requested));
    // Cancelling twice changes nothing; a cancelled wait reports the state.
    assert_eq!(
        queued.cancel().unwrap(),
        Cancellation::Finished(State::Cancelled)
    );
    let err = queued.wait(Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TaskFailed {
                state: State::Cancelled,
                ..
            }
        ),
        "{err}"
    );
    let missing = TaskHandle::<i64>::new(db.store.clone(), 999_999);
    assert!(matches!(
        missing.cancel(),
        Err(Error::ExecNotFound { id: 999_999 })
    ));
}

fn wait_times_out_on_a_queued_task(_db: &TestDb) {
    let h = add::queue(1, 2).unwrap();
    let err = h.wait(Duration::from_millis(200)).unwrap_err();
    match &err {
        Error::WaitTimeout { id, state, .. } => {
            assert_eq!((*id, *state), (h.id(), State::Queued));
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(err.to_string().contains("still queued"), "{err}");
}

fn wait_returns_the_result_when_done(db: &TestDb) {
    let h = add::queue(20, 22).unwrap();
    let id = h.id();
    let url = db.url.clone();
    let worker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let store = toosimple_core::Store::connect(&url).unwrap();
        let mut conn = store.connection().unwrap();
        diesel::RunQueryDsl::execute(
            diesel::sql_query(format!(
                "UPDATE task_execs SET state = 'succeeded', result = '42' WHERE id = {id}"
            )),
            &mut *conn,
        )
        .unwrap();
    });
    assert_eq!(h.wait(Duration::from_secs(10)).unwrap(), 42);
    worker.join().unwrap();
}

fn wait_reports_failure_with_the_message(db: &TestDb) {
    let h = fail_with::queue("disk full".to_string()).unwrap();
    assert_eq!(db.run_by_hand(h.id()), State::Failed);
    let err = h.wait(Duration::from_secs(5)).unwrap_err();
    match &err {
        Error::TaskFailed { state, error, .. } => {
            assert_eq!(*state, State::Failed);
            assert_eq!(error.as_deref(), Some("disk full"));
        }
        other => panic!("expected a failure, got {other}"),
    }
    assert!(err.to_string().contains("disk full"), "{err}");

    // Arguments that do not fit the function make the execution Invalid, naming the argument.
    db.execute(&format!(
        "UPDATE task_execs SET state = 'queued', args = '{{\"message\": 5}}' WHERE id = {}",
        h.id()
    ));
    assert_eq!(db.run_by_hand(h.id()), State::Invalid);
    let error = h.exec().unwrap().error.unwrap();
    assert!(error.contains("argument `message`"), "{error}");
}

fn wait_follows_the_retry_chain(db: &TestDb) {
    let folder = tempfile::tempdir().unwrap();
    let marker = folder.path().join("ran").display().to_string();
    let first = fails_once::queue(marker, 1, 2).unwrap();
    assert_eq!(db.run_by_hand(first.id()), State::Failed);
    let retry = first
        .exec()
        .unwrap()
        .replaced_by
        .expect("the failure was replaced by its retry");
    assert_eq!(db.run_by_hand(retry), State::Succeeded);
    assert_eq!(first.wait(Duration::from_secs(5)).unwrap(), 3);
}

fn get_names_a_missing_id(_db: &TestDb) {
    let err = TaskExec::get(424_242).unwrap_err();
    assert!(matches!(err, Error::ExecNotFound { id: 424_242 }));
    assert_eq!(err.to_string(), "no task execution with id 424242");
}

fn list_filters_by_state_queue_and_name_newest_first(db: &TestDb) {
    let a = add::queue(1, 1).unwrap();
    let b = send::queue("x@example.com".into()).unwrap();
    let c = add::queue(2, 2).unwrap();
    let d = add::queue(3, 3).unwrap();
    db.run_by_hand(c.id());

    let all = TaskExec::list(&TaskExecFilter::default()).unwrap();
    let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![d.id(), c.id(), b.id(), a.id()]);

    let queued_adds = TaskExec::list(
        &TaskExecFilter::default()
            .state(State::Queued)
            .task_name("add"),
    )
    .unwrap();
    assert_eq!(
        queued_adds.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![d.id(), a.id()]
    );

    let emails = TaskExec::list(&TaskExecFilter::default().queue("emails")).unwrap();
    assert_eq!(
        emails.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![b.id()]
    );

    let page1 = TaskExec::list(&TaskExecFilter::default().limit(2)).unwrap();
    let page2 = TaskExec::list(&TaskExecFilter::default().limit(2).before_id(page1[1].id)).unwrap();
    let page2_offset = TaskExec::list(&TaskExecFilter::default().limit(2).offset(2)).unwrap();
    assert_eq!(
        page2.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![b.id(), a.id()]
    );
    assert_eq!(page2, page2_offset);

    let succeeded_or_sleeping = TaskExec::list_in(
        &db.store,
        &TaskExecFilter::default()
            .state(State::Succeeded)
            .state(State::Sleeping),
    )
    .unwrap();
    assert_eq!(succeeded_or_sleeping.len(), 1);
    assert_eq!(succeeded_or_sleeping[0].result, Some(json!(4)));
}

fn enqueue_by_name_checks_the_task(db: &TestDb) {
    let h =
        toosimple_core::enqueue_by_name(&db.store, "add", json!({"a": 4, "b": 5}), None).unwrap();
    db.run_by_hand(h.id());
    assert_eq!(h.wait(Duration::from_secs(5)).unwrap(), json!(9));
    let err = toosimple_core::enqueue_by_name(&db.store, "nope", json!({}), None).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`nope` is not registered") && message.contains("add, "),
        "{message}"
    );
}
