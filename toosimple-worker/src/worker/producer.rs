//! The producer: how many executions to claim (one per free slot), which (the tasks this
//! binary knows, the queues it serves), and the running executions until each ends.
//!
//! A finished task frees its slot at once: the worker's loop wakes on it, records its outcome
//! and claims the next in the same round.
//!
//! While its tasks are short, it also claims ahead: up to `claim_ahead` more rows than it has
//! free slots wait in a local buffer, so that a freed slot starts its next task without waiting
//! for a round trip to the database. Buffered rows are `Processing` under this worker like the
//! running ones, so a crash has them rescued; a stop hands them back to the queue unstarted.
//! Long tasks are not claimed ahead: a buffered row would wait a task's length while another
//! worker could run it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use toosimple_core::TaskDef;
use toosimple_core::store::{ClaimRequest, ClaimedExec, Completion, QueueSelection};

use super::execute::execute;
use super::shutdown::{RunMode, StopRequest};
use crate::clock::Clock;

/// The typical run below which tasks are claimed ahead: a round trip to the database is a
/// real share of such a task's time, and a row waits in the buffer about one task's length.
pub(crate) const SHORT_TASK: Duration = Duration::from_millis(20);

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
    /// The claimed executions still running, by id, with when each started here.
    held: HashMap<i64, (ClaimedExec, Instant)>,
    /// Claimed executions waiting for a slot, in claim order.
    buffer: VecDeque<ClaimedExec>,
    /// The most rows it may hold in `buffer`.
    claim_ahead: usize,
    /// A moving average of how long its tasks ran here, in seconds (`None` before any ended).
    typical_run: Option<f64>,
    /// Successful rounds so far.
    pub(crate) rounds: usize,
    /// Executions claimed so far, and in the last round.
    pub(crate) executions: usize,
    pub(crate) last_claimed: usize,
    /// Where start delays and run times go, when the worker keeps metrics.
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Producer {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        label: &str,
        defs: &[&'static TaskDef],
        queues: QueueSelection,
        concurrency: usize,
        claim_ahead: usize,
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
            buffer: VecDeque::new(),
            // `--once` runs one round's claims: nothing would start the buffered rows.
            claim_ahead: if mode == RunMode::Once {
                0
            } else {
                claim_ahead
            },
            typical_run: None,
            rounds: 0,
            executions: 0,
            last_claimed: 0,
            metrics: None,
        }
    }

    /// How many rows to claim now: the free slots, plus room in the buffer while tasks are
    /// short; none once stopping or after `--once`'s round.
    pub(crate) fn free_slots(&self, stop: StopRequest) -> usize {
        let claiming =
            stop == StopRequest::None && !(self.mode == RunMode::Once && self.rounds > 0);
        if claiming {
            // Saturating: `concurrency(usize::MAX)` means "no limit", not an overflow.
            (self.concurrency.saturating_add(self.ahead()))
                .saturating_sub(self.running.len() + self.buffer.len())
        } else {
            0
        }
    }

    /// How many rows to keep in the buffer: `claim_ahead` while tasks typically end within
    /// [`SHORT_TASK`], none before any ended or when they run longer.
    fn ahead(&self) -> usize {
        match self.typical_run {
            Some(secs) if secs < SHORT_TASK.as_secs_f64() => self.claim_ahead,
            _ => 0,
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

    /// Notes a successful round and buffers what it claimed, without starting it (a stop
    /// hands it back).
    pub(crate) fn accept(&mut self, claimed: Vec<ClaimedExec>) {
        self.rounds += 1;
        self.last_claimed = claimed.len();
        self.executions += claimed.len();
        self.buffer.extend(claimed);
    }

    /// Starts buffered executions in the free slots.
    pub(crate) fn fill(&mut self) {
        while self.running.len() < self.concurrency {
            let Some(exec) = self.buffer.pop_front() else {
                break;
            };
            let Some(def) = self.by_name.get(exec.task_name.as_str()).copied() else {
                continue; // claimed only by registered names
            };
            if let Some(metrics) = &self.metrics {
                let late = self.clock.now().naive_utc() - exec.due;
                metrics.started(
                    &exec.task_name,
                    &exec.queue,
                    late.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6,
                );
            }
            self.held.insert(exec.id, (exec.clone(), Instant::now()));
            self.running
                .spawn(execute(def, exec, self.clock.clone(), self.tasks.clone()));
        }
    }

    /// Whether nothing runs or waits in the buffer.
    pub(crate) fn is_idle(&self) -> bool {
        self.running.is_empty() && self.buffer.is_empty()
    }

    /// The ids of the executions it holds: running or buffered.
    pub(crate) fn held(&self) -> Vec<i64> {
        let mut ids = self.running_ids();
        ids.extend(self.buffered());
        ids
    }

    /// The ids of the executions running.
    pub(crate) fn running_ids(&self) -> Vec<i64> {
        self.held.keys().copied().collect()
    }

    /// Empties the buffer, for a stop: the ids of the executions that never started, to hand
    /// back to the queue.
    pub(crate) fn take_buffered(&mut self) -> Vec<i64> {
        self.buffer.drain(..).map(|exec| exec.id).collect()
    }

    /// The ids of the executions waiting in the buffer.
    pub(crate) fn buffered(&self) -> Vec<i64> {
        self.buffer.iter().map(|exec| exec.id).collect()
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
                if let Some((_, started)) = self.held.remove(&completion.exec.id) {
                    let ran = started.elapsed().as_secs_f64();
                    if let Some(metrics) = &self.metrics {
                        let exec = &completion.exec;
                        metrics.ended(&exec.task_name, &exec.queue, &completion.outcome, ran);
                    }
                    // Weighted so that a change of workload shows within a few dozen tasks.
                    self.typical_run =
                        Some(self.typical_run.map_or(ran, |avg| avg * 0.9 + ran * 0.1));
                }
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
