//! The worker: claims executions, runs them concurrently, records how they ended.
//!
//! Its parts, one file each: [`producer`] (free slots, what to claim, the running tasks),
//! [`execute`] (one task, its time-out and panics), [`completer`] (recording outcomes, inline or
//! batched), [`maintenance`] (heartbeat, rescue, wake, schedules, retention), [`shutdown`] (stop
//! requests and exit codes) and [`outage`] (backoff while the database is down). This file
//! holds the builder and the loop that drives them.

pub mod completer;
mod execute;
mod hooks;
pub(crate) mod inline;
pub mod maintenance;
mod outage;
pub(crate) mod producer;
mod runners;
mod shutdown;
mod trace;
mod unrunnable;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use toosimple_core::store::{Completion, Exchange, Outcome, QueueSelection, WorkerRegistration};
use toosimple_core::{EXIT_CRASHED, EXIT_STOPPED, EXIT_TERMINATED, Error, Hook, Store, Ttl};

use self::completer::{BatchedCompleter, Completer};
use self::hooks::{AfterRecord, HookRunner};
use self::maintenance::Every;
use self::maintenance::flows::StalledFlows;
use self::maintenance::heartbeat::{self, Beating, Heartbeat};
use self::maintenance::hooks::LeftoverHooks;
use self::maintenance::rescue::{self, Rescuer};
use self::maintenance::retention::{self, Retention};
use self::maintenance::schedules::{self, Materializer};
use self::maintenance::wake::{self, Wake};
use self::outage::{Outage, worth_waiting_for};
use self::producer::Producer;
use self::shutdown::StopRequest;
pub use self::shutdown::{Exit, RunMode, Shutdown};
use crate::clock::{Clock, DatabaseClock};

