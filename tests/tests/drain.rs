//! `toosimple_worker::testing::drain`: everything queued runs in the test's own process, retry
//! delays and later due times passed on a test clock, on SQLite and PostgreSQL.

use chrono::{TimeDelta, Utc};
use toosimple_core::{State, TaskExec, TaskExecFilter};
use toosimple_tests::tasks::{always_fails, record};
use toosimple_tests::{TestDb, backend_suite};
use toosimple_worker::clock::{Clock, TestClock};
use toosimple_worker::testing::drain;

backend_suite!(drain_runs_retries_and_later_tasks_on_the_test_clock);

fn drain_runs_retries_and_later_tasks_on_the_test_clock(db: &TestDb) {
    db.create_side_effects();
    let start = Utc::now();
    let clock = TestClock::at(start);
    // Three retries, 1, 2 and 4 s apart; and a task due in an hour.
    let failing = always_fails::queue().unwrap();
    let later = record::queue_at(start + TimeDelta::hours(1), 7).unwrap();

    let drained = drain(&db.store, &clock).unwrap();

    assert_eq!(drained.executions, 5, "{drained:?}");
    let mut chain = vec![failing.exec().unwrap()];
    while let Some(next) = chain.last().unwrap().replaced_by {
        chain.push(TaskExec::get_in(&db.store, next).unwrap());
    }
    assert_eq!(chain.len(), 4, "the first run and three retries: {chain:?}");
    assert!(chain.iter().all(|e| e.state == State::Failed), "{chain:?}");
    // Each retry started its delay after the run before it ended, on the test clock.
    for (run, retry) in chain.iter().zip(&chain[1..]) {
        let waited = retry.started.unwrap() - run.finished.unwrap();
        assert!(
            waited >= TimeDelta::seconds(run.retry_delay),
            "{run:?} {retry:?}"
        );
    }
    assert_eq!(later.exec().unwrap().state, State::Succeeded);
    assert_eq!(db.side_effects(), vec![7]);
    // (The row keeps microseconds: its due reads back a hair before the nanosecond one.)
    assert!(drained.until >= start + TimeDelta::hours(1) - TimeDelta::milliseconds(1));
    assert_eq!(clock.now(), drained.until);
    assert_eq!(
        TaskExec::list_in(&db.store, &TaskExecFilter::default().state(State::Sleeping))
            .unwrap()
            .len(),
        0
    );
    // Nothing left: a second drain runs nothing and leaves the clock alone.
    let again = drain(&db.store, &clock).unwrap();
    assert_eq!(again.executions, 0);
    assert_eq!(again.until, drained.until);
}
