//! `GET /execs` (the filtered, paged list) and `GET /execs/{id}` (one execution).

use axum::extract::{Path, Query};
use axum::response::Response;
use chrono::Utc;
use diesel::prelude::*;
use maud::{Markup, html};
use serde::Deserialize;
use toosimple_core::schema::task_execs::dsl as te;
use toosimple_core::{State, TaskExec, TaskExecFilter};

use crate::auth::{Authed, see_other};
use crate::layout::{self, Nav};
use crate::state::AppError;

/// The list's query string; empty fields mean "any".
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    queue: Option<String>,
    task: Option<String>,
    id: Option<String>,
    before: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ListQuery {
    /// The query string of this filter, optionally for the page before `before`.
    fn href(&self, base: &str, before: Option<i64>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("state", &self.state),
            ("queue", &self.queue),
            ("task", &self.task),
        ] {
            if let Some(v) = non_empty(value) {
                q.append_pair(key, v);
            }
        }
        if let Some(before) = before {
            q.append_pair("before", &before.to_string());
        }
        let q = q.finish();
        if q.is_empty() {
            format!("{base}/execs")
        } else {
            format!("{base}/execs?{q}")
        }
    }
}

pub(crate) async fn list(a: Authed, Query(query): Query<ListQuery>) -> Result<Response, AppError> {
    let mut notice: Option<String> = None;
    if let Some(id) = non_empty(&query.id) {
        match id.trim_start_matches('#').parse::<i64>() {
            Ok(id) => {
                let found = a
                    .state
                    .db(move |store| match TaskExec::get_in(store, id) {
                        Ok(_) => Ok(true),
                        Err(toosimple_core::Error::ExecNotFound { .. }) => Ok(false),
                        Err(e) => Err(e.into()),
                    })
                    .await?;
                if found {
                    return Ok(see_other(&format!("{}/execs/{id}", a.base)));
                }
                notice = Some(format!("No execution has id {id}."));
            }
            Err(_) => notice = Some(format!("{id:?} is not an execution id (a number).")),
        }
    }
    let page = a.state.0.config.page_size;
    let mut filter = TaskExecFilter::default().limit(page + 1);
    let state = match non_empty(&query.state) {
        Some(s) => Some(
            s.parse::<State>()
                .map_err(|e| AppError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    if let Some(state) = state {
        filter = filter.state(state);
    }
    if let Some(queue) = non_empty(&query.queue) {
        filter = filter.queue(queue);
    }
    if let Some(task) = non_empty(&query.task) {
        filter = filter.task_name(task);
    }
    if let Some(before) = non_empty(&query.before) {
        let before = before
            .parse::<i64>()
            .map_err(|_| AppError::BadRequest(format!("before={before:?} is not an id")))?;
        filter = filter.before_id(before);
    }
    let mut rows = a
        .state
        .db(move |store| Ok(crate::views::executions(store, &filter)?))
        .await?;
    let more = rows.len() as i64 > page;
    rows.truncate(page as usize);
    let tasks: Vec<&str> = toosimple_core::tasks()
        .map(|t| t.iter().map(|t| t.name()).collect())
        .unwrap_or_default();
    let base = &a.base;
    let here = a.original.clone();
    let body = html! {
        form class="filters" method="get" action={ (base) "/execs" } {
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in State::ALL {
                        option value=(s.as_str()) selected[state == Some(s)] { (s.as_str()) }
                    }
                }
            }
            label { "Queue " input type="text" name="queue" value=[non_empty(&query.queue)] size="10"; }
            label { "Task "
                input type="text" name="task" list="task-names" value=[non_empty(&query.task)] size="14";
                datalist id="task-names" { @for t in &tasks { option value=(t) {} } }
            }
            button type="submit" { "Filter" }
            a href={ (base) "/execs" } { "Clear" }
        }
        form class="filters" method="get" action={ (base) "/execs" } {
            label { "Id " input type="text" name="id" inputmode="numeric" size="8"; }
            button type="submit" { "Go" }
        }
        @if let Some(notice) = &notice {
            p class="flash error" role="alert" { (notice) }
        }
        @if rows.is_empty() {
            p class="muted empty" { "No execution matches." }
        } @else {
            form method="post" action={ (base) "/execs/requeue" } {
                (layout::csrf(&a))
                input type="hidden" name="back" value=(here);
                div class="actions" {
                    button type="submit" class="requeue" { "Requeue selected" }
                    button type="submit" class="cancel" formaction={ (base) "/execs/cancel" } { "Cancel selected" }
                    button type="submit" class="danger delete" formaction={ (base) "/execs/delete" } { "Delete selected" }
                }
                div class="scroll" {
                    table class="execs" {
                        thead { tr {
                            th { span class="sr" { "select" } }
                            th { "id" } th { "task" } th { "queue" } th { "state" } th { "args" }
                            th { "created" } th { "finished" } th { "worker" }
                        } }
                        tbody {
                            @for e in &rows {
                                (row(base, e))
                            }
                        }
                    }
                }
            }
        }
        nav class="pager" {
            @if non_empty(&query.before).is_some() {
                a href=(query.href(base, None)) { "← Newest" }
            }
            @if more {
                @if let Some(last) = rows.last() {
                    a rel="next" href=(query.href(base, Some(last.id))) { "Older →" }
                }
            }
        }
    };
    Ok(layout::page(&a, Nav::Execs, "Executions", body))
}

fn row(base: &str, e: &TaskExec) -> Markup {
    html! {
        tr id={ "e" (e.id) } {
            td { input type="checkbox" name="id" value=(e.id) aria-label={ "select #" (e.id) }; }
            td { a href={ (base) "/execs/" (e.id) } { "#" (e.id) } }
            td { (e.task_name) }
            td { (e.queue) }
            td {
                (layout::state_badge(e.state))
                @if e.state == State::Processing {
                    @if let Some(progress) = &e.progress {
                        " " span class="muted progress" { (format!("{:.0}%", progress.fraction * 100.0)) }
                    }
                    @if e.cancel_requested.is_some() {
                        " " span class="muted cancel-requested" { "cancel requested" }
                    }
                }
            }
            td class="args" { code { (layout::truncate(&e.args.to_string(), 80)) } }
            td { (layout::time(Some(e.created))) }
            td { (layout::time(e.finished)) }
            td { (e.worker.as_deref().unwrap_or("")) }
        }
    }
}

/// An execution of a retry chain: its id and state.
type ChainLink = (i64, String);

/// The executions linked to `id` by `replaced_by`: those before it (oldest first), and those
/// after it, with their states.
fn chain(
    conn: &mut toosimple_core::AnyConnection,
    id: i64,
    replaced_by: Option<i64>,
) -> QueryResult<(Vec<ChainLink>, Vec<ChainLink>)> {
    const MAX: usize = 100;
    let mut before = Vec::new();
    let mut current = id;
    while before.len() < MAX {
        let previous: Option<(i64, String)> = te::task_execs
            .filter(te::replaced_by.eq(current))
            .select((te::id, te::state))
            .order(te::id)
            .first(conn)
            .optional()?;
        match previous {
            Some((pid, state)) if pid != id => {
                current = pid;
                before.push((pid, state));
            }
            _ => break,
        }
    }
    before.reverse();
    let mut after = Vec::new();
    let mut next = replaced_by;
    while let Some(nid) = next {
        if after.len() >= MAX || nid == id {
            break;
        }
        let row: Option<(String, Option<i64>)> = te::task_execs
            .find(nid)
            .select((te::state, te::replaced_by))
            .first(conn)
            .optional()?;
        match row {
            Some((state, following)) => {
                after.push((nid, state));
                next = following;
            }
            None => {
                after.push((nid, "deleted".to_string()));
                break;
            }
        }
    }
    Ok((before, after))
}

pub(crate) async fn detail(a: Authed, Path(id): Path<String>) -> Result<Response, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::NotFound(format!("{id:?} is not an execution id")))?;
    let (exec, (before, after)) = a
        .state
        .db(move |store| {
            let exec = TaskExec::get_in(store, id)?;
            let mut conn = store.connection()?;
            let chain = chain(&mut conn, id, exec.replaced_by)
                .map_err(AppError::query("following the replaced_by chain"))?;
            Ok((exec, chain))
        })
        .await?;
    let base = &a.base;
    let now = Utc::now();
    let duration = match (exec.started, exec.finished) {
        (Some(s), Some(f)) => Some(format!(
            "{:.3} s",
            (f - s).num_milliseconds() as f64 / 1000.0
        )),
        _ => None,
    };
    let chain_link = |(cid, state): &ChainLink| {
        html! {
            a href={ (base) "/execs/" (cid) } { "#" (cid) } " "
            span class={ "badge state-" (state) } { (state) }
        }
    };
    let title = format!("Execution #{}", exec.id);
    let body = html! {
        p { (layout::state_badge(exec.state)) " " strong { (exec.task_name) } " on queue " strong { (exec.queue) } }
        div class="actions" {
            form method="post" action={ (base) "/execs/requeue" } {
                (layout::csrf(&a))
                input type="hidden" name="id" value=(exec.id);
                input type="hidden" name="back" value={ (base) "/execs/" (exec.id) };
                button type="submit" { "Requeue" }
            }
            @if exec.state.is_pending() || (exec.state == State::Processing && exec.cancel_requested.is_none()) {
                form method="post" action={ (base) "/execs/cancel" } {
                    (layout::csrf(&a))
                    input type="hidden" name="id" value=(exec.id);
                    input type="hidden" name="back" value={ (base) "/execs/" (exec.id) };
                    button type="submit" { "Cancel" }
                }
            }
            form method="post" action={ (base) "/execs/delete" } {
                (layout::csrf(&a))
                input type="hidden" name="id" value=(exec.id);
                input type="hidden" name="back" value={ (base) "/execs" };
                button type="submit" class="danger" { "Delete" }
            }
        }
        dl class="fields" {
            dt { "task" } dd { a href={ (base) "/tasks#t-" (exec.task_name) } { (exec.task_name) } }
            dt { "queue" } dd { (exec.queue) }
            dt { "priority" } dd { (exec.priority) }
            dt { "state" } dd { (layout::state_badge(exec.state)) }
            dt { "due" } dd { (layout::time(Some(exec.due))) " (" (layout::ago(now, exec.due)) ")" }
            dt { "created" } dd { (layout::time(Some(exec.created))) }
            dt { "started" } dd { (layout::time(exec.started)) }
            dt { "finished" } dd { (layout::time(exec.finished)) }
            dt { "run time" } dd { (duration.as_deref().unwrap_or("–")) }
            dt { "worker" } dd { (exec.worker.as_deref().unwrap_or("–")) }
            @if let Some(progress) = &exec.progress {
                dt { "progress" } dd class="progress" {
                    progress value=(progress.fraction) max="1" { (progress.to_string()) }
                    " " (progress.to_string())
                }
            }
            @if exec.state == State::Processing {
                @if let Some(at) = exec.cancel_requested {
                    dt { "cancel" } dd class="cancel-requested" { "cancel requested " (layout::time(Some(at))) ": its worker stops it within a heartbeat" }
                }
            }
            dt { "retries left" } dd { (exec.retries) }
            dt { "retry delay" } dd { (exec.retry_delay) " s" }
            dt { "replaces" } dd class="chain" {
                @if before.is_empty() { span class="muted" { "–" } }
                @for (i, link) in before.iter().enumerate() { @if i > 0 { " → " } (chain_link(link)) }
            }
            dt { "replaced by" } dd class="chain" {
                @if after.is_empty() { span class="muted" { "–" } }
                @for (i, link) in after.iter().enumerate() { @if i > 0 { " → " } (chain_link(link)) }
            }
            dt { "hook" } dd {
                @match &exec.hook {
                    None => span class="muted" { "–" },
                    Some(hook) => {
                        (hook) " "
                        @match exec.hook_ran {
                            Some(at) => span class="muted" { "called " (layout::time(Some(at))) },
                            None => span class="muted" { "not called yet" },
                        }
                    }
                }
            }
        }
        h2 { "Arguments" }
        pre class="json" { (layout::pretty(&exec.args)) }
        @if let Some(result) = &exec.result {
            h2 { "Result" }
            pre class="json" { (layout::pretty(result)) }
        }
        @if let Some(error) = &exec.error {
            h2 { "Error" }
            pre class="error" { (error) }
        }
        @if let Some(error) = &exec.hook_error {
            h2 { "Hook error" }
            p class="muted" { "The hook failed; the execution's outcome above stands." }
            pre class="error" { (error) }
        }
    };
    Ok(layout::page(&a, Nav::Execs, &title, body))
}
