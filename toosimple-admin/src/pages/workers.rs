//! `GET /workers`: every worker status with its derived state, what it runs now, how many
//! executions it handled since it started, and stop buttons for the running ones.

use axum::response::Response;
use chrono::Utc;
use maud::html;

use crate::auth::Authed;
use crate::layout::{self, Nav};
use crate::state::AppError;

pub(crate) async fn workers(a: Authed) -> Result<Response, AppError> {
    let crate::views::Workers { workers, running } = a
        .state
        .db(|store| Ok(crate::views::workers(store)?))
        .await?;
    let now = Utc::now();
    let base = &a.base;
    let runs = |label: &str| {
        running
            .iter()
            .find(|(worker, _)| worker == label)
            .map_or(0, |(_, n)| *n)
    };
    let body = html! {
        @if workers.is_empty() {
            p class="muted empty" { "No worker has run on this database yet. Start one with " code { "app worker" } "." }
        } @else {
            div class="scroll" {
                table class="workers" {
                    thead { tr {
                        th { "label" } th { "state" } th { "last tick" } th { "queues" }
                        th class="num" { "running" } th class="num" { "handled" }
                        th { "started" } th { "stopped" } th class="num" { "exit code" } th { "heartbeat timeout" }
                    } }
                    tbody {
                        @for w in &workers {
                            @let state = w.state_at(now);
                            tr id={ "w" (w.id) } {
                                td {
                                    (w.label)
                                    @if let Some(cluster) = &w.cluster {
                                        br; span class="muted" { "cluster " (cluster) ", restarted " (w.restarts) "×" }
                                    }
                                }
                                td {
                                    span class={ "badge worker-" (state.as_str()) } { (state.as_str()) }
                                    @if let (Some(request), None) = (w.stop_request, w.stopped) {
                                        br; span class="muted" { (request.as_str()) " asked" }
                                    }
                                    @if w.stopped.is_none() {
                                        form method="post" action={ (base) "/workers/stop" } class="stop" {
                                            (layout::csrf(&a))
                                            input type="hidden" name="label" value=(w.label);
                                            @if w.stop_request.is_none() {
                                                button type="submit" name="mode" value="graceful" class="stop"
                                                    title="finish its running tasks, then exit 0 (as a first SIGINT)" { "Stop" }
                                                " "
                                            }
                                            @if w.stop_request != Some(toosimple_core::StopRequest::Terminate) {
                                                button type="submit" name="mode" value="terminate" class="terminate danger"
                                                    title="interrupt its running tasks, each with a replacement, and exit 77 (as SIGTERM)" { "Terminate" }
                                            }
                                        }
                                    }

                                }
                                td { (layout::time(Some(w.last_tick))) br; span class="muted" { (layout::ago(now, w.last_tick)) } }
                                td {
                                    @if !w.queues.is_empty() { (w.queues.join(", ")) }
                                    @else if !w.excluded_queues.is_empty() { "all but " (w.excluded_queues.join(", ")) }
                                    @else { "all" }
                                }
                                td class="num running" { (runs(&w.label)) }
                                td class="num handled" { (w.handled) }
                                td { (layout::time(Some(w.started))) }
                                td { (layout::time(w.stopped)) }
                                td class="num" { @if let Some(code) = w.exit_code { (code) } @else { span class="muted" { "–" } } }
                                td { (w.heartbeat_timeout) " s" }
                            }
                            @if let Some(log) = &w.exit_log {
                                tr class="log" { td colspan="10" { details { summary { "exit log of " (w.label) } pre { (log) } } } }
                            }
                        }
                    }
                }
            }
            p class="muted" { "A running worker sees a stop at its next heartbeat (its " code { "--tick" } "). From a shell: " code { "app stop LABEL [--terminate] [--wait]" } ", " code { "app ping LABEL" } "." }
        }
    };
    Ok(layout::page(&a, Nav::Workers, "Workers", body))
}
