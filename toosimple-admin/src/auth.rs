//! Who is asking: the mount prefix, the session cookie, login and logout, and the one CSRF
//! check every POST form passes.

use axum::extract::{
    FromRequest, FromRequestParts, NestedPath, OriginalUri, Query, Request, State,
};
use axum::http::header::LOCATION;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::{Form, PrivateCookieJar};
use maud::html;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::layout;
use crate::session::{CookieScope, Flash, Session, now};
use crate::state::{AppState, error_page};
use crate::throttle::Client;

/// Where the request came from and which session it carries. Never rejects.
pub(crate) struct Req {
    /// The prefix the router is nested under (`/admin`, or empty at the root).
    pub base: String,
    /// Where the admin's cookies go.
    pub scope: CookieScope,
    /// The live session of its cookie, logged in or not.
    pub session: Option<Session>,
    /// The request's admin cookies, opened; responses add theirs to it.
    pub jar: PrivateCookieJar,
    /// The path and query as the browser sent them.
    pub original: String,
}

fn is_https(parts: &Parts) -> bool {
    if parts.uri.scheme_str() == Some("https") {
        return true;
    }
    // Trusted as sent: a client that lies about https only gets a cookie its own plain-http
    // connection will not send back.
    let forwarded_proto = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = parts
        .headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split([';', ','])
                .any(|kv| kv.trim().eq_ignore_ascii_case("proto=https"))
        });
    forwarded_proto || forwarded
}

impl FromRequestParts<AppState> for Req {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let base = parts
            .extensions
            .get::<NestedPath>()
            .map(|p| p.as_str().trim_end_matches('/').to_string())
            .unwrap_or_default();
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let Ok(jar) = PrivateCookieJar::from_request_parts(parts, state).await;
        let session = state.0.sessions.find(&jar);
        Ok(Req {
            scope: CookieScope {
                path: layout::home(&base),
                secure: is_https(parts),
            },
            base,
            session,
            jar,
            original: original
                .path_and_query()
                .map_or_else(|| original.path().to_string(), |pq| pq.as_str().to_string()),
        })
    }
}

/// Whether `target` is a path of this admin, mounted at `base`, that a redirect may send the
/// browser to: a path (no scheme, no `//` host, no backslash that browsers read as a slash)
/// under the prefix, with no dot segments to climb out of it.
fn is_local(base: &str, target: &str) -> bool {
    let inside = if base.is_empty() {
        target.starts_with('/')
    } else {
        target == base
            || target.starts_with(&format!("{base}/"))
            || target.starts_with(&format!("{base}?"))
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    let dot_segment = path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    });
    inside
        && !dot_segment
        && !target.contains("//")
        && !target.contains('\\')
        && !target.to_ascii_lowercase().contains("%5c")
        && target.bytes().all(|b| b.is_ascii_graphic())
}

/// `target` when it is a path under this admin (no open redirects), else the overview.
pub(crate) fn local_target(base: &str, target: Option<&str>) -> String {
    match target {
        Some(target) if is_local(base, target) => target.to_string(),
        _ => layout::home(base),
    }
}

/// A `303 See Other` to `location`.
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "bad redirect target").into_response(),
    }
}

/// A logged-in request; anything else is sent to the login page.
pub(crate) struct Authed {
    pub base: String,
    pub session: Session,
    pub state: AppState,
    pub original: String,
    scope: CookieScope,
    /// The request's cookies, with the session sent again when its renewal is due.
    jar: PrivateCookieJar,
}

impl Authed {
    /// The message the previous action left for this page, and the cookies for the response
    /// (which drop that message).
    pub(crate) fn take_flash(&self) -> (PrivateCookieJar, Option<Flash>) {
        self.scope.take_flash(self.jar.clone())
    }

    /// Leaves `flash` for the next page and redirects to `back` (if local), else `default`.
    pub(crate) fn done(&self, back: Option<&str>, default: &str, flash: Flash) -> Response {
        let jar = self.scope.put_flash(self.jar.clone(), flash);
        let target = match back.filter(|b| !b.is_empty()) {
            Some(back) => local_target(&self.base, Some(back)),
            None => default.to_string(),
        };
        (jar, see_other(&target)).into_response()
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(req) = Req::from_request_parts(parts, state).await;
        match req.session {
            Some(session) if session.auth => {
                let now = now();
                let lifetime = state.0.config.session_lifetime;
                let jar = if session.needs_renewal(now, lifetime) {
                    let renewed = Session {
                        seen: now,
                        ..session.clone()
                    };
                    req.scope.put_session(req.jar, &renewed)
                } else {
                    req.jar
                };
                Ok(Authed {
                    base: req.base,
                    session,
                    state: state.clone(),
                    original: req.original,
                    scope: req.scope,
                    jar,
                })
            }
            _ => {
                let next = if parts.method == Method::GET {
                    req.original.clone()
                } else {
                    layout::home(&req.base)
                };
                let query: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                Err(see_other(&format!("{}/login?{query}", req.base)))
            }
        }
    }
}

