//! Recording how executions ended, behind one interface with two strategies.
//!
//! [`BatchedCompleter`] (the worker's default) holds the outcomes of tasks that end together
//! and writes them in the round's one transaction, with the wake-up and the next claim: one
//! commit for many tasks. [`InlineCompleter`] commits each outcome on its own as soon as the
//! worker picks it up, before claiming: more commits, but no outcome waits for another. Both
//! keep an outcome they could not write (the database is down) and write it at the next round,
//! and both drop, and report as stale, the outcome of a row another worker took back meanwhile.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::time::Duration;

use toosimple_core::store::{ClaimRequest, Completion, CompletionReport, Exchange};
use toosimple_core::{Error, Store};

/// How long the batched completer waits, after one task ends, for others to end with it:
/// outcomes recorded together share one commit.
pub const BATCH_WINDOW: Duration = Duration::from_millis(2);

/// Records outcomes for a worker. Its methods block on the database: the worker calls them off
/// its async threads.
pub trait Completer: Send + Debug + 'static {
    /// Takes the outcome of one execution, to record at the latest in the next round.
    fn push(&mut self, done: Completion);

    /// One round: records what must be recorded and, in the same call, wakes due sleeping rows
    /// and claims per `request`. On an error, the outcomes not recorded are kept for the next
    /// round.
    fn round(&mut self, store: &Store, request: &ClaimRequest<'_>) -> Result<Exchange, Error>;

    /// Records every held outcome now, without claiming (a worker that stops).
    fn flush(&mut self, store: &Store, worker: &str) -> Result<CompletionReport, Error>;

    /// How long the worker gathers further outcomes after one task ends, before its round.
    fn window(&self) -> Duration;

    /// How many outcomes are held, not recorded yet.
    fn pending(&self) -> usize;
}

/// Commits each outcome in its own transaction, before the round claims.
#[derive(Debug, Default)]
pub struct InlineCompleter {
    pending: VecDeque<Completion>,
}

impl InlineCompleter {
    /// An empty completer.
    pub fn new() -> Self {
        InlineCompleter::default()
    }
}

impl Completer for InlineCompleter {
    fn push(&mut self, done: Completion) {
        self.pending.push_back(done);
    }

    fn round(&mut self, store: &Store, request: &ClaimRequest<'_>) -> Result<Exchange, Error> {
        let recorded = self.flush(store, request.worker)?;
        let mut exchange = store.exchange(&[], request)?;
        merge(&mut exchange.report, recorded);
        Ok(exchange)
    }

    fn flush(&mut self, store: &Store, worker: &str) -> Result<CompletionReport, Error> {
        let mut report = CompletionReport::default();
        while let Some(done) = self.pending.front() {
            merge(
                &mut report,
                store.complete(worker, std::slice::from_ref(done))?,
            );
            self.pending.pop_front();
        }
        Ok(report)
    }

    fn window(&self) -> Duration {
        Duration::ZERO
    }

    fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Holds the outcomes of tasks that end within [`BATCH_WINDOW`] of each other and writes them
/// in the round's transaction, with the wake-up and the claim.
#[derive(Debug, Default)]
pub struct BatchedCompleter {
    pending: Vec<Completion>,
}

impl BatchedCompleter {
    /// An empty completer.
    pub fn new() -> Self {
        BatchedCompleter::default()
    }
}

impl Completer for BatchedCompleter {
    fn push(&mut self, done: Completion) {
        self.pending.push(done);
    }

    fn round(&mut self, store: &Store, request: &ClaimRequest<'_>) -> Result<Exchange, Error> {
        let exchange = store.exchange(&self.pending, request)?;
        self.pending.clear();
        Ok(exchange)
    }

    fn flush(&mut self, store: &Store, worker: &str) -> Result<CompletionReport, Error> {
        let report = store.complete(worker, &self.pending)?;
        self.pending.clear();
        Ok(report)
    }

    fn window(&self) -> Duration {
        BATCH_WINDOW
    }

    fn pending(&self) -> usize {
        self.pending.len()
    }
}

fn merge(into: &mut CompletionReport, more: CompletionReport) {
    into.recorded += more.recorded;
    into.stale.extend(more.stale);
    into.replacements.extend(more.replacements);
}
