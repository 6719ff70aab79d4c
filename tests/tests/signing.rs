//! Signed payloads (django-q's signed packages): with a secret key, every enqueue path signs
//! its row, a worker with the key runs only rows whose signature verifies, old keys in the
//! fallbacks still verify, and without a key nothing changes; on SQLite, PostgreSQL and
//! MariaDB.
//!
//! Compressed arguments (django-q's `Q_COMPRESSED`) are tested here too: they are signed as
//! plain JSON and must read back as it.
//!
//! Keys are set through `Store::set_signing` on the test's store (the default store too), not
//! through the process's environment, except for the CLI's child process.

use std::process::Command;

use chrono::{TimeDelta, Utc};
use toosimple_core::store::QueueSelection;
use toosimple_core::{Every, NewSchedule};
use toosimple_worker::maintenance::schedules::{Config, Materializer};

use toosimple_core::signing::SIGNATURE_MISMATCH;
use toosimple_core::{Signing, State, TaskExec, schedule, task};
use toosimple_tests::tasks::{add, fails_once, record, shout};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::Exit;

backend_suite!(
    every_enqueue_path_signs_and_a_signed_task_runs,
    a_row_changed_outside_toosimple_is_invalid_and_never_runs,
    a_row_without_a_signature_is_invalid_once_a_key_is_set,
    after_a_rotation_old_rows_run_while_the_old_key_is_a_fallback,
    without_a_key_nothing_is_signed_or_checked,
    the_cli_signs_what_it_enqueues_with_the_environments_key,
    large_arguments_are_stored_compressed_and_read_as_plain_json,
);

const APP: &str = env!("CARGO_BIN_EXE_testapp");

/// A `manual` schedule: enqueued only by `run_schedule`.
#[schedule(cron = "manual", name = "signing.by_schedule", args = (40,))]
#[task]
fn scheduled(n: i64) -> i64 {
    n + 2
}

fn signature(db: &TestDb, id: i64) -> Option<String> {
    use diesel::prelude::*;
    use toosimple_core::schema::task_execs::dsl as te;
    let mut conn = db.store.connection().unwrap();
    te::task_execs
        .find(id)
        .select(te::signature)
        .first(&mut *conn)
        .unwrap()
}

fn state(db: &TestDb, id: i64) -> State {
    TaskExec::get_in(&db.store, id).unwrap().state
}

fn every_enqueue_path_signs_and_a_signed_task_runs(db: &TestDb) {
    db.store.set_signing(Some(Signing::new("s3cret")));
    let single = add::queue(2, 3).unwrap();
    let many = add::queue_many([(1, 1), (2, 2)]).unwrap();
    // Enough rows for PostgreSQL's bulk path (`COPY FROM`), which must sign as the others do.
    let bulk = add::queue_many((0..150).map(|i| (i, 1))).unwrap();
    let with = add::with()
        .on_queue("other")
        .priority(7)
        .queue(4, 4)
        .unwrap();
    let by_name = toosimple_core::enqueue_by_name(
        &db.store,
        "add",
        serde_json::json!({"a": 5, "b": 5}),
        None,
    )
    .unwrap();
    let mut conn = db.store.connection().unwrap();
    let inside = add::queue_in(&mut *conn, 6, 6).unwrap();
    drop(conn);
    let scheduled = toosimple_core::run_schedule(&db.store, "signing.by_schedule").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker").display().to_string();
    let retried = fails_once::queue(marker, 20, 22).unwrap();
    // A schedule stored at run time, materialized as a worker's pass does (with the
    // compiled `#[schedule]`s due now, signed the same way).
    db.store
        .add_schedule(
            &NewSchedule::new("signing.stored", "add", serde_json::json!({"a": 1, "b": 2}))
                .every(Every::Seconds(60))
                .start(Utc::now() - TimeDelta::seconds(30)),
        )
        .unwrap();
    let materialized = Materializer::new("m", Config::default(), &QueueSelection::All)
        .run_once(&db.store, Utc::now())
        .unwrap();
    let stored = materialized
        .enqueued
        .iter()
        .find(|(name, ..)| name == "signing.stored")
        .map(|(_, id, _)| *id)
        .unwrap_or_else(|| panic!("materialized: {materialized:?}"));
    for (name, id, _) in &materialized.enqueued {
        assert!(
            signature(db, *id).is_some(),
            "{name}'s occurrence is signed"
        );
    }

    let ids: Vec<i64> = [
        single.id(),
        with.id(),
        by_name.id(),
        inside.id(),
        scheduled.id(),
        stored,
    ]
    .into_iter()
    .chain(many.iter().map(|h| h.id()))
    .chain(bulk.iter().map(|h| h.id()))
    .chain([retried.id()])
    .collect();
    for id in &ids {
        let signature = signature(db, *id).unwrap_or_else(|| panic!("row {id} is signed"));
        assert!(signature.starts_with("v1:"), "{signature}");
    }
    let worker = db.worker().until_done().queues(["default", "other"]);
    assert_eq!(worker.run(), Exit::Stopped);
    for id in &ids[..6] {
        assert_eq!(state(db, *id), State::Succeeded, "row {id}");
    }
    for handle in &bulk {
        assert_eq!(
            handle.state().unwrap(),
            State::Succeeded,
            "row {}",
            handle.id()
        );
    }
    assert_eq!(single.exec().unwrap().result, Some(serde_json::json!(5)));
    assert_eq!(
        scheduled.exec().unwrap().result,
        Some(serde_json::json!(42))
    );
    // The retry copied the signed fields and the signature: it ran.
    let first = retried.exec().unwrap();
    assert_eq!(first.state, State::Failed);
    let retry = first.replaced_by.expect("retried");
    assert_eq!(signature(db, retry), signature(db, retried.id()));
    let retry = TaskExec::get_in(&db.store, retry).unwrap();
    assert_eq!(
        (retry.state, retry.result),
        (State::Succeeded, Some(serde_json::json!(42)))
    );
}

