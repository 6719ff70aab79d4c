//! Running queued tasks inside a test, without a worker process: django-leek's synchronous
//! `offload()`, django-pq's `Queue(async=False)`.
//!
//! [`inline`] makes `queue()` itself run the task at once, in the caller's thread, still
//! recording its row:
//!
//! ```standalone_crate
//! use toosimple_core::testing::TestStore;
//! use toosimple_core::{State, task};
//!
//! #[task]
//! fn double(n: i64) -> i64 {
//!     n * 2
//! }
//!
//! # fn main() -> Result<(), toosimple_core::Error> {
//! let _db = TestStore::new()?;
//! let _inline = toosimple_worker::testing::inline(); // until dropped, in this thread
//! let handle = double::queue(21)?; // ran before queue() returned
//! assert_eq!(handle.state()?, State::Succeeded);
//! assert_eq!(handle.wait(std::time::Duration::ZERO)?, 42);
//! # Ok(())
//! # }
//! ```
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

use std::marker::PhantomData;
use std::time::Duration;

use chrono::{DateTime, Utc};
use toosimple_core::{Error, Store, TaskExec};

use crate::clock::{Clock, TestClock};
use crate::worker::{Exit, Worker};

/// Turns inline mode on in this thread until the returned guard is dropped: `queue()`,
/// `queue_many()`, `with()...queue()` and `enqueue_by_name` then run each execution they
/// store, due now, before they return, in this thread, recording it as a worker would (its
/// state, result or error, `worker = "inline"`, a retry's replacement row) and calling its
/// hook. The handle they return holds the outcome.
///
/// What is not due now is left in the queue, as it would be: a call for later (`queue_at`,
/// `.after(...)`), a retry waiting its delay (drain them with [`drain`]), a unique call folded
/// into a pending duplicate, and `queue_in`, whose row exists only once the caller's
/// transaction commits. A sync task runs in this thread without a time limit (a thread cannot
/// be stopped); an async one runs on a runtime of its own, on a scoped thread when this thread
/// already drives a runtime, with its time limit. Tasks enqueued by an inline task run
/// inline too.
///
/// Inline mode is per thread: other threads, and workers, go on as before.
pub fn inline() -> Inline {
    let previous = toosimple_core::testing::set_inline_runner(Some(run_inline));
    Inline {
        previous,
        _this_thread: PhantomData,
    }
}

fn run_inline(store: &Store, ids: &[i64]) -> Result<(), Error> {
    crate::worker::inline::run_here(store, ids)
}

/// Inline mode, on in this thread while it lives; see [`inline`].
#[must_use = "inline mode lasts as long as the guard"]
pub struct Inline {
    previous: Option<toosimple_core::testing::InlineRunner>,
    // Inline mode belongs to the thread that turned it on.
    _this_thread: PhantomData<*const ()>,
}

impl Drop for Inline {
    fn drop(&mut self) {
        toosimple_core::testing::set_inline_runner(self.previous.take());
    }
}

impl std::fmt::Debug for Inline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inline").finish_non_exhaustive()
    }
}

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
