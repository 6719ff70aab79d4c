//! Queue settings: reading and changing the `queues` table, and the claim of a worker whose
//! queues have settings (paused ones left out, limited ones claimed under their row's lock,
//! default retries given to the rows claimed, queues served in the order listed).
//!
//! A worker none of whose queues is configured never comes here: its claim is the drivers'
//! own, unchanged.

use std::collections::HashMap;

use diesel::prelude::*;

use super::claim::{ClaimRequest, ClaimedExec, QueueSelection, in_claim_order};
use super::driver::driver;
use super::to_completion::RunToCompletion;
use super::{AnyConnection, Store};
use crate::State;
use crate::error::Result;
use crate::queue::{QueueChange, QueueRow, QueueSettings, check_name};
use crate::schema::queues::dsl as qs;
use crate::schema::task_execs::dsl as te;

fn load(c: &mut AnyConnection, name: &str) -> QueryResult<Option<QueueRow>> {
    qs::queues
        .filter(qs::name.eq(name))
        .select(QueueRow::as_select())
        .optional_to_completion(c)
}

/// Makes sure queue `name` has a row (with the defaults), inside the caller's write
/// transaction: the insert only when it is missing, so that no backend's upsert syntax is
/// needed.
fn ensure_row(c: &mut AnyConnection, name: &str) -> QueryResult<()> {
    if load(c, name)?.is_none() {
        diesel::insert_into(qs::queues)
            .values((
                qs::name.eq(name),
                qs::paused.eq(false),
                qs::updated.eq(crate::enqueue::now().naive_utc()),
            ))
            .execute(c)?;
    }
    Ok(())
}

impl Store {
    /// The settings of queue `name`: its row, or [`QueueSettings::unconfigured`] when it has
    /// none.
    pub fn queue(&self, name: &str) -> Result<QueueSettings> {
        let row = self.autocommit(
            || format!("reading the settings of queue `{name}`"),
            |c| load(c, name),
        )?;
        Ok(row.map_or_else(|| QueueSettings::unconfigured(name), QueueSettings::from))
    }

    /// The settings of every configured queue, by name. Queues nobody configured have none:
    /// they behave as [`QueueSettings::unconfigured`] says.
    pub fn queues(&self) -> Result<Vec<QueueSettings>> {
        let rows = self.autocommit(
            || "listing the queues' settings".to_string(),
            |c| {
                qs::queues
                    .order(qs::name)
                    .select(QueueRow::as_select())
                    .load(c)
            },
        )?;
        Ok(rows.into_iter().map(QueueSettings::from).collect())
    }

    /// Pauses queue `name`: workers claim nothing more from it (each sees it within one tick)
    /// while what runs finishes. Pausing a paused queue changes nothing.
    pub fn pause_queue(&self, name: &str) -> Result<QueueSettings> {
        self.set_paused(name, true)
    }

    /// Resumes queue `name`: workers claim from it again at their next tick.
    pub fn resume_queue(&self, name: &str) -> Result<QueueSettings> {
        self.set_paused(name, false)
    }

    fn set_paused(&self, name: &str, paused: bool) -> Result<QueueSettings> {
        check_name(name)?;
        let verb = if paused { "pausing" } else { "resuming" };
        let row = self.write(
            || format!("{verb} queue `{name}`"),
            |c| {
                ensure_row(c, name)?;
                diesel::update(qs::queues.filter(qs::name.eq(name)))
                    .set((
                        qs::paused.eq(paused),
                        qs::updated.eq(crate::enqueue::now().naive_utc()),
                    ))
                    .execute(c)?;
                load(c, name)
            },
        )?;
        Ok(row.map_or_else(|| QueueSettings::unconfigured(name), QueueSettings::from))
    }

    /// Changes the settings `change` names of queue `name`, leaving the others as they are;
    /// a bad value is refused with what to write, and nothing is changed. Workers apply the
    /// new settings from their next tick.
    pub fn set_queue(&self, name: &str, change: &QueueChange) -> Result<QueueSettings> {
        check_name(name)?;
        change.validate(name)?;
        let row = self.write(
            || format!("changing the settings of queue `{name}`"),
            |c| {
                ensure_row(c, name)?;
                let target = qs::queues.filter(qs::name.eq(name));
                if let Some(limit) = change.concurrency_limit {
                    let limit = limit.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
                    diesel::update(target)
                        .set(qs::concurrency_limit.eq(limit))
                        .execute(c)?;
                }
                if let Some(retries) = change.default_retries {
                    diesel::update(target)
                        .set(qs::default_retries.eq(retries))
                        .execute(c)?;
                }
                if let Some(timeout) = change.default_timeout {
                    let ms =
                        timeout.map(|t| i64::try_from(t.as_millis().max(1)).unwrap_or(i64::MAX));
                    diesel::update(target)
                        .set(qs::default_timeout_ms.eq(ms))
                        .execute(c)?;
                }
                diesel::update(target)
                    .set(qs::updated.eq(crate::enqueue::now().naive_utc()))
                    .execute(c)?;
                load(c, name)
            },
        )?;
        Ok(row.map_or_else(|| QueueSettings::unconfigured(name), QueueSettings::from))
    }

    /// Forgets queue `name`'s settings: it behaves again as a queue nobody configured.
    /// Returns whether it had any.
    pub fn reset_queue(&self, name: &str) -> Result<bool> {
        let deleted = self.write(
            || format!("resetting the settings of queue `{name}`"),
            |c| diesel::delete(qs::queues.filter(qs::name.eq(name))).execute(c),
        )?;
        Ok(deleted > 0)
    }
}

