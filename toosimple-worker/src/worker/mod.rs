//! The worker: claims executions, runs them concurrently, records how they ended.

mod execute;
mod wakeup;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use toosimple_core::store::{
    ClaimRequest, ClaimedExec, Completion, QueueSelection, WorkerRegistration,
};
use toosimple_core::{
    EXIT_CRASHED, EXIT_STOPPED, EXIT_TERMINATED, Error, ScheduleDef, Store, TaskDef,
};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StopRequest {
    None,
    Graceful,
    Terminate,
}

/// How long a worker waits, after one task ends, for others to end with it: outcomes recorded
/// together share one commit.
const BATCH_WINDOW: Duration = Duration::from_millis(2);

/// Asks a running worker to stop; cheap to clone. The CLI wires SIGINT and SIGTERM to it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: Arc<watch::Sender<StopRequest>>,
}

impl Shutdown {
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

/// A worker, configured with builder methods, then [`run`](Worker::run).
///
/// ```no_run
/// use std::time::Duration;
/// use toosimple_worker::Worker;
///
/// let exit = Worker::new()
///     .queues(["emails"])
///     .concurrency(8)
///     .tick(Duration::from_millis(500))
///     .until_done()
///     .run();
/// assert_eq!(exit.code(), 0);
/// ```
#[derive(Debug)]
pub struct Worker {
    store: Option<Store>,
    queues: QueueSelection,
    tick: Duration,
    mode: RunMode,
    label: String,
    timeout: Duration,
    concurrency: usize,
    schedules: bool,
    stop: watch::Receiver<StopRequest>,
    shutdown: Shutdown,
}

impl Default for Worker {
    fn default() -> Self {
        Worker::new()
    }
}

impl Worker {
    /// A worker of every queue on the default store: tick 1 s, label `worker-{pid}`,
    /// heartbeat timeout 300 s, one slot per CPU, running until stopped.
    pub fn new() -> Self {
        let (sender, stop) = watch::channel(StopRequest::None);
        Worker {
            store: None,
            queues: QueueSelection::All,
            tick: Duration::from_secs(1),
            mode: RunMode::Forever,
            label: format!("worker-{}", std::process::id()),
            timeout: Duration::from_secs(300),
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            schedules: true,
            stop,
            shutdown: Shutdown {
                sender: Arc::new(sender),
            },
        }
    }

    /// Uses `store` instead of the default store.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Serves only these queues.
    pub fn queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = QueueSelection::Only(queues.into_iter().map(Into::into).collect());
        self
    }

