//! The threads sync tasks without a time limit run on.
//!
//! A sync task blocks its thread, so it runs apart from the worker's loop. Handing each one to
//! tokio's blocking pool cost, per task, an async task to wait for it, a thread woken to run
//! it, and a runtime thread woken for its end: for short tasks, the thread switches took a
//! third of the worker's time. Here the worker hands the executions to a queue that runner
//! threads take from one after another, and each ending is left in a list the worker's loop
//! empties when it wakes: a runner that finds the next execution waiting takes it without
//! sleeping, and many endings wake the loop once.
//!
//! Runners are as many as the work needs, up to one per slot: an execution queued while a
//! runner is busy waits for it, and only if it waited [`NUDGE`] (the busy runners are in long
//! tasks) is another runner woken or started for it, by the worker's loop ([`Runners::nudge`]).
//! Short tasks so run back to back on one or two threads, long ones each on its own. Idle
//! runners stop after [`KEEP_ALIVE`].
//!
//! A sync task with a time limit still runs on a blocking thread of its own (`execute`), which
//! the worker abandons at the limit; a runner could not be given back.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use toosimple_core::TaskDef;
use toosimple_core::runtime::{ExecControl, RunResult};
use toosimple_core::store::{ClaimedExec, Completion};

use super::execute::{cancelled_or, outcome_of, panicked, report_end, report_start};
use super::trace::{record_outcome, task_span};
use crate::clock::Clock;

/// How long an idle runner waits for work before its thread ends.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How long an execution waits in the queue for a busy runner before another runner is woken
/// or started for it.
pub(crate) const NUDGE: Duration = Duration::from_millis(1);

/// How many endings a busy runner gathers before it wakes the worker's loop anyway (it wakes
/// it as soon as it has nothing more to run).
const WAKE_EVERY: usize = 32;

/// An execution for a runner: its task's function and what was claimed.
struct Job {
    def: &'static TaskDef,
    call: fn(serde_json::Value) -> RunResult,
    exec: ClaimedExec,
    queued: Instant,
    control: Arc<ExecControl>,
}

/// The runners of one worker.
#[derive(Debug)]
pub(crate) struct Runners {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    /// Executions that ended, for the loop to take.
    ended: Mutex<Vec<Completion>>,
    /// Wakes the loop when an execution ends.
    ended_signal: Arc<Notify>,
    clock: Arc<dyn Clock>,
    most: usize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("most", &self.most).finish()
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    runners: usize,
    idle: usize,
    /// Set when the worker stops: runners end, and what ends later is dropped.
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Runners {
    /// Runners for at most `most` executions at once (the concurrency), dating endings by
    /// `clock`.
    pub(crate) fn new(most: usize, clock: Arc<dyn Clock>) -> Runners {
        Runners {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                ended: Mutex::new(Vec::new()),
                ended_signal: Arc::new(Notify::new()),
                clock,
                most: most.max(1),
            }),
        }
    }

    /// Queues `exec` of `def`, whose function is `call`, for the next free runner, with
    /// `control` current while it runs.
    pub(crate) fn run(
        &self,
        def: &'static TaskDef,
        call: fn(serde_json::Value) -> RunResult,
        exec: ClaimedExec,
        control: Arc<ExecControl>,
    ) {
        let mut state = lock(&self.shared.state);
        state.queue.push_back(Job {
            def,
            call,
            exec,
            queued: Instant::now(),
            control,
        });
        // A busy runner takes it when done, unless that takes long (`nudge`).
        let start = state.runners == state.idle && self.shared.one_more_hand(&mut state);
        drop(state);
        if start {
            self.shared.start_runner();
        }
    }

    /// When [`nudge`](Self::nudge) is due: [`NUDGE`] after the oldest queued execution came.
    pub(crate) fn nudge_at(&self) -> Option<tokio::time::Instant> {
        let state = lock(&self.shared.state);
        state
            .queue
            .front()
            .map(|job| tokio::time::Instant::from_std(job.queued + NUDGE))
    }

    /// Wakes or starts a runner for each execution that waited [`NUDGE`] or more for one.
    pub(crate) fn nudge(&self) {
        let mut state = lock(&self.shared.state);
        let overdue = state
            .queue
            .iter()
            .take_while(|job| job.queued.elapsed() >= NUDGE)
            .count();
        let mut start = 0;
        for _ in 0..overdue {
            if self.shared.one_more_hand(&mut state) {
                start += 1;
            }
        }
        drop(state);
        for _ in 0..start {
            self.shared.start_runner();
        }
    }

    /// Takes the executions that ended since the last call.
    pub(crate) fn take_ended(&self) -> Vec<Completion> {
        std::mem::take(&mut *lock(&self.shared.ended))
    }

    /// Waits until an execution ends (cancel-safe: nothing is taken).
    pub(crate) async fn ended(&self) {
        if !lock(&self.shared.ended).is_empty() {
            return;
        }
        self.shared.ended_signal.notified().await;
    }

    /// Stops the runners: queued executions never start, and what running ones return later
    /// is dropped (the worker records them as interrupted). Their threads end when their task
    /// does.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.shared.state);
        state.closed = true;
        state.queue.clear();
        drop(state);
        self.shared.work.notify_all();
    }
}

