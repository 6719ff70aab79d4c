//! Flows in the database: storing one with its first step enqueued, advancing it when a
//! step's execution ends (in the transaction that records the outcome, or in a worker's
//! sweep), reading it back, and deleting it once its final execution expired.
//!
//! Exactly once: whoever advances a flow first locks its row (an `UPDATE` of the running flow,
//! which waits for any other advancer) and then checks that the step it saw end is still the
//! flow's current one; the second advancer finds it is not, and does nothing.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use super::driver::driver;
use super::enqueue::{EnqueueConnection, NewTaskExec};
use super::to_completion::RunToCompletion;
use super::{AnyConnection, Store};
use crate::State;
use crate::error::{Error, Result};
use crate::exec::{TaskExec, TaskExecRow};
use crate::flow::{FlowExec, FlowState, FlowStep, StepState};
use crate::schema::flow_steps::dsl as fs;
use crate::schema::flows::dsl as f;
use crate::schema::task_execs::dsl as te;

/// A new `flows` row.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = crate::schema::flows)]
pub(crate) struct NewFlow {
    pub name: Option<String>,
    pub state: &'static str,
    pub steps: i32,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
}

/// A `flows` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = crate::schema::flows)]
pub(crate) struct FlowRow {
    pub id: i64,
    pub name: Option<String>,
    pub state: String,
    pub created: NaiveDateTime,
    pub updated: NaiveDateTime,
    pub finished: Option<NaiveDateTime>,
    pub final_exec: Option<i64>,
    pub error: Option<String>,
}

/// A `flow_steps` row: the execution row it enqueues (signed and compressed when the flow
/// started), and where it is.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = crate::schema::flow_steps)]
pub(crate) struct FlowStepRow {
    pub flow_id: i64,
    pub position: i32,
    pub task_name: String,
    pub args: String,
    pub queue: String,
    pub priority: i32,
    pub due: Option<NaiveDateTime>,
    pub delay_ms: Option<i64>,
    pub retries: i32,
    pub retry_delay: i64,
    pub timeout_ms: Option<i64>,
    pub result_ttl: Option<i64>,
    pub hook: Option<String>,
    pub signature: Option<String>,
    pub state: String,
    pub exec_id: Option<i64>,
}

impl FlowStepRow {
    /// The step for `row` (a call's execution row, sealed), run at `at` or `delay` after it is
    /// enqueued.
    pub(crate) fn new(
        position: i32,
        row: &NewTaskExec,
        at: Option<NaiveDateTime>,
        delay: Option<std::time::Duration>,
    ) -> FlowStepRow {
        FlowStepRow {
            flow_id: 0,
            position,
            task_name: row.task_name.clone(),
            args: row.args.clone(),
            queue: row.queue.clone(),
            priority: row.priority,
            due: at,
            delay_ms: delay.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            retries: row.retries,
            retry_delay: row.retry_delay,
            timeout_ms: row.timeout_ms,
            result_ttl: row.result_ttl,
            hook: row.hook.clone(),
            signature: row.signature.clone(),
            state: StepState::Waiting.as_str().to_string(),
            exec_id: None,
        }
    }

    /// The execution row this step enqueues at `now`.
    fn execution(&self, now: NaiveDateTime) -> NewTaskExec {
        let due = self.due.or_else(|| {
            self.delay_ms.map(|ms| {
                now.checked_add_signed(TimeDelta::milliseconds(ms))
                    .unwrap_or(NaiveDateTime::MAX)
            })
        });
        NewTaskExec {
            task_name: self.task_name.clone(),
            args: self.args.clone(),
            queue: self.queue.clone(),
            priority: self.priority,
            state: if due.is_some() {
                State::Sleeping.as_str()
            } else {
                State::Queued.as_str()
            },
            due: due.unwrap_or(now),
            created: now,
            retries: self.retries,
            retry_delay: self.retry_delay,
            replaced_by: None,
            // A step is never folded into another pending execution: the flow follows its own.
            unique_key: None,
            schedule: None,
            timeout_ms: self.timeout_ms,
            result_ttl: self.result_ttl,
            hook: self.hook.clone(),
            signature: self.signature.clone(),
            flow_id: Some(self.flow_id),
            // A step's retries were fixed, and signed, when its flow started: a queue's default
            // retries do not replace them (its default time limit still applies).
            own_retries: true,
            // A step is enqueued by whichever worker recorded the step before: no request's
            // span is current then.
            #[cfg(feature = "otel")]
            trace_context: None,
        }
    }
}

/// How a flow's current step ended, as its advancer saw it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ended<'a> {
    /// Its execution succeeded.
    Succeeded,
    /// Its execution ended in this state (not retried), with this error.
    Failed(State, Option<&'a str>),
    /// Its execution is gone (purged by hand) before it ended.
    Deleted,
}

