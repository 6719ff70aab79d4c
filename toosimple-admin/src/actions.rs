//! The POST actions. Each one needs a session ([`Authed`]) and checks the CSRF token (through
//! [`CsrfForm`]), does its work, leaves a sentence saying what it did for the next page, and
//! redirects back.

use axum::response::Response;
use chrono::{TimeDelta, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use toosimple_core::schema::task_execs::dsl as te;
use toosimple_core::{Cancellation, TaskExec};

use crate::auth::{Authed, CsrfForm, csrf_field};
use crate::session::Flash;
use crate::state::AppError;

/// The executions ticked in a list, or the one of an execution's page. Fields are text, and
/// parsed here, so that a wrong one gets a sentence rather than a deserializer's message.
#[derive(Deserialize)]
pub(crate) struct Selection {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: Vec<String>,
    back: Option<String>,
}

/// The purge form.
#[derive(Deserialize)]
pub(crate) struct PurgeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    days: String,
    back: Option<String>,
}

/// A schedule's "run now" button.
#[derive(Deserialize)]
pub(crate) struct RunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    back: Option<String>,
}

/// A worker's stop or terminate button.
#[derive(Deserialize)]
pub(crate) struct StopForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    mode: String,
    back: Option<String>,
}

/// A stored schedule's pause, resume or remove button.
#[derive(Deserialize)]
pub(crate) struct StoredForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    action: String,
    back: Option<String>,
}

/// A queue's pause or resume button, or its settings form (`action` `set`: empty fields
/// remove the setting).
#[derive(Deserialize)]
pub(crate) struct QueueForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    limit: String,
    #[serde(default)]
    retries: String,
    #[serde(default)]
    timeout: String,
    back: Option<String>,
}

csrf_field!(
    Selection, PurgeForm, RunForm, StopForm, StoredForm, QueueForm
);

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// The `id` fields of the form, or the message saying which one is not an id.
fn ids(form: &Selection) -> Result<Vec<i64>, AppError> {
    form.id
        .iter()
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| AppError::BadRequest(format!("{v:?} is not an execution id")))
        })
        .collect()
}

fn redirect(a: &Authed, back: Option<&str>, flash: Flash) -> Response {
    let default = format!("{}/execs", a.base);
    a.done(back, &default, flash)
}

fn nothing_selected(a: &Authed, form: &Selection) -> Response {
    redirect(
        a,
        form.back.as_deref(),
        Flash::error("Select at least one execution first."),
    )
}

/// `POST /execs/requeue`: a new execution with the same arguments for each `id`.
pub(crate) async fn requeue(
    a: Authed,
    CsrfForm(form): CsrfForm<Selection>,
) -> Result<Response, AppError> {
    let ids = ids(&form)?;
    if ids.is_empty() {
        return Ok(nothing_selected(&a, &form));
    }
    let (new, duplicates, errors) = a
        .state
        .db(move |store| {
            let (mut new, mut duplicates, mut errors) = (Vec::new(), Vec::new(), Vec::new());
            for id in ids {
                match TaskExec::requeue_in(store, id) {
                    Ok(h) if h.is_duplicate() => duplicates.push(h.id()),
                    Ok(h) => new.push(h.id()),
                    Err(e) => errors.push(format!("#{id}: {}", e.report())),
                }
            }
            Ok((new, duplicates, errors))
        })
        .await?;
    let mut parts = Vec::new();
    if !new.is_empty() {
        parts.push(format!("Requeued {} as", plural(new.len(), "execution")));
    }
    let mut links = new;
    if !duplicates.is_empty() {
        if !parts.is_empty() {
            parts.push(";".to_string());
        }
        parts.push(format!(
            "{} already pending (unique task), kept as",
            plural(duplicates.len(), "execution")
        ));
        links.extend(&duplicates);
    }
    let flash = if errors.is_empty() {
        Flash::ok(parts.join(" ")).with_links(links)
    } else {
        let mut text = format!("Could not requeue {}", errors.join("; "));
        if !links.is_empty() {
            text.push_str(". Requeued as");
        }
        Flash::error(text).with_links(links)
    };
    Ok(redirect(&a, form.back.as_deref(), flash))
}

