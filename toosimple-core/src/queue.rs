//! Queue settings stored in the database: paused, a concurrency limit shared by every worker,
//! and the retries and time limit of executions that set none (django-queue-manager's queues
//! with their `max_retries`, django-pq's `SerialQueue`).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::error::{Error, Result};

/// The longest queue name (MariaDB and MySQL store queue names as `VARCHAR(255)`).
const MAX_NAME: usize = 255;

/// One queue's settings, as every worker reads them at each tick.
///
/// A queue nobody configured has the defaults ([`QueueSettings::unconfigured`]): served, no
/// limit, its tasks' own retries and time limits, as before queues had settings. Change them
/// with [`Store::pause_queue`](crate::Store::pause_queue),
/// [`Store::resume_queue`](crate::Store::resume_queue) and
/// [`Store::set_queue`](crate::Store::set_queue), `app queue pause|resume|set`, or the admin's
/// Queues page.
///
/// ```
/// use std::time::Duration;
/// use toosimple_core::{QueueChange, Store};
///
/// let dir = tempfile::tempdir()?;
/// let store = Store::connect(&format!("sqlite://{}", dir.path().join("q.sqlite3").display()))?;
/// assert!(!store.queue("reports")?.is_configured());
///
/// // One report at a time, across every worker on every machine.
/// let reports = store.set_queue(
///     "reports",
///     &QueueChange::new()
///         .concurrency_limit(Some(1))
///         .default_retries(Some(3))
///         .default_timeout(Some(Duration::from_secs(600))),
/// )?;
/// assert_eq!(reports.concurrency_limit, Some(1));
/// assert!(store.pause_queue("reports")?.paused);
/// assert!(!store.resume_queue("reports")?.paused);
/// assert_eq!(store.queues()?.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueSettings {
    /// The queue's name, as tasks and workers name it.
    pub name: String,
    /// Paused: workers claim nothing from it; what runs finishes. Seen by each worker within
    /// one tick.
    pub paused: bool,
    /// At most this many of its executions run at once, across every worker and machine
    /// (1: one at a time, a serial queue); `None`: no limit. The database enforces it: a
    /// worker claims a limited queue's rows under a lock on the queue's row, after counting
    /// what runs.
    pub concurrency_limit: Option<u32>,
    /// The retries of its executions that set none (neither their `#[task(retries = …)]` nor
    /// their call's `retries`); given when a worker claims them. -1: for ever.
    pub default_retries: Option<i32>,
    /// The time limit of its executions that set none (neither their
    /// `#[task(timeout = …)]` nor their call's `timeout`); applied by the worker that runs them.
    pub default_timeout: Option<Duration>,
    /// When the settings last changed; `None` for a queue nobody configured.
    pub updated: Option<DateTime<Utc>>,
}

impl QueueSettings {
    /// The settings of a queue nobody configured: served, no limit, no defaults.
    pub fn unconfigured(name: impl Into<String>) -> QueueSettings {
        QueueSettings {
            name: name.into(),
            paused: false,
            concurrency_limit: None,
            default_retries: None,
            default_timeout: None,
            updated: None,
        }
    }

    /// Whether the queue has a row in the `queues` table (it was configured once, even if its
    /// settings are back to the defaults).
    pub fn is_configured(&self) -> bool {
        self.updated.is_some()
    }

    /// Whether a worker treats it as it treats a queue nobody configured: not paused, no
    /// limit, no defaults.
    pub fn is_default(&self) -> bool {
        !self.paused
            && self.concurrency_limit.is_none()
            && self.default_retries.is_none()
            && self.default_timeout.is_none()
    }
}

/// A change of some of a queue's settings, for [`Store::set_queue`](crate::Store::set_queue):
/// what it does not name is left as it is. `None` in a setter removes that setting.
///
/// ```
/// use std::time::Duration;
/// use toosimple_core::QueueChange;
///
/// // Two at a time; no default time limit any more; retries left as they are.
/// let change = QueueChange::new()
///     .concurrency_limit(Some(2))
///     .default_timeout(None);
/// # let _ = change;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct QueueChange {
    pub(crate) concurrency_limit: Option<Option<u32>>,
    pub(crate) default_retries: Option<Option<i32>>,
    pub(crate) default_timeout: Option<Option<Duration>>,
}