/// The claim of a worker some of whose queues have settings (`request.settings`), or that
/// serves its queues in order, inside the round's write transaction.
///
/// - Paused queues are left out of the selection.
/// - Each limited queue the worker serves is locked first (its `queues` row, in name order, so
///   that two workers never wait on each other's locks), its `Processing` rows counted, and at
///   most `limit - running` of its rows claimed. The lock holds until the round commits, so the
///   next worker's count includes these: the limit holds across workers and machines. The
///   settings read under the lock win over the worker's copy from its last tick.
/// - Without `in_order`, limited queues are claimed first, then the other served queues by
///   priority with the slots left; with it, each listed queue in turn, by priority within it.
/// - Rows without retries of their own get their queue's default retries, written to the row.
pub(super) fn claim_with_settings(
    c: &mut AnyConnection,
    request: &ClaimRequest<'_>,
) -> QueryResult<Vec<ClaimedExec>> {
    let settings: HashMap<&str, &QueueSettings> = request
        .settings
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let paused = |q: &str| settings.get(q).is_some_and(|s| s.paused);
    let limited = |q: &str| {
        settings
            .get(q)
            .is_some_and(|s| s.concurrency_limit.is_some())
    };

    // The limited queues served, locked in name order; how many rows each may still start.
    let mut to_lock: Vec<&str> = request
        .settings
        .iter()
        .filter(|s| !s.paused && s.concurrency_limit.is_some())
        .map(|s| s.name.as_str())
        .filter(|q| request.queues.includes(q))
        .collect();
    to_lock.sort_unstable();
    let mut room: HashMap<&str, usize> = HashMap::new();
    for queue in to_lock {
        room.insert(queue, room_in(c, queue)?);
    }

    let mut claimed: Vec<ClaimedExec> = Vec::new();
    let mut left = request.limit;
    match request.queues {
        QueueSelection::Only(order) if request.in_order => {
            for (i, queue) in order.iter().enumerate() {
                if left == 0 {
                    break;
                }
                if paused(queue) || order[..i].contains(queue) {
                    continue;
                }
                let n = room.get(queue.as_str()).map_or(left, |r| (*r).min(left));
                let got = claim_from(c, request, vec![queue.clone()], n)?;
                left -= got.len();
                claimed.extend(got);
            }
        }
        selection => {
            for (queue, room) in &room {
                let n = (*room).min(left);
                let got = claim_from(c, request, vec![(*queue).to_string()], n)?;
                left -= got.len();
                claimed.extend(got);
            }
            let left_out: Vec<String> = request
                .settings
                .iter()
                .filter(|s| paused(&s.name) || limited(&s.name))
                .map(|s| s.name.clone())
                .collect();
            let rest = match selection {
                QueueSelection::All => QueueSelection::Except(left_out),
                QueueSelection::Except(except) => {
                    QueueSelection::Except(except.iter().cloned().chain(left_out).collect())
                }
                QueueSelection::Only(only) => QueueSelection::Only(
                    only.iter()
                        .filter(|q| !left_out.contains(q))
                        .cloned()
                        .collect(),
                ),
            };
            let nothing_left = matches!(&rest, QueueSelection::Only(q) if q.is_empty());
            if left > 0 && !nothing_left {
                claimed.extend(driver(c).claim(&ClaimRequest {
                    queues: &rest,
                    limit: left,
                    settings: &[],
                    in_order: false,
                    ..*request
                })?);
            }
            in_claim_order(&mut claimed);
        }
    }
    give_default_retries(c, &settings, &mut claimed)?;
    Ok(claimed)
}

/// Locks limited queue `queue`'s row and counts what runs of it: how many more of its rows
/// may start now (0 when it is paused or gone since the worker's tick).
fn room_in(c: &mut AnyConnection, queue: &str) -> QueryResult<usize> {
    let Some(row) = driver(c).lock_queue(queue)? else {
        return Ok(0);
    };
    let settings = QueueSettings::from(row);
    if settings.paused {
        return Ok(0);
    }
    let Some(limit) = settings.concurrency_limit else {
        return Ok(usize::MAX);
    };
    let running: i64 = te::task_execs
        .filter(te::state.eq(State::Processing.as_str()))
        .filter(te::queue.eq(queue))
        .count()
        .one_to_completion(c)?;
    Ok(usize::try_from(i64::from(limit) - running).unwrap_or(0))
}

/// Claims up to `limit` rows of `queues` through the driver's claim.
fn claim_from(
    c: &mut AnyConnection,
    request: &ClaimRequest<'_>,
    queues: Vec<String>,
    limit: usize,
) -> QueryResult<Vec<ClaimedExec>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    driver(c).claim(&ClaimRequest {
        queues: &QueueSelection::Only(queues),
        limit,
        settings: &[],
        in_order: false,
        ..*request
    })
}

/// Gives the claimed rows without retries of their own their queue's default retries, in
/// memory and in their rows (one statement per distinct default).
fn give_default_retries(
    c: &mut AnyConnection,
    settings: &HashMap<&str, &QueueSettings>,
    claimed: &mut [ClaimedExec],
) -> QueryResult<()> {
    let mut by_default: HashMap<i32, Vec<i64>> = HashMap::new();
    for exec in claimed.iter_mut().filter(|e| !e.own_retries) {
        if let Some(retries) = settings
            .get(exec.queue.as_str())
            .and_then(|s| s.default_retries)
        {
            exec.retries = retries;
            exec.own_retries = true;
            by_default.entry(retries).or_default().push(exec.id);
        }
    }
    for (retries, ids) in by_default {
        diesel::update(te::task_execs.filter(te::id.eq_any(ids)))
            .set((te::retries.eq(retries), te::own_retries.eq(true)))
            .execute(c)?;
    }
    Ok(())
}
