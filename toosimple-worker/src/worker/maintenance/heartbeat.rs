//! The heartbeat: this worker's `last_tick`, which tells the others it is alive.
//!
//! It beats on a thread of its own, with its own database calls, never on the threads that run
//! tasks nor in the worker's loop: an async task that blocks its thread, or a slow round, cannot
//! stop it and get the worker's tasks rescued (run twice) while it is alive. Before each beat it
//! re-measures the database's clock, so that every worker dates its beats by one clock.
//!
//! Each beat also writes how many executions the worker handled since it started, and reads
//! back a stop asked of it from elsewhere (`app stop`, the admin's stop button), which it hands
//! to the worker's [`Shutdown`]: a remote stop is seen within one tick.
//!
//! While the worker runs executions, each beat also writes the latest progress they reported
//! (at most once a second per execution, coalesced: the latest report wins) and reads back the
//! cancel requests on them, which set their cancel flags: a cancel is seen within one tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use toosimple_core::{Error, StopRequest, Store};

use super::{DEFAULT_INTERVAL, check_interval};
use crate::clock::Clock;
use crate::worker::Shutdown;
use crate::worker::producer::Controls;

/// The least time between two progress writes of one execution.
pub(crate) const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The heartbeat timeout other workers give this one unless told otherwise: 300 s, as the seed.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(300);

/// A clock offset from the database smaller than this is not worth a log line.
const NOTABLE_OFFSET: TimeDelta = TimeDelta::seconds(1);

/// How the heartbeat runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Time between beats (the worker's `--tick`).
    pub interval: Duration,
    /// The heartbeat timeout: how long without a beat before other workers take this one for
    /// dead and rescue its tasks (the worker's `--timeout`; not a task's run limit).
    pub heartbeat_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: DEFAULT_INTERVAL,
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
        }
    }
}

impl Config {
    /// Checks the interval is positive and shorter than the heartbeat timeout: a worker that
    /// beats less often than its timeout would be rescued between its own beats.
    pub fn validate(&self) -> Result<(), Error> {
        check_interval("--tick", self.interval)?;
        if self.heartbeat_timeout <= self.interval {
            return Err(Error::InvalidOption {
                option: "--timeout".to_string(),
                reason: format!(
                    "the heartbeat timeout ({:?}) must be longer than the tick ({:?}), else other \
                     workers rescue this one's tasks between its beats",
                    self.heartbeat_timeout, self.interval
                ),
            });
        }
        Ok(())
    }
}

/// What one beat did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The time written as `last_tick`.
    pub at: DateTime<Utc>,
    /// The stop asked of this worker from elsewhere, if any.
    pub stop_request: Option<StopRequest>,
}

/// The heartbeat of worker `label`.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    label: String,
    config: Config,
    /// Executions handled since the worker started, counted by its loop.
    handled: Arc<AtomicU64>,
    /// The executions the worker runs: their progress to write, their cancel flags to set.
    running: Controls,
}

impl Heartbeat {
    /// The heartbeat of worker `label`, reporting the count `handled` at each beat.
    pub fn new(label: impl Into<String>, config: Config, handled: Arc<AtomicU64>) -> Heartbeat {
        Heartbeat {
            label: label.into(),
            config,
            handled,
            running: Controls::default(),
        }
    }

    /// Writes the progress of the executions in `running`, and sets their cancel flags.
    pub(crate) fn with_running(mut self, running: Controls) -> Heartbeat {
        self.running = running;
        self
    }

    /// Writes the progress the running executions reported since their last write a second
    /// or more ago (`written` remembers when), and sets the cancel flag of those with a cancel
    /// request. Nothing when none runs.
    fn sync_running(
        &self,
        store: &Store,
        written: &mut HashMap<i64, Instant>,
    ) -> Result<(), Error> {
        let running: Vec<_> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        written.retain(|id, _| running.iter().any(|c| c.id() == *id));
        if running.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let mut progress = Vec::new();
        for control in &running {
            let due = written
                .get(&control.id())
                .is_none_or(|at| now.duration_since(*at) >= PROGRESS_EVERY);
            if due && let Some(report) = control.take_progress() {
                written.insert(control.id(), now);
                progress.push((control.id(), report));
            }
        }
        let ids: Vec<i64> = running.iter().map(|c| c.id()).collect();
        let cancelled = store.sync_running(&self.label, &progress, &ids)?;
        for control in running.iter().filter(|c| cancelled.contains(&c.id())) {
            if !control.is_cancelled() {
                tracing::info!(worker = %self.label, id = control.id(), "cancel requested: stopping the execution");
                control.cancel();
            }
        }
        Ok(())
    }

    /// Writes one beat dated `now`, with the handled count, and reads back any stop request.
    pub fn run_once(&self, store: &Store, now: DateTime<Utc>) -> Result<Report, Error> {
        let stop_request =
            store.heartbeat(&self.label, now, self.handled.load(Ordering::Relaxed))?;
        Ok(Report {
            at: now,
            stop_request,
        })
    }

