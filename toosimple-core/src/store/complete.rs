//! Recording how executions ended, and replacing failed, interrupted and orphaned ones.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use serde_json::Value;

use super::claim::{ClaimRequest, ClaimedExec, claim, in_claim_order, wake};
use super::driver::driver;
use super::enqueue::{EnqueueConnection, NewTaskExec};
use super::flows::{Ended, advance_recorded};
use super::to_completion::RunToCompletion;
use super::{AnyConnection, Store};
use crate::State;
use crate::error::Result;
use crate::schema::task_execs::dsl as te;
use crate::schema::worker_statuses::dsl as ws;
use crate::worker_status::{WorkerStatus, WorkerStatusRow};

/// How one run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Returned this value.
    Succeeded(Value),
    /// Returned an error, panicked or timed out; retried while retries are left.
    Failed(String),
    /// Its arguments do not fit the function; never retried.
    Invalid(String),
    /// Its worker stopped while it ran; replaced by a new execution with the same retries.
    Interrupted(String),
    /// A cancel was asked while it ran, and its worker stopped it (or it returned after);
    /// never retried.
    Cancelled(String),
}

/// A claimed execution and how it ended.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The execution, as claimed.
    pub exec: ClaimedExec,
    /// How it ended.
    pub outcome: Outcome,
    /// When it ended.
    pub finished: DateTime<Utc>,
}

/// What recording completions did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompletionReport {
    /// Executions recorded.
    pub recorded: usize,
    /// Executions no longer `Processing` under this worker (rescued or interrupted by another
    /// worker meanwhile): their outcome was dropped, never written over the recorded state.
    pub stale: Vec<i64>,
    /// `(replaced, replacement)` pairs created for retries and interruptions.
    pub replacements: Vec<(i64, i64)>,
}

/// What one [`Store::exchange`] did.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// How recording the completions went.
    pub report: CompletionReport,
    /// How many sleeping rows were woken.
    pub woken: usize,
    /// The rows claimed, in the order to run them.
    pub claimed: Vec<ClaimedExec>,
}

/// The replacement row of a failed (a retry) or interrupted execution, as
/// django-toosimple-q makes it: a retry waits `retry_delay`, then the delay doubles and one
/// retry is used up; an interruption's replacement keeps the same retries and delay.
fn replacement(exec: &ClaimedExec, retry: bool, now: DateTime<Utc>) -> NewTaskExec {
    let (retries, retry_delay) = if retry {
        let left = if exec.retries < 0 {
            exec.retries
        } else {
            exec.retries - 1
        };
        (left, exec.retry_delay.saturating_mul(2))
    } else {
        (exec.retries, exec.retry_delay)
    };
    let now = now.naive_utc();
    NewTaskExec {
        task_name: exec.task_name.clone(),
        args: exec.args.clone(),
        queue: exec.queue.clone(),
        priority: exec.priority,
        state: State::Sleeping.as_str(),
        due: now + TimeDelta::seconds(exec.retry_delay),
        created: now,
        retries,
        retry_delay,
        replaced_by: None,
        unique_key: exec.unique_key.clone(),
        schedule: None,
        timeout_ms: exec.timeout_ms,
        result_ttl: exec.result_ttl,
        hook: exec.hook.clone(),
        // The signed fields are copied as they are: so is the signature.
        signature: exec.signature.clone(),
        // A retry of a flow's step is still that step.
        flow_id: exec.flow_id,
        // A retry's count is what is left of the queue's default, if it was one: its own.
        own_retries: exec.own_retries || retry,
        // A retry belongs to the trace of the call that queued the first run.
        #[cfg(feature = "otel")]
        trace_context: exec.trace_context.clone(),
    }
}

/// Inserts the replacement of `exec` and links it. A unique task whose duplicate was enqueued
/// while it ran is folded into that pending row, which then becomes the replacement.
fn replace(
    c: &mut AnyConnection,
    exec: &ClaimedExec,
    retry: bool,
    now: DateTime<Utc>,
) -> QueryResult<i64> {
    let new_id = c.__enqueue(&[replacement(exec, retry, now)])?[0].id;
    diesel::update(te::task_execs.find(exec.id))
        .set(te::replaced_by.eq(new_id))
        .execute(c)?;
    if let Some(flow) = exec.flow_id {
        super::flows::follow_replacement(c, flow, exec.id, new_id)?;
    }
    Ok(new_id)
}