/// How much later than its tick a maintenance pass may come before this worker takes itself
/// for stalled.
const STALLED: Duration = Duration::from_secs(1);

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
    database_url: Option<String>,
    queues: QueueSelection,
    in_order: bool,
    tick: Duration,
    mode: RunMode,
    label: String,
    heartbeat_timeout: Duration,
    concurrency: usize,
    claim_ahead: Option<usize>,
    schedules: bool,
    max_tasks: Option<u64>,
    cluster: Option<(String, i32)>,
    metrics_bind: Option<std::net::SocketAddr>,
    clock: Arc<dyn Clock>,
    completer: Box<dyn Completer>,
    error_hook: Option<Hook>,
    result_ttl: Option<Ttl>,
    save_limit: Option<u64>,
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
    /// heartbeat timeout 300 s, one slot per CPU, the database's clock, outcomes batched,
    /// running until stopped.
    pub fn new() -> Self {
        let (shutdown, stop) = Shutdown::channel();
        Worker {
            store: None,
            database_url: None,
            queues: QueueSelection::All,
            in_order: false,
            tick: maintenance::DEFAULT_INTERVAL,
            mode: RunMode::Forever,
            label: format!("worker-{}", std::process::id()),
            heartbeat_timeout: heartbeat::DEFAULT_HEARTBEAT_TIMEOUT,
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            claim_ahead: None,
            schedules: true,
            max_tasks: None,
            cluster: None,
            metrics_bind: None,
            clock: Arc::new(DatabaseClock::new()),
            completer: Box::new(BatchedCompleter::new()),
            error_hook: None,
            result_ttl: None,
            save_limit: None,
            stop,
            shutdown,
        }
    }

    /// Uses `store` instead of the default store.
    pub fn store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Opens the database at `url` when it starts, and makes it the process's default store
    /// (as [`toosimple_core::init`] does), waiting through an outage as a running worker does:
    /// a worker started while its database is down or full starts once it is back. Ignored
    /// when [`store`](Self::store) is given.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
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

    /// Claims from the queues given to [`queues`](Self::queues) in the order listed (the CLI's
    /// `--in-order`, django-pq's queue priority): as many rows of the first queue as it has
    /// slots, then of the second, and so on. Priority orders the rows within each queue; a
    /// later queue's highest priority waits behind an earlier queue's lowest, so a busy first
    /// queue starves the others.
    ///
    /// ```no_run
    /// let worker = toosimple_worker::Worker::new()
    ///     .queues(["urgent", "default"])
    ///     .in_order(true);
    /// # let _ = worker;
    /// ```
    pub fn in_order(mut self, in_order: bool) -> Self {
        self.in_order = in_order;
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

    /// Its heartbeat timeout (the CLI's `--timeout`): how long without a heartbeat before other
    /// workers take it for dead and rescue its tasks. Not a task's run limit
    /// (`#[task(timeout = …)]`). Must be longer than the tick.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// How many tasks it runs at once (at least 1).
    pub fn concurrency(mut self, slots: usize) -> Self {
        self.concurrency = slots.max(1);
        self
    }

    /// How many rows it may claim beyond its free slots while its tasks are short (they
    /// typically end within 20 ms), so that a freed slot starts the next task without a round
    /// trip to the database. Defaults to the concurrency; 0 claims only for free slots.
    /// Buffered rows count as running (`Processing` under this worker): a crash has them
    /// rescued, a stop hands them back to the queue unstarted.
    pub fn claim_ahead(mut self, rows: usize) -> Self {
        self.claim_ahead = Some(rows);
        self
    }

    /// Whether it materializes schedules (on by default).
    pub fn schedules(mut self, on: bool) -> Self {
        self.schedules = on;
        self
    }

    /// Stops by itself, as after a first SIGINT, once it has claimed `tasks` executions and
    /// they ended (django-q's `recycle`: a fresh process for leaky task code, which
    /// `app cluster` then starts again).
    pub fn max_tasks(mut self, tasks: u64) -> Self {
        self.max_tasks = Some(tasks.max(1));
        self
    }

    /// Keeps Prometheus metrics of what it runs and serves them, with the database's queue
    /// depths, at `http://ADDR/metrics` (see [`crate::metrics`]).
    pub fn metrics_bind(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics_bind = Some(addr);
        self
    }

    /// Records that `app cluster` `name` started it and has restarted it `restarts` times.
    #[doc(hidden)]
    pub fn in_cluster(mut self, name: impl Into<String>, restarts: i32) -> Self {
        self.cluster = Some((name.into(), restarts));
        self
    }

    /// Takes its time from `clock` instead of the database's ([`DatabaseClock`]): for tests,
    /// a [`TestClock`](crate::clock::TestClock) that they move by hand.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Records outcomes with `completer` instead of a [`BatchedCompleter`].
    pub fn completer(mut self, completer: impl Completer) -> Self {
        self.completer = Box::new(completer);
        self
    }

    /// Calls `hook` with every execution that fails (failed, invalid or interrupted) once its
    /// outcome is recorded, beside the execution's own hook: django-pq's `exc_handler`, as a
    /// registered [`Hook`] (the CLI's `worker --error-hook NAME`). Like any hook, it cannot
    /// change the outcome, and its own failure is logged and kept in the row's `hook_error`.
    /// It hears the failures this worker records, the interruptions it rescues included;
    /// unlike a row's hook it is not stored, so a failure whose worker died before calling it
    /// is not heard.
    pub fn error_hook(mut self, hook: Hook) -> Self {
        self.error_hook = Some(hook);
        self
    }

    /// How long an execution without a TTL of its own (its call's or its task's) is kept once
    /// finished, as django-pq's `PQ_DEFAULT_RESULT_TTL` (the CLI's `worker --result-ttl`):
    /// `Duration::ZERO` deletes it as soon as it is recorded (and its hook has run),
    /// [`Ttl::Keep`] keeps it until purged, as does a worker that sets nothing. Its retention
    /// pass applies it to every execution of the database: give every worker the same.
    pub fn result_ttl(mut self, ttl: impl Into<Ttl>) -> Self {
        self.result_ttl = Some(ttl.into());
        self
    }

    /// Keeps only the `n` newest successes without a TTL of their own (django-q's
    /// `Q_SAVE_LIMIT`; the CLI's `worker --save-limit N`): its retention pass deletes older
    /// ones, except those that ended a retry chain of earlier runs. Failures are always kept.
    /// `0` keeps them all, as does a worker that sets nothing.
    pub fn save_limit(mut self, n: u64) -> Self {
        self.save_limit = (n > 0).then_some(n);
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

    /// Runs it on the current tokio runtime until it stops. Its loop runs there; its tasks run
    /// on a runtime of its own, and its heartbeat on a thread of its own, so that a task that
    /// blocks its thread cannot stop the worker.
    pub async fn run_async(self) -> Exit {
        let label = self.label.clone();
        let store = self.store.clone();
        let clock = self.clock.clone();
        match self.work().await {
            Ok(exit) => exit,
            Err(e) => {
                let reason = e.report();
                tracing::error!(worker = %label, "worker crashed: {reason}");
                if let Some(store) = store.or_else(|| toosimple_core::default_store().ok()) {
                    let log = reason.clone();
                    let _ = blocking(move || {
                        store.stop_worker(&label, clock.now(), EXIT_CRASHED, Some(&log), None)
                    })
                    .await;
                }
                Exit::Crashed(reason)
            }
        }
    }

    /// The seed's tick, as a loop: beat (on its own thread), rescue and materialize, wake and
    /// claim and record (one transaction), run; then wait for a task to end, the tick, a
    /// wake-up or a stop request.
    async fn work(self) -> Result<Exit, Error> {
        let mut run = Run::start(self).await?;
        loop {
            let stop = *run.stop.borrow_and_update();
            if stop == StopRequest::Terminate {
                run.land_round(stop).await;
                return Ok(run.terminate().await);
            }
            let done = run.producer.collect_finished();
            run.record_later(done);
            if stop == StopRequest::None {
                run.producer.fill();
            }
            // Rounds, maintenance and hand-backs write one at a time; tasks run meanwhile.
            if run.in_flight.is_none() {
                if stop != StopRequest::None {
                    run.hand_back().await;
                }
                run.maintain().await;
                run.start_round(stop);
                if run.finished_for_good(stop) {
                    // Exiting 0 with work left behind must not look like having done it all.
                    if run.mode == RunMode::UntilDone && stop == StopRequest::None {
                        run.warn_unrunnable().await;
                    }
                    return run.stop(EXIT_STOPPED).await.map(|()| Exit::Stopped);
                }
            }
            run.wait().await;
        }
    }
}

/// A started worker: its parts and their state.
struct Run {
    store: Store,
    /// The tasks it links and the queues it serves, to say what it will never run.
    defs: &'static [&'static toosimple_core::TaskDef],
    queues: QueueSelection,
    clock: Arc<dyn Clock>,
    label: String,
    mode: RunMode,
    /// Claims no more than this many executions in all, then stops (`--max-tasks`).
    max_tasks: Option<u64>,
    /// Its own stop handle, for stopping by itself after `max_tasks`.
    shutdown: Shutdown,
    stop: watch::Receiver<StopRequest>,
    producer: Producer,
    completer: Arc<Mutex<Box<dyn Completer>>>,
    duties: Arc<Mutex<Duties>>,
    /// When rescue (and an idle round) runs next.
    tick: Every,
    retention: Every,
    leftover_hooks: Every,
    stalled_flows: Every,
    next_schedule: Option<Instant>,
    outage: Outage,
    /// Set when an outage ends: claims may have committed unseen.
    check_unheld: bool,
    /// No rescue before this: after an outage every worker's heartbeat is stale, the live ones'
    /// too, until each has had a heartbeat timeout to beat again.
    rescue_after: Option<Instant>,
    /// When the last maintenance pass started, and the tick they follow.
    last_pass: Option<Instant>,
    tick_interval: Duration,
    /// Whether the last maintenance pass left rows of silent workers to rescue later:
    /// `--until-done` is not done while they wait.
    awaiting_rescue: bool,
    heartbeat_timeout: Duration,
    heartbeat: Option<Beating>,
    /// Executions that ended here since the start; the heartbeat writes it to the status row.
    handled: Arc<AtomicU64>,
    /// The round running on a blocking thread, and how many rows it claims: the loop goes on
    /// starting and gathering tasks meanwhile.
    in_flight: Option<(JoinHandle<Result<Exchange, Error>>, usize)>,
    /// Outcomes of tasks that ended while a round was in flight (it holds the completer).
    arrivals: Vec<Completion>,
    /// Whether a claim may find work: a slot freed, a tick or wake-up came, or the last claim
    /// was full. Without it, a round that claimed nothing would be followed by another at once.
    claim_due: bool,
    /// The completer's gathering window.
    window: Duration,
    /// Calls hooks once outcomes are recorded; taken when the worker stops.
    hooks: Option<HookRunner>,
    /// Whether failures have a hook to call (the worker's error hook).
    error_hook: bool,
    /// Executions handed to the completer whose hooks are to be called once recorded, and
    /// those of the round in flight.
    after_record: Vec<AfterRecord>,
    after_round: Vec<AfterRecord>,
    /// Whether an execution without a TTL of its own is deleted once recorded (a default TTL
    /// of 0).
    delete_at_once: bool,
    /// Woken when executions are inserted (`Store::wakeups`).
    wakeup: Arc<Notify>,
    _listener: Option<toosimple_core::store::Wakeups>,
    /// The metrics endpoint, stopped with the worker.
    _metrics_server: Option<AbortOnDrop>,
    _tasks: TaskRuntime,
}

