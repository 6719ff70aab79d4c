//! The two completers through one generic test, on the real store: whichever records, the
//! database ends the same, and stale outcomes are dropped and reported.

use chrono::Utc;
use serde_json::json;
use toosimple_core::store::{ClaimRequest, Completion, Outcome, QueueSelection};
use toosimple_core::{State, TaskExec};
use toosimple_tests::tasks::{always_fails, record};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::completer::{BatchedCompleter, Completer, InlineCompleter};

backend_suite!(inline_completer, batched_completer);

fn inline_completer(db: &TestDb) {
    records_every_outcome(db, InlineCompleter::new());
}

fn batched_completer(db: &TestDb) {
    records_every_outcome(db, BatchedCompleter::new());
}

const NAMES: &[&str] = &["record", "always_fails"];

fn request(limit: usize) -> ClaimRequest<'static> {
    static ALL: QueueSelection = QueueSelection::All;
    ClaimRequest {
        worker: "w",
        task_names: NAMES,
        queues: &ALL,
        limit,
        now: Utc::now(),
        settings: &[],
        in_order: false,
    }
}

/// Succeeded, failed with retries left, invalid, interrupted, and one whose row another worker
/// took back: recorded in one round, then one more outcome flushed alone.
fn records_every_outcome<C: Completer>(db: &TestDb, mut completer: C) {
    let succeeded = record::queue(1).unwrap().id();
    let failed = always_fails::queue().unwrap().id();
    let invalid = record::queue(2).unwrap().id();
    let interrupted = record::queue(3).unwrap().id();
    let stale = record::queue(4).unwrap().id();
    let flushed = record::queue(5).unwrap().id();
    // Due before the replacements the round creates, so that the round claims it first.
    let next = record::queue(6).unwrap().id();
    let claimed = db.store.claim(&request(6)).unwrap();
    assert_eq!(claimed.len(), 6);
    // Rescued by another worker while it ran here.
    db.execute(&format!(
        "UPDATE task_execs SET state = 'interrupted', worker = 'rescuer' WHERE id = {stale}"
    ));
    let outcome = |id: i64| match id {
        id if id == succeeded => Outcome::Succeeded(json!(null)),
        id if id == failed => Outcome::Failed("it always fails".into()),
        id if id == invalid => Outcome::Invalid("argument `n` is missing".into()),
        id if id == interrupted || id == stale => Outcome::Interrupted("stopped".into()),
        _ => Outcome::Succeeded(json!(5)),
    };
    let mut last = None;
    for exec in claimed {
        let done = Completion {
            outcome: outcome(exec.id),
            finished: Utc::now(),
            exec,
        };
        if done.exec.id == flushed {
            last = Some(done);
        } else {
            completer.push(done);
        }
    }
    assert_eq!(completer.pending(), 5);

    // The round that records the outcomes also claims.
    let exchange = completer.round(&db.store, &request(1)).unwrap();
    assert_eq!(completer.pending(), 0);
    assert_eq!(exchange.report.recorded, 4);
    assert_eq!(exchange.report.stale, vec![stale]);
    let replaced: Vec<i64> = exchange.report.replacements.iter().map(|r| r.0).collect();
    assert_eq!(replaced, vec![failed, interrupted]);
    assert_eq!(
        exchange.claimed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![next]
    );

    completer.push(last.unwrap());
    let report = completer.flush(&db.store, "w").unwrap();
    assert_eq!((report.recorded, completer.pending()), (1, 0));

    let state = |id| TaskExec::get_in(&db.store, id).unwrap();
    assert_eq!(state(succeeded).state, State::Succeeded);
    assert_eq!(state(flushed).result, Some(json!(5)));
    assert_eq!(state(invalid).state, State::Invalid);
    assert_eq!(state(stale).state, State::Interrupted);
    assert_eq!(state(stale).worker.as_deref(), Some("rescuer"));
    for id in [failed, interrupted] {
        let exec = state(id);
        let replacement = state(exec.replaced_by.expect("a replacement"));
        // Due at once (no retry delay left to wait): the round's wake may have queued it.
        assert!(
            matches!(replacement.state, State::Sleeping | State::Queued),
            "{exec:?} {replacement:?}"
        );
    }
    assert_eq!(state(failed).state, State::Failed);
    assert_eq!(state(interrupted).state, State::Interrupted);
}
