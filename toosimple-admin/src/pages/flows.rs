//! `GET /flows`: the newest flows (or those of one name), and `GET /flows/{id}`: one flow with
//! its steps, each linked to its execution.

use axum::extract::{Path, Query};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use toosimple_core::{Flow, FlowExec, FlowState, StepState, TaskExec};

use crate::auth::Authed;
use crate::layout::{self, Nav};
use crate::state::AppError;

/// Flows per page.
const PAGE: i64 = 100;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    /// Only the flows of this name.
    name: Option<String>,
}

fn flow_badge(state: FlowState) -> maud::Markup {
    // The execution states' colours: running as processing, the ends as theirs.
    let class = match state {
        FlowState::Running => "processing",
        FlowState::Succeeded => "succeeded",
        FlowState::Failed => "failed",
    };
    html! { span class={ "badge state-" (class) } { (state.as_str()) } }
}

fn step_badge(state: StepState) -> maud::Markup {
    let class = match state {
        StepState::Waiting => "sleeping",
        StepState::Enqueued => "queued",
        StepState::Succeeded => "succeeded",
        StepState::Failed => "failed",
        StepState::Skipped => "cancelled",
    };
    html! { span class={ "badge state-" (class) } { (state.as_str()) } }
}

fn progress(flow: &FlowExec) -> String {
    match flow.current_step() {
        Some(step) => format!("step {} of {}", step.position, flow.steps.len()),
        None => {
            let done = flow
                .steps
                .iter()
                .filter(|s| s.state == StepState::Succeeded)
                .count();
            format!("{done} of {} succeeded", flow.steps.len())
        }
    }
}

pub(crate) async fn list(a: Authed, Query(query): Query<ListQuery>) -> Result<Response, AppError> {
    let name = query.name.filter(|n| !n.is_empty());
    let wanted = name.clone();
    let flows = a
        .state
        .db(move |store| {
            Ok(match &wanted {
                Some(name) => {
                    let mut found = Flow::find_in(store, name)?;
                    found.truncate(PAGE as usize);
                    found
                }
                None => Flow::list_in(store, PAGE)?,
            })
        })
        .await?;
    let base = &a.base;
    let body = html! {
        form method="get" action={ (base) "/flows" } class="filters" {
            label { "name " input type="text" name="name" value=[name.as_deref()]; }
            button type="submit" { "Filter" }
        }
        @if flows.is_empty() {
            p class="muted empty" { "No flow" @if let Some(n) = &name { " named " code { (n) } } " (start one with " code { "Flow::new().then(task::call(…)).start()" } ")." }
        } @else {
            div class="scroll" {
                table class="flows" {
                    thead { tr {
                        th class="num" { "id" } th { "name" } th { "state" } th { "progress" }
                        th { "created" } th { "finished" } th { "error" }
                    } }
                    tbody {
                        @for flow in &flows {
                            tr {
                                td class="num" { a href={ (base) "/flows/" (flow.id) } { "#" (flow.id) } }
                                td { @match &flow.name {
                                    Some(n) => { a href={ (base) "/flows?name=" (form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>()) } { (n) } },
                                    None => span class="muted" { "–" },
                                } }
                                td { (flow_badge(flow.state)) }
                                td { (progress(flow)) }
                                td { (layout::time(Some(flow.created))) }
                                td { (layout::time(flow.finished)) }
                                td class="error" { (flow.error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&a, Nav::Flows, "Flows", body))
}

pub(crate) async fn detail(a: Authed, Path(id): Path<String>) -> Result<Response, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::NotFound(format!("{id:?} is not a flow id")))?;
    let (flow, execs) = a
        .state
        .db(move |store| {
            let flow = match Flow::get_in(store, id) {
                Err(toosimple_core::Error::FlowNotFound { what }) => {
                    return Err(AppError::NotFound(format!("no flow {what}")));
                }
                other => other?,
            };
            let execs = Flow::executions_in(store, id)?;
            Ok((flow, execs))
        })
        .await?;
    let base = &a.base;
    let exec_of = |id: Option<i64>| -> Option<&TaskExec> {
        id.and_then(|id| execs.iter().find(|e| e.id == id))
    };
    let title = match &flow.name {
        Some(name) => format!("Flow #{} “{name}”", flow.id),
        None => format!("Flow #{}", flow.id),
    };
    let body = html! {
        p { (flow_badge(flow.state)) " " (progress(&flow)) }
        dl class="fields" {
            dt { "name" } dd { (flow.name.as_deref().unwrap_or("–")) }
            dt { "created" } dd { (layout::time(Some(flow.created))) }
            dt { "finished" } dd { (layout::time(flow.finished)) }
            @if let Some(error) = &flow.error {
                dt { "error" } dd class="error" { (error) }
            }
        }
        h2 { "Steps" }
        div class="scroll" {
            table class="flow-steps" {
                thead { tr {
                    th class="num" { "step" } th { "task" } th { "arguments" } th { "step state" }
                    th { "execution" } th { "started" } th { "finished" }
                } }
                tbody {
                    @for step in &flow.steps {
                        @let exec = exec_of(step.exec);
                        tr {
                            td class="num" { (step.position) }
                            td { a href={ (base) "/tasks#t-" (step.task_name) } { (step.task_name) } }
                            td { code { (step.args.to_string()) } }
                            td { (step_badge(step.state)) }
                            td { @match step.exec {
                                Some(eid) => {
                                    a href={ (base) "/execs/" (eid) } { "#" (eid) } " "
                                    @match exec { Some(e) => (layout::state_badge(e.state)), None => span class="muted" { "deleted" } }
                                },
                                None => span class="muted" { "not enqueued" },
                            } }
                            td { (layout::time(exec.and_then(|e| e.started))) }
                            td { (layout::time(exec.and_then(|e| e.finished))) }
                        }
                    }
                }
            }
        }
        @if execs.len() > flow.steps.iter().filter(|s| s.exec.is_some()).count() {
            h2 { "All executions" }
            p {
                @for (i, e) in execs.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ (base) "/execs/" (e.id) } { "#" (e.id) } " " (layout::state_badge(e.state))
                }
            }
        }
    };
    Ok(layout::page(&a, Nav::Flows, &title, body))
}