    /// Serves every queue but these.
    pub fn exclude_queues<I, S>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.queues = QueueSelection::Except(queues.into_iter().map(Into::into).collect());
        self
    }

    /// How often it beats, rescues and looks for work when idle.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Sets when it stops by itself.
    pub fn mode(mut self, mode: RunMode) -> Self {
        self.mode = mode;
        self
    }

    /// One round, then stop.
    pub fn once(self) -> Self {
        self.mode(RunMode::Once)
    }

    /// Stop once nothing is left to run.
    pub fn until_done(self) -> Self {
        self.mode(RunMode::UntilDone)
    }

    /// Its label (`{pid}` is replaced by the process id); unique among running workers.
    pub fn label(mut self, label: impl AsRef<str>) -> Self {
        self.label = label
            .as_ref()
            .replace("{pid}", &std::process::id().to_string());
        self
    }

    /// How long without a heartbeat before other workers take it for dead and rescue its tasks.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many tasks it runs at once (at least 1).
    pub fn concurrency(mut self, slots: usize) -> Self {
        self.concurrency = slots.max(1);
        self
    }

    /// Whether it materializes schedules (on by default).
    pub fn schedules(mut self, on: bool) -> Self {
        self.schedules = on;
        self
    }

    /// A handle to stop it from elsewhere.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Runs it on a runtime of its own until it stops.
    pub fn run(self) -> Exit {
        match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(self.run_async()),
            Err(e) => Exit::Crashed(format!("cannot start the async runtime: {e}")),
        }
    }

    /// Runs it on the current tokio runtime until it stops.
    pub async fn run_async(self) -> Exit {
        let label = self.label.clone();
        let store = self.store.clone();
        match self.work().await {
            Ok(exit) => exit,
            Err(e) => {
                let reason = e.report();
                tracing::error!(worker = %label, "worker crashed: {reason}");
                if let Some(store) = store.or_else(|| toosimple_core::default_store().ok()) {
                    let log = reason.clone();
                    let _ = blocking(move || {
                        store.stop_worker(&label, chrono::Utc::now(), EXIT_CRASHED, Some(&log))
                    })
                    .await;
                }
                Exit::Crashed(reason)
            }
        }
    }

    async fn work(mut self) -> Result<Exit, Error> {
        let defs = toosimple_core::require_tasks()?;
        if self.schedules {
            toosimple_core::check_schedules()?;
        }
        let by_name: HashMap<&'static str, &'static TaskDef> =
            defs.iter().map(|d| (d.name(), *d)).collect();
        let names: Arc<[&'static str]> = defs.iter().map(|d| d.name()).collect();
        let store = match self.store.take() {
            Some(store) => store,
            None => blocking(toosimple_core::default_store).await?,
        };
        let (queues, excluded) = match &self.queues {
            QueueSelection::All => (vec![], vec![]),
            QueueSelection::Only(q) => (q.clone(), vec![]),
            QueueSelection::Except(q) => (vec![], q.clone()),
        };
        {
            let (store, label, timeout) = (store.clone(), self.label.clone(), self.timeout);
            let leftovers = blocking(move || {
                store.register_worker(&WorkerRegistration {
                    label: &label,
                    queues: &queues,
                    excluded_queues: &excluded,
                    timeout: timeout.as_secs_f64(),
                    now: chrono::Utc::now(),
                })
            })
            .await?;
            if !leftovers.is_empty() {
                tracing::warn!(
                    worker = %self.label,
                    "interrupted {} execution(s) left running by an earlier worker with this label: {leftovers:?}",
                    leftovers.len()
                );
            }
        }
        tracing::info!(
            worker = %self.label,
            database = store.url(),
            tasks = ?names,
            queues = ?self.queues,
            concurrency = self.concurrency,
            mode = ?self.mode,
            "worker started"
        );

        let queues = Arc::new(self.queues.clone());
        let label: Arc<str> = Arc::from(self.label.as_str());
        let mut running: JoinSet<Completion> = JoinSet::new();
        let mut held: HashMap<i64, ClaimedExec> = HashMap::new();
        let mut done: Vec<Completion> = Vec::new();
        let mut next_tick = Instant::now();
        let mut outage = Outage::default();
        let mut rounds = 0usize;
        let mut executions = 0usize;
        let mut check_unheld = false;
        // The schedules this worker materializes: those of its queues, or of every worker.
        let registered: Arc<[&'static str]> = toosimple_core::schedules()
            .iter()
            .map(|s| s.name())
            .collect();
        let schedules: Arc<[&'static ScheduleDef]> = if self.schedules {
            toosimple_core::schedules()
                .into_iter()
                .filter(|s| s.queue().is_none_or(|q| self.queues.includes(q)))
                .collect()
        } else {
            Arc::from([])
        };
        let mut next_schedule = (!schedules.is_empty()).then(Instant::now);
        let mut broken_schedules = std::collections::HashSet::new();
        let wake = Arc::new(tokio::sync::Notify::new());
        let _listener = store
            .postgres_url()
            .map(|url| AbortTask(wakeup::spawn(url.to_string(), wake.clone())));

        loop {
            let stop = *self.stop.borrow_and_update();
            if stop == StopRequest::Terminate {
                running.abort_all();
                return Ok(self.terminate(&store, &mut done, held).await);
            }
            while let Some(joined) = running.try_join_next() {
                finished(joined, &mut held, &mut done);
            }

            let schedule_due = next_schedule.is_some_and(|at| Instant::now() >= at);
            if (Instant::now() >= next_tick || schedule_due) && !outage.waiting() {
                next_tick = Instant::now() + self.tick;
                let (db, label) = (store.clone(), label.clone());
                let (due_schedules, registered) = (schedules.clone(), registered.clone());
                let maintenance = blocking(move || {
                    let now = chrono::Utc::now();
                    db.heartbeat(&label, now)?;
                    let rescued = db.rescue(&label, now)?;
                    let materialized = if due_schedules.is_empty() {
                        None
                    } else {
                        Some(db.materialize_schedules(&due_schedules, &registered, now)?)
                    };
                    Ok::<_, Error>((rescued, materialized))
                })
                .await;
                match maintenance {
                    Ok((rescued, materialized)) => {
                        check_unheld |= outage.ended();
                        if !rescued.is_empty() {
                            tracing::warn!(worker = %self.label, "rescued the executions of dead workers (old, replacement): {rescued:?}");
                        }
                        if let Some(report) = materialized {
                            self.log_schedules(&report, &mut broken_schedules);
                        }
                        next_schedule = next_occurrence(&schedules);
                    }
                    Err(e) => outage.failed(&e),
                }
            }

            let claiming = stop == StopRequest::None && !(self.mode == RunMode::Once && rounds > 0);
            let free = if claiming {
                self.concurrency.saturating_sub(running.len())
            } else {
                0
            };
            let mut claimed_count = 0;
            if (!done.is_empty() || free > 0) && !outage.waiting() {
                let (db, label, names, queues) =
                    (store.clone(), label.clone(), names.clone(), queues.clone());
                let batch = std::mem::take(&mut done);
                let result = blocking(move || {
                    let request = ClaimRequest {
                        worker: &label,
                        task_names: &names,
                        queues: &queues,
                        limit: free,
                        now: chrono::Utc::now(),
                    };
                    let exchanged = db.exchange(&batch, &request);
                    (batch, exchanged)
                })
                .await;
                match result {
                    (_, Ok(exchange)) => {
                        check_unheld |= outage.ended();
                        rounds += 1;
                        if !exchange.report.stale.is_empty() {
                            tracing::warn!(worker = %self.label, "dropped the outcome of executions another worker had rescued: {:?}", exchange.report.stale);
                        }
                        claimed_count = exchange.claimed.len();
                        executions += claimed_count;
                        for exec in exchange.claimed {
                            let Some(def) = by_name.get(exec.task_name.as_str()).copied() else {
                                continue; // claimed only by registered names
                            };
                            held.insert(exec.id, exec.clone());
                            running.spawn(execute::execute(def, exec));
                        }
                        // Every outcome is recorded and every claim is held here: any other
                        // row this worker holds in the database was claimed by a commit whose
                        // answer the outage swallowed.
                        if std::mem::take(&mut check_unheld) {
                            self.release_unheld(&store, &held).await;
                        }
                    }
                    (batch, Err(e)) => {
                        done = batch;
                        outage.failed(&e);
                    }
                }
            }

            if running.is_empty() && done.is_empty() && !outage.is_down() {
                let idle_round = claimed_count == 0 && rounds > 0;
                let stop_now = match self.mode {
                    _ if stop == StopRequest::Graceful => true,
                    RunMode::Once => rounds > 0,
                    RunMode::UntilDone => idle_round,
                    RunMode::Forever => false,
                };
                if stop_now {
                    let (store, label) = (store.clone(), label.clone());
                    blocking(move || {
                        store.stop_worker(&label, chrono::Utc::now(), EXIT_STOPPED, None)
                    })
                    .await?;
                    tracing::info!(worker = %self.label, rounds, executions, "worker stopped");
                    return Ok(Exit::Stopped);
                }
            }

            let wake_at = if outage.is_down() {
                Instant::now() + outage.backoff()
            } else {
                // An idle worker wakes for the next occurrence, not only at its tick, so that
                // a schedule every second runs every second.
                next_schedule.map_or(next_tick, |at| at.min(next_tick))
            };
            // Wait for a slot to free up (running tasks), the next tick, or a stop request.
            // Tasks that end together are recorded together: one commit per round, not per
            // task.
            tokio::select! {
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    finished(joined, &mut held, &mut done);
                    // Gather what ends within a moment, to record it in the same round.
                    let window = Instant::now() + BATCH_WINDOW;
                    while let Ok(Some(joined)) =
                        tokio::time::timeout_at(window, running.join_next()).await
                    {
                        finished(joined, &mut held, &mut done);
                    }
                }
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = wake.notified() => {}
                _ = self.stop.changed() => {}
            }
        }
    }

    /// Logs what a schedules pass did; a schedule that cannot run is reported once.
    fn log_schedules(
        &self,
        report: &toosimple_core::store::MaterializeReport,
        broken: &mut std::collections::HashSet<String>,
    ) {
        for (schedule, id, due) in &report.enqueued {
            tracing::info!(worker = %self.label, schedule, id, %due, "schedule occurrence enqueued");
        }
        for name in &report.created {
            tracing::info!(worker = %self.label, schedule = name, "schedule registered");
        }
        if report.invalidated > 0 {
            tracing::warn!(worker = %self.label, "{} schedule row(s) have no registered schedule any more: marked invalid", report.invalidated);
        }
        for (name, reason) in &report.failed {
            if broken.insert(name.clone()) {
                tracing::error!(worker = %self.label, schedule = name, "schedule cannot run: {reason}");
            }
        }
    }

    /// After an outage, requeues claims that committed although the worker saw them fail.
    async fn release_unheld(&self, store: &Store, held: &HashMap<i64, ClaimedExec>) {
        let (store, label) = (store.clone(), self.label.clone());
        let running: Vec<i64> = held.keys().copied().collect();
        match blocking(move || store.release_unheld(&label, &running)).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(worker = %self.label, "requeued {n} execution(s) claimed during the outage but never started")
            }
            Err(e) => {
                tracing::warn!(worker = %self.label, "could not check for claims lost in the outage: {}", e.report())
            }
        }
    }

    /// Records what finished, interrupts (and replaces) what still runs, and stops with 77.
    async fn terminate(
        &self,
        store: &Store,
        done: &mut Vec<Completion>,
        held: HashMap<i64, ClaimedExec>,
    ) -> Exit {
        let (store, label) = (store.clone(), self.label.clone());
        let batch = std::mem::take(done);
        let ids: Vec<i64> = held
            .keys()
            .copied()
            .filter(|id| !batch.iter().any(|c| c.exec.id == *id))
            .collect();
        tracing::warn!(worker = %label, "terminated: interrupting {} running execution(s)", ids.len());
        let result = blocking(move || {
            let now = chrono::Utc::now();
            store.complete(&label, &batch)?;
            let replaced =
                store.interrupt(&label, &ids, &format!("worker {label} was terminated"), now)?;
            store.stop_worker(&label, now, EXIT_TERMINATED, None)?;
            Ok::<_, Error>(replaced)
        })
        .await;
        match result {
            Ok(replaced) => {
                tracing::info!(worker = %self.label, "interrupted and replaced (old, replacement): {replaced:?}")
            }
            Err(e) => {
                tracing::error!(worker = %self.label, "could not record the termination: {}", e.report())
            }
        }
        Exit::Terminated
    }
}

