//! The page skeleton and the small formatting helpers every page uses. maud escapes every
//! `(value)` it renders, so task arguments, results and errors show as text.

use axum::http::header::CACHE_CONTROL;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;
use toosimple_core::State;

use crate::auth::Authed;

/// The overview's URL under `base`.
pub(crate) fn home(base: &str) -> String {
    if base.is_empty() {
        "/".to_string()
    } else {
        base.to_string()
    }
}

/// The sections in the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Execs,
    Schedules,
    Flows,
    Queues,
    Workers,
    Tasks,
}

fn head(base: &str, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="robots" content="noindex";
            title { (title) " · toosimple admin" }
            link rel="stylesheet" href={ (base) "/static/admin.css?v=" (env!("CARGO_PKG_VERSION")) };
        }
    }
}

/// A page without navigation (the login form).
pub(crate) fn bare(base: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(base, title))
            body class="bare" { main { (body) } }
        }
    }
}

/// A logged-in page: navigation, the pending message, the title and `body`.
pub(crate) fn page(a: &Authed, nav: Nav, title: &str, body: Markup) -> Response {
    let base = &a.base;
    let (jar, flash) = a.take_flash();
    let link = |target: Nav, href: String, label: &str| {
        html! {
            a href=(href) aria-current=[(target == nav).then_some("page")] { (label) }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(base, title))
            body {
                header {
                    nav {
                        a class="brand" href=(home(base)) { "toosimple" }
                        (link(Nav::Overview, home(base), "Overview"))
                        (link(Nav::Execs, format!("{base}/execs"), "Executions"))
                        (link(Nav::Schedules, format!("{base}/schedules"), "Schedules"))
                        (link(Nav::Flows, format!("{base}/flows"), "Flows"))
                        (link(Nav::Queues, format!("{base}/queues"), "Queues"))
                        (link(Nav::Workers, format!("{base}/workers"), "Workers"))
                        (link(Nav::Tasks, format!("{base}/tasks"), "Tasks"))
                        form class="logout" method="post" action={ (base) "/logout" } {
                            (csrf(a))
                            button type="submit" class="link" { "Log out" }
                        }
                    }
                }
                main {
                    @if let Some(flash) = flash {
                        p class={ "flash " @if flash.error { "error" } @else { "ok" } } role="status" {
                            (flash.text)
                            @for (i, id) in flash.links.iter().enumerate() {
                                @if i > 0 { "," }
                                " "
                                a href={ (base) "/execs/" (id) } { "#" (id) }
                            }
                            @if flash.more > 0 {
                                " and " (flash.more) " more"
                            }
                        }
                    }
                    h1 { (title) }
                    (body)
                }
                footer { "Times are UTC." }
            }
        }
    };
    (
        jar,
        [(CACHE_CONTROL, "no-store")],
        Html(markup.into_string()),
    )
        .into_response()
}

/// The hidden CSRF field of a POST form.
pub(crate) fn csrf(a: &Authed) -> Markup {
    html! { input type="hidden" name="csrf" value=(a.session.csrf); }
}

/// A state as a coloured badge.
pub(crate) fn state_badge(state: State) -> Markup {
    html! { span class={ "badge state-" (state.as_str()) } { (state.as_str()) } }
}

/// A UTC time to the second, or a dash.
pub(crate) fn time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => html! {
            time datetime=(t.to_rfc3339()) title="UTC" { (t.format("%Y-%m-%d %H:%M:%S")) }
        },
        None => html! { span class="muted" { "–" } },
    }
}

/// How long ago (or in how long) `t` is from `now`, in words.
pub(crate) fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (n, future) = if secs < 0 {
        (-secs, true)
    } else {
        (secs, false)
    };
    let span = if n < 60 {
        format!("{n} s")
    } else if n < 3600 {
        format!("{} min", n / 60)
    } else if n < 86_400 {
        format!("{} h", n / 3600)
    } else {
        format!("{} d", n / 86_400)
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// `value` as indented JSON.
pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }

    #[test]
    fn ages_read_as_words() {
        let now = Utc::now();
        assert_eq!(ago(now, now - chrono::TimeDelta::seconds(5)), "5 s ago");
        assert_eq!(ago(now, now + chrono::TimeDelta::minutes(3)), "in 3 min");
    }
}