/// One outcome as the backends' `record_outcomes` write it.
pub(super) struct OutcomeRow<'a> {
    pub id: i64,
    pub state: State,
    pub result: Option<String>,
    pub error: Option<Cow<'a, str>>,
    pub finished: chrono::NaiveDateTime,
}

/// `message` as a text column takes it on both backends: PostgreSQL refuses a NUL character,
/// which error messages quote from the stored arguments (an argument named `"\u0000"`) or
/// from task code, and a refused outcome would fail the whole batch it is recorded in, again
/// at every retry. Written `\0`, as Rust would show it.
fn storable(message: &str) -> Cow<'_, str> {
    if message.contains('\0') {
        Cow::Owned(message.replace('\0', "\\0"))
    } else {
        Cow::Borrowed(message)
    }
}

fn record(
    c: &mut AnyConnection,
    worker: &str,
    completions: &[Completion],
) -> QueryResult<CompletionReport> {
    let mut report = CompletionReport::default();
    if completions.is_empty() {
        return Ok(report);
    }
    let mut ended_steps: Vec<&Completion> = Vec::new();
    let rows: Vec<OutcomeRow<'_>> = completions
        .iter()
        .map(|done| {
            let (state, result, error) = match &done.outcome {
                Outcome::Succeeded(value) => (State::Succeeded, Some(value.to_string()), None),
                Outcome::Failed(message) => (State::Failed, None, Some(storable(message))),
                Outcome::Invalid(message) => (State::Invalid, None, Some(storable(message))),
                Outcome::Interrupted(message) => {
                    (State::Interrupted, None, Some(storable(message)))
                }
                Outcome::Cancelled(message) => (State::Cancelled, None, Some(storable(message))),
            };
            OutcomeRow {
                id: done.exec.id,
                state,
                result,
                error,
                finished: done.finished.naive_utc(),
            }
        })
        .collect();
    // Only rows this worker still holds are written: a late result never overwrites what
    // another worker (a rescue) or a timeout recorded.
    let updated: HashSet<i64> = driver(c)
        .record_outcomes(worker, &rows)?
        .into_iter()
        .collect();
    for done in completions {
        if !updated.contains(&done.exec.id) {
            report.stale.push(done.exec.id);
            continue;
        }
        report.recorded += 1;
        let replace_with = match &done.outcome {
            Outcome::Failed(_) if done.exec.retries != 0 => Some(true),
            Outcome::Interrupted(_) => Some(false),
            _ => None,
        };
        if let Some(retry) = replace_with {
            let new_id = replace(c, &done.exec, retry, done.finished)?;
            report.replacements.push((done.exec.id, new_id));
        } else if done.exec.flow_id.is_some() {
            ended_steps.push(done);
        }
    }
    // A flow's step that ended moves its flow on in this same transaction: the outcome and
    // the next step (or the flow's end) commit together. Rows of no flow never come here.
    // In flow order, so that two rounds never wait on each other's flows.
    ended_steps.sort_by_key(|done| done.exec.flow_id);
    for done in ended_steps {
        let ended = match &done.outcome {
            Outcome::Succeeded(_) => Ended::Succeeded,
            Outcome::Failed(e) => Ended::Failed(State::Failed, Some(e.as_str())),
            Outcome::Invalid(e) => Ended::Failed(State::Invalid, Some(e.as_str())),
            Outcome::Cancelled(e) => Ended::Failed(State::Cancelled, Some(e.as_str())),
            Outcome::Interrupted(_) => continue,
        };
        if let Some(flow) = done.exec.flow_id {
            advance_recorded(c, flow, done.exec.id, ended, done.finished.naive_utc())?;
        }
    }
    Ok(report)
}

impl Store {
    /// Records how claimed executions ended, in one transaction, creating retries and
    /// interruption replacements.
    pub fn complete(&self, worker: &str, completions: &[Completion]) -> Result<CompletionReport> {
        if completions.is_empty() {
            return Ok(CompletionReport::default());
        }
        self.write(
            || format!("recording {} task outcomes", completions.len()),
            |c| record(c, worker, completions),
        )
    }