fn a_row_changed_outside_toosimple_is_invalid_and_never_runs(db: &TestDb) {
    db.create_side_effects();
    db.store.set_signing(Some(Signing::new("s3cret")));
    let changed = record::queue(1).unwrap();
    let requeued = record::queue(2).unwrap();
    let untouched = record::queue(3).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET args = '{{\"n\":100}}' WHERE id = {}",
        changed.id()
    ));
    // Another queue is part of the signature too.
    db.execute(&format!(
        "UPDATE task_execs SET queue = 'elsewhere' WHERE id = {}",
        requeued.id()
    ));
    let worker = db.worker().until_done().queues(["default", "elsewhere"]);
    assert_eq!(worker.run(), Exit::Stopped);

    assert_eq!(db.side_effects(), [3], "only the untouched row ran");
    assert_eq!(state(db, untouched.id()), State::Succeeded);
    for handle in [&changed, &requeued] {
        let exec = handle.exec().unwrap();
        assert_eq!(exec.state, State::Invalid, "{exec:?}");
        assert_eq!(exec.error.as_deref(), Some(SIGNATURE_MISMATCH));
        assert_eq!(exec.replaced_by, None, "an invalid row is never retried");
        assert!(exec.finished.is_some());
    }
    // Requeueing a changed row would sign the change: it is refused, and nothing is enqueued;
    // the genuine one is requeued, signed.
    let before = TaskExec::list_in(&db.store, &Default::default())
        .unwrap()
        .len();
    let refused = TaskExec::requeue_in(&db.store, changed.id()).unwrap_err();
    assert!(
        matches!(refused, toosimple_core::Error::SignatureMismatch { id } if id == changed.id()),
        "{refused}"
    );
    assert!(
        refused.to_string().contains(SIGNATURE_MISMATCH),
        "{refused}"
    );
    assert_eq!(
        TaskExec::list_in(&db.store, &Default::default())
            .unwrap()
            .len(),
        before
    );
    let again = TaskExec::requeue_in(&db.store, untouched.id()).unwrap();
    assert!(signature(db, again.id()).is_some());
    assert_eq!(again.exec().unwrap().args, serde_json::json!({"n": 3}));
}

fn a_row_without_a_signature_is_invalid_once_a_key_is_set(db: &TestDb) {
    db.create_side_effects();
    let unsigned = record::queue(1).unwrap();
    assert_eq!(signature(db, unsigned.id()), None);
    db.store.set_signing(Some(Signing::new("s3cret")));
    // A forged signature does no better than none.
    let forged = record::queue(2).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET signature = 'v1:{}' WHERE id = {}",
        "0".repeat(64),
        forged.id()
    ));
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(db.side_effects(), Vec::<i64>::new());
    for handle in [&unsigned, &forged] {
        let exec = handle.exec().unwrap();
        assert_eq!(
            (exec.state, exec.error.as_deref()),
            (State::Invalid, Some(SIGNATURE_MISMATCH))
        );
    }
}

fn after_a_rotation_old_rows_run_while_the_old_key_is_a_fallback(db: &TestDb) {
    db.create_side_effects();
    db.store.set_signing(Some(Signing::new("old key")));
    let old = record::queue(1).unwrap();
    db.store.set_signing(Some(
        Signing::new("new key")
            .fallback("older key")
            .fallback("old key"),
    ));
    let new = record::queue(2).unwrap();
    assert_ne!(signature(db, old.id()), signature(db, new.id()));
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let mut ran = db.side_effects();
    ran.sort_unstable();
    assert_eq!(ran, [1, 2]);
    assert_eq!(state(db, old.id()), State::Succeeded);
    assert_eq!(state(db, new.id()), State::Succeeded);

    // Once the old key is dropped from the fallbacks, its rows no longer run.
    db.store.set_signing(Some(Signing::new("old key")));
    let left_over = record::queue(3).unwrap();
    db.store.set_signing(Some(Signing::new("new key")));
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let exec = left_over.exec().unwrap();
    assert_eq!(
        (exec.state, exec.error.as_deref()),
        (State::Invalid, Some(SIGNATURE_MISMATCH))
    );
    assert_eq!(db.side_effects().len(), 2);
}

