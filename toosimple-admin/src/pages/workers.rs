//! `GET /workers`: every worker status with its derived state.

use axum::response::Response;
use chrono::Utc;
use maud::html;
use toosimple_core::WorkerStatus;

use crate::auth::Authed;
use crate::layout::{self, Nav};
use crate::state::AppError;

pub(crate) async fn workers(a: Authed) -> Result<Response, AppError> {
    let workers = a
        .state
        .db(|store| Ok(WorkerStatus::list_in(store)?))
        .await?;
    let now = Utc::now();
    let body = html! {
        @if workers.is_empty() {
            p class="muted empty" { "No worker has run on this database yet. Start one with " code { "app worker" } "." }
        } @else {
            div class="scroll" {
                table class="workers" {
                    thead { tr {
                        th { "label" } th { "state" } th { "last tick" } th { "queues" }
                        th { "started" } th { "stopped" } th class="num" { "exit code" } th { "heartbeat timeout" }
                    } }
                    tbody {
                        @for w in &workers {
                            @let state = w.state_at(now);
                            tr id={ "w" (w.id) } {
                                td { (w.label) }
                                td { span class={ "badge worker-" (state.as_str()) } { (state.as_str()) } }
                                td { (layout::time(Some(w.last_tick))) br; span class="muted" { (layout::ago(now, w.last_tick)) } }
                                td {
                                    @if !w.queues.is_empty() { (w.queues.join(", ")) }
                                    @else if !w.excluded_queues.is_empty() { "all but " (w.excluded_queues.join(", ")) }
                                    @else { "all" }
                                }
                                td { (layout::time(Some(w.started))) }
                                td { (layout::time(w.stopped)) }
                                td class="num" { @if let Some(code) = w.exit_code { (code) } @else { span class="muted" { "–" } } }
                                td { (w.heartbeat_timeout) " s" }
                            }
                            @if let Some(log) = &w.exit_log {
                                tr class="log" { td colspan="8" { details { summary { "exit log of " (w.label) } pre { (log) } } } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&a, Nav::Workers, "Workers", body))
}
