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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::runtime::Handle;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use toosimple_core::runtime::{ExecControl, Invoker};
use toosimple_core::store::{ClaimRequest, ClaimedExec, Completion, Outcome, QueueSelection};
use toosimple_core::{QueueSettings, Signing, TaskDef};

use super::execute::execute;
use super::runners::Runners;
use super::shutdown::{RunMode, StopRequest};
use crate::clock::Clock;

/// The typical run below which tasks are claimed ahead: a round trip to the database is a
/// real share of such a task's time, and a row waits in the buffer about one task's length.
pub(crate) const SHORT_TASK: Duration = Duration::from_millis(20);

/// The controls (progress, cancel flag) of the executions a worker runs, by id: the producer
/// adds and removes them, the heartbeat writes their progress and sets their cancel flags.
pub(crate) type Controls = Arc<Mutex<HashMap<i64, Arc<ExecControl>>>>;

/// What [`Producer::next_finished`] saw end.
#[derive(Debug)]
pub(crate) enum Ended {
    /// A task of the running set, or its wrapper's early end.
    Task(Box<Result<Completion, JoinError>>),
    /// Executions on the runners: [`Producer::gather`] takes them.
    OnRunners,
}

/// What to claim in one round, owned so that it can go to a blocking thread.
#[derive(Debug, Clone)]
pub(crate) struct ClaimPlan {
    worker: Arc<str>,
    task_names: Arc<[&'static str]>,
    queues: Arc<QueueSelection>,
    limit: usize,
    settings: Arc<[QueueSettings]>,
    in_order: bool,
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
            settings: &self.settings,
            in_order: self.in_order,
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
    /// Whether it claims from its queues in the order listed.
    in_order: bool,
    /// The settings of the configured queues that differ from the defaults, read at each
    /// tick: empty (the usual case), claims are as if queues had no settings.
    settings: Arc<[QueueSettings]>,
    concurrency: usize,
    mode: RunMode,
    clock: Arc<dyn Clock>,
    /// The task runtime: task code runs there, never on the loop's threads.
    tasks: Handle,
    /// Async tasks, and sync tasks with a time limit.
    running: JoinSet<Completion>,
    /// Sync tasks without a time limit, and how many of them run or wait for a runner.
    runners: Runners,
    on_runners: usize,
    /// The claimed executions still running, by id, with when each started here.
    held: HashMap<i64, (ClaimedExec, Instant)>,
    /// The running executions' controls, shared with the heartbeat.
    pub(crate) controls: Controls,
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
    /// The keys each claimed row's signature is checked with, when the store has them.
    pub(crate) signing: Option<Arc<Signing>>,
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
            in_order: false,
            settings: Arc::from(Vec::new()),
            concurrency,
            mode,
            clock: clock.clone(),
            tasks,
            running: JoinSet::new(),
            runners: Runners::new(concurrency, clock.clone()),
            on_runners: 0,
            held: HashMap::new(),
            controls: Controls::default(),
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
            signing: None,
        }
    }

    /// Claims from its queues in the order they are listed.
    pub(crate) fn serve_in_order(&mut self, in_order: bool) {
        self.in_order = in_order;
    }

    /// Takes the queues' settings as read at this tick; those at the defaults are dropped, so
    /// that a worker of unconfigured queues keeps the plain claim.
    pub(crate) fn set_queue_settings(&mut self, settings: Vec<QueueSettings>) {
        let changed: Vec<QueueSettings> =
            settings.into_iter().filter(|s| !s.is_default()).collect();
        if *self.settings != *changed {
            tracing::info!(worker = %self.label, queues = ?changed, "queue settings changed");
            self.settings = Arc::from(changed);
        }
    }

    /// The time limit of queue `queue`'s executions that set none.
    fn default_timeout(&self, queue: &str) -> Option<Duration> {
        self.settings
            .iter()
            .find(|s| s.name == queue)
            .and_then(|s| s.default_timeout)
    }

    /// How many rows to claim now: the free slots, plus room in the buffer while tasks are
    /// short; none once stopping or after `--once`'s round.
    pub(crate) fn free_slots(&self, stop: StopRequest) -> usize {
        let claiming =
            stop == StopRequest::None && !(self.mode == RunMode::Once && self.rounds > 0);
        if claiming {
            // Saturating: `concurrency(usize::MAX)` means "no limit", not an overflow.
            (self.concurrency.saturating_add(self.ahead()))
                .saturating_sub(self.running() + self.buffer.len())
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
            settings: self.settings.clone(),
            in_order: self.in_order,
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

    /// How many executions run.
    fn running(&self) -> usize {
        self.running.len() + self.on_runners
    }

    /// Starts buffered executions in the free slots: sync tasks without a time limit on the
    /// runners, the others as tasks of their own.
    pub(crate) fn fill(&mut self) {
        while self.running() < self.concurrency {
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
            // A row whose signature does not verify never runs: it ends `Invalid` through the
            // same path as a run, so that it is recorded (and its hook called) as one.
            if let Some(Err(message)) = self.signing.as_ref().map(|s| s.check(&exec)) {
                tracing::warn!(task = def.name(), id = exec.id, "{message}");
                let clock = self.clock.clone();
                self.running.spawn(async move {
                    Completion {
                        exec,
                        outcome: Outcome::Invalid(message),
                        finished: clock.now(),
                    }
                });
                continue;
            }
            let control = ExecControl::new(exec.id);
            self.lock_controls().insert(exec.id, control.clone());
            // The queue's default applies to executions without a limit of their own; it is
            // not written to the row, whose signed `timeout_ms` stays as enqueued.
            let default_timeout = if exec.timeout_ms.is_none() && def.timeout().is_none() {
                self.default_timeout(&exec.queue)
            } else {
                None
            };
            match def.invoker() {
                Invoker::Sync(call)
                    if exec.timeout_ms.is_none()
                        && def.timeout().is_none()
                        && default_timeout.is_none() =>
                {
                    self.on_runners += 1;
                    self.runners.run(def, call, exec, control);
                }
                _ => {
                    self.running.spawn(execute(
                        def,
                        exec,
                        self.clock.clone(),
                        self.tasks.clone(),
                        control,
                        default_timeout,
                    ));
                }
            }
        }
    }

    fn lock_controls(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<ExecControl>>> {
        self.controls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When an execution waiting for a busy runner is due a runner of its own.
    pub(crate) fn nudge_at(&self) -> Option<tokio::time::Instant> {
        self.runners.nudge_at()
    }

    /// Gets runners for the executions that waited too long for a busy one.
    pub(crate) fn nudge(&self) {
        self.runners.nudge();
    }

    /// Whether nothing runs or waits in the buffer.
    pub(crate) fn is_idle(&self) -> bool {
        self.running() == 0 && self.buffer.is_empty()
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
        let mut done = self.ended_on_runners();
        while let Some(joined) = self.running.try_join_next() {
            done.extend(self.finished(joined));
        }
        done
    }

    /// What the runners finished since the last look.
    fn ended_on_runners(&mut self) -> Vec<Completion> {
        let ended = self.runners.take_ended();
        self.on_runners -= ended.len();
        ended
            .into_iter()
            .filter_map(|completion| self.finished(Ok(completion)))
            .collect()
    }

    /// Waits for a task to end (none running: forever). Cancel-safe, for the worker's
    /// `select!`: nothing is taken from the running set unless it returns.
    pub(crate) async fn next_finished(&mut self) -> Ended {
        let (tasks, runners) = (!self.running.is_empty(), self.on_runners > 0);
        tokio::select! {
            Some(joined) = self.running.join_next(), if tasks => Ended::Task(Box::new(joined)),
            () = self.runners.ended(), if runners => Ended::OnRunners,
            else => std::future::pending().await,
        }
    }

    /// After `first` ended, gathers what ends within `window`, to record it in one round. Not
    /// cancel-safe (what it gathered would be lost): await it to the end.
    pub(crate) async fn gather(&mut self, first: Ended, window: Duration) -> Vec<Completion> {
        let mut done: Vec<Completion> = match first {
            Ended::Task(joined) => self.finished(*joined).into_iter().collect(),
            Ended::OnRunners => Vec::new(),
        };
        if !window.is_zero() {
            let until = tokio::time::Instant::now() + window;
            while let Ok(more) = tokio::time::timeout_at(until, self.next_finished()).await {
                if let Ended::Task(joined) = more {
                    done.extend(self.finished(*joined));
                }
                done.extend(self.ended_on_runners());
            }
        }
        done.extend(self.ended_on_runners());
        done
    }

    fn finished(&mut self, joined: Result<Completion, JoinError>) -> Option<Completion> {
        match joined {
            Ok(completion) => {
                self.lock_controls().remove(&completion.exec.id);
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
        self.runners.close();
        self.lock_controls().clear();
    }
}
