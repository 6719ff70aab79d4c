//! Options one call sets over its task's own: django-queue-manager's `dqmqueue=` and
//! django-pq's `enqueue_call(..., timeout=, result_ttl=)`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::hook::Hook;
use crate::registry::TaskDef;
use crate::ttl::Ttl;

/// What one call of a task overrides of the options its `#[task(...)]` set: queue, priority,
/// due time, retries, retry delay, time limit and how long the finished row is kept.
///
/// Each task's module has a `with()` that starts from the task's own options and ends with the
/// same enqueue functions as the module (`queue`, `queue_many`, `queue_in`):
///
/// ```no_run
/// use std::time::Duration;
/// use toosimple_core::task;
///
/// #[task(queue = "emails", retries = 3)]
/// pub fn send(to: String) {}
///
/// # fn main() -> Result<(), toosimple_core::Error> {
/// send::with()
///     .on_queue("bulk")
///     .priority(-1)
///     .retries(0)
///     .timeout(Duration::from_secs(30))
///     .ttl(Duration::from_secs(7 * 24 * 3600))
///     .queue("ann@example.com".to_string())?;
/// # Ok(())
/// # }
/// ```
///
/// The CLI takes the same options: `app enqueue send '{"to": "ann@example.com"}' --queue bulk
/// --priority -1 --retries 0 --timeout 30s --ttl 7d`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct CallOptions {
    queue: Option<String>,
    priority: Option<i32>,
    due: Option<Due>,
    retries: Option<i32>,
    retry_delay: Option<Duration>,
    timeout: Option<Duration>,
    ttl: Option<Ttl>,
    hook: Option<Hook>,
}

/// When the call runs: at a time, or after a delay from the enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    At(DateTime<Utc>),
    After(Duration),
}

impl CallOptions {
    /// No overrides: the task's own options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs on queue `queue` instead of the task's (workers serving it run it).
    pub fn on_queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Claimed before lower priorities (the task's priority otherwise).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Runs at `due` (it waits `Sleeping` until then).
    pub fn at(mut self, due: DateTime<Utc>) -> Self {
        self.due = Some(Due::At(due));
        self
    }

    /// Runs `delay` after the enqueue.
    pub fn after(mut self, delay: Duration) -> Self {
        self.due = Some(Due::After(delay));
        self
    }

    /// Retries this many times after a failure; -1 retries for ever.
    pub fn retries(mut self, retries: i32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Waits `delay` before the first retry (it doubles after each); whole seconds, rounded up.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    /// Fails the run (and retries it, if retries are left) when it takes longer than `limit`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Deletes the finished execution `ttl` after it finished, over the task's TTL and the
    /// workers' default (see [`Ttl`]): a `Duration` (`Duration::ZERO` deletes it as soon as
    /// its outcome is recorded), or [`Ttl::Keep`]. A retry chain goes when its last execution
    /// has expired.
    pub fn ttl(mut self, ttl: impl Into<Ttl>) -> Self {
        self.ttl = Some(ttl.into());
        self
    }

    /// Keeps the finished execution until purged, whatever the task's TTL or the workers'
    /// default: `ttl(Ttl::Keep)`, django-pq's `result_ttl=-1`.
    pub fn keep(self) -> Self {
        self.ttl(Ttl::Keep)
    }

    /// Calls `hook` with the finished execution, instead of the task's hook (see [`Hook`]).
    pub fn hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The due time these options give a call enqueued at `now`; `None`: at once.
    pub(crate) fn due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.due? {
            Due::At(at) => Some(at),
            Due::After(delay) => {
                Some(now + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX))
            }
        }
    }

    /// When these options run a call, as a flow's step keeps it until it is enqueued: at a
    /// time, or a delay after the enqueue (neither: at once).
    pub(crate) fn due_parts(&self) -> (Option<DateTime<Utc>>, Option<Duration>) {
        match self.due {
            Some(Due::At(at)) => (Some(at), None),
            Some(Due::After(delay)) => (None, Some(delay)),
            None => (None, None),
        }
    }