/// Locks running flow `flow_id` for the rest of the transaction (the `UPDATE` waits for any
/// other advancer's); `false` when it is not running.
fn lock(c: &mut AnyConnection, flow_id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    Ok(diesel::update(
        f::flows
            .find(flow_id)
            .filter(f::state.eq(FlowState::Running.as_str())),
    )
    .set(f::updated.eq(now))
    .execute(c)?
        == 1)
}

/// The step of `flow_id` now enqueued, if any.
fn current_step(c: &mut AnyConnection, flow_id: i64) -> QueryResult<Option<FlowStepRow>> {
    fs::flow_steps
        .filter(fs::flow_id.eq(flow_id))
        .filter(fs::state.eq(StepState::Enqueued.as_str()))
        .select(FlowStepRow::as_select())
        .optional_to_completion(c)
}

/// Moves flow `step.flow_id` on from `step`, which ended as `ended`, under the flow's lock:
/// the next step is enqueued, or the flow ends.
fn settle(
    c: &mut AnyConnection,
    step: &FlowStepRow,
    exec_id: i64,
    ended: Ended<'_>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let this_step = fs::flow_steps.find((step.flow_id, step.position));
    let flow = f::flows.find(step.flow_id);
    match ended {
        Ended::Succeeded => {
            diesel::update(this_step)
                .set(fs::state.eq(StepState::Succeeded.as_str()))
                .execute(c)?;
            let next: Option<FlowStepRow> = fs::flow_steps
                .find((step.flow_id, step.position + 1))
                .select(FlowStepRow::as_select())
                .optional_to_completion(c)?;
            match next {
                Some(next) => {
                    let id = c.__enqueue(&[next.execution(now)])?[0].id;
                    diesel::update(fs::flow_steps.find((next.flow_id, next.position)))
                        .set((
                            fs::state.eq(StepState::Enqueued.as_str()),
                            fs::exec_id.eq(id),
                        ))
                        .execute(c)?;
                    tracing::debug!(
                        flow = step.flow_id,
                        step = next.position,
                        exec = id,
                        "flow step enqueued"
                    );
                }
                None => {
                    diesel::update(flow)
                        .set((
                            f::state.eq(FlowState::Succeeded.as_str()),
                            f::finished.eq(now),
                            f::final_exec.eq(exec_id),
                        ))
                        .execute(c)?;
                }
            }
        }
        Ended::Failed(..) | Ended::Deleted => {
            let how = match ended {
                Ended::Failed(state, Some(error)) => format!("ended {state}: {error}"),
                Ended::Failed(state, None) => format!("ended {state}"),
                _ => format!("lost its execution {exec_id} (deleted before it ended)"),
            };
            // PostgreSQL refuses a NUL in text, which a task's error may quote.
            let error = format!(
                "step {} (`{}`, execution {exec_id}) {how}; the steps after it are skipped",
                step.position, step.task_name
            )
            .replace('\0', "\\0");
            diesel::update(this_step)
                .set(fs::state.eq(StepState::Failed.as_str()))
                .execute(c)?;
            diesel::update(
                fs::flow_steps
                    .filter(fs::flow_id.eq(step.flow_id))
                    .filter(fs::position.gt(step.position)),
            )
            .set(fs::state.eq(StepState::Skipped.as_str()))
            .execute(c)?;
            diesel::update(flow)
                .set((
                    f::state.eq(FlowState::Failed.as_str()),
                    f::finished.eq(now),
                    f::final_exec.eq(exec_id),
                    f::error.eq(error),
                ))
                .execute(c)?;
        }
    }
    Ok(())
}

/// Advances flow `flow_id` whose execution `exec_id` this transaction has just recorded as
/// ended (not replaced): called by the transaction that records outcomes, in flow order so
/// that two transactions never wait on each other's flows.
pub(super) fn advance_recorded(
    c: &mut AnyConnection,
    flow_id: i64,
    exec_id: i64,
    ended: Ended<'_>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if !lock(c, flow_id, now)? {
        return Ok(());
    }
    match current_step(c, flow_id)? {
        Some(step) if step.exec_id == Some(exec_id) => settle(c, &step, exec_id, ended, now),
        _ => Ok(()),
    }
}

/// Moves a flow's step on to `new_id`, the replacement (a retry, an interruption's) of its
/// execution `old_id`.
pub(super) fn follow_replacement(
    c: &mut AnyConnection,
    flow_id: i64,
    old_id: i64,
    new_id: i64,
) -> QueryResult<()> {
    diesel::update(
        fs::flow_steps
            .filter(fs::flow_id.eq(flow_id))
            .filter(fs::exec_id.eq(old_id)),
    )
    .set(fs::exec_id.eq(new_id))
    .execute(c)?;
    Ok(())
}

