//! `TaskContext`: what a running task may take as an argument, to report its progress and to
//! see that a cancel was asked of it.
//!
//! The worker gives each execution an [`ExecControl`] and makes it current on the thread that
//! runs the task (around each poll of an async task): `#[task]` fills a `TaskContext`
//! argument from there, and never stores it with the other arguments. The worker's heartbeat
//! writes the latest progress (at most once a second per execution) and reads back cancel
//! requests, which set the flag.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// How far a running execution got, as it last reported ([`TaskContext::progress`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The fraction done, from 0 to 1.
    pub fraction: f64,
    /// What it is doing, when it said (`None` for an empty message).
    pub message: Option<String>,
}

impl Progress {
    /// A progress of `fraction` (clamped to 0..=1; not a number counts as 0) and `message`
    /// (empty: none).
    pub fn new(fraction: f64, message: impl Into<String>) -> Progress {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let message = message.into();
        Progress {
            fraction,
            message: (!message.is_empty()).then_some(message),
        }
    }

    /// The progress stored in a row's `progress` and `progress_message` columns.
    pub(crate) fn from_columns(fraction: Option<f64>, message: Option<String>) -> Option<Progress> {
        fraction.map(|fraction| Progress { fraction, message })
    }
}

impl fmt::Display for Progress {
    /// `42%` or `42% copying files`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0}%", self.fraction * 100.0)?;
        if let Some(message) = &self.message {
            write!(f, " {message}")?;
        }
        Ok(())
    }
}

/// What a running task may take as an argument to report its progress and see a cancel.
///
/// Written as a parameter of a `#[task]` function (of this type, by any name, anywhere in the
/// list), it is not an argument of `queue`: the worker gives it. Called directly, outside a
/// worker, the function takes [`TaskContext::detached`], whose progress goes nowhere.
///
/// ```
/// use toosimple_core::{task, TaskContext};
///
/// #[task]
/// fn import(rows: u32, ctx: TaskContext) -> u32 {
///     for row in 0..rows {
///         if ctx.is_cancelled() {
///             break; // recorded Cancelled
///         }
///         ctx.progress(f64::from(row) / f64::from(rows), format!("row {row}"));
///     }
///     rows
/// }
///
/// fn main() {
///     // `import::queue(rows)` takes only the stored argument; called directly, the function
///     // takes a detached context.
///     let _queue: fn(u32) -> _ = import::queue;
///     assert_eq!(import(3, TaskContext::detached()), 3);
/// }
/// ```
#[derive(Clone, Default)]
pub struct TaskContext {
    control: Option<Arc<ExecControl>>,
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("id", &self.id())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<ExecControl>>> = const { RefCell::new(None) };
}

impl TaskContext {
    /// The context of the execution the worker runs on this thread, or a detached one.
    pub fn current() -> TaskContext {
        TaskContext {
            control: CURRENT.with(|current| current.borrow().clone()),
        }
    }

    /// A context tied to no execution: progress goes nowhere, and it is never cancelled. For
    /// calling a task function directly (tests, other code).
    pub fn detached() -> TaskContext {
        TaskContext::default()
    }

    /// The id of the execution, when a worker runs it.
    pub fn id(&self) -> Option<i64> {
        self.control.as_ref().map(|c| c.id)
    }

    /// Reports progress: `fraction` done (0 to 1, clamped) and what it is doing (`""`: no
    /// message). It never blocks nor fails: the worker writes the latest report at most once
    /// a second, so a task may call it as often as it likes.
    pub fn progress(&self, fraction: f64, message: impl Into<String>) {
        if let Some(control) = &self.control {
            control.report(Progress::new(fraction, message));
        }
    }

    /// Whether a cancel was asked of this execution while it runs (`cancel` on its handle,
    /// `app cancel ID`, the admin). A sync task should check it and return early: once it is
    /// set, the execution is recorded `Cancelled` whatever the task returns. An async task
    /// needs not look: it is aborted at its next await point.
    pub fn is_cancelled(&self) -> bool {
        self.control.as_ref().is_some_and(|c| c.is_cancelled())
    }
}

/// Not API: one running execution's progress and cancel flag, shared by the worker (its
/// heartbeat) and the task's [`TaskContext`].
pub struct ExecControl {
    id: i64,
    /// The latest report not written yet.
    unwritten: Mutex<Option<Progress>>,
    cancelled: AtomicBool,
    cancel: tokio::sync::Notify,
}

impl fmt::Debug for ExecControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecControl")
            .field("id", &self.id)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl ExecControl {
    /// The control of execution `id`.
    pub fn new(id: i64) -> Arc<ExecControl> {
        Arc::new(ExecControl {
            id,
            unwritten: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            cancel: tokio::sync::Notify::new(),
        })
    }

    /// The execution's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    fn report(&self, progress: Progress) {
        *self.unwritten.lock().unwrap_or_else(|e| e.into_inner()) = Some(progress);
    }

    /// Takes the latest report not written yet (the earlier ones are coalesced into it).
    pub fn take_progress(&self) -> Option<Progress> {
        self.unwritten
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Sets the cancel flag, and wakes [`cancelled`](Self::cancelled).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel.notify_waiters();
    }

    /// Whether the cancel flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once the cancel flag is set.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.cancel.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Runs `f` with this execution current on the thread ([`TaskContext::current`]).
    pub fn enter<R>(self: &Arc<Self>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<ExecControl>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_coalesce_and_the_context_is_current_only_inside() {
        let control = ExecControl::new(7);
        assert_eq!(TaskContext::current().id(), None);
        control.enter(|| {
            let ctx = TaskContext::current();
            assert_eq!(ctx.id(), Some(7));
            for i in 0..=10 {
                ctx.progress(f64::from(i) / 10.0, format!("step {i}"));
            }
            assert!(!ctx.is_cancelled());
        });
        assert_eq!(TaskContext::current().id(), None);
        assert_eq!(
            control.take_progress(),
            Some(Progress {
                fraction: 1.0,
                message: Some("step 10".to_string())
            })
        );
        assert_eq!(control.take_progress(), None);
        control.cancel();
        assert!(control.enter(|| TaskContext::current().is_cancelled()));
    }

    #[test]
    fn fractions_are_clamped() {
        assert_eq!(Progress::new(f64::NAN, "").fraction, 0.0);
        assert_eq!(Progress::new(2.0, "").fraction, 1.0);
        assert_eq!(Progress::new(0.5, "half").to_string(), "50% half");
    }
}