    /// One round of a worker's work in one transaction (one commit instead of three):
    /// records `completions`, then claims per `request`. When the claim comes up short, it
    /// wakes the due sleeping rows and claims again for the rest: a worker with a backlog
    /// spends no statement on waking (its tick wakes, [`Store::wake`]), and a worker never
    /// finds the queue empty while a due row sleeps.
    pub fn exchange(
        &self,
        completions: &[Completion],
        request: &ClaimRequest<'_>,
    ) -> Result<Exchange> {
        self.write(
            || "recording task outcomes and claiming tasks".to_string(),
            |c| {
                let report = record(c, request.worker, completions)?;
                let mut claimed = claim(c, request)?;
                let mut woken = 0;
                if claimed.len() < request.limit {
                    woken = wake(c, request.now)?;
                    if woken > 0 {
                        let rest = ClaimRequest {
                            limit: request.limit - claimed.len(),
                            ..*request
                        };
                        claimed.extend(claim(c, &rest)?);
                        // Queues served in order keep it: the woken rows come after.
                        if !request.in_order {
                            in_claim_order(&mut claimed);
                        }
                    }
                }
                Ok(Exchange {
                    report,
                    woken,
                    claimed,
                })
            },
        )
    }

    /// Interrupts executions `ids` that `worker` still runs (it is stopping) and replaces them.
    /// Returns `(interrupted, replacement)` pairs.
    pub fn interrupt(
        &self,
        worker: &str,
        ids: &[i64],
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, i64)>> {
        self.interrupt_and_replace(Holder::WorkerIds(worker, ids), reason, now)
    }

    /// Interrupts every execution `worker` holds, and replaces them.
    pub(crate) fn interrupt_all_of(
        &self,
        worker: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, i64)>> {
        self.interrupt_and_replace(Holder::Worker(worker), reason, now)
    }

    fn interrupt_and_replace(
        &self,
        holder: Holder<'_>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, i64)>> {
        self.write(
            || format!("interrupting tasks ({reason})"),
            |c| {
                let interrupted = interrupt_rows(c, holder, reason, now)?;
                replace_all(c, &interrupted, now)
            },
        )
    }

    /// Rescues the executions of dead workers: a `Processing` row whose worker's heartbeat is
    /// older than that worker's heartbeat timeout, whose worker stopped, or whose worker has no status
    /// row becomes `Interrupted` with one replacement. However many workers rescue at once,
    /// each row is rescued once: the update only matches rows still `Processing`.
    pub fn rescue(&self, rescuer: &str, now: DateTime<Utc>) -> Result<Vec<(i64, i64)>> {
        Ok(self.rescue_pass(rescuer, now)?.rescued)
    }

