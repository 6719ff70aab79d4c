//! Hooks (`#[hook]`, `#[task(hook = ...)]`, a call's `.hook(...)`, `#[schedule(hook = ...)]`,
//! the worker's error hook) and the pass that calls the hooks workers left behind, on SQLite
//! and PostgreSQL.

use chrono::{TimeDelta, Utc};
use toosimple_core::{Cancellation, State, TaskExec, schedule, task};
use toosimple_tests::tasks::{
    add, fail_with, failing_hook, hooked, note_execution, panicking_hook, record,
};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::Exit;
use toosimple_worker::maintenance::hooks::{self, LeftoverHooks};

backend_suite!(
    a_tasks_hook_gets_each_finished_execution_once_its_outcome_is_committed,
    a_failing_or_panicking_hook_is_recorded_and_changes_nothing,
    a_calls_and_a_schedules_hook_replace_the_tasks,
    the_error_hook_hears_every_failure_and_no_success,
    hooks_left_behind_are_taken_once_by_a_pass,
);

/// A `manual` schedule whose executions go to [`failing_hook`], not to their task's hook.
#[schedule(cron = "manual", name = "hooked.by_schedule", hook = failing_hook)]
#[task(hook = note_execution)]
fn scheduled_with_a_hook() {}

/// The execution ids `side_effects` holds, sorted.
fn noted(db: &TestDb) -> Vec<i64> {
    let mut noted = db.side_effects();
    noted.sort_unstable();
    noted
}

fn a_tasks_hook_gets_each_finished_execution_once_its_outcome_is_committed(db: &TestDb) {
    db.create_side_effects();
    let succeeds = hooked::queue(true).unwrap();
    let fails = hooked::queue(false).unwrap();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);

    let retry = fails.exec().unwrap().replaced_by.expect("retried once");
    // Each run, the failed one and its retry too, each once; none saw an uncommitted state
    // (the hook notes those negated).
    let mut expected = vec![succeeds.id(), fails.id(), retry];
    expected.sort_unstable();
    assert_eq!(noted(db), expected);
    for id in expected {
        let exec = TaskExec::get_in(&db.store, id).unwrap();
        assert_eq!(exec.hook.as_deref(), Some("note_execution"));
        assert!(exec.hook_ran.is_some(), "{exec:?}");
        assert_eq!(exec.hook_error, None);
    }
    let retry = TaskExec::get_in(&db.store, retry).unwrap();
    assert_eq!(retry.state, State::Failed);
    assert_eq!(
        retry.hook.as_deref(),
        Some("note_execution"),
        "a retry keeps its hook"
    );
    // A task without a hook gets none.
    let plain = add::queue(1, 1).unwrap();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    let plain = plain.exec().unwrap();
    assert_eq!((plain.hook, plain.hook_ran), (None, None));
}

fn a_failing_or_panicking_hook_is_recorded_and_changes_nothing(db: &TestDb) {
    db.create_side_effects();
    let refused = hooked::with()
        .hook(failing_hook::HOOK)
        .retries(0)
        .queue(true)
        .unwrap();
    let panicked = hooked::with()
        .hook(panicking_hook::HOOK)
        .retries(0)
        .queue(false)
        .unwrap();
    let after = record::queue(7).unwrap();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);

    let refused = refused.exec().unwrap();
    assert_eq!(refused.state, State::Succeeded, "{refused:?}");
    assert_eq!(
        refused.hook_error,
        Some(format!(
            "hook `failing_hook` failed: no one to tell about {}",
            refused.id
        ))
    );
    let panicked = panicked.exec().unwrap();
    assert_eq!(panicked.state, State::Failed, "{panicked:?}");
    assert_eq!(panicked.error.as_deref(), Some("asked to fail"));
    assert_eq!(
        panicked.hook_error,
        Some(format!(
            "hook `hooks.panicking` panicked: the hook of {} panicked",
            panicked.id
        ))
    );
    // The worker went on: the next task ran, and nothing else was noted.
    assert_eq!(after.state().unwrap(), State::Succeeded);
    assert_eq!(db.side_effects(), vec![7]);
}

