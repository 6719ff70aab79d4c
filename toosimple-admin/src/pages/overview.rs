//! `GET /`: counts per state and queue, the last hour's chart, the online workers, and the
//! purge form.

use std::collections::BTreeMap;

use axum::response::Response;
use chrono::Utc;
use maud::html;
use toosimple_core::{State, TaskExec, WorkerStatus};

use crate::auth::Authed;
use crate::chart;
use crate::layout::{self, Nav};
use crate::state::AppError;

pub(crate) async fn overview(a: Authed) -> Result<Response, AppError> {
    let now = Utc::now();
    let (counts, workers, hour, unknown) = a
        .state
        .db(move |store| {
            Ok((
                TaskExec::counts_in(store)?,
                WorkerStatus::list_in(store)?,
                chart::last_hour(store, now)?,
                TaskExec::unknown_to_online_workers_in(store, now)?,
            ))
        })
        .await?;
    let mut per_queue: BTreeMap<&str, BTreeMap<State, i64>> = BTreeMap::new();
    let mut per_state: BTreeMap<State, i64> = BTreeMap::new();
    for c in &counts {
        *per_queue
            .entry(&c.queue)
            .or_default()
            .entry(c.state)
            .or_default() += c.count;
        *per_state.entry(c.state).or_default() += c.count;
    }
    let online: Vec<&WorkerStatus> = workers
        .iter()
        .filter(|w| w.state_at(now).is_running())
        .collect();
    let base = &a.base;
    let execs = |query: &[(&str, &str)]| {
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        format!("{base}/execs?{q}")
    };
    let body = html! {
        section class="cards" {
            @for state in State::ALL {
                a class={ "card state-" (state.as_str()) } href=(execs(&[("state", state.as_str())])) {
                    span class="count" { (per_state.get(&state).copied().unwrap_or(0)) }
                    span class="what" { (state.as_str()) }
                }
            }
        }
        @if !unknown.is_empty() {
            section class="warning" {
                h2 { "Queued, but unknown to every online worker" }
                p { "No online worker links these tasks: their executions stay queued until a worker that does starts (as during a deploy), but nothing runs them meanwhile." }
                table class="counts" {
                    thead { tr { th { "task" } th { "queue" } th class="num" { "queued" } } }
                    tbody {
                        @for c in &unknown {
                            tr {
                                td { a href=(execs(&[("state", "queued"), ("task", &c.task)])) { (c.task) } }
                                td { (c.queue) }
                                td class="num" { (c.count) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Succeeded and failed per minute" }
            (chart::svg(&hour))
        }
        section {
            h2 { "Queues" }
            @if per_queue.is_empty() {
                p class="muted" { "No executions yet." }
            } @else {
                div class="scroll" {
                    table class="counts" {
                        thead { tr { th { "queue" } @for state in State::ALL { th class="num" { (state.as_str()) } } } }
                        tbody {
                            @for (queue, states) in &per_queue {
                                tr {
                                    th { a href=(execs(&[("queue", queue)])) { (queue) } }
                                    @for state in State::ALL {
                                        td class="num" {
                                            @match states.get(&state) {
                                                Some(n) => a href=(execs(&[("state", state.as_str()), ("queue", queue)])) { (n) },
                                                None => span class="muted" { "0" },
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Online workers (" (online.len()) ")" }
            @if online.is_empty() {
                p class="muted" { "No worker is online. Start one with " code { "app worker" } "." }
            } @else {
                ul class="plain" {
                    @for w in &online {
                        li {
                            a href={ (base) "/workers#w" (w.id) } { (w.label) }
                            " · last tick " (layout::ago(now, w.last_tick))
                        }
                    }
                }
            }
            p { a href={ (base) "/workers" } { "All workers →" } }
        }
        section {
            h2 { "Purge" }
            form class="inline" method="post" action={ (base) "/execs/purge" } {
                (layout::csrf(&a))
                input type="hidden" name="back" value=(layout::home(base));
                label for="days" { "Delete finished executions older than" }
                input id="days" type="number" name="days" min="0" value="30" required;
                span { "days" }
                button type="submit" class="danger" { "Purge" }
            }
        }
    };
    Ok(layout::page(&a, Nav::Overview, "Overview", body))
}