/// `POST /execs/cancel`: cancels each pending `id`, and asks a cancel of each running one.
pub(crate) async fn cancel(
    a: Authed,
    CsrfForm(form): CsrfForm<Selection>,
) -> Result<Response, AppError> {
    let ids = ids(&form)?;
    if ids.is_empty() {
        return Ok(nothing_selected(&a, &form));
    }
    let (cancelled, requested, finished, errors) = a
        .state
        .db(move |store| {
            let (mut cancelled, mut requested, mut finished, mut errors) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for id in ids {
                match TaskExec::cancel_in(store, id) {
                    Ok(Cancellation::Cancelled) => cancelled.push(id),
                    Ok(Cancellation::Requested) => requested.push(format!("#{id}")),
                    Ok(Cancellation::Finished(_)) => finished.push(format!("#{id}")),
                    Err(e) => errors.push(format!("#{id}: {}", e.report())),
                }
            }
            Ok((cancelled, requested, finished, errors))
        })
        .await?;
    let mut text = if cancelled.is_empty() {
        "Cancelled nothing".to_string()
    } else {
        format!("Cancelled {}", plural(cancelled.len(), "execution"))
    };
    if !requested.is_empty() {
        text.push_str(&format!(
            "; cancel requested for {} (running: its worker stops it within a heartbeat)",
            requested.join(", ")
        ));
    }
    if !finished.is_empty() {
        text.push_str(&format!(
            " ({} already finished: only sleeping, queued or running executions can be \
             cancelled)",
            finished.join(", ")
        ));
    }
    if !errors.is_empty() {
        text.push_str(&format!("; errors: {}", errors.join("; ")));
    }
    let failed = (cancelled.is_empty() && requested.is_empty()) || !errors.is_empty();
    let flash = if failed {
        Flash::error(text)
    } else {
        Flash::ok(text)
    };
    Ok(redirect(
        &a,
        form.back.as_deref(),
        flash.with_links(cancelled),
    ))
}

/// `POST /execs/delete`: deletes each `id`, whatever its state.
pub(crate) async fn delete(
    a: Authed,
    CsrfForm(form): CsrfForm<Selection>,
) -> Result<Response, AppError> {
    let ids = ids(&form)?;
    if ids.is_empty() {
        return Ok(nothing_selected(&a, &form));
    }
    let asked = ids.len();
    let deleted = a
        .state
        .db(move |store| {
            let mut conn = store.connection()?;
            diesel::delete(te::task_execs.filter(te::id.eq_any(&ids)))
                .execute(&mut *conn)
                .map_err(AppError::query("deleting executions"))
        })
        .await?;
    let mut text = format!("Deleted {}", plural(deleted, "execution"));
    if deleted < asked {
        text.push_str(&format!(" ({} no longer existed)", asked - deleted));
    }
    Ok(redirect(&a, form.back.as_deref(), Flash::ok(text)))
}

/// `POST /execs/purge`: deletes finished executions older than `days` days.
pub(crate) async fn purge(
    a: Authed,
    CsrfForm(form): CsrfForm<PurgeForm>,
) -> Result<Response, AppError> {
    let days: u32 = form
        .days
        .trim()
        .parse()
        .map_err(|_| AppError::BadRequest("days must be a whole number of days".to_string()))?;
    let before = Utc::now() - TimeDelta::days(i64::from(days));
    let deleted = a
        .state
        .db(move |store| Ok(TaskExec::purge_in(store, before, &[])?))
        .await?;
    let text = format!(
        "Purged {} finished more than {} ago",
        plural(deleted, "execution"),
        plural(days as usize, "day")
    );
    Ok(redirect(&a, form.back.as_deref(), Flash::ok(text)))
}

/// `POST /schedules/run`: enqueues schedule `name`'s task now.
pub(crate) async fn run_schedule(
    a: Authed,
    CsrfForm(form): CsrfForm<RunForm>,
) -> Result<Response, AppError> {
    let name = form.name.clone();
    let default = format!("{}/schedules", a.base);
    let outcome = {
        let name = name.clone();
        a.state
            .db(move |store| Ok(toosimple_core::run_schedule(store, &name)))
            .await?
    };
    let flash = match outcome {
        Ok(handle) => {
            Flash::ok(format!("Ran schedule {name} now as")).with_links(vec![handle.id()])
        }
        Err(e) => Flash::error(format!("Could not run schedule {name}: {}", e.report())),
    };
    Ok(a.done(form.back.as_deref(), &default, flash))
}

/// `POST /workers/stop`: asks worker `label` to stop (`mode=graceful`) or terminate
/// (`mode=terminate`); it sees the request at its next heartbeat.
pub(crate) async fn stop_worker(
    a: Authed,
    CsrfForm(form): CsrfForm<StopForm>,
) -> Result<Response, AppError> {
    let request = match form.mode.as_str() {
        "graceful" | "" => toosimple_core::StopRequest::Graceful,
        "terminate" => toosimple_core::StopRequest::Terminate,
        other => {
            return Err(AppError::BadRequest(format!(
                "{other:?} is not a way to stop: graceful or terminate"
            )));
        }
    };
    let label = form.label.clone();
    let default = format!("{}/workers", a.base);
    let outcome = {
        let label = label.clone();
        a.state
            .db(move |store| Ok(store.request_stop(Some(&[label]), request)))
            .await?
    };
    let flash = match outcome {
        Ok(rows) if rows.iter().any(|w| w.stopped.is_some()) => {
            Flash::error(format!("{label} has already stopped."))
        }
        Ok(_) => Flash::ok(match request {
            toosimple_core::StopRequest::Graceful => format!(
                "Asked {label} to stop: it finishes its running tasks, then exits (at its next heartbeat)."
            ),
            toosimple_core::StopRequest::Terminate => format!(
                "Asked {label} to terminate: its running tasks are interrupted and replaced (at its next heartbeat)."
            ),
        }),
        Err(e) => Flash::error(format!("Could not stop {label}: {}", e.report())),
    };
    Ok(a.done(form.back.as_deref(), &default, flash))
}

