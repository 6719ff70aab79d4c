use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a task execution is in its life.
///
/// ```text
/// queue_at() ─► Sleeping ─(due)─► Queued ◄─ queue()
///                                   │ claimed by a worker
///                                   ▼
///                               Processing ─► Succeeded | Failed | Interrupted | Invalid
/// Sleeping | Queued ─(cancel)─► Cancelled
/// Processing ─(cancel request, honoured by its worker)─► Cancelled
/// ```
///
/// A failed or interrupted execution that may be retried keeps its state and points to its
/// replacement through [`TaskExec::replaced_by`](crate::TaskExec::replaced_by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for its `due` time; a worker moves it to `Queued` then.
    Sleeping,
    /// Ready to be claimed by a worker.
    Queued,
    /// Claimed by a worker and running.
    Processing,
    /// Ran and returned successfully; `result` holds the returned value.
    Succeeded,
    /// Ran and returned an error, panicked or timed out; `error` says which.
    Failed,
    /// Its worker stopped (or died) while it ran.
    Interrupted,
    /// Could not be run: its stored arguments do not fit the task.
    Invalid,
    /// Cancelled before it ran, or while it ran (its worker honoured a cancel request); never
    /// retried.
    Cancelled,
}

impl State {
    /// Every state, in life-cycle order.
    pub const ALL: [State; 8] = [
        State::Sleeping,
        State::Queued,
        State::Processing,
        State::Succeeded,
        State::Failed,
        State::Interrupted,
        State::Invalid,
        State::Cancelled,
    ];

    /// The states of an execution that has not finished yet (`Sleeping`, `Queued`).
    pub const PENDING: [State; 2] = [State::Sleeping, State::Queued];

    /// The name stored in the database and shown by the CLI (`"queued"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Sleeping => "sleeping",
            State::Queued => "queued",
            State::Processing => "processing",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
            State::Invalid => "invalid",
            State::Cancelled => "cancelled",
        }
    }

    /// Whether the execution is waiting to run (`Sleeping` or `Queued`).
    pub const fn is_pending(self) -> bool {
        matches!(self, State::Sleeping | State::Queued)
    }

    /// Whether the execution has ended (neither pending nor `Processing`).
    pub const fn is_finished(self) -> bool {
        !matches!(self, State::Sleeping | State::Queued | State::Processing)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`State`] from an unknown name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown task state {0:?}: expected one of sleeping, queued, processing, succeeded, failed, interrupted, invalid, cancelled"
)]
pub struct ParseStateError(pub String);

impl FromStr for State {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseStateError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert!("done".parse::<State>().is_err());
    }
}