/// A flow whose current step's execution has ended, not replaced, or is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
struct Stalled {
    flow_id: i64,
    exec_id: Option<i64>,
}

/// An execution's state, replacement and error, as a sweep reads them.
type ExecEnd = (String, Option<i64>, Option<String>);

/// The terminal states of an execution that a flow's step may end in.
const ENDED: [&str; 4] = ["succeeded", "failed", "invalid", "cancelled"];

impl Store {
    /// Stores a flow named `name` with `steps` (sealed execution rows and their due), and
    /// enqueues its first step, in one transaction. Returns the flow's id and the first
    /// execution's.
    pub(crate) fn start_flow(
        &self,
        name: Option<&str>,
        mut steps: Vec<FlowStepRow>,
        first: NewTaskExec,
    ) -> Result<(i64, i64)> {
        let now = crate::enqueue::now().naive_utc();
        let count = i32::try_from(steps.len()).unwrap_or(i32::MAX);
        self.write(
            || match name {
                Some(name) => format!("starting flow `{name}`"),
                None => "starting a flow".to_string(),
            },
            |c| {
                let id = driver(c).insert_flow(&NewFlow {
                    name: name.map(str::to_string),
                    state: FlowState::Running.as_str(),
                    steps: count,
                    created: now,
                    updated: now,
                })?;
                let first = NewTaskExec {
                    flow_id: Some(id),
                    ..first
                };
                let exec = c.__enqueue(&[first])?[0].id;
                for step in &mut steps {
                    step.flow_id = id;
                }
                steps[0].state = StepState::Enqueued.as_str().to_string();
                steps[0].exec_id = Some(exec);
                // One statement per step: diesel's multi-backend connection has no multi-row
                // insert, and a flow has few steps.
                for step in &steps {
                    diesel::insert_into(fs::flow_steps)
                        .values(step)
                        .execute(c)?;
                }
                Ok((id, exec))
            },
        )
    }

    /// Flow `id` with its steps.
    pub(crate) fn flow(&self, id: i64) -> Result<FlowExec> {
        let found = self.autocommit(
            || format!("reading flow {id}"),
            |c| {
                let Some(row) = f::flows
                    .find(id)
                    .select(FlowRow::as_select())
                    .optional_to_completion(c)?
                else {
                    return Ok(None);
                };
                let steps = steps_of(c, &[id])?;
                Ok(Some((row, steps)))
            },
        )?;
        let (row, steps) = found.ok_or_else(|| Error::FlowNotFound {
            what: format!("with id {id}"),
        })?;
        FlowExec::from_rows(row, steps)
    }

    /// The flows named `name`, or all flows when `None`, newest first, at most `limit`.
    pub(crate) fn flows(&self, name: Option<&str>, limit: i64) -> Result<Vec<FlowExec>> {
        let found = self.autocommit(
            || "reading flows".to_string(),
            |c| {
                let mut query = f::flows
                    .select(FlowRow::as_select())
                    .order(f::id.desc())
                    .limit(limit)
                    .into_boxed();
                if let Some(name) = name {
                    query = query.filter(f::name.eq(name));
                }
                let rows: Vec<FlowRow> = query.load(c)?;
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let steps = steps_of(c, &ids)?;
                Ok((rows, steps))
            },
        )?;
        let (rows, steps) = found;
        rows.into_iter()
            .map(|row| {
                let mine = steps
                    .iter()
                    .filter(|s| s.flow_id == row.id)
                    .cloned()
                    .collect();
                FlowExec::from_rows(row, mine)
            })
            .collect()
    }

    /// Every execution of flow `id` (retries included), oldest first.
    pub(crate) fn flow_executions(&self, id: i64) -> Result<Vec<TaskExec>> {
        let rows = self.autocommit(
            || format!("reading the executions of flow {id}"),
            |c| {
                te::task_execs
                    .filter(te::flow_id.eq(id))
                    .order(te::id)
                    .load::<TaskExecRow>(c)
            },
        )?;
        rows.into_iter().map(TaskExec::try_from).collect()
    }

