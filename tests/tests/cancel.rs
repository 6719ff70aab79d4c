//! Cancelling a running task (River, Procrastinate): `cancel` of a `Processing` execution
//! records a cancel request its worker reads back within a heartbeat. An async task is
//! aborted at its next await point, a sync task sees the flag through its `TaskContext`;
//! either is recorded `Cancelled` and never retried.

use std::time::Duration;

use toosimple_core::{Cancellation, State, TaskExec, TaskExecFilter};
use toosimple_tests::tasks::{add, awaits_forever, checks_for_cancel, gate};
use toosimple_tests::{TestDb, backend_suite, wait_until};
use toosimple_worker::Exit;

const DEADLINE: Duration = Duration::from_secs(30);

backend_suite!(
    cancelling_a_running_async_task_aborts_it_and_it_is_not_retried,
    cancelling_a_running_sync_task_sets_the_flag_it_sees,
    a_cancel_asked_of_a_worker_that_died_ends_it_cancelled_when_rescued,
);

/// Every execution of task `name`.
fn executions_of(db: &TestDb, name: &str) -> Vec<TaskExec> {
    TaskExec::list_in(&db.store, &TaskExecFilter::default().task_name(name)).unwrap()
}

fn cancelling_a_running_async_task_aborts_it_and_it_is_not_retried(db: &TestDb) {
    let key = gate::unique("async-cancel");
    let handle = awaits_forever::with()
        .retries(3)
        .queue(key.clone())
        .unwrap();
    let worker = {
        let worker = db.worker().concurrency(1).until_done();
        std::thread::spawn(move || worker.run())
    };
    assert!(gate::wait(&format!("{key}-started"), DEADLINE));
    assert_eq!(handle.cancel().unwrap(), Cancellation::Requested);
    // Asked again before the worker honoured it: still a request, nothing more.
    let again = handle.cancel().unwrap();
    assert!(
        matches!(
            again,
            Cancellation::Requested | Cancellation::Finished(State::Cancelled)
        ),
        "{again:?}"
    );
    assert!(handle.exec().unwrap().cancel_requested.is_some());
    wait_until("the execution to be cancelled", DEADLINE, || {
        handle.state().unwrap() == State::Cancelled
    });
    // Its future was dropped (aborted), not left to run.
    assert!(gate::wait(&format!("{key}-dropped"), DEADLINE));
    assert_eq!(worker.join().unwrap(), Exit::Stopped);
    let exec = handle.exec().unwrap();
    assert_eq!(exec.replaced_by, None, "{exec:?}");
    assert!(
        exec.error.as_deref().unwrap_or("").contains("cancel"),
        "{exec:?}"
    );
    assert_eq!(executions_of(db, awaits_forever::NAME).len(), 1);
    // A finished execution is not cancelled again.
    assert_eq!(
        handle.cancel().unwrap(),
        Cancellation::Finished(State::Cancelled)
    );
}

fn cancelling_a_running_sync_task_sets_the_flag_it_sees(db: &TestDb) {
    let key = gate::unique("sync-cancel");
    let handle = checks_for_cancel::with()
        .retries(2)
        .queue(key.clone())
        .unwrap();
    let worker = {
        let worker = db.worker().concurrency(1).until_done();
        std::thread::spawn(move || worker.run())
    };
    assert!(gate::wait(&format!("{key}-started"), DEADLINE));
    assert_eq!(handle.cancel().unwrap(), Cancellation::Requested);
    // The task saw the flag, returned Ok, and is recorded Cancelled all the same.
    assert!(gate::wait(&format!("{key}-saw-cancel"), DEADLINE));
    wait_until("the execution to be cancelled", DEADLINE, || {
        handle.state().unwrap() == State::Cancelled
    });
    assert_eq!(worker.join().unwrap(), Exit::Stopped);
    let exec = handle.exec().unwrap();
    assert_eq!(exec.result, None, "{exec:?}");
    assert_eq!(exec.replaced_by, None, "{exec:?}");
    assert_eq!(executions_of(db, checks_for_cancel::NAME).len(), 1);
}

/// A worker that dies (no status row: never to beat again) after a cancel was asked of its
/// task: the rescue ends the execution `Cancelled`, and does not run it again.
fn a_cancel_asked_of_a_worker_that_died_ends_it_cancelled_when_rescued(db: &TestDb) {
    let asked = add::with().retries(3).queue(1, 2).unwrap();
    let other = add::queue(3, 4).unwrap();
    let claimed = db
        .store
        .claim(&toosimple_core::store::ClaimRequest {
            worker: "ghost",
            task_names: &[add::NAME],
            queues: &toosimple_core::store::QueueSelection::All,
            limit: 2,
            now: chrono::Utc::now(),
            settings: &[],
            in_order: false,
        })
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(asked.cancel().unwrap(), Cancellation::Requested);

    let rescued = db.store.rescue("rescuer", chrono::Utc::now()).unwrap();
    // Only the other one is replaced, to run again.
    assert_eq!(
        rescued.iter().map(|(old, _)| *old).collect::<Vec<_>>(),
        vec![other.id()]
    );
    let exec = asked.exec().unwrap();
    assert_eq!(
        (exec.state, exec.replaced_by),
        (State::Cancelled, None),
        "{exec:?}"
    );
    assert!(
        exec.error
            .as_deref()
            .unwrap_or("")
            .contains("cancel was requested"),
        "{exec:?}"
    );
    assert_eq!(other.exec().unwrap().state, State::Interrupted);
    assert_eq!(
        asked.cancel().unwrap(),
        Cancellation::Finished(State::Cancelled)
    );
}