fn without_a_key_nothing_is_signed_or_checked(db: &TestDb) {
    db.create_side_effects();
    db.store.set_signing(None);
    let plain = record::queue(1).unwrap();
    let changed = record::queue(2).unwrap();
    assert_eq!(signature(db, plain.id()), None);
    db.execute(&format!(
        "UPDATE task_execs SET args = '{{\"n\":20}}' WHERE id = {}",
        changed.id()
    ));
    // A signed row runs too: without a key, nobody checks.
    db.store.set_signing(Some(Signing::new("s3cret")));
    let signed = record::queue(3).unwrap();
    db.store.set_signing(None);
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let mut ran = db.side_effects();
    ran.sort_unstable();
    assert_eq!(ran, [1, 3, 20]);
    for id in [plain.id(), changed.id(), signed.id()] {
        assert_eq!(state(db, id), State::Succeeded);
    }
}

fn the_cli_signs_what_it_enqueues_with_the_environments_key(db: &TestDb) {
    let enqueue = |key: Option<&str>| {
        let mut command: Command = db.app(APP);
        command.args(["enqueue", "add", r#"{"a": 20, "b": 22}"#]);
        command.env_remove("TOOSIMPLE_SECRET_KEY");
        command.env_remove("TOOSIMPLE_SECRET_KEY_FALLBACKS");
        if let Some(key) = key {
            command.env("TOOSIMPLE_SECRET_KEY", key);
        }
        let out = command.output().expect("run the app");
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let id: i64 = stdout
            .split('#')
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("an id in {stdout:?}"));
        id
    };
    let signed = enqueue(Some("cli key"));
    let unsigned = enqueue(None);
    assert!(signature(db, signed).is_some());
    assert_eq!(signature(db, unsigned), None);
    db.store.set_signing(Some(Signing::new("cli key")));
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let signed = TaskExec::get_in(&db.store, signed).unwrap();
    assert_eq!(
        (signed.state, signed.result),
        (State::Succeeded, Some(serde_json::json!(42)))
    );
    assert_eq!(state(db, unsigned), State::Invalid);
}

fn stored_args(db: &TestDb, id: i64) -> String {
    use diesel::prelude::*;
    use toosimple_core::schema::task_execs::dsl as te;
    let mut conn = db.store.connection().unwrap();
    te::task_execs
        .find(id)
        .select(te::args)
        .first(&mut *conn)
        .unwrap()
}

fn large_arguments_are_stored_compressed_and_read_as_plain_json(db: &TestDb) {
    db.store.set_signing(Some(Signing::new("s3cret")));
    db.store.set_compression(Some(100));
    let text = "compress me ".repeat(500);
    let large = shout::queue(text.clone()).unwrap();
    let small = shout::queue("hi".to_string()).unwrap();
    let many = shout::queue_many([(text.clone(),)]).unwrap();
    let mut conn = db.store.connection().unwrap();
    let inside = shout::queue_in(&mut *conn, text.clone()).unwrap();
    drop(conn);

    for id in [large.id(), many[0].id(), inside.id()] {
        let stored = stored_args(db, id);
        assert!(
            stored.starts_with("zstd:") && stored.len() < text.len() / 5,
            "row {id} is stored compressed: {} bytes",
            stored.len()
        );
        // Whoever reads the row sees the plain JSON.
        assert_eq!(
            TaskExec::get_in(&db.store, id).unwrap().args,
            serde_json::json!({ "text": text })
        );
    }
    assert_eq!(stored_args(db, small.id()), r#"{"text":"hi"}"#);
    let listed = TaskExec::list_in(
        &db.store,
        &toosimple_core::TaskExecFilter::default().task_name("shout"),
    )
    .unwrap();
    assert!(
        listed.iter().all(|e| e.args["text"].is_string()),
        "{listed:?}"
    );

    // The worker decompresses, checks the signature over the plain JSON, and runs it.
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(
        large.exec().unwrap().result,
        Some(serde_json::json!(text.to_uppercase()))
    );
    for id in [small.id(), many[0].id(), inside.id()] {
        assert_eq!(state(db, id), State::Succeeded);
    }

    // A compressed row changed outside toosimple is refused like any other.
    let changed = shout::queue(text.clone()).unwrap();
    let other = shout::queue(format!("{text}!")).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET args = '{}' WHERE id = {}",
        stored_args(db, other.id()),
        changed.id()
    ));
    db.execute(&format!("DELETE FROM task_execs WHERE id = {}", other.id()));
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let exec = changed.exec().unwrap();
    assert_eq!(
        (exec.state, exec.error.as_deref()),
        (State::Invalid, Some(SIGNATURE_MISMATCH))
    );
}