/// `POST /schedules/stored`: pauses, resumes or removes stored schedule `name`.
pub(crate) async fn stored_schedule(
    a: Authed,
    CsrfForm(form): CsrfForm<StoredForm>,
) -> Result<Response, AppError> {
    let name = form.name.clone();
    let action = form.action.clone();
    let default = format!("{}/schedules", a.base);
    if !matches!(action.as_str(), "pause" | "resume" | "remove") {
        let flash = Flash::error(format!(
            "{action:?} is not something to do to a schedule: pause, resume or remove."
        ));
        return Ok(a.done(form.back.as_deref(), &default, flash));
    }
    let outcome = {
        let (name, action) = (name.clone(), action.clone());
        a.state
            .db(move |store| {
                Ok(match action.as_str() {
                    "pause" => store.pause_schedule(&name, true).map(|_| ()),
                    "resume" => store.pause_schedule(&name, false).map(|_| ()),
                    _ => store.remove_schedule(&name),
                })
            })
            .await?
    };
    let flash = match outcome {
        Ok(()) => Flash::ok(match action.as_str() {
            "pause" => format!("Paused schedule {name}: nothing is enqueued until it is resumed."),
            "resume" => format!("Resumed schedule {name}."),
            _ => format!("Removed schedule {name}; its executions stay."),
        }),
        Err(e) => Flash::error(format!(
            "Could not {action} schedule {name}: {}",
            e.report()
        )),
    };
    Ok(a.done(form.back.as_deref(), &default, flash))
}

/// The settings a queue's form asks for, or the sentence saying which field to fix.
fn queue_change(form: &QueueForm) -> Result<toosimple_core::QueueChange, String> {
    let limit = match form.limit.trim() {
        "" => None,
        t => match t.parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(format!(
                    "the limit {t:?} is not a whole number from 1 (1: one at a time); leave it empty for none"
                ));
            }
        },
    };
    let retries = match form.retries.trim() {
        "" => None,
        t => match t.parse::<i32>() {
            Ok(n) if n >= -1 => Some(n),
            _ => {
                return Err(format!(
                    "the retries {t:?} are not a number from -1 (for ever); leave them empty for none"
                ));
            }
        },
    };
    let timeout = match form.timeout.trim() {
        "" => None,
        t => match t
            .parse::<f64>()
            .ok()
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                return Err(format!(
                    "the time limit {t:?} is not a number of seconds above 0; leave it empty for none"
                ));
            }
        },
    };
    Ok(toosimple_core::QueueChange::new()
        .concurrency_limit(limit)
        .default_retries(retries)
        .default_timeout(timeout))
}

/// `POST /queues`: pauses or resumes queue `name`, or sets its concurrency limit, default
/// retries and default time limit.
pub(crate) async fn queue(
    a: Authed,
    CsrfForm(form): CsrfForm<QueueForm>,
) -> Result<Response, AppError> {
    let name = form.name.trim().to_string();
    let action = form.action.clone();
    let default = format!("{}/queues", a.base);
    let change = match action.as_str() {
        "pause" | "resume" => None,
        "set" => match queue_change(&form) {
            Ok(change) => Some(change),
            Err(reason) => {
                let flash = Flash::error(format!("Nothing was changed: {reason}."));
                return Ok(a.done(form.back.as_deref(), &default, flash));
            }
        },
        _ => {
            let flash = Flash::error(format!(
                "{action:?} is not something to do to a queue: pause, resume or set."
            ));
            return Ok(a.done(form.back.as_deref(), &default, flash));
        }
    };
    let outcome = {
        let (name, action) = (name.clone(), action.clone());
        a.state
            .db(move |store| {
                Ok(match (action.as_str(), change) {
                    ("pause", _) => store.pause_queue(&name),
                    ("resume", _) => store.resume_queue(&name),
                    (_, Some(change)) => store.set_queue(&name, &change),
                    (_, None) => store.queue(&name),
                })
            })
            .await?
    };
    let flash = match outcome {
        Ok(_) => Flash::ok(match action.as_str() {
            "pause" => format!(
                "Paused queue {name}: workers start nothing more from it within a tick; running tasks finish."
            ),
            "resume" => format!("Resumed queue {name}."),
            _ => format!(
                "Saved the settings of queue {name}; workers apply them from their next tick."
            ),
        }),
        Err(e) => Flash::error(format!("Could not {action} queue {name}: {}", e.report())),
    };
    Ok(a.done(form.back.as_deref(), &default, flash))
}