    /// [`rescue`](Self::rescue), also counting the rows of silent workers left alone because
    /// they were claimed within their worker's heartbeat timeout: a worker run `--until-done`
    /// waits for them to become rescuable rather than leave them `Processing`.
    ///
    /// A pass that waited [`RESCUE_MAX_WAIT`] or more for the database (SQLite's write lock
    /// held by a paused process, a server busy for everyone) rescues nothing and says so
    /// (`deferred`): while it waited, the others' heartbeats waited too, and their silence
    /// proves nothing.
    pub fn rescue_pass(&self, rescuer: &str, now: DateTime<Utc>) -> Result<RescuePass> {
        let asked = std::time::Instant::now();
        self.write(
            || "rescuing the tasks of dead workers".to_string(),
            |c| {
                let statuses: Vec<WorkerStatus> = ws::worker_statuses
                    .load::<WorkerStatusRow>(c)?
                    .into_iter()
                    .map(WorkerStatus::from)
                    .collect();
                if let Some(hook) = lock_hook(&AFTER_RESCUE_JUDGED).as_ref() {
                    hook();
                }
                // Measured once the heartbeats are read: SQLite waits for its write lock at
                // the transaction's start, PostgreSQL for a table's lock at the first read.
                if asked.elapsed() >= RESCUE_MAX_WAIT {
                    return Ok(RescuePass {
                        deferred: true,
                        ..RescuePass::default()
                    });
                }
                let mut rescued = Vec::new();
                let mut awaiting = 0;
                for status in &statuses {
                    let dead = status.label != rescuer
                        && (status.stopped.is_some() || status.is_silent_at(now));
                    if !dead {
                        continue;
                    }
                    let reason = if status.stopped.is_some() {
                        format!(
                            "worker {} stopped while running it; rescued by {rescuer}",
                            status.label
                        )
                    } else {
                        format!(
                            "worker {} sent no heartbeat for {:.0} s; rescued by {rescuer}",
                            status.label, status.heartbeat_timeout
                        )
                    };
                    // A silent worker's rows claimed within its heartbeat timeout are left
                    // alone: the claim itself, dated by the database, shows it was alive
                    // then (after an outage a live worker claims before it beats again).
                    let cutoff =
                        TimeDelta::try_milliseconds((status.heartbeat_timeout * 1000.0) as i64)
                            .and_then(|timeout| now.checked_sub_signed(timeout))
                            .unwrap_or(DateTime::<Utc>::MIN_UTC)
                            .naive_utc();
                    let holder = match status.stopped {
                        Some(_) => Holder::StoppedWorker(&status.label),
                        None => Holder::SilentWorker(&status.label, cutoff),
                    };
                    rescued.extend(interrupt_rows(c, holder, &reason, now)?);
                    if status.stopped.is_none() {
                        let left: i64 = te::task_execs
                            .filter(te::state.eq(State::Processing.as_str()))
                            .filter(te::worker.eq(&status.label))
                            .count()
                            .one_to_completion(c)?;
                        awaiting += left as usize;
                    }
                }
                let labels: Vec<&str> = statuses.iter().map(|s| s.label.as_str()).collect();
                rescued.extend(interrupt_rows(
                    c,
                    Holder::NoneOf(&labels),
                    &format!("its worker has no status row; rescued by {rescuer}"),
                    now,
                )?);
                Ok(RescuePass {
                    rescued: replace_all(c, &rescued, now)?,
                    awaiting,
                    deferred: false,
                })
            },
        )
    }
}

/// What one [`Store::rescue_pass`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescuePass {
    /// `(interrupted, replacement)` execution ids.
    pub rescued: Vec<(i64, i64)>,
    /// Rows of silent workers not rescued yet: claimed within their heartbeat timeout.
    pub awaiting: usize,
    /// Whether the pass rescued nothing because it waited too long for the database.
    pub deferred: bool,
}

/// Not API: called by each rescue pass between reading the heartbeats and updating the rows,
/// so that a test can commit in between what a concurrent worker would.
#[doc(hidden)]
pub static AFTER_RESCUE_JUDGED: std::sync::Mutex<Option<Box<dyn Fn() + Send>>> =
    std::sync::Mutex::new(None);

