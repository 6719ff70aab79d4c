//! A chaos harness for toosimple: it enqueues tasks whose side effects go to a ledger outside
//! the queue's database, runs worker processes, injects faults on a seeded schedule (kill -9,
//! SIGTERM, SIGINT, SIGSTOP past the heartbeat timeout, PostgreSQL restarts and crashes, a
//! network partition of one worker, write contention, a full disk for SQLite, tasks that
//! outlast their time limit), then checks from the ledgers and the table that:
//!
//! - every acknowledged task has exactly one `Succeeded` execution, at the end of its chain;
//! - no execution is left `Queued`, `Sleeping` or `Processing`;
//! - each chain links as documented: a `Failed` row is replaced by a retry with one retry
//!   less and twice the delay, an `Interrupted` one by a row with the same retries and delay,
//!   and no row replaces two;
//! - a side effect repeats only when an earlier run of it was interrupted (at-least-once),
//!   and a succeeded execution's side effect happened;
//! - only workers a fault touched have tasks interrupted: a live worker's heartbeat never
//!   gets its running tasks rescued;
//! - no worker exits by itself.
//!
//! Run it as `toosimple-chaos --backend postgres --tasks 50000 --workers 4 --seconds 300`; it
//! prints a report and exits non-zero on any violation. See `toosimple-chaos --help`.

pub mod check;
pub mod enqueuer;
pub mod harness;
pub mod mariadb;
pub mod netns;
pub mod postgres;
pub mod tasks;
