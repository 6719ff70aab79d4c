//! How a worker stops: the stop requests, the [`Shutdown`] handle that sends them, when it
//! stops by itself ([`RunMode`]), and how it ended ([`Exit`], with the seed's exit codes).

use std::sync::Arc;

use tokio::sync::watch;
use toosimple_core::{EXIT_CRASHED, EXIT_STOPPED, EXIT_TERMINATED};

/// When a worker stops by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// Run until stopped by a signal or a [`Shutdown`].
    #[default]
    Forever,
    /// One round: claim once, run what was claimed, stop.
    Once,
    /// Stop after a round that found nothing to claim and nothing running.
    UntilDone,
}

/// How a worker ended; [`Exit::code`] is the process exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop, it finished its running tasks (exit code 0).
    Stopped,
    /// Terminated: its running tasks were interrupted and replaced (exit code 77).
    Terminated,
    /// An error it could not recover from (exit code 99).
    Crashed(String),
}

impl Exit {
    /// The process exit code: 0, 77 or 99, as django-toosimple-q's worker.
    pub fn code(&self) -> i32 {
        match self {
            Exit::Stopped => EXIT_STOPPED,
            Exit::Terminated => EXIT_TERMINATED,
            Exit::Crashed(_) => EXIT_CRASHED,
        }
    }
}

/// What was asked of the worker so far; requests only escalate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StopRequest {
    None,
    Graceful,
    Terminate,
}

/// Asks a running worker to stop; cheap to clone. The CLI wires SIGINT and SIGTERM to it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<StopRequest>>,
}

impl Shutdown {
    /// A handle and the receiver the worker's loop watches.
    pub(crate) fn channel() -> (Shutdown, watch::Receiver<StopRequest>) {
        let (sender, receiver) = watch::channel(StopRequest::None);
        (
            Shutdown {
                sender: Arc::new(sender),
            },
            receiver,
        )
    }

    /// Stop claiming, let the running tasks finish, then stop (as a first SIGINT).
    pub fn graceful(&self) {
        self.sender.send_if_modified(|stop| {
            let changed = *stop < StopRequest::Graceful;
            *stop = (*stop).max(StopRequest::Graceful);
            changed
        });
    }

    /// Interrupt the running tasks (each gets a replacement) and stop (as SIGTERM).
    pub fn terminate(&self) {
        self.sender.send_replace(StopRequest::Terminate);
    }

    /// Whether a graceful stop was already asked for (a second SIGINT then terminates).
    pub fn is_stopping(&self) -> bool {
        *self.sender.borrow() != StopRequest::None
    }
}