fn finished(
    joined: Result<Completion, tokio::task::JoinError>,
    held: &mut HashMap<i64, ClaimedExec>,
    done: &mut Vec<Completion>,
) {
    match joined {
        Ok(completion) => {
            held.remove(&completion.exec.id);
            done.push(completion);
        }
        // `execute` catches the task's own panics; only an abort (termination) lands here.
        Err(e) => tracing::debug!("an execution wrapper ended early: {e}"),
    }
}

/// When the next occurrence of any of `schedules` comes, as a timer instant.
fn next_occurrence(schedules: &[&'static ScheduleDef]) -> Option<Instant> {
    let now = chrono::Utc::now();
    let next = schedules.iter().filter_map(|s| s.next_due(now)).min()?;
    let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
    // A hair late rather than early: the pass must see the occurrence as due.
    Some(Instant::now() + wait + Duration::from_millis(1))
}

/// Aborts a background task (the `LISTEN` connection) when the worker's loop ends.
struct AbortTask(tokio::task::JoinHandle<()>);

impl Drop for AbortTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs blocking database work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Tracks a database outage, so that it is logged once when it starts and once when it ends,
/// and retried with a growing pause instead of every tick.
#[derive(Debug, Default)]
struct Outage {
    since: Option<std::time::Instant>,
    retry_at: Option<Instant>,
    pause: Duration,
}

impl Outage {
    fn failed(&mut self, error: &Error) {
        if self.since.is_none() {
            tracing::error!(
                "database unavailable, retrying with backoff: {}",
                error.report()
            );
            self.since = Some(std::time::Instant::now());
            self.pause = Duration::from_millis(100);
        } else {
            self.pause = (self.pause * 2).min(Duration::from_secs(2));
        }
        self.retry_at = Some(Instant::now() + self.pause);
    }

    /// Notes a success; returns whether it ended an outage.
    fn ended(&mut self) -> bool {
        self.retry_at = None;
        match self.since.take() {
            Some(since) => {
                tracing::info!(
                    "database available again after {:.1} s",
                    since.elapsed().as_secs_f64()
                );
                true
            }
            None => false,
        }
    }

    fn is_down(&self) -> bool {
        self.since.is_some()
    }

    /// Whether the next retry is not due yet.
    fn waiting(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    fn backoff(&self) -> Duration {
        self.retry_at.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        })
    }
}
