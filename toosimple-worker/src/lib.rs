//! The toosimple worker runtime and command-line interface.
//!
//! An application's binary hands its command line to [`main`]:
//!
//! ```no_run
//! // use my_tasks as _;   // link the crate that defines the tasks, if it is a library
//! fn main() -> std::process::ExitCode {
//!     toosimple_worker::main()
//! }
//! ```
//!
//! and then `app worker --until-done`, `app status`, `app enqueue add '{"a": 1, "b": 2}'`, ...
//! (`app --help` lists them). A [`Worker`] can also run inside the application, on its own
//! runtime ([`Worker::run`]) or on the application's ([`Worker::run_async`]).
//!
//! # The application's command line
//! [`cli!`] gives the command line the application's name, version and description from its
//! `Cargo.toml` (`app --version` says "app 1.2.0", not toosimple's), and a [`Cli`] takes the
//! application's own subcommands beside toosimple's ([`Cli::subcommand`], [`Cli::parse`]):
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     toosimple_worker::cli!().run()
//! }
//! ```
//!
//! # The worker's round
//! Each round, in one database transaction, it records the outcomes of the tasks that
//! finished, wakes the sleeping executions whose due has come, and claims as many queued
//! executions as it has free slots (highest priority first, then oldest due), of the tasks it
//! knows and the queues it serves. Claimed tasks run concurrently: async tasks on the tokio
//! runtime, sync tasks on its blocking pool. Every tick it also writes its heartbeat and rescues
//! the executions of workers whose heartbeat stopped.
//!
//! # Stopping
//! A first SIGINT (or [`Shutdown::graceful`]) stops claiming and lets running tasks finish:
//! exit code 0. SIGTERM or a second SIGINT ([`Shutdown::terminate`]) marks running tasks
//! `Interrupted`, each with a replacement: exit code 77. An error it cannot recover from is
//! recorded in its status row: exit code 99. `app stop LABEL` asks the same of a worker through
//! the database, read back with its next heartbeat.
//!
//! # Clusters
//! `app cluster --processes N` runs N worker processes under a supervisor
//! ([`cluster::Cluster`]) that restarts those that die, with a doubling delay, and recycles
//! them after `--max-tasks` tasks or above `--max-memory`.

#![warn(missing_docs)]

#[cfg(feature = "admin")]
mod admin;
mod cli;
pub mod clock;
#[cfg(unix)]
pub mod cluster;
pub mod metrics;
pub mod monitor;
#[cfg(unix)]
mod reload;
mod signals;
pub mod status;
pub mod testing;
mod worker;

use std::process::ExitCode;

/// The clap version [`Cli`] is built with, for the application's own subcommands.
pub use clap;

pub use crate::cli::{Builtin, Cli, Parsed, init_tracing};
pub use crate::worker::{Exit, RunMode, Shutdown, Worker, completer, maintenance};

/// Runs one execution, already claimed, exactly as a worker's slot does (the task on its
/// executor, panics and time-outs turned into outcomes) and returns its completion (an error if its task is not registered), to record
/// with [`Store::complete`](toosimple_core::Store::complete). Not API: it lets tests drive the
/// real run-and-record path one chosen execution at a time.
#[doc(hidden)]
pub fn run_claimed(
    exec: toosimple_core::store::ClaimedExec,
) -> Result<toosimple_core::store::Completion, toosimple_core::Error> {
    worker::run_claimed(exec)
}

/// Runs the command line of an application that defines tasks: parses the process's
/// arguments, runs the subcommand, and returns its exit code.
///
/// A function cannot know the calling crate's version: `--help` and `--version` name the
/// binary and say "(toosimple-worker 0.1.0)". [`cli!`]`().run()` does the same with the
/// application's name, version and description, and [`Cli`] adds its own subcommands.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     toosimple_worker::main()
/// }
/// ```
pub fn main() -> ExitCode {
    // The name the user typed, as clap's usage line shows it.
    let name = std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "app".to_string());
    Cli::new(
        name,
        concat!("(toosimple-worker ", env!("CARGO_PKG_VERSION"), ")"),
    )
    .run()
}