impl QueueChange {
    /// A change of nothing, to add settings to.
    pub fn new() -> QueueChange {
        QueueChange::default()
    }

    /// At most `limit` executions of the queue run at once across every worker (`Some(1)`:
    /// serial); `None` removes the limit. 0 is refused: pause the queue instead.
    pub fn concurrency_limit(mut self, limit: Option<u32>) -> QueueChange {
        self.concurrency_limit = Some(limit);
        self
    }

    /// The retries of executions that set none (-1: for ever); `None` removes the default.
    pub fn default_retries(mut self, retries: Option<i32>) -> QueueChange {
        self.default_retries = Some(retries);
        self
    }

    /// The time limit of executions that set none; `None` removes the default.
    pub fn default_timeout(mut self, timeout: Option<Duration>) -> QueueChange {
        self.default_timeout = Some(timeout);
        self
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &QueueChange::default()
    }

    /// Refuses, with what to write instead, a change that would be stored wrong.
    pub(crate) fn validate(&self, queue: &str) -> Result<()> {
        let refuse = |reason: &str| {
            Err(Error::InvalidQueueSettings {
                queue: queue.to_string(),
                reason: reason.to_string(),
            })
        };
        if self.concurrency_limit == Some(Some(0)) {
            return refuse(
                "a concurrency limit of 0 would run nothing: pause the queue instead \
                 (`app queue pause`), or give a limit of 1 or more",
            );
        }
        if let Some(Some(limit)) = self.concurrency_limit
            && i32::try_from(limit).is_err()
        {
            return refuse("the concurrency limit is too large: at most 2147483647");
        }
        if let Some(Some(retries)) = self.default_retries
            && retries < -1
        {
            return refuse("default retries must be -1 (for ever) or more");
        }
        if self.default_timeout == Some(Some(Duration::ZERO)) {
            return refuse(
                "a default time limit of 0 fails every run: give one of 1s or more, or none",
            );
        }
        Ok(())
    }
}

/// Refuses a queue name no task could use.
pub(crate) fn check_name(queue: &str) -> Result<()> {
    let reason = if queue.trim().is_empty() {
        "the queue name is empty"
    } else if queue.len() > MAX_NAME {
        "the queue name is longer than 255 bytes"
    } else {
        return Ok(());
    };
    Err(Error::InvalidQueueSettings {
        queue: queue.to_string(),
        reason: reason.to_string(),
    })
}

/// A `queues` row as diesel reads it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::queues)]
pub(crate) struct QueueRow {
    pub name: String,
    pub paused: bool,
    pub concurrency_limit: Option<i32>,
    pub default_retries: Option<i32>,
    pub default_timeout_ms: Option<i64>,
    pub updated: NaiveDateTime,
}

impl From<QueueRow> for QueueSettings {
    fn from(row: QueueRow) -> QueueSettings {
        QueueSettings {
            name: row.name,
            paused: row.paused,
            // A negative or zero limit cannot be stored through the API; read as one slot.
            concurrency_limit: row
                .concurrency_limit
                .map(|n| u32::try_from(n).unwrap_or(0).max(1)),
            default_retries: row.default_retries,
            default_timeout: row
                .default_timeout_ms
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(1).max(1))),
            updated: Some(row.updated.and_utc()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_changes_say_what_to_write() {
        let zero = QueueChange::new().concurrency_limit(Some(0)).validate("q");
        assert!(
            zero.unwrap_err()
                .to_string()
                .contains("pause the queue instead"),
            "a limit of 0"
        );
        assert!(
            QueueChange::new()
                .default_retries(Some(-2))
                .validate("q")
                .is_err()
        );
        assert!(
            QueueChange::new()
                .default_timeout(Some(Duration::ZERO))
                .validate("q")
                .is_err()
        );
        assert!(
            QueueChange::new()
                .concurrency_limit(Some(1))
                .default_retries(Some(-1))
                .validate("q")
                .is_ok()
        );
        assert!(check_name(" ").is_err());
        assert!(check_name(&"q".repeat(256)).is_err());
    }
}
