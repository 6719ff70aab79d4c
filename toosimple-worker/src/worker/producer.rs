//! The producer: how many executions to claim (one per free slot), which (the tasks this
//! binary knows, the queues it serves), and the running executions until each ends.
//!
//! A finished task frees its slot at once: the worker's loop wakes on it, records its outcome
//! and claims the next in the same round. (Prefetching beyond the free slots would go here.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinSet};
use toosimple_core::TaskDef;
use toosimple_core::store::{ClaimRequest, ClaimedExec, Completion, QueueSelection};

use super::execute::execute;
use super::shutdown::{RunMode, StopRequest};
use crate::clock::Clock;

/// What to claim in one round, owned so that it can go to a blocking thread.
#[derive(Debug, Clone)]
pub(crate) struct ClaimPlan {
    worker: Arc<str>,
    task_names: Arc<[&'static str]>,
    queues: Arc<QueueSelection>,
    limit: usize,
}

impl ClaimPlan {
    /// The store's request, claiming at `now`.
    pub(crate) fn request(&self, now: DateTime<Utc>) -> ClaimRequest<'_> {
        ClaimRequest {
            worker: &self.worker,
            task_names: &self.task_names,
            queues: &self.queues,
            limit: self.limit,
            now,
        }
    }
}

/// The executions a worker runs, and what it may claim next.
#[derive(Debug)]
pub(crate) struct Producer {
    label: Arc<str>,
    task_names: Arc<[&'static str]>,
    by_name: HashMap<&'static str, &'static TaskDef>,
    queues: Arc<QueueSelection>,
    concurrency: usize,
    mode: RunMode,
    clock: Arc<dyn Clock>,
    /// The task runtime: task code runs there, never on the loop's threads.
    tasks: Handle,
    running: JoinSet<Completion>,
    /// The claimed executions still running, by id.
    held: HashMap<i64, ClaimedExec>,
    /// Successful rounds so far.
    pub(crate) rounds: usize,
    /// Executions claimed so far, and in the last round.
    pub(crate) executions: usize,
    pub(crate) last_claimed: usize,
}

impl Producer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        label: &str,
        defs: &[&'static TaskDef],
        queues: QueueSelection,
        concurrency: usize,
        mode: RunMode,
        clock: Arc<dyn Clock>,
        tasks: Handle,
    ) -> Producer {
        Producer {
            label: Arc::from(label),
            task_names: defs.iter().map(|d| d.name()).collect(),
            by_name: defs.iter().map(|d| (d.name(), *d)).collect(),
            queues: Arc::new(queues),
            concurrency,
            mode,
            clock,
            tasks,
            running: JoinSet::new(),
            held: HashMap::new(),
            rounds: 0,
            executions: 0,
            last_claimed: 0,
        }
    }

    /// How many rows to claim now: the free slots, none once stopping or after `--once`'s
    /// round.
    pub(crate) fn free_slots(&self, stop: StopRequest) -> usize {
        let claiming =
            stop == StopRequest::None && !(self.mode == RunMode::Once && self.rounds > 0);
        if claiming {
            self.concurrency.saturating_sub(self.running.len())
        } else {
            0
        }
    }

    /// The claim of a round with `limit` free slots.
    pub(crate) fn plan(&self, limit: usize) -> ClaimPlan {
        ClaimPlan {
            worker: self.label.clone(),
            task_names: self.task_names.clone(),
            queues: self.queues.clone(),
            limit,
        }
    }

    /// Notes a successful round and starts what it claimed.
    pub(crate) fn start(&mut self, claimed: Vec<ClaimedExec>) {
        self.rounds += 1;
        self.last_claimed = claimed.len();
        self.executions += claimed.len();
        for exec in claimed {
            let Some(def) = self.by_name.get(exec.task_name.as_str()).copied() else {
                continue; // claimed only by registered names
            };
            self.held.insert(exec.id, exec.clone());
            self.running
                .spawn(execute(def, exec, self.clock.clone(), self.tasks.clone()));
        }
    }

    /// Whether nothing runs.
    pub(crate) fn is_idle(&self) -> bool {
        self.running.is_empty()
    }

    /// The ids of the executions running.
    pub(crate) fn held(&self) -> Vec<i64> {
        self.held.keys().copied().collect()
    }

    /// What has already ended, without waiting.
    pub(crate) fn collect_finished(&mut self) -> Vec<Completion> {
        let mut done = Vec::new();
        while let Some(joined) = self.running.try_join_next() {
            done.extend(self.finished(joined));
        }
        done
    }

    /// Waits for a task to end (none running: forever). Cancel-safe, for the worker's
    /// `select!`: nothing is taken from the running set unless it returns.
    pub(crate) async fn next_finished(&mut self) -> Result<Completion, JoinError> {
        match self.running.join_next().await {
            Some(joined) => joined,
            None => std::future::pending().await,
        }
    }

    /// After `first` ended, gathers what ends within `window`, to record it in one round. Not
    /// cancel-safe (what it gathered would be lost): await it to the end.
    pub(crate) async fn gather(
        &mut self,
        first: Result<Completion, JoinError>,
        window: Duration,
    ) -> Vec<Completion> {
        let mut done: Vec<Completion> = self.finished(first).into_iter().collect();
        if !window.is_zero() {
            let until = tokio::time::Instant::now() + window;
            while let Ok(Some(joined)) =
                tokio::time::timeout_at(until, self.running.join_next()).await
            {
                done.extend(self.finished(joined));
            }
        }
        done
    }

    fn finished(&mut self, joined: Result<Completion, JoinError>) -> Option<Completion> {
        match joined {
            Ok(completion) => {
                self.held.remove(&completion.exec.id);
                Some(completion)
            }
            // `execute` catches the task's own panics; only an abort (termination) lands here.
            Err(e) => {
                tracing::debug!("an execution wrapper ended early: {e}");
                None
            }
        }
    }

    /// Cancels every running execution (termination): async tasks are aborted, sync tasks'
    /// threads abandoned.
    pub(crate) fn abort_all(&mut self) {
        self.running.abort_all();
    }
}
