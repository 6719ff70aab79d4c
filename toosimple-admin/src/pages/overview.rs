//! `GET /`: counts per state and queue, the last hour's chart, the online workers, and the
//! purge form.

use std::collections::BTreeMap;

use axum::response::Response;
use chrono::Utc;
use maud::html;
use toosimple_core::{Count, State, WorkerStatus};

use crate::auth::Authed;
use crate::chart;
use crate::layout::{self, Nav};
use crate::state::AppError;
use crate::views;

/// What an estimated count says when hovered.
const ESTIMATED: &str = "an estimate: more executions than the page counts one by one";

pub(crate) async fn overview(a: Authed) -> Result<Response, AppError> {
    let now = Utc::now();
    let exact_up_to = a.state.0.config.exact_counts_up_to;
    let views::Overview {
        counts,
        workers,
        last_hour: hour,
        unknown,
    } = a
        .state
        .db(move |store| Ok(views::overview(store, now, exact_up_to)?))
        .await?;
    let mut per_queue: BTreeMap<&str, BTreeMap<State, Count>> = BTreeMap::new();
    for c in &counts.per_queue {
        *per_queue
            .entry(&c.queue)
            .or_default()
            .entry(c.state)
            .or_default() += c.shown();
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
                @let count = counts.state(state);
                a class={ "card state-" (state.as_str()) } href=(execs(&[("state", state.as_str())])) {
                    @if count.approximate {
                        span class="count approximate" title=(ESTIMATED) { (count) }
                    } @else {
                        span class="count" { (count) }
                    }
                    span class="what" { (state.as_str()) }
                }
            }
        }
        @if counts.any_approximate() {
            p class="muted approximate-note" {
                "≈: an estimate. A state with more than " (counts.exact_up_to) " executions is not counted row by row (that would read the whole table at each visit): "
                "its total comes from the database's statistics, and its split per queue from its newest " (counts.exact_up_to) "."
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
                                                Some(n) if n.approximate => a class="approximate" title=(ESTIMATED) href=(execs(&[("state", state.as_str()), ("queue", queue)])) { (n) },
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