    /// Beats on a thread of its own until the returned handle is stopped or dropped, handing
    /// stop requests read back from the database to `shutdown`.
    pub(crate) fn spawn(
        self,
        store: Store,
        clock: Arc<dyn Clock>,
        shutdown: Shutdown,
    ) -> Result<Beating, Error> {
        let (stop, stopped) = mpsc::channel::<()>();
        let troubled = Arc::new(Mutex::new(None));
        let trouble = troubled.clone();
        let thread = std::thread::Builder::new()
            .name(format!("toosimple-heartbeat-{}", self.label))
            .spawn(move || self.beat_until(&store, &*clock, &stopped, &trouble, &shutdown))
            .map_err(|e| Error::Runtime(format!("cannot start the heartbeat thread: {e}")))?;
        Ok(Beating {
            stop: Some(stop),
            thread: Some(thread),
            troubled,
        })
    }

    fn beat_until(
        &self,
        store: &Store,
        clock: &dyn Clock,
        stopped: &mpsc::Receiver<()>,
        troubled: &Mutex<Option<Instant>>,
        shutdown: &Shutdown,
    ) {
        let mut failing = false;
        let mut obeyed: Option<StopRequest> = None;
        let mut logged_offset = TimeDelta::zero();
        let mut previous: Option<Instant> = None;
        let mut written = HashMap::new();
        loop {
            let asked = Instant::now();
            // Woken far later than its interval: this process stalled (paused, starved), and
            // so, likely, did the beats of the workers it would judge.
            let stalled = previous
                .replace(asked)
                .is_some_and(|at| asked.duration_since(at) > self.config.interval + TROUBLED_BEAT);
            let beat = clock.sync(store).and_then(|offset| {
                if (offset - logged_offset).abs() >= NOTABLE_OFFSET {
                    log_offset(&self.label, offset);
                    logged_offset = offset;
                }
                self.run_once(store, clock.now())
            });
            if stalled || beat.is_err() || asked.elapsed() >= TROUBLED_BEAT {
                // Others' beats likely met the same trouble: no rescue judges them for a while.
                *troubled.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Instant::now() + self.config.heartbeat_timeout);
            }
            // After the beat and its timing: a slow progress write is no sign of trouble.
            if beat.is_ok()
                && let Err(e) = self.sync_running(store, &mut written)
            {
                tracing::debug!(worker = %self.label, "could not write progress or read cancel requests: {}", e.report());
            }
            if let Ok(Report {
                stop_request: Some(request),
                ..
            }) = &beat
                && obeyed < Some(*request)
            {
                obeyed = Some(*request);
                self.obey(*request, shutdown);
            }
            match beat {
                Ok(_) if failing => {
                    tracing::debug!(worker = %self.label, "heartbeat recorded again");
                    failing = false;
                }
                Ok(_) => {}
                // The worker's loop meets the same outage and logs it; this says only that
                // beats are missing, once per streak.
                Err(e) if !failing => {
                    tracing::info!(worker = %self.label, "could not record the heartbeat, retrying at each tick: {}", e.report());
                    failing = true;
                }
                Err(_) => {}
            }
            match stopped.recv_timeout(self.config.interval) {
                Err(RecvTimeoutError::Timeout) => continue,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

impl Heartbeat {
    /// Stops the worker as a stop request read from the database asks.
    fn obey(&self, request: StopRequest, shutdown: &Shutdown) {
        match request {
            StopRequest::Graceful => {
                tracing::info!(worker = %self.label, "stop requested (app stop or the admin): finishing running tasks, then stopping");
                shutdown.graceful();
            }
            StopRequest::Terminate => {
                tracing::warn!(worker = %self.label, "termination requested (app stop --terminate or the admin): terminating");
                shutdown.terminate();
            }
        }
    }
}

fn log_offset(label: &str, offset: TimeDelta) {
    let seconds = offset.num_milliseconds() as f64 / 1000.0;
    if offset.abs() < NOTABLE_OFFSET {
        tracing::info!(worker = %label, "this machine's clock agrees with the database's again ({seconds:+.3} s)");
    } else {
        let (by, way) = if seconds < 0.0 {
            (-seconds, "ahead of")
        } else {
            (seconds, "behind")
        };
        tracing::warn!(
            worker = %label,
            "this machine's clock is {by:.1} s {way} the database's: heartbeats, rescues and due \
             times use the database's; fix the machine's time synchronisation (NTP)"
        );
    }
}

/// A beat that took this long (or failed) means the database was slow or unreachable for
/// this worker, and likely for the others' beats too.
const TROUBLED_BEAT: Duration = Duration::from_secs(1);

/// A running heartbeat thread.
#[derive(Debug)]
pub(crate) struct Beating {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Until when its recent trouble (a failed or slow beat) keeps rescue from judging others.
    troubled: Arc<Mutex<Option<Instant>>>,
}

impl Beating {
    /// Whether one of its beats failed or was slow within the last heartbeat timeout: while
    /// this worker could not beat on time, the silence of others proves nothing.
    pub(crate) fn troubled(&self) -> bool {
        self.troubled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|until| Instant::now() < until)
    }

    /// Stops the thread and waits for it (blocking: a beat in flight finishes first), so that
    /// no beat lands after the worker recorded its stop.
    pub(crate) fn stop(mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Beating {
    /// Without [`Beating::stop`] (a crash), the thread ends at its next wait.
    fn drop(&mut self) {
        drop(self.stop.take());
    }
}
