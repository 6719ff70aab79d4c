//! `GET /queues`: each queue (configured, used by a task of this binary, or holding
//! executions) with its queued and running executions, its settings, a pause or resume button,
//! and a form for its concurrency limit, default retries and default time limit.

use std::collections::BTreeMap;

use axum::response::Response;
use maud::html;
use toosimple_core::{QueueSettings, State, TaskExec};

use crate::auth::Authed;
use crate::layout::{self, Nav};
use crate::state::AppError;

pub(crate) async fn queues(a: Authed) -> Result<Response, AppError> {
    let (settings, counts) = a
        .state
        .db(|store| Ok((store.queues()?, TaskExec::counts_in(store)?)))
        .await?;
    let mut queues: BTreeMap<String, QueueSettings> = BTreeMap::new();
    for def in toosimple_core::tasks()?.iter() {
        queues
            .entry(def.queue().to_string())
            .or_insert_with(|| QueueSettings::unconfigured(def.queue()));
    }
    for c in &counts {
        queues
            .entry(c.queue.clone())
            .or_insert_with(|| QueueSettings::unconfigured(&c.queue));
    }
    for s in settings {
        queues.insert(s.name.clone(), s);
    }
    let count = |queue: &str, state: State| -> i64 {
        counts
            .iter()
            .filter(|c| c.queue == queue && c.state == state)
            .map(|c| c.count)
            .sum()
    };
    let base = &a.base;
    let body = html! {
        p class="muted" {
            "Workers read these settings at each tick. A paused queue starts nothing new (running tasks finish); "
            "a limit caps its running executions across every worker (1: one at a time); the default retries "
            "and time limit apply to executions that set none of their own. Empty fields mean none."
        }
        @if queues.is_empty() {
            p class="muted empty" { "No queue yet: no task, execution or setting names one." }
        } @else {
            div class="scroll" {
                table class="queues" {
                    thead { tr {
                        th { "queue" } th class="num" { "queued" } th class="num" { "running" }
                        th { "limit · default retries · default time limit (s)" }
                    } }
                    tbody {
                        @for s in queues.values() {
                            tr id={ "q-" (s.name) } class=[s.paused.then_some("paused")] {
                                td {
                                    strong { (s.name) }
                                    @if s.paused { " " span class="badge paused" { "paused" } }
                                    form method="post" action={ (base) "/queues" } class="queue-actions" {
                                        (layout::csrf(&a))
                                        input type="hidden" name="name" value=(s.name);
                                        @if s.paused {
                                            button type="submit" name="action" value="resume" { "Resume" }
                                        } @else {
                                            button type="submit" name="action" value="pause" { "Pause" }
                                        }
                                    }
                                }
                                td class="num" { (count(&s.name, State::Queued)) }
                                td class="num" { (count(&s.name, State::Processing)) }
                                td {
                                    form method="post" action={ (base) "/queues" } class="queue-settings" {
                                        (layout::csrf(&a))
                                        input type="hidden" name="name" value=(s.name);
                                        label { "limit " input type="number" name="limit" min="1" size="4"
                                            value=[s.concurrency_limit.map(|n| n.to_string())]; }
                                        " "
                                        label { "retries " input type="number" name="retries" min="-1" size="4"
                                            value=[s.default_retries.map(|n| n.to_string())]; }
                                        " "
                                        label { "timeout " input type="number" name="timeout" min="0.001" step="any" size="6"
                                            value=[s.default_timeout.map(|t| t.as_secs_f64().to_string())]; }
                                        " "
                                        button type="submit" name="action" value="set" { "Save" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&a, Nav::Queues, "Queues", body))
}
