//! `GET /schedules`: each registered schedule with its cron in words, last and next due, an
//! overdue flag and its last execution's state, and a "run now" button.

use std::collections::HashMap;

use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use maud::html;
use toosimple_core::{ScheduleExec, ScheduleState, State};

use crate::auth::Authed;
use crate::layout::{self, Nav};
use crate::state::AppError;

/// How late an occurrence may be before the page calls the schedule overdue: workers
/// materialize schedules once per tick, so a little lateness is normal.
const OVERDUE_GRACE: TimeDelta = TimeDelta::minutes(1);

/// Whether a schedule whose last occurrence was `last_due` should have run again by `now`.
pub(crate) fn overdue(next_due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    next_due.is_some_and(|due| due + OVERDUE_GRACE < now)
}

/// A schedule's last execution: its link and state, or why there is none.
fn last_execution(
    base: &str,
    last_task: Option<i64>,
    states: &HashMap<i64, State>,
) -> maud::Markup {
    html! {
        @match last_task {
            Some(id) => {
                a href={ (base) "/execs/" (id) } { "#" (id) } " "
                @match states.get(&id) {
                    Some(state) => (layout::state_badge(*state)),
                    None => span class="muted" { "deleted" },
                }
            },
            None => span class="muted" { "none yet" },
        }
    }
}

pub(crate) async fn schedules(a: Authed) -> Result<Response, AppError> {
    let crate::views::Schedules {
        rows,
        last_states,
        stored,
    } = a
        .state
        .db(|store| Ok(crate::views::schedules(store)?))
        .await?;
    let defs = toosimple_core::schedules();
    let by_name: HashMap<&str, &ScheduleExec> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
    let now = Utc::now();
    let base = &a.base;
    let orphans: Vec<&ScheduleExec> = rows
        .iter()
        .filter(|r| {
            !stored.iter().any(|s| s.name == r.name)
                && (r.state == ScheduleState::Invalid || !defs.iter().any(|d| d.name() == r.name))
        })
        .collect();
    let body = html! {
        @if defs.is_empty() {
            p class="muted empty" { "No schedule is registered in this binary (add " code { "#[schedule(cron = \"…\")]" } " above a " code { "#[task]" } ")." }
        } @else {
            div class="scroll" {
                table class="schedules" {
                    thead { tr {
                        th { "schedule" } th { "task" } th { "when" } th { "tz" } th { "last due" }
                        th { "next due" } th { "last execution" } th { span class="sr" { "actions" } }
                    } }
                    tbody {
                        @for def in &defs {
                            @let row = by_name.get(def.name()).copied();
                            @let last_due = row.and_then(|r| r.last_due);
                            @let next = match last_due { Some(last) => def.next_due(last), None => def.next_due(now) };
                            @let late = row.is_some() && overdue(next, now);
                            tr id={ "s-" (def.name()) } class=[late.then_some("overdue")] {
                                td { strong { (def.name()) } @if def.catch_up() { br; span class="muted" { "catches up" } } }
                                td { a href={ (base) "/tasks#t-" (def.task()) } { (def.task()) } }
                                td { code { (def.cron()) } br; span class="muted" { (def.describe()) } }
                                td { (def.tz()) }
                                td { (layout::time(last_due)) }
                                td {
                                    @match next {
                                        Some(next) => { (layout::time(Some(next))) br; span class="muted" { (layout::ago(now, next)) } },
                                        None => span class="muted" { "manual" },
                                    }
                                    @if late { " " span class="badge overdue" { "overdue" } }
                                }
                                td { (last_execution(base, row.and_then(|r| r.last_task), &last_states)) }
                                td {
                                    form method="post" action={ (base) "/schedules/run" } {
                                        (layout::csrf(&a))
                                        input type="hidden" name="name" value=(def.name());
                                        button type="submit" { "Run now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Stored at run time" }
        @if stored.is_empty() {
            p class="muted empty" { "None yet: " code { "app schedule add NAME TASK JSON --cron EXPR" } " or " code { "--interval 1h" } " stores one." }
        } @else {
            div class="scroll" {
                table class="schedules stored" {
                    thead { tr {
                        th { "schedule" } th { "task" } th { "when" } th { "only" } th { "last due" }
                        th { "next due" } th class="num" { "left" } th { "last execution" }
                    } }
                    tbody {
                        @for s in &stored {
                            @let row = by_name.get(s.name.as_str()).copied();
                            @let next = if s.paused { None } else { s.next_due(now) };
                            tr id={ "stored-" (s.name) } class=[s.paused.then_some("paused")] {
                                td {
                                    strong { (s.name) } @if s.paused { " " span class="badge paused" { "paused" } }
                                    form method="post" action={ (base) "/schedules/stored" } class="stored-actions" {
                                        (layout::csrf(&a))
                                        input type="hidden" name="name" value=(s.name);
                                        @if s.paused {
                                            button type="submit" name="action" value="resume" { "Resume" }
                                        } @else {
                                            button type="submit" name="action" value="pause" { "Pause" }
                                        }
                                        " "
                                        button type="submit" name="action" value="remove" class="danger" { "Remove" }
                                    }
                                }
                                td { a href={ (base) "/tasks#t-" (s.task) } { (s.task) } br; code class="muted" { (s.args.to_string()) } }
                                td { (s.every.to_string()) br; span class="muted" { "from " (layout::time(Some(s.start))) } }
                                td {
                                    @if let Some(w) = s.between { "between " (w.to_string()) br; }
                                    @if let Some(d) = s.weekdays { "on " (d.to_string()) br; }
                                    @if let Some(end) = s.ends { "until " (layout::time(Some(end))) br; }
                                    @if let Some(q) = &s.queue { "queue " (q) br; }
                                    @if let Some(h) = &s.hook { "hook " code { (h) } }
                                }
                                td { (layout::time(row.filter(|r| r.last_task.is_some()).and_then(|r| r.last_due))) }
                                td {
                                    @match next {
                                        Some(next) => { (layout::time(Some(next))) br; span class="muted" { (layout::ago(now, next)) } },
                                        None => span class="muted" { @if s.paused { "paused" } @else { "none" } },
                                    }
                                }
                                td class="num" { @match s.repeats_left { Some(n) => (n), None => "∞" } }
                                td { (last_execution(base, row.and_then(|r| r.last_task), &last_states)) }
                            }
                        }
                    }
                }
            }
        }
        @if !orphans.is_empty() {
            h2 { "Schedules no longer registered" }
            p class="muted" { "These rows belong to schedules this binary does not define; nothing is enqueued for them." }
            ul class="plain" {
                @for r in &orphans {
                    li { (r.name) " · last due " (layout::time(r.last_due)) }
                }
            }
        }
    };
    Ok(layout::page(&a, Nav::Schedules, "Schedules", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdue_after_the_grace() {
        let now = Utc::now();
        assert!(!overdue(None, now));
        assert!(!overdue(Some(now - TimeDelta::seconds(30)), now));
        assert!(overdue(Some(now - TimeDelta::minutes(5)), now));
        assert!(!overdue(Some(now + TimeDelta::minutes(5)), now));
    }
}
