//! The newsletter site: a sign-up form and the latest subscribers with their welcome email's
//! state, refreshing itself.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use toosimple_core::Store;

use crate::subscribers::{self, SignupError};

/// The site's routes, on `store`, with the admin dashboard at `/admin` when
/// `TOOSIMPLE_ADMIN_PASSWORD` (or `TOOSIMPLE_ADMIN_PASSWORD_HASH`) is set.
pub fn router(store: Store) -> Router {
    let site = site(store.clone());
    match toosimple_admin::AdminConfig::from_env(store) {
        Ok(config) => site.nest("/admin", toosimple_admin::router(config)),
        Err(e) => {
            tracing::info!("no admin dashboard at /admin: {e}");
            site
        }
    }
}

/// Whether [`router`] mounts the admin dashboard.
pub fn admin_enabled() -> bool {
    toosimple_admin::Password::from_env().is_ok()
}

fn site(store: Store) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/subscribers", get(subscriber_list))
        .route("/signup", post(signup))
        .route("/confirm/{token}", get(confirm))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(store)
}

/// The sign-up form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct SignupForm {
    /// The address to subscribe.
    #[serde(default)]
    pub email: String,
    /// What to call them.
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
struct HomeQuery {
    welcome: Option<String>,
}

fn page(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (STYLE) }
                }
                body { (body) }
            }
        }
        .into_string(),
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
form{display:grid;gap:.5rem;max-width:24rem}input,button{font:inherit;padding:.4rem}
.error{color:#b00020;font-weight:bold}.ok{color:#1b5e20}
iframe{width:100%;height:26rem;border:1px solid #ddd}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eee}
.succeeded{color:#1b5e20}.failed,.invalid{color:#b00020}.sleeping,.queued,.processing{color:#8a6d00}";

fn home_page(form: &SignupForm, error: Option<&str>, welcome: Option<&str>) -> Html<String> {
    page(
        "Toosimple Weekly",
        html! {
            h1 { "Toosimple Weekly" }
            p { "Sign up: your row and your welcome email's task are written in one transaction, and a worker sends the email." }
            @if let Some(email) = welcome {
                p.ok { "Thanks! A welcome email to " (shorten(email, MAX_EMAIL)) " is on its way." }
            }
            form method="post" action="/signup" {
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                label { "Email " input type="email" name="email" required maxlength=(MAX_EMAIL) value=(shorten(&form.email, MAX_EMAIL)); }
                label { "Name " input type="text" name="name" maxlength=(MAX_NAME) value=(shorten(&form.name, MAX_NAME)); }
                button type="submit" { "Subscribe" }
            }
            h2 { "Latest subscribers" }
            iframe src="/subscribers" title="Latest subscribers" {}
            p { "The list refreshes itself every 2 seconds. Mail goes to " code { (mail_target()) } "." }
        },
    )
}

fn mail_target() -> String {
    match toosimple_mail::Transport::current() {
        toosimple_mail::Transport::Smtp { url } => {
            let host = url.rsplit('@').next().unwrap_or(&url).to_string();
            if host == url {
                url
            } else {
                format!("smtp://{host}")
            }
        }
        toosimple_mail::Transport::Folder(dir) => format!("{} (.eml files)", dir.display()),
    }
}

async fn home(Query(query): Query<HomeQuery>) -> Html<String> {
    home_page(&SignupForm::default(), None, query.welcome.as_deref())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn subscriber_list(State(store): State<Store>) -> Response {
    let rows = blocking(move || {
        let subs = subscribers::latest(&store, 20)?;
        Ok::<_, toosimple_core::Error>(
            subs.into_iter()
                .map(|s| {
                    let state = s
                        .welcome_exec
                        .and_then(|id| subscribers::welcome_state(&store, id));
                    (s, state)
                })
                .collect::<Vec<_>>(),
        )
    })
    .await;
    let rows = match rows {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return (StatusCode::SERVICE_UNAVAILABLE, e.report()).into_response(),
        Err(response) => return response,
    };
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="2";
                style { (STYLE) }
            }
            body style="margin:0" {
                @if rows.is_empty() {
                    p { "No subscribers yet." }
                } @else {
                    table {
                        tr { th { "#" } th { "email" } th { "name" } th { "signed up" } th { "confirmed" } th { "welcome email" } }
                        @for (sub, state) in &rows {
                            tr {
                                td { (sub.id) }
                                td { (sub.email) }
                                td { (sub.name) }
                                td { (sub.created.format("%H:%M:%S")) }
                                td { @if sub.confirmed { "yes" } @else { "no" } }
                                @match state {
                                    Some((state, exec)) => td class=(state.as_str()) title=[exec.error.as_deref()] {
                                        (state.as_str()) " (#" (exec.id) ")"
                                    },
                                    None => td { "—" },
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Html(body.into_string()).into_response()
}

/// The longest address SMTP carries (RFC 5321's 256-octet path, less its brackets).
const MAX_EMAIL: usize = 254;
/// The longest name a subscriber may give.
const MAX_NAME: usize = 100;
/// How much of a refused address an error message quotes.
const QUOTED_EMAIL: usize = 60;

/// `text`, cut to `max` characters (the last one an ellipsis) when longer: what the page echoes
/// of the user's input, so that a 10,000-character field does not come back whole.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Checks the form; the cleaned address and name, or what to fix.
pub fn validate(form: &SignupForm) -> Result<(String, String), String> {
    let email = form.email.trim();
    if email.is_empty() {
        return Err("Please enter your email address.".into());
    }
    let length = email.chars().count();
    if length > MAX_EMAIL {
        return Err(format!(
            "{:?} is not an email address: it has {length} characters, and an address has at \
             most {MAX_EMAIL}.",
            shorten(email, QUOTED_EMAIL)
        ));
    }
    if email.parse::<lettre::Address>().is_err() {
        return Err(format!(
            "{:?} is not an email address.",
            shorten(email, QUOTED_EMAIL)
        ));
    }
    let name = form.name.trim();
    let name = if name.is_empty() {
        email.split('@').next().unwrap_or(email)
    } else {
        name
    };
    if name.chars().count() > MAX_NAME {
        return Err(format!(
            "Please use a name of at most {MAX_NAME} characters."
        ));
    }
    Ok((email.to_lowercase(), name.to_string()))
}

async fn signup(State(store): State<Store>, Form(form): Form<SignupForm>) -> Response {
    let (email, name) = match validate(&form) {
        Ok(clean) => clean,
        Err(message) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                home_page(&form, Some(&message), None),
            )
                .into_response();
        }
    };
    let result = {
        let email = email.clone();
        blocking(move || subscribers::sign_up(&store, &email, &name)).await
    };
    match result {
        Ok(Ok(_)) => {
            let target: String = form_urlencoded_email(&email);
            Redirect::to(&format!("/?welcome={target}")).into_response()
        }
        Ok(Err(e @ SignupError::Duplicate(_))) => (
            StatusCode::CONFLICT,
            home_page(
                &form,
                Some(&format!("{e}. Check your inbox for the welcome email.")),
                None,
            ),
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!("sign-up failed: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                home_page(&form, Some(&e.to_string()), None),
            )
                .into_response()
        }
        Err(response) => response,
    }
}

fn form_urlencoded_email(email: &str) -> String {
    email
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn confirm(State(store): State<Store>, Path(token): Path<String>) -> Response {
    match blocking(move || subscribers::confirm(&store, &token)).await {
        Ok(Ok(Some(email))) => page(
            "Confirmed",
            html! { h1 { "Confirmed" } p { (email) " will receive the morning digest." } p { a href="/" { "Back" } } },
        )
        .into_response(),
        Ok(Ok(None)) => (
            StatusCode::NOT_FOUND,
            page("Unknown link", html! { h1 { "Unknown link" } p { "This confirmation link is not valid (unconfirmed sign-ups are deleted after a day)." } }),
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e.report()).into_response(),
        Err(response) => response,
    }
}