fn a_calls_and_a_schedules_hook_replace_the_tasks(db: &TestDb) {
    let own = hooked::queue(true).unwrap().exec().unwrap();
    assert_eq!(own.hook.as_deref(), Some("note_execution"));
    let call = hooked::with()
        .hook(failing_hook::HOOK)
        .queue(true)
        .unwrap()
        .exec()
        .unwrap();
    assert_eq!(call.hook.as_deref(), Some("failing_hook"));
    let scheduled = toosimple_core::run_schedule(&db.store, "hooked.by_schedule")
        .unwrap()
        .exec()
        .unwrap();
    assert_eq!(scheduled.hook.as_deref(), Some("failing_hook"));
    // A task without a hook of its own gets the call's.
    let added = add::with()
        .hook(note_execution::HOOK)
        .queue(1, 2)
        .unwrap()
        .exec()
        .unwrap();
    assert_eq!(added.hook.as_deref(), Some("note_execution"));
}

fn the_error_hook_hears_every_failure_and_no_success(db: &TestDb) {
    db.create_side_effects();
    let succeeded = add::queue(1, 2).unwrap();
    let failed = fail_with::queue("on purpose".into()).unwrap();
    let invalid = add::queue(3, 4).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET args = '{{\"a\": \"three\"}}' WHERE id = {}",
        invalid.id()
    ));
    // Left running by a worker that no longer exists: rescued, interrupted, replaced.
    let orphan = add::queue(5, 6).unwrap();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'gone', \
         started = '2000-01-01 00:00:00' WHERE id = {}",
        orphan.id()
    ));
    let worker = db.worker().error_hook(note_execution::HOOK);
    assert_eq!(worker.until_done().run(), Exit::Stopped);

    assert_eq!(succeeded.state().unwrap(), State::Succeeded);
    assert_eq!(failed.state().unwrap(), State::Failed);
    assert_eq!(invalid.state().unwrap(), State::Invalid);
    let orphan_exec = orphan.exec().unwrap();
    assert_eq!(orphan_exec.state, State::Interrupted);
    assert_eq!(
        TaskExec::get_in(&db.store, orphan_exec.replaced_by.expect("replaced"))
            .unwrap()
            .state,
        State::Succeeded
    );
    let mut expected = vec![failed.id(), invalid.id(), orphan.id()];
    expected.sort_unstable();
    assert_eq!(noted(db), expected);
    let failed = failed.exec().unwrap();
    assert!(
        failed.hook_ran.is_some() && failed.hook.is_none(),
        "{failed:?}"
    );
}

fn hooks_left_behind_are_taken_once_by_a_pass(db: &TestDb) {
    db.create_side_effects();
    let pass = LeftoverHooks::new(hooks::Config::default());
    // Recorded by a worker that never called the hook (it died first).
    let orphaned = hooked::queue(true).unwrap();
    assert_eq!(db.run_by_hand(orphaned.id()), State::Succeeded);
    let finished = orphaned.exec().unwrap().finished.unwrap();
    assert_eq!(orphaned.exec().unwrap().hook_ran, None);
    // Within the grace its own worker has, nobody takes it.
    let within = finished + TimeDelta::seconds(299);
    assert_eq!(
        pass.run_once(&db.store, within).unwrap().taken,
        Vec::<i64>::new()
    );
    let past = finished + TimeDelta::seconds(301);
    assert_eq!(
        pass.run_once(&db.store, past).unwrap().taken,
        vec![orphaned.id()]
    );
    assert_eq!(
        pass.run_once(&db.store, past).unwrap().taken,
        Vec::<i64>::new(),
        "taken once"
    );
    assert!(orphaned.exec().unwrap().hook_ran.is_some());

    // A cancelled execution ran nowhere: taken at once, and called by a worker's pass.
    let cancelled = hooked::queue(true).unwrap();
    assert_eq!(cancelled.cancel().unwrap(), Cancellation::Cancelled);
    let worker = db.worker().until_done();
    assert_eq!(worker.run(), Exit::Stopped);
    assert_eq!(db.side_effects(), vec![cancelled.id()]);
    let cancelled = cancelled.exec().unwrap();
    assert_eq!(cancelled.state, State::Cancelled);
    assert!(cancelled.hook_ran.is_some(), "{cancelled:?}");
    assert_eq!(
        pass.run_once(&db.store, Utc::now()).unwrap().taken,
        Vec::<i64>::new(),
        "nothing left"
    );
}