    /// Advances up to `limit` flows whose current step's execution ended without its flow
    /// moving on (recorded outside a worker's round: a cancel before it ran, a purge, a worker
    /// of an older version): each in a transaction of its own, exactly once however many
    /// workers sweep. Returns the flows advanced. Not API: a worker's maintenance pass.
    #[doc(hidden)]
    pub fn advance_stalled_flows(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<i64>> {
        let now = now.naive_utc();
        let stalled: Vec<Stalled> = self.autocommit(
            || "looking for flows to advance".to_string(),
            |c| {
                fs::flow_steps
                    .left_join(te::task_execs.on(te::id.nullable().eq(fs::exec_id)))
                    .filter(fs::state.eq(StepState::Enqueued.as_str()))
                    .filter(
                        te::id.nullable().is_null().or(te::replaced_by
                            .is_null()
                            .and(te::state.nullable().eq_any(ENDED))),
                    )
                    .select((fs::flow_id, fs::exec_id))
                    .limit(limit)
                    .load::<Stalled>(c)
            },
        )?;
        let mut advanced = Vec::new();
        for Stalled { flow_id, exec_id } in stalled {
            let moved = self.write(
                || format!("advancing flow {flow_id}"),
                |c| {
                    if !lock(c, flow_id, now)? {
                        return Ok(false);
                    }
                    // The step and its execution in one statement: one consistent view, taken
                    // after the lock, so that an execution just replaced is seen replaced.
                    let current: Option<(FlowStepRow, Option<ExecEnd>)> = fs::flow_steps
                        .left_join(te::task_execs.on(te::id.nullable().eq(fs::exec_id)))
                        .filter(fs::flow_id.eq(flow_id))
                        .filter(fs::state.eq(StepState::Enqueued.as_str()))
                        .select((
                            FlowStepRow::as_select(),
                            (te::state, te::replaced_by, te::error).nullable(),
                        ))
                        .optional_to_completion(c)?;
                    let Some((step, exec)) = current else {
                        return Ok(false);
                    };
                    let Some(id) = step.exec_id.or(exec_id) else {
                        return Ok(false);
                    };
                    let ended = match &exec {
                        None => Ended::Deleted,
                        Some((_, Some(_), _)) => return Ok(false),
                        Some((state, None, error)) => match state.parse::<State>() {
                            Ok(State::Succeeded) => Ended::Succeeded,
                            Ok(s @ (State::Failed | State::Invalid | State::Cancelled)) => {
                                Ended::Failed(s, error.as_deref())
                            }
                            _ => return Ok(false),
                        },
                    };
                    settle(c, &step, id, ended, now)?;
                    Ok(true)
                },
            )?;
            if moved {
                advanced.push(flow_id);
            }
        }
        Ok(advanced)
    }

    /// Deletes up to `limit` finished flows whose final execution is gone (its TTL ran out,
    /// and retention deleted it), with the rest of their executions and their steps. Returns
    /// how many flows. Not API: the worker's retention pass calls it.
    #[doc(hidden)]
    pub fn delete_expired_flows(&self, limit: i64) -> Result<usize> {
        self.write(
            || "deleting expired flows".to_string(),
            |c| {
                let ids: Vec<i64> = f::flows
                    .filter(f::state.ne(FlowState::Running.as_str()))
                    .filter(f::final_exec.is_not_null())
                    .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "NOT EXISTS (SELECT 1 FROM task_execs t WHERE t.id = flows.final_exec)",
                    ))
                    .select(f::id)
                    .order(f::id)
                    .limit(limit)
                    .load(c)?;
                if ids.is_empty() {
                    return Ok(0);
                }
                diesel::delete(te::task_execs.filter(te::flow_id.eq_any(&ids))).execute(c)?;
                diesel::delete(fs::flow_steps.filter(fs::flow_id.eq_any(&ids))).execute(c)?;
                diesel::delete(f::flows.filter(f::id.eq_any(&ids))).execute(c)
            },
        )
    }
}

/// The steps of flows `ids`, in flow then step order.
fn steps_of(c: &mut AnyConnection, ids: &[i64]) -> QueryResult<Vec<FlowStepRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    fs::flow_steps
        .filter(fs::flow_id.eq_any(ids))
        .order((fs::flow_id, fs::position))
        .select(FlowStepRow::as_select())
        .load(c)
}

impl FlowExec {
    fn from_rows(row: FlowRow, steps: Vec<FlowStepRow>) -> Result<FlowExec> {
        let corrupt = |reason: String| Error::CorruptFlow { id: row.id, reason };
        let state = row.state.parse::<FlowState>().map_err(corrupt)?;
        let steps = steps
            .into_iter()
            .map(|s| {
                let state = s.state.parse::<StepState>().map_err(corrupt)?;
                let args = crate::compression::decompress(&s.args);
                Ok(FlowStep {
                    position: s.position,
                    task_name: s.task_name,
                    args: serde_json::from_str(&args)
                        .unwrap_or_else(|_| serde_json::Value::String(args.into_owned())),
                    queue: s.queue,
                    priority: s.priority,
                    due: s.due.map(|t| t.and_utc()),
                    delay: s
                        .delay_ms
                        .map(|ms| std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
                    state,
                    exec: s.exec_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FlowExec {
            id: row.id,
            name: row.name,
            state,
            created: row.created.and_utc(),
            updated: row.updated.and_utc(),
            finished: row.finished.map(|t| t.and_utc()),
            final_exec: row.final_exec,
            error: row.error,
            steps,
        })
    }
}
