//! `TaskHandle`: what enqueueing returns, to follow the execution.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::{Cancellation, Progress, State, Store, TaskExec};

/// A handle on an enqueued execution whose task returns `T`.
///
/// ```no_run
/// use std::time::Duration;
/// use toosimple_core::task;
///
/// #[task]
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// fn main() -> Result<(), toosimple_core::Error> {
///     let handle = add::queue(2, 3)?;
///     // ... a worker runs it ...
///     assert_eq!(handle.wait(Duration::from_secs(10))?, 5);
///     Ok(())
/// }
/// ```
pub struct TaskHandle<T> {
    id: i64,
    duplicate: bool,
    /// `None` for handles made inside a caller's transaction: resolved to the default store.
    store: Option<Store>,
    output: PhantomData<fn() -> T>,
}

impl<T> Clone for TaskHandle<T> {
    fn clone(&self) -> Self {
        TaskHandle {
            id: self.id,
            duplicate: self.duplicate,
            store: self.store.clone(),
            output: PhantomData,
        }
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("duplicate", &self.duplicate)
            .finish()
    }
}

impl<T> TaskHandle<T> {
    /// A handle on execution `id` of `store`. `T` must be the task's return type (for
    /// `Result<R, E>`, `R`) for [`wait`](Self::wait) to decode its result.
    pub fn new(store: Store, id: i64) -> Self {
        TaskHandle {
            id,
            duplicate: false,
            store: Some(store),
            output: PhantomData,
        }
    }

    pub(crate) fn enqueued(store: Option<Store>, id: i64, duplicate: bool) -> Self {
        TaskHandle {
            id,
            duplicate,
            store,
            output: PhantomData,
        }
    }

    /// The execution's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Whether enqueueing a unique task found an identical pending execution: this handle is on
    /// that one, and no row was added.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The store the execution lives in (the default store for a handle returned by
    /// `queue_in`).
    pub fn store(&self) -> Result<Store> {
        match &self.store {
            Some(store) => Ok(store.clone()),
            None => crate::store::default_store(),
        }
    }

    /// Reads the execution's row afresh.
    pub fn exec(&self) -> Result<TaskExec> {
        TaskExec::get_in(&self.store()?, self.id)
    }

    /// The execution's current state.
    pub fn state(&self) -> Result<State> {
        Ok(self.exec()?.state)
    }

    /// Cancels the execution: a pending one at once, a running one by a cancel request its
    /// worker honours within a heartbeat (see [`TaskExec::cancel_in`]). A finished one is left
    /// as it is ([`Cancellation::Finished`]).
    pub fn cancel(&self) -> Result<Cancellation> {
        TaskExec::cancel_in(&self.store()?, self.id)
    }

    /// The latest progress the execution reported ([`TaskContext::progress`]) that its worker
    /// wrote (at most once a second), `None` before any.
    ///
    /// [`TaskContext::progress`]: crate::TaskContext::progress
    pub fn progress(&self) -> Result<Option<Progress>> {
        Ok(self.exec()?.progress)
    }

    /// Blocks until the execution ends, following its retries, and returns its result.
    ///
    /// An execution that ends otherwise (failed with no retries left, invalid, cancelled,
    /// interrupted) gives [`Error::TaskFailed`] with its state and message; one still running
    /// after `timeout` gives [`Error::WaitTimeout`].
    pub fn wait(&self, timeout: Duration) -> Result<T>
    where
        T: DeserializeOwned,
    {
        let deadline = Instant::now() + timeout;
        let store = self.store()?;
        let mut id = self.id;
        let mut pause = Duration::from_millis(2);
        loop {
            let exec = TaskExec::get_in(&store, id)?;
            if let Some(next) = exec.replaced_by {
                id = next;
                continue;
            }
            match exec.state {
                State::Succeeded => {
                    let value = exec.result.unwrap_or(serde_json::Value::Null);
                    return serde_json::from_value(value)
                        .map_err(|source| Error::DecodeResult { id, source });
                }
                state if state.is_finished() => {
                    return Err(Error::TaskFailed {
                        id,
                        task: exec.task_name,
                        state,
                        error: exec.error,
                    });
                }
                state => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Error::WaitTimeout { id, state, timeout });
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        }
    }
}