fn lock_hook<T>(hook: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    hook.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a rescue pass may wait for the database before it defers (see
/// [`Store::rescue_pass`]).
pub const RESCUE_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whose `Processing` rows to interrupt.
pub(crate) enum Holder<'a> {
    /// Those of this worker.
    Worker(&'a str),
    /// Those of this worker while its status row says it stopped.
    StoppedWorker(&'a str),
    /// Those of this worker claimed (`started`) before this time, while its status row says
    /// it has not beaten since then either.
    SilentWorker(&'a str, NaiveDateTime),
    /// Those among these ids that this worker holds.
    WorkerIds(&'a str, &'a [i64]),
    /// Those of no worker among these labels (or of none at all).
    NoneOf(&'a [&'a str]),
}

fn interrupt_rows(
    c: &mut AnyConnection,
    holder: Holder<'_>,
    reason: &str,
    now: DateTime<Utc>,
) -> QueryResult<Vec<ClaimedExec>> {
    driver(c).interrupt(&holder, reason, now.naive_utc())
}

/// The columns an interruption sets.
#[allow(clippy::type_complexity)]
pub(super) fn interrupted(
    reason: &str,
    now: NaiveDateTime,
) -> (
    diesel::dsl::Eq<te::state, &'static str>,
    diesel::dsl::Eq<te::error, &str>,
    diesel::dsl::Eq<te::finished, NaiveDateTime>,
) {
    (
        te::state.eq(State::Interrupted.as_str()),
        te::error.eq(reason),
        te::finished.eq(now),
    )
}

/// Evaluates `$then` with `$rows` bound to the query of the `Processing` rows `$holder`
/// holds: a macro, since each kind of holder makes a query of its own type, and each driver
/// runs it its own way (`UPDATE … RETURNING`, or a locking read then an update).
macro_rules! with_held_rows {
    ($holder:expr, |$rows:ident| $then:expr) => {{
        #[allow(unused_imports)]
        use ::diesel::dsl::sql;
        #[allow(unused_imports)]
        use ::diesel::sql_types::{Bool, Text, Timestamp};
        use $crate::schema::task_execs::dsl as te;
        use $crate::store::complete::Holder;
        let processing = te::task_execs.filter(te::state.eq($crate::State::Processing.as_str()));
        match $holder {
            Holder::Worker(label) => {
                let $rows = processing.filter(te::worker.eq(*label));
                $then
            }
            // The rescues judge a worker from its status row, then update its rows; on
            // PostgreSQL and MySQL (READ COMMITTED) each statement sees the newest commits, so
            // the update checks the judgement again in its own statement: a worker that beat,
            // or registered and claimed, in between (the long chaos run saw both) keeps its
            // rows.
            Holder::StoppedWorker(label) => {
                let $rows = processing.filter(te::worker.eq(*label)).filter(
                    sql::<Bool>("EXISTS (SELECT 1 FROM worker_statuses WHERE label = ")
                        .bind::<Text, _>(*label)
                        .sql(" AND stopped IS NOT NULL)"),
                );
                $then
            }
            Holder::SilentWorker(label, before) => {
                let $rows = processing
                    .filter(te::worker.eq(*label))
                    .filter(te::started.is_null().or(te::started.lt(*before)))
                    .filter(
                        sql::<Bool>("EXISTS (SELECT 1 FROM worker_statuses WHERE label = ")
                            .bind::<Text, _>(*label)
                            .sql(" AND stopped IS NULL AND last_tick < ")
                            .bind::<Timestamp, _>(*before)
                            .sql(")"),
                    );
                $then
            }
            Holder::WorkerIds(label, ids) => {
                let $rows = processing
                    .filter(te::worker.eq(*label))
                    .filter(te::id.eq_any(*ids));
                $then
            }
            Holder::NoneOf(labels) => {
                let $rows = processing.filter(te::worker.is_null().or(
                    te::worker.ne_all(*labels).and(sql::<Bool>(
                        "NOT EXISTS (SELECT 1 FROM worker_statuses \
                             WHERE worker_statuses.label = task_execs.worker)",
                    )),
                ));
                $then
            }
        }
    }};
}

pub(super) use with_held_rows;

/// Replaces the interrupted executions, but those whose cancel was asked while they ran:
/// their worker died or stopped before it honoured the request, which still stands, so they
/// end `Cancelled`, with no replacement to run them again.
fn replace_all(
    c: &mut AnyConnection,
    interrupted: &[ClaimedExec],
    now: DateTime<Utc>,
) -> QueryResult<Vec<(i64, i64)>> {
    if interrupted.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = interrupted.iter().map(|exec| exec.id).collect();
    let cancelled: HashSet<i64> = te::task_execs
        .filter(te::id.eq_any(&ids))
        .filter(te::cancel_requested.is_not_null())
        .select(te::id)
        .load::<i64>(c)?
        .into_iter()
        .collect();
    if !cancelled.is_empty() {
        diesel::update(
            te::task_execs.filter(te::id.eq_any(cancelled.iter().copied().collect::<Vec<i64>>())),
        )
        .set((
            te::state.eq(State::Cancelled.as_str()),
            te::error.eq(CANCELLED_WHILE_INTERRUPTED),
        ))
        .execute(c)?;
    }
    interrupted
        .iter()
        .filter(|exec| !cancelled.contains(&exec.id))
        .map(|exec| Ok((exec.id, replace(c, exec, false, now)?)))
        .collect()
}

/// The error of an execution whose worker died or stopped before it honoured a cancel.
pub(crate) const CANCELLED_WHILE_INTERRUPTED: &str = "cancelled: a cancel was requested while it ran, and its worker stopped or died before it could honour it";
