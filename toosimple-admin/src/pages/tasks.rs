//! `GET /tasks`: the tasks registered in this binary and their options.

use axum::response::Response;
use maud::html;

use crate::auth::Authed;
use crate::layout::{self, Nav};
use crate::state::AppError;

pub(crate) async fn tasks(a: Authed) -> Result<Response, AppError> {
    let tasks = toosimple_core::tasks()?;
    let base = &a.base;
    let body = html! {
        @if tasks.is_empty() {
            p class="muted empty" { "No task is registered in this binary: the admin runs inside the application that defines them." }
        } @else {
            div class="scroll" {
                table class="tasks" {
                    thead { tr {
                        th { "task" } th { "queue" } th class="num" { "priority" } th class="num" { "retries" }
                        th class="num" { "retry delay" } th { "unique" } th class="num" { "timeout" } th { "defined at" }
                    } }
                    tbody {
                        @for t in tasks {
                            tr id={ "t-" (t.name()) } {
                                td { a href={ (base) "/execs?task=" (form_urlencoded::byte_serialize(t.name().as_bytes()).collect::<String>()) } { (t.name()) } }
                                td { (t.queue()) }
                                td class="num" { (t.priority()) }
                                td class="num" { @if t.retries() < 0 { "forever" } @else { (t.retries()) } }
                                td class="num" { (t.retry_delay()) " s" }
                                td { @if t.is_unique() { "yes" } @else { "no" } }
                                td class="num" { @match t.timeout() { Some(s) => { (s) " s" }, None => span class="muted" { "–" } } }
                                td { code { (t.location()) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&a, Nav::Tasks, "Tasks", body))
}