/// A form that carries a CSRF token in its `csrf` field.
pub(crate) trait CsrfField {
    /// The token the form was sent with (empty when it had none).
    fn csrf(&self) -> &str;
}

/// Implements [`CsrfField`] for form structs with a `csrf: String` field.
macro_rules! csrf_field {
    ($($form:ty),* $(,)?) => {
        $(impl $crate::auth::CsrfField for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
pub(crate) use csrf_field;

/// The fields of a POST form whose CSRF token is its session's: the one check every POST
/// handler passes, login included (the login page opens an anonymous session for it).
///
/// A form without a session, without a readable body, or with another token is a `403`: a
/// page of this admin always sends its session's token, so anything else did not come from
/// one.
pub(crate) struct CsrfForm<T>(pub T);

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        error_page(StatusCode::FORBIDDEN, message),
    )
        .into_response()
}

const CSRF_MESSAGE: &str =
    "this form's security token is missing or out of date: reload the page and submit again";
const NO_SESSION_MESSAGE: &str =
    "no session cookie came with this form: allow cookies for this site and reload the page";

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfField + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Ok(who) = Req::from_request_parts(&mut parts, state).await;
        let Some(session) = who.session else {
            return Err(forbidden(NO_SESSION_MESSAGE));
        };
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|e| forbidden(&format!("{CSRF_MESSAGE} ({})", e.body_text())))?;
        if session.csrf_matches(form.csrf()) {
            Ok(CsrfForm(form))
        } else {
            Err(forbidden(CSRF_MESSAGE))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the password form (an anonymous session is opened to carry its CSRF token).
pub(crate) async fn login_page(req: Req, Query(query): Query<LoginQuery>) -> Response {
    let next = local_target(&req.base, query.next.as_deref());
    let (jar, session) = match req.session {
        Some(session) if session.auth => return see_other(&next),
        Some(session) => (req.jar, session),
        None => {
            let session = Session::new(false);
            (req.scope.put_session(req.jar, &session), session)
        }
    };
    (jar, login_form(&req.base, &session, &next, None)).into_response()
}

fn login_form(base: &str, session: &Session, next: &str, error: Option<&str>) -> Html<String> {
    let markup = layout::bare(
        base,
        "Log in",
        html! {
            form class="login" method="post" action={ (base) "/login" } {
                h1 { "toosimple admin" }
                @if let Some(error) = error {
                    p class="flash error" role="alert" { (error) }
                }
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="next" value=(next);
                label for="password" { "Password" }
                input id="password" type="password" name="password" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        },
    );
    Html(markup.into_string())
}

/// The login form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// The logout button's form.
#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

csrf_field!(LoginForm, LogoutForm);

/// `POST /login`: checks the password in the client's turn; success opens a new logged-in
/// session, failure waits out the delay before giving the turn up.
pub(crate) async fn login(
    State(state): State<AppState>,
    req: Req,
    client: Client,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Response {
    let turn = state.0.throttle.turn(client).await;
    let password = state.0.config.password.clone();
    let attempt = form.password;
    let ok = tokio::task::spawn_blocking(move || password.verify(&attempt))
        .await
        .unwrap_or(false);
    let next = local_target(&req.base, form.next.as_deref());
    if ok {
        drop(turn);
        // A new session (id and token) on login: one planted before it is worth nothing.
        let session = Session::new(true);
        let jar = req.scope.put_session(req.jar, &session);
        return (jar, see_other(&next)).into_response();
    }
    tokio::time::sleep(state.0.config.failed_login_delay).await;
    drop(turn);
    tracing::warn!("admin: failed login from {client}");
    let session = req.session.unwrap_or_else(|| Session::new(false));
    (
        StatusCode::UNAUTHORIZED,
        login_form(&req.base, &session, &next, Some("Wrong password.")),
    )
        .into_response()
}

/// `POST /logout`: ends the session here and drops its cookie.
pub(crate) async fn logout(a: Authed, _: CsrfForm<LogoutForm>) -> Response {
    a.state.0.sessions.revoke(&a.session);
    let jar = a.scope.drop_session(a.jar);
    (jar, see_other(&format!("{}/login", a.base))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_targets_stay_inside_the_admin() {
        let t = |target| local_target("/admin", Some(target));
        assert_eq!(t("/admin/execs?state=failed"), "/admin/execs?state=failed");
        assert_eq!(t("/admin"), "/admin");
        for outside in [
            "https://evil.example/",
            "//evil.example/admin/",
            "/admin//evil.example",
            "/\\evil.example",
            "/admin/\\evil.example",
            "/admin/%5cevil.example",
            "javascript:alert(1)",
            "/administrator",
            "/admin/../evil",
            "/admin/%2E%2e/evil",
            "/admin/x\ny",
            "/admin/ x",
            "",
        ] {
            assert_eq!(t(outside), "/admin", "{outside:?}");
        }
        assert_eq!(local_target("/admin", None), "/admin");
        assert_eq!(local_target("", Some("//evil.example")), "/");
        assert_eq!(local_target("", Some("/execs")), "/execs");
        assert_eq!(local_target("", Some("https://evil.example")), "/");
    }
}