impl Drop for Runners {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Gets one more runner on the queue: wakes an idle one, or says to start one, below the
    /// limit.
    fn one_more_hand(&self, state: &mut State) -> bool {
        if state.idle > 0 {
            self.work.notify_one();
            return false;
        }
        if state.runners < self.most {
            state.runners += 1;
            return true;
        }
        false
    }

    fn start_runner(self: &Arc<Self>) {
        let shared = self.clone();
        let started = std::thread::Builder::new()
            .name("toosimple-sync".to_string())
            .spawn(move || shared.serve());
        if let Err(e) = started {
            // The queued executions wait for a runner that is busy now.
            lock(&self.state).runners -= 1;
            tracing::warn!("could not start a thread for sync tasks: {e}");
        }
    }

    /// A runner's life: takes executions until the worker stops or none came for a while.
    fn serve(self: Arc<Self>) {
        loop {
            let job = {
                let mut state = lock(&self.state);
                loop {
                    if state.closed {
                        state.runners -= 1;
                        return;
                    }
                    if let Some(job) = state.queue.pop_front() {
                        break job;
                    }
                    state.idle += 1;
                    let (next, waited) = self
                        .work
                        .wait_timeout(state, KEEP_ALIVE)
                        .unwrap_or_else(|e| e.into_inner());
                    state = next;
                    state.idle -= 1;
                    if waited.timed_out() && state.queue.is_empty() {
                        state.runners -= 1;
                        return;
                    }
                }
            };
            let started = Instant::now();
            let completion = self.execute(job);
            let long = started.elapsed() >= NUDGE;
            let more = {
                let state = lock(&self.state);
                if state.closed {
                    continue;
                }
                !state.queue.is_empty()
            };
            let gathered = {
                let mut ended = lock(&self.ended);
                ended.push(completion);
                ended.len()
            };
            // Short tasks back to back wake the loop once for many endings; a long one's end
            // is recorded without waiting for the others.
            if !more || long || gathered >= WAKE_EVERY {
                self.ended_signal.notify_one();
            }
        }
    }

    /// Runs one execution, its panic caught, and dates its end.
    fn execute(&self, job: Job) -> Completion {
        let Job {
            def,
            call,
            exec,
            control,
            ..
        } = job;
        let span = task_span(def, &exec);
        let _entered = span.enter();
        let start = report_start(def, &exec);
        let outcome = match serde_json::from_str(&exec.args) {
            Ok(args) => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| control.enter(|| call(args)))) {
                    Ok(result) => outcome_of(result),
                    Err(payload) => panicked(&*payload),
                }
            }
            Err(e) => toosimple_core::store::Outcome::Invalid(format!(
                "arguments are not valid JSON: {e}"
            )),
        };
        let outcome = cancelled_or(&control, outcome);
        report_end(def, &exec, &outcome, start);
        record_outcome(&span, &outcome);
        Completion {
            exec,
            outcome,
            finished: self.clock.now(),
        }
    }
}