    /// What the row stores for `def` called with these options; refuses options no worker
    /// could honour, before anything is stored.
    pub(crate) fn resolve(&self, def: &TaskDef) -> Result<Resolved> {
        let refuse = |what: String| Error::InvalidOptions {
            task: def.name().to_string(),
            reason: what,
        };
        if let Some(queue) = &self.queue
            && queue.trim().is_empty()
        {
            return Err(refuse("the queue name is empty".to_string()));
        }
        if let Some(retries) = self.retries
            && retries < -1
        {
            return Err(refuse(format!(
                "retries must be -1 (for ever) or more, not {retries}"
            )));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(refuse(
                "a time limit of 0 fails every run: leave it out for the task's own".to_string(),
            ));
        }
        let whole_seconds = |d: Duration| {
            let seconds = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
            i64::try_from(seconds).unwrap_or(i64::MAX)
        };
        Ok(Resolved {
            queue: self
                .queue
                .clone()
                .unwrap_or_else(|| def.queue().to_string()),
            priority: self.priority.unwrap_or(def.priority()),
            retries: self.retries.unwrap_or(def.retries()),
            own_retries: self.retries.is_some() || def.has_own_retries(),
            retry_delay: self.retry_delay.map_or(def.retry_delay(), whole_seconds),
            timeout_ms: self
                .timeout
                .map(|t| i64::try_from(t.as_millis().max(1)).unwrap_or(i64::MAX)),
            result_ttl: self.ttl.or(def.ttl()).map(Ttl::as_seconds),
            hook: self.hook.or(def.hook()).map(|h| h.name().to_string()),
        })
    }
}

/// One call of a task with options of its own: what each task's `with()` returns.
///
/// The option setters are here, once for every task; the enqueue functions (`queue`,
/// `queue_many`, `queue_in`), whose parameters are the task's own, come from the task's
/// module through `Deref`:
///
/// ```no_run
/// use toosimple_core::task;
///
/// #[task]
/// pub fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// # fn main() -> Result<(), toosimple_core::Error> {
/// let call: toosimple_core::Call<add::With> = add::with().on_queue("bulk").priority(-1);
/// call.queue(1, 2)?;
/// call.queue(3, 4)?; // a call's options serve as many calls as wanted
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "a call enqueues nothing until `queue`, `queue_many` or `queue_in`"]
pub struct Call<T>(T);

/// What a task's module hands to [`Call`]: its options, for the setters to change. Not API:
/// the `#[task]` macro implements it.
#[doc(hidden)]
pub trait CallTarget {
    /// The options this call sets so far.
    fn call_options(&mut self) -> &mut CallOptions;
}

impl<T: CallTarget> Call<T> {
    /// A call of the task `target` stands for. Not API: each task's `with()` makes one.
    #[doc(hidden)]
    pub fn new(target: T) -> Self {
        Call(target)
    }

    fn set(mut self, f: impl FnOnce(CallOptions) -> CallOptions) -> Self {
        let options = self.0.call_options();
        *options = f(std::mem::take(options));
        self
    }

    /// Runs on queue `queue` instead of the task's: see [`CallOptions::on_queue`].
    pub fn on_queue(self, queue: impl Into<String>) -> Self {
        self.set(|o| o.on_queue(queue))
    }

    /// Claimed before lower priorities: see [`CallOptions::priority`].
    pub fn priority(self, priority: i32) -> Self {
        self.set(|o| o.priority(priority))
    }

    /// Runs at `due` (`Sleeping` until then): see [`CallOptions::at`].
    pub fn at(self, due: DateTime<Utc>) -> Self {
        self.set(|o| o.at(due))
    }

    /// Runs `delay` after the enqueue: see [`CallOptions::after`].
    pub fn after(self, delay: Duration) -> Self {
        self.set(|o| o.after(delay))
    }

    /// Retries this many times after a failure (-1: for ever): see [`CallOptions::retries`].
    pub fn retries(self, retries: i32) -> Self {
        self.set(|o| o.retries(retries))
    }

    /// The first retry's delay (it doubles after each): see [`CallOptions::retry_delay`].
    pub fn retry_delay(self, delay: Duration) -> Self {
        self.set(|o| o.retry_delay(delay))
    }

    /// Fails a run that takes longer than `limit`: see [`CallOptions::timeout`].
    pub fn timeout(self, limit: Duration) -> Self {
        self.set(|o| o.timeout(limit))
    }

    /// Deletes the finished execution `ttl` after it finished: see [`CallOptions::ttl`].
    pub fn ttl(self, ttl: impl Into<Ttl>) -> Self {
        self.set(|o| o.ttl(ttl))
    }

    /// Keeps the finished execution until purged: see [`CallOptions::keep`].
    pub fn keep(self) -> Self {
        self.set(CallOptions::keep)
    }

    /// Calls `hook` with the finished execution: see [`CallOptions::hook`].
    pub fn hook(self, hook: Hook) -> Self {
        self.set(|o| o.hook(hook))
    }
}

impl<T> std::ops::Deref for Call<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// [`CallOptions`] merged with the task's own, as the row stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub queue: String,
    pub priority: i32,
    pub retries: i32,
    /// Whether the call or the task chose `retries` (else a queue's default replaces them).
    pub own_retries: bool,
    pub retry_delay: i64,
    pub timeout_ms: Option<i64>,
    pub result_ttl: Option<i64>,
    pub hook: Option<String>,
}