/// The duties the loop runs on their intervals (the heartbeat runs on its own thread).
struct Duties {
    rescuer: Rescuer,
    wake: Wake,
    materializer: Materializer,
    retention: Retention,
    leftover_hooks: LeftoverHooks,
    stalled_flows: StalledFlows,
}

impl Run {
    /// Checks the configuration and the registry, registers the worker, and starts its
    /// heartbeat, its `LISTEN` wake-ups and its task runtime.
    async fn start(mut worker: Worker) -> Result<Run, Error> {
        let defs = toosimple_core::runtime::require_tasks()?;
        if worker.schedules {
            toosimple_core::check_schedules()?;
        }
        let beat = heartbeat::Config {
            interval: worker.tick,
            heartbeat_timeout: worker.heartbeat_timeout,
        };
        let rescue = rescue::Config {
            interval: worker.tick,
        };
        let schedules = schedules::Config {
            enabled: worker.schedules,
            interval: worker.tick,
        };
        let retention = retention::Config {
            default_ttl: worker.result_ttl,
            save_limit: worker.save_limit,
            ..retention::Config::default()
        };
        let leftover_hooks = maintenance::hooks::Config {
            grace: worker.heartbeat_timeout,
            ..maintenance::hooks::Config::default()
        };
        leftover_hooks.validate()?;
        let stalled_flows = maintenance::flows::Config::default();
        stalled_flows.validate()?;
        beat.validate()?;
        rescue.validate()?;
        schedules.validate()?;
        retention.validate()?;
        let wake = wake::Config {
            interval: worker.tick,
        };
        wake.validate()?;
        if worker.in_order && !matches!(&worker.queues, QueueSelection::Only(q) if !q.is_empty()) {
            return Err(Error::InvalidOption {
                option: "--in-order".to_string(),
                reason: "serves the queues in the order of --queue: name them, e.g.                          `--queue urgent --queue default --in-order`"
                    .to_string(),
            });
        }

        let (queues, excluded) = match &worker.queues {
            QueueSelection::All => (vec![], vec![]),
            QueueSelection::Only(q) => (q.clone(), vec![]),
            QueueSelection::Except(q) => (vec![], q.clone()),
        };
        // A worker (re)started during an outage waits for its database, as a running one does,
        // instead of exiting: supervisors restart workers exactly when things go wrong.
        let mut outage = Outage::default();
        let outage_at_start;
        let (store, leftovers) = loop {
            let url = worker.database_url.clone();
            let (given, clock, label) = (
                worker.store.clone(),
                worker.clock.clone(),
                worker.label.clone(),
            );
            let (queues, excluded) = (queues.clone(), excluded.clone());
            let (timeout, tick) = (worker.heartbeat_timeout, worker.tick);
            let cluster = worker.cluster.clone();
            let attempt = blocking(move || {
                let db = match (given, url) {
                    (Some(store), _) => store,
                    (None, Some(url)) => toosimple_core::init(&url)?,
                    (None, None) => toosimple_core::default_store()?,
                };
                // Dated by the database's clock from the first row on.
                clock.sync(&db)?;
                let tasks: Vec<&str> = defs.iter().map(|d| d.name()).collect();
                let leftovers = db.register_worker(&WorkerRegistration {
                    tasks: &tasks,
                    label: &label,
                    queues: &queues,
                    excluded_queues: &excluded,
                    heartbeat_timeout: timeout.as_secs_f64(),
                    tick: tick.as_secs_f64(),
                    cluster: cluster.as_ref().map(|(name, n)| (name.as_str(), *n)),
                    now: clock.now(),
                })?;
                Ok::<_, Error>((db, leftovers))
            })
            .await;
            match attempt {
                Ok(started) => {
                    outage_at_start = outage.ended();
                    break started;
                }
                Err(e) if worth_waiting_for(&e) && *worker.stop.borrow() == StopRequest::None => {
                    outage.failed(&e);
                    let retry_at = outage.retry_at().unwrap_or_else(Instant::now);
                    tokio::select! {
                        _ = tokio::time::sleep_until(retry_at) => {}
                        _ = worker.stop.changed() => {}
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let label = worker.label.clone();
        if !leftovers.is_empty() {
            tracing::warn!(
                worker = %label,
                "interrupted {} execution(s) left running by an earlier worker with this label: {leftovers:?}",
                leftovers.len()
            );
        }
        if store.created() {
            // A worker started from another folder, or before anything was enqueued, would
            // otherwise wait on (or, `--until-done`, exit 0 from) an empty file of its own.
            tracing::warn!(
                worker = %label,
                "created a new, empty database at {}; is this the one your app uses? Set TOOSIMPLE_DATABASE_URL (or --database-url) to its path",
                store.location()
            );
        }
        tracing::info!(
            worker = %label,
            database = %store.location(),
            tasks = ?defs.iter().map(|d| d.name()).collect::<Vec<_>>(),
            queues = ?worker.queues,
            concurrency = worker.concurrency,
            mode = ?worker.mode,
            wakeups = %store.wakeup_source(),
            "worker started"
        );
        // A connection of its own: tasks that hold every pooled connection cannot delay a beat.
        let handled = Arc::new(AtomicU64::new(0));
        let controls = producer::Controls::default();
        let heartbeat = Heartbeat::new(label.clone(), beat, handled.clone())
            .with_running(controls.clone())
            .spawn(
                store.with_own_pool(1),
                worker.clock.clone(),
                worker.shutdown.clone(),
            )?;
        let tasks = TaskRuntime::start()?;
        let metrics = match worker.metrics_bind {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    Error::Runtime(format!(
                        "cannot serve metrics on {addr}: {e}; choose another --metrics-bind address"
                    ))
                })?;
                let metrics = Arc::new(crate::metrics::Metrics::new());
                tracing::info!(worker = %label, "metrics at http://{}/metrics", listener.local_addr().map_or(addr, |a| a));
                let server = crate::metrics::serve(listener, metrics.clone(), store.clone());
                Some((metrics, AbortOnDrop(server)))
            }
            None => None,
        };
        let wakeup = Arc::new(Notify::new());
        let listener = store.wakeups(wakeup.clone());
        let materializer = Materializer::new(label.clone(), schedules, &worker.queues);
        let next_schedule = (!materializer.is_empty()).then(Instant::now);
        let hooks = HookRunner::start(
            store.clone(),
            label.clone(),
            worker.error_hook,
            worker.clock.clone(),
        );
        let mut producer = Producer::new(
            &label,
            defs,
            worker.queues.clone(),
            worker.concurrency,
            worker.claim_ahead.unwrap_or(worker.concurrency),
            worker.mode,
            worker.clock.clone(),
            tasks.handle(),
        );
        producer.metrics = metrics.as_ref().map(|(metrics, _)| metrics.clone());
        // The store's keys as the worker starts: each claimed row is checked against them.
        producer.signing = store.signing();
        producer.controls = controls;
        producer.serve_in_order(worker.in_order);
        let run = Run {
            defs,
            _metrics_server: metrics.map(|(_, server)| server),
            queues: worker.queues.clone(),
            producer,
            window: worker.completer.window(),
            completer: Arc::new(Mutex::new(worker.completer)),
            in_flight: None,
            arrivals: Vec::new(),
            claim_due: true,
            duties: Arc::new(Mutex::new(Duties {
                rescuer: Rescuer::new(label.clone(), rescue),
                wake: Wake::new(wake),
                materializer,
                retention: Retention::new(retention.clone()),
                leftover_hooks: LeftoverHooks::new(leftover_hooks.clone()),
                stalled_flows: StalledFlows::new(stalled_flows.clone()),
            })),
            tick: Every::new(worker.tick),
            retention: Every::new(retention.interval),
            leftover_hooks: Every::new(leftover_hooks.interval),
            stalled_flows: Every::new(stalled_flows.interval),
            next_schedule,
            store,
            clock: worker.clock,
            label,
            mode: worker.mode,
            max_tasks: worker.max_tasks,
            shutdown: worker.shutdown.clone(),
            stop: worker.stop,
            outage: Outage::default(),
            check_unheld: false,
            // A worker just started has watched nobody beat: the others' heartbeats may be
            // stale from a stall that ended as it started (on SQLite, a paused worker holding
            // the write lock stalls every beat), so it judges them only once they have had a
            // heartbeat timeout to beat again. Their rescue comes no later than a timeout after
            // their death anyway when this worker replaces one that crashed. `--until-done` and
            // `--once` keep their first pass: they are run by hand or by tests, and
            // `--until-done` waits for rows it spares rather than leave them behind.
            rescue_after: (outage_at_start || worker.mode == RunMode::Forever)
                .then(|| Instant::now() + worker.heartbeat_timeout),
            last_pass: None,
            tick_interval: worker.tick,
            awaiting_rescue: false,
            heartbeat_timeout: worker.heartbeat_timeout,
            heartbeat: Some(heartbeat),
            hooks: Some(hooks),
            error_hook: worker.error_hook.is_some(),
            after_record: Vec::new(),
            after_round: Vec::new(),
            delete_at_once: worker.result_ttl.is_some_and(Ttl::is_zero),
            handled,
            wakeup,
            _listener: listener,
            _tasks: tasks,
        };
        run.warn_unrunnable().await;
        Ok(run)
    }

    /// Warns about queued executions no worker of this binary can run, and served queues no
    /// linked task uses (see `unrunnable`). A failed look is only logged: it must not stop a
    /// worker that can run the rest.
    async fn warn_unrunnable(&self) {
        let store = self.store.clone();
        let known: Vec<&'static str> = self.defs.iter().map(|d| d.name()).collect();
        match blocking(move || toosimple_core::TaskExec::queued_of_other_tasks_in(&store, &known))
            .await
        {
            Ok(queued) => {
                for warning in unrunnable::warnings(self.defs, &self.queues, &queued) {
                    tracing::warn!(worker = %self.label, "{warning}");
                }
            }
            Err(e) => {
                tracing::debug!(worker = %self.label, "could not count queued executions per task: {}", e.report())
            }
        }
    }

    /// Hands executions that just ended to the completer, which records them at the latest in
    /// the next round, and counts them as handled.
    fn record_later(&mut self, done: Vec<Completion>) {
        if !done.is_empty() {
            self.handled.fetch_add(done.len() as u64, Ordering::Relaxed);
        }
        self.push_completions(done);
    }

    /// Hands completions to the completer, or keeps them while a round holds it.
    fn push_completions(&mut self, done: Vec<Completion>) {
        if self.in_flight.is_some() {
            self.arrivals.extend(done);
            return;
        }
        let mut completer = lock(&self.completer);
        for completion in self.arrivals.drain(..).chain(done) {
            // Per task, only a look at what is in memory: hooks and a TTL of 0 are dealt with
            // after the round.
            let hooks = completion.exec.hook.is_some()
                || (self.error_hook && !matches!(completion.outcome, Outcome::Succeeded(_)));
            let delete = match completion.exec.result_ttl {
                Some(ttl) => ttl == 0,
                None => self.delete_at_once,
            };
            if hooks || delete {
                self.after_record.push(AfterRecord {
                    id: completion.exec.id,
                    hooks,
                    delete,
                });
            }
            completer.push(completion);
        }
    }

    /// Rescue and schedules at their tick (or a schedule's occurrence), retention at its
    /// interval.
    /// Notes that the database answered: if that ends an outage, claims may have committed
    /// unseen, and rescue waits until live workers have beaten again.
    fn database_answered(&mut self) {
        if self.outage.ended() {
            self.check_unheld = true;
            self.rescue_after = Some(Instant::now() + self.heartbeat_timeout);
        }
    }

    async fn maintain(&mut self) {
        let schedule_due = self.next_schedule.is_some_and(|at| Instant::now() >= at);
        if !(self.tick.is_due() || schedule_due) || self.outage.waiting() {
            return;
        }
        self.tick.ran();
        // A pass far later than its tick means this worker itself stalled (paused, starved of
        // CPU, a whole machine frozen): the others' beats may have stalled with it, and their
        // silence proves nothing until they have had a heartbeat timeout to beat again.
        let started = Instant::now();
        if let Some(previous) = self.last_pass.replace(started)
            && started.duration_since(previous) > self.tick_interval + STALLED
        {
            self.rescue_after = Some(started + self.heartbeat_timeout);
        }
        let retention_due = self.retention.is_due();
        let hooks_due = self.leftover_hooks.is_due();
        let flows_due = self.stalled_flows.is_due();
        let (duties, store, clock) = (self.duties.clone(), self.store.clone(), self.clock.clone());
        let label = self.label.clone();
        // The pass that ends an outage must not rescue either: it is the first to see the
        // database again, before any live worker's heartbeat.
        let rescue = !self.outage.is_down()
            && self.rescue_after.is_none_or(|at| Instant::now() >= at)
            && !self.heartbeat.as_ref().is_some_and(|beat| beat.troubled());
        let passed = blocking(move || {
            let mut duties = lock(&duties);
            // The queues' settings, once per tick (a small table): pauses and limits are seen
            // within a tick.
            let settings = store.queues()?;
            let now = clock.now();
            let (rescued, awaiting, deferred) = if rescue {
                let report = duties.rescuer.run_once(&store, now)?;
                (report.rescued, report.awaiting, report.deferred)
            } else {
                // Not judging now: rows running elsewhere may be a dead worker's, which
                // `--until-done` must not leave behind (this worker runs none when it asks).
                // Through the partial index on running rows: a count of every state, as
                // before, read the whole history at each tick.
                let elsewhere: i64 = toosimple_core::TaskExec::running_per_worker_in(&store)?
                    .iter()
                    .map(|(_, n)| n)
                    .sum();
                (Vec::new(), usize::try_from(elsewhere).unwrap_or(0), false)
            };
            if !rescued.is_empty() {
                tracing::warn!(worker = %label, "rescued the executions of dead workers (old, replacement): {rescued:?}");
            }
            // A busy worker's rounds wake only when their claim comes up short: a due retry
            // waits at most a tick behind a backlog.
            duties.wake.run_once(&store, now)?;
            let report = duties.materializer.run_once(&store, now)?;
            duties.materializer.log(&report);
            if retention_due {
                duties.retention.run_once(&store, now)?;
            }
            if flows_due {
                duties.stalled_flows.run_once(&store, now)?;
            }
            // Rescued executions are recorded interrupted here: their hooks are this worker's.
            let mut to_hook: Vec<AfterRecord> = rescued
                .iter()
                .map(|(old, _)| AfterRecord::hooks(*old))
                .collect();
            if hooks_due {
                let taken = duties.leftover_hooks.run_once(&store, now)?.taken;
                to_hook.extend(taken.into_iter().map(AfterRecord::hooks));
            }
            Ok::<_, Error>((
                duties.materializer.next_due(clock.now()),
                awaiting,
                deferred,
                to_hook,
                settings,
            ))
        })
        .await;
        match passed {
            Ok((next_due, awaiting, deferred, to_hook, settings)) => {
                self.producer.set_queue_settings(settings);
                if let Some(hooks) = &self.hooks {
                    hooks.send(to_hook);
                }
                if hooks_due {
                    self.leftover_hooks.ran();
                }
                if flows_due {
                    self.stalled_flows.ran();
                }
                if deferred {
                    // As after an outage: live workers need a heartbeat timeout to beat again.
                    self.rescue_after = Some(Instant::now() + self.heartbeat_timeout);
                }
                // Only rows known to wait: a hold-off after an outage lasts a heartbeat
                // timeout (300 s by default), too long to keep `--until-done` from ending.
                self.awaiting_rescue = awaiting > 0;
                self.database_answered();
                if retention_due {
                    self.retention.ran();
                }
                self.next_schedule = next_due.map(|next| {
                    let wait = (next - self.clock.now()).to_std().unwrap_or(Duration::ZERO);
                    // A hair late rather than early: the pass must see the occurrence as due.
                    Instant::now() + wait + Duration::from_millis(1)
                });
            }
            Err(e) => self.outage.failed(&e),
        }
    }

    /// Starts one round in one transaction on a blocking thread, when there is something to
    /// record or a claim is due: record what finished, claim for the free slots and the
    /// buffer (waking due sleeping rows if that comes up short). [`land_round`](Run::land_round)
    /// takes its result.
    fn start_round(&mut self, stop: StopRequest) {
        let mut free = self.producer.free_slots(stop);
        if let Some(max) = self.max_tasks {
            // Claimed rows all run (buffered ones too: no stop is asked before the last ends).
            let left = max.saturating_sub(self.producer.executions as u64);
            free = free.min(usize::try_from(left).unwrap_or(usize::MAX));
            if self.handled.load(Ordering::Relaxed) >= max && stop == StopRequest::None {
                tracing::info!(worker = %self.label, "handled its --max-tasks {max} executions: stopping");
                self.shutdown.graceful();
            }
        }
        let claim = if self.claim_due { free } else { 0 };
        let pending = lock(&self.completer).pending();
        if (pending == 0 && claim == 0) || self.outage.waiting() {
            return;
        }
        self.claim_due = false;
        // The round records everything the completer holds.
        self.after_round = std::mem::take(&mut self.after_record);
        let plan = self.producer.plan(claim);
        let (completer, store, clock) = (
            self.completer.clone(),
            self.store.clone(),
            self.clock.clone(),
        );
        let round = tokio::task::spawn_blocking(move || {
            lock(&completer).round(&store, &plan.request(clock.now()))
        });
        self.in_flight = Some((round, claim));
    }

    /// Waits for the round in flight, if any, and takes its result.
    async fn land_round(&mut self, stop: StopRequest) {
        if let Some((round, claim)) = self.in_flight.as_mut() {
            let (landed, claim) = (round.await, *claim);
            self.landed(landed, claim, stop).await;
        }
    }

    /// Takes the result of the round that just ended: runs (or buffers) what it claimed.
    async fn landed(
        &mut self,
        landed: Result<Result<Exchange, Error>, tokio::task::JoinError>,
        claim: usize,
        stop: StopRequest,
    ) {
        self.in_flight = None;
        let exchanged = match landed {
            Ok(exchanged) => exchanged,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match exchanged {
            Ok(exchange) => {
                self.database_answered();
                if !exchange.report.stale.is_empty() {
                    tracing::warn!(worker = %self.label, "dropped the outcome of executions another worker had rescued: {:?}", exchange.report.stale);
                }
                // Committed: their hooks may run now (a stale one's outcome is another's).
                let mut recorded = std::mem::take(&mut self.after_round);
                if !recorded.is_empty() {
                    recorded.retain(|after| !exchange.report.stale.contains(&after.id));
                    if let Some(hooks) = &self.hooks {
                        hooks.send(recorded);
                    }
                }
                if claim > 0 {
                    // A full claim suggests more is waiting: claim again at once.
                    self.claim_due |= exchange.claimed.len() == claim;
                    self.producer.accept(exchange.claimed);
                    if stop == StopRequest::None {
                        self.producer.fill();
                    }
                }
                // Every outcome is recorded or waits here, and every claim is held here: any
                // other row this worker holds in the database was claimed by a commit whose
                // answer the outage swallowed.
                if std::mem::take(&mut self.check_unheld) {
                    self.release_unheld().await;
                }
            }
            Err(e) => {
                self.claim_due = true;
                // The completer keeps the outcomes for the next round; so are their hooks.
                let mut unrecorded = std::mem::take(&mut self.after_round);
                unrecorded.append(&mut self.after_record);
                self.after_record = unrecorded;
                self.outage.failed(&e)
            }
        }
        let arrivals = std::mem::take(&mut self.arrivals);
        self.push_completions(arrivals);
    }

    /// Whether it should stop now: nothing runs or waits to be recorded, and it was asked to
    /// stop or its mode says so.
    fn finished_for_good(&self, stop: StopRequest) -> bool {
        if self.in_flight.is_some()
            || !self.producer.is_idle()
            || !self.arrivals.is_empty()
            || lock(&self.completer).pending() > 0
            || self.outage.is_down()
        {
            return false;
        }
        let rounds = self.producer.rounds;
        match self.mode {
            _ if stop == StopRequest::Graceful => true,
            RunMode::Once => rounds > 0,
            RunMode::UntilDone => {
                rounds > 0 && self.producer.last_claimed == 0 && !self.awaiting_rescue
            }
            RunMode::Forever => false,
        }
    }

    /// Waits for a slot to free up (tasks that end together are gathered, to share a round),
    /// the next tick or occurrence, a `LISTEN` wake-up, or a stop request.
    async fn wait(&mut self) {
        let wake_at = match self.outage.retry_at() {
            Some(at) if self.outage.is_down() => at,
            _ => self
                .next_schedule
                .map_or(self.tick.next(), |at| at.min(self.tick.next())),
        };
        // While a round is in flight, what ends waits for the next round anyway.
        let window = if self.in_flight.is_some() {
            Duration::ZERO
        } else {
            self.window
        };
        let busy = self.in_flight.is_some();
        let stop = *self.stop.borrow();
        let in_flight = async {
            match self.in_flight.as_mut() {
                Some((round, claim)) => (round.await, *claim),
                None => std::future::pending().await,
            }
        };
        let nudge_at = self.producer.nudge_at();
        tokio::select! {
            first = self.producer.next_finished() => {
                // Past the select: nothing can cancel the gathering.
                let done = self.producer.gather(first, window).await;
                self.record_later(done);
                // Buffered rows take the freed slots now, not after the round trip.
                if stop == StopRequest::None {
                    self.producer.fill();
                }
                self.claim_due = true;
            }
            (landed, claim) = in_flight => self.landed(landed, claim, stop).await,
            // A sync task waited for busy runners: it gets one of its own.
            _ = sleep_until_some(nudge_at) => self.producer.nudge(),
            // A tick that came during a round is taken when it lands: maintenance waits for it.
            _ = tokio::time::sleep_until(wake_at), if !busy => self.claim_due = true,
            _ = self.wakeup.notified() => self.claim_due = true,
            // An error means every `Shutdown` handle is gone: no request can come any more,
            // and an error returned at once on every call would make the loop spin.
            Ok(()) = self.stop.changed() => {}
        }
    }

    /// Stopping: hands the buffered executions, which never started, back to the queue (kept
    /// until the database has taken them, so that an outage only delays it).
    async fn hand_back(&mut self) {
        let ids = self.producer.buffered();
        if ids.is_empty() || self.outage.waiting() {
            return;
        }
        let (store, label) = (self.store.clone(), self.label.clone());
        match blocking(move || store.release_claims(&label, &ids)).await {
            Ok(n) => {
                self.database_answered();
                let _ = self.producer.take_buffered();
                tracing::info!(worker = %self.label, "handed back {n} claimed execution(s) that had not started");
            }
            Err(e) => self.outage.failed(&e),
        }
    }

    /// After an outage, requeues claims that committed although the worker saw them fail.
    async fn release_unheld(&self) {
        let (store, label) = (self.store.clone(), self.label.clone());
        // Outcomes not recorded yet are still `Processing` rows of this worker, held here.
        let mut running = self.producer.held();
        running.extend(self.arrivals.iter().map(|done| done.exec.id));
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

    /// Stops the heartbeat, then records the stop with `code`.
    async fn stop(&mut self, code: i32) -> Result<(), Error> {
        if code == EXIT_STOPPED {
            self.finish_hooks().await;
        }
        let (store, label, clock) = (self.store.clone(), self.label.clone(), self.clock.clone());
        let heartbeat = self.heartbeat.take();
        let handled = self.handled.clone();
        blocking(move || {
            // No beat may land after the stop is recorded.
            if let Some(heartbeat) = heartbeat {
                heartbeat.stop();
            }
            let handled = Some(handled.load(Ordering::Relaxed));
            store.stop_worker(&label, clock.now(), code, None, handled)
        })
        .await?;
        if code == EXIT_STOPPED {
            let (rounds, executions) = (self.producer.rounds, self.producer.executions);
            tracing::info!(worker = %self.label, rounds, executions, "worker stopped");
        }
        Ok(())
    }

    /// A graceful stop: waits for the hooks of what was recorded, unless a termination is
    /// asked meanwhile (another worker's pass calls those left then).
    async fn finish_hooks(&mut self) {
        let Some(hooks) = self.hooks.take() else {
            return;
        };
        let finish = hooks.finish();
        tokio::pin!(finish);
        loop {
            tokio::select! {
                () = &mut finish => return,
                changed = self.stop.changed() => match changed {
                    // No `Shutdown` handle is left: no termination can come.
                    Err(_) => return finish.await,
                    Ok(()) if *self.stop.borrow() == StopRequest::Terminate => {
                        tracing::warn!(worker = %self.label, "terminated while hooks ran: the hooks not called yet are left to other workers");
                        return;
                    }
                    Ok(()) => {}
                },
            }
        }
    }

    /// Records what finished, interrupts (and replaces) what still runs, and stops with 77.
    async fn terminate(mut self) -> Exit {
        self.producer.abort_all();
        let done = self.producer.collect_finished();
        self.record_later(done);
        let ids = self.producer.running_ids();
        let buffered = self.producer.take_buffered();
        tracing::warn!(worker = %self.label, "terminated: interrupting {} running execution(s)", ids.len());
        let (store, label, clock) = (self.store.clone(), self.label.clone(), self.clock.clone());
        let completer = self.completer.clone();
        let interrupted = blocking(move || {
            lock(&completer).flush(&store, &label)?;
            // Never started: back in the queue, not interrupted.
            store.release_claims(&label, &buffered)?;
            store.interrupt(
                &label,
                &ids,
                &format!("worker {label} was terminated"),
                clock.now(),
            )
        })
        .await;
        let stopped = match interrupted {
            Ok(replaced) => {
                tracing::info!(worker = %self.label, "interrupted and replaced (old, replacement): {replaced:?}");
                self.stop(EXIT_TERMINATED).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = stopped {
            tracing::error!(worker = %self.label, "could not record the termination: {}", e.report());
        }
        Exit::Terminated
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The runtime task code runs on, apart from the worker's loop and heartbeat: a task that
/// blocks its threads stalls other tasks, not the worker.
struct TaskRuntime(Option<tokio::runtime::Runtime>);

impl TaskRuntime {
    /// One worker thread per CPU, as tokio's default: well-behaved async tasks need no more.
    fn start() -> Result<TaskRuntime, Error> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("toosimple-task")
            .build()
            .map(|runtime| TaskRuntime(Some(runtime)))
            .map_err(|e| Error::Runtime(format!("cannot start the runtime tasks run on: {e}")))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the task runtime lives as long as the worker"),
        }
    }
}

impl Drop for TaskRuntime {
    /// Without waiting: an async task stuck in a blocking call at termination must not hold
    /// the worker (dropping a runtime would also panic inside the loop's runtime).
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// See [`crate::run_claimed`]: the worker's `execute` on a runtime of its own, dated by the
/// database's clock.
pub(crate) fn run_claimed(exec: toosimple_core::store::ClaimedExec) -> Result<Completion, Error> {
    let def = toosimple_core::find_task(&exec.task_name)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start a runtime to run one execution: {e}")))?;
    let handle = runtime.handle().clone();
    let clock: Arc<dyn Clock> = Arc::new(DatabaseClock::new());
    // No heartbeat here: the task's context reports to nobody and is never cancelled.
    let control = toosimple_core::runtime::ExecControl::new(exec.id);
    Ok(runtime.block_on(execute::execute(def, exec, clock, handle, control, None)))
}

/// Locks a mutex the loop shares with its blocking calls; a panic there already ended the
/// worker, so a poisoned lock is taken as is.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs blocking database work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop's test binary needs one registered task to start a worker.
    #[toosimple_core::task]
    fn idle() {}

    /// With nothing running, no tick due and no stop asked, the loop's wait must sleep. Here no
    /// [`Shutdown`] handle outlives the builder (as in `Worker::new()…run()`), which made the
    /// stop branch return at once on every call: the loop spun, taking the CPU its tasks
    /// needed, and recorded outcomes in many small rounds instead of few full ones.
    #[tokio::test(flavor = "multi_thread")]
    async fn wait_sleeps_when_no_shutdown_handle_is_left() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}", dir.path().join("wait.sqlite3").display());
        let store = Store::connect(&url).expect("open the database");
        let worker = Worker::new()
            .store(store)
            .tick(Duration::from_secs(60))
            .schedules(false);
        let mut run = Run::start(worker).await.expect("the worker starts");
        run.maintain().await;
        run.start_round(StopRequest::None);
        run.land_round(StopRequest::None).await;
        assert_eq!(run.producer.last_claimed, 0, "the queue is empty");
        let waited = tokio::time::timeout(Duration::from_millis(500), run.wait()).await;
        assert!(
            waited.is_err(),
            "wait returned with no task, tick, wake-up or stop request to wake it"
        );
    }
}
