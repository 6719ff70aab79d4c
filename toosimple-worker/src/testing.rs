//! Running queued tasks inside a test, without a worker process: django-leek's synchronous
//! `offload()`, django-pq's `Queue(async=False)`.
//!
//! [`drain`] runs everything queued in a store in this process until nothing is left, with
//! time on a [`TestClock`]: a retry waiting its delay, or a task queued for later, runs at once
//! as the clock jumps to its due time, so a test of a flaky task takes milliseconds, not its
//! retry delays.
//!
//! ```standalone_crate
//! use toosimple_core::testing::TestStore;
//! use toosimple_core::{State, task};
//! use toosimple_worker::clock::TestClock;
//!
//! #[task(retries = 2, retry_delay = 60)]
//! fn flaky() -> Result<(), String> {
//!     Err("the remote end is down".to_string())
//! }
//!
//! # fn main() -> Result<(), toosimple_core::Error> {
//! let db = TestStore::new()?;
//! let handle = flaky::queue()?;
//! let clock = TestClock::new();
//! let drained = toosimple_worker::testing::drain(db.store(), &clock)?;
//! assert_eq!(drained.executions, 3); // the first run and two retries, 60 s then 120 s later
//! let last = handle.exec()?; // the first run; its chain ends in the last retry
//! assert_eq!(last.state, State::Failed);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store, TaskExec};

use crate::clock::{Clock, TestClock};
use crate::worker::{Exit, Worker};

/// What [`drain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// Executions that ran (each run of a retried task counts).
    pub executions: usize,
    /// The clock's time when nothing was left.
    pub until: DateTime<Utc>,
}

/// Runs every execution of `store` that is queued, or sleeping until a due time (retries
/// included), in this process, moving `clock` forward to each due time, until none is left.
/// Schedules are materialized at the clock's times on the way; their later occurrences are
/// not waited for (advance the clock and drain again).
///
/// # Errors
/// Fails when the store cannot be read, or the worker stops with an error.
pub fn drain(store: &Store, clock: &TestClock) -> Result<Drained, Error> {
    let finished = |store: &Store| -> Result<usize, Error> {
        Ok(TaskExec::counts_in(store)?
            .iter()
            .filter(|c| c.state.is_finished())
            .map(|c| usize::try_from(c.count).unwrap_or(0))
            .sum())
    };
    let before = finished(store)?;
    loop {
        let exit = Worker::new()
            .store(store.clone())
            .clock(clock.clone())
            .tick(Duration::from_millis(10))
            .label("drain-{pid}")
            .until_done()
            .run();
        if exit != Exit::Stopped {
            return Err(Error::Runtime(format!(
                "the in-process worker stopped with {exit:?} (see its log)"
            )));
        }
        match TaskExec::next_due_in(store)? {
            // Nothing due later: everything ran.
            None => break,
            Some(due) => clock.set(due.max(clock.now())),
        }
    }
    Ok(Drained {
        executions: finished(store)? - before,
        until: clock.now(),
    })
}
