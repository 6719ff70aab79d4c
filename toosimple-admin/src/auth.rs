//! Who is asking: the mount prefix, the session cookie, login and logout, and the CSRF check
//! every POST form passes.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Query, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use crate::layout;
use crate::session::{COOKIE as COOKIE_NAME, Flash, Session};
use crate::state::{AppState, error_page};

/// Where the request came from and which session it carries. Never rejects.
pub(crate) struct Req {
    /// The prefix the router is nested under (`/admin`, or empty at the root).
    pub base: String,
    /// Whether the request came over https (directly or through a proxy saying so).
    pub secure: bool,
    /// The live session of its cookie.
    pub session: Option<Session>,
    /// The path and query as the browser sent them.
    pub original: String,
}

/// The prefix of `original` that the nest stripped to leave `inner`.
fn mount_prefix(original: &str, inner: &str) -> String {
    let prefix = if inner == "/" {
        original.trim_end_matches('/')
    } else {
        original.strip_suffix(inner).unwrap_or("")
    };
    prefix.trim_end_matches('/').to_string()
}

fn is_https(parts: &Parts) -> bool {
    if parts.uri.scheme_str() == Some("https") {
        return true;
    }
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

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_string())
}

impl FromRequestParts<AppState> for Req {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let base = mount_prefix(original.path(), parts.uri.path());
        let session = cookie_token(&parts.headers).and_then(|t| state.0.sessions.find(&t));
        Ok(Req {
            base,
            secure: is_https(parts),
            session,
            original: original
                .path_and_query()
                .map_or_else(|| original.path().to_string(), |pq| pq.as_str().to_string()),
        })
    }
}

impl Req {
    /// The `Set-Cookie` value for session token `token` (or clearing it when `None`).
    fn cookie(&self, token: Option<&str>) -> HeaderValue {
        let path = if self.base.is_empty() {
            "/"
        } else {
            &self.base
        };
        let secure = if self.secure { "; Secure" } else { "" };
        let value = match token {
            Some(token) => {
                format!("{COOKIE_NAME}={token}; Path={path}; HttpOnly; SameSite=Strict{secure}")
            }
            None => {
                format!("{COOKIE_NAME}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
            }
        };
        HeaderValue::from_str(&value).expect("cookie values are ASCII")
    }

    /// `target` when it is a path under this admin (no open redirects), else the overview.
    pub(crate) fn local_target(&self, target: Option<&str>) -> String {
        let home = layout::home(&self.base);
        let Some(target) = target.filter(|t| !t.is_empty()) else {
            return home;
        };
        let inside = if self.base.is_empty() {
            target.starts_with('/')
        } else {
            target == self.base
                || target.starts_with(&format!("{}/", self.base))
                || target.starts_with(&format!("{}?", self.base))
        };
        let safe = inside
            && !target.starts_with("//")
            && !target.contains('\\')
            && !target.chars().any(|c| c.is_control());
        if safe { target.to_string() } else { home }
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
}

impl Authed {
    /// The message the previous action left for this page.
    pub(crate) fn take_flash(&self) -> Option<Flash> {
        self.state.0.sessions.take_flash(&self.session.key)
    }

    /// Leaves `flash` for the next page and redirects to `target` (if local).
    pub(crate) fn done(&self, back: Option<&str>, default: &str, flash: Flash) -> Response {
        self.state.0.sessions.set_flash(&self.session.key, flash);
        let req = Req {
            base: self.base.clone(),
            secure: false,
            session: None,
            original: String::new(),
        };
        let target = match back.filter(|b| !b.is_empty()) {
            Some(back) => req.local_target(Some(back)),
            None => default.to_string(),
        };
        see_other(&target)
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
            Some(session) if session.logged_in => Ok(Authed {
                base: req.base,
                session,
                state: state.clone(),
                original: req.original,
            }),
            _ => {
                let next = if parts.method == axum::http::Method::GET {
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

/// The fields of a POST form whose CSRF token matched its session's.
pub(crate) struct ActionForm {
    pub authed: Authed,
    pub fields: Vec<(String, String)>,
}

impl ActionForm {
    /// The first value of field `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of field `name`.
    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        error_page(StatusCode::FORBIDDEN, message),
    )
        .into_response()
}

const CSRF_MESSAGE: &str =
    "this form's security token is missing or out of date: reload the page and submit again";

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

async fn read_body(req: Request, state: &AppState) -> Result<Bytes, Response> {
    Bytes::from_request(req, state)
        .await
        .map_err(IntoResponse::into_response)
}

impl FromRequest<AppState> for ActionForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let authed = Authed::from_request_parts(&mut parts, state).await?;
        let body = read_body(Request::from_parts(parts, body), state).await?;
        let fields = parse_form(&body);
        let submitted = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str());
        match submitted {
            Some(token) if authed.session.csrf_matches(token) => Ok(ActionForm { authed, fields }),
            _ => Err(forbidden(CSRF_MESSAGE)),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the password form (a session is opened to carry its CSRF token).
pub(crate) async fn login_page(
    State(state): State<AppState>,
    req: Req,
    Query(query): Query<LoginQuery>,
) -> Response {
    if req.session.as_ref().is_some_and(|s| s.logged_in) {
        return see_other(&req.local_target(query.next.as_deref()));
    }
    let (session, cookie) = match &req.session {
        Some(session) => (session.clone(), None),
        None => {
            let (token, session) = state.0.sessions.create(false);
            (session, Some(req.cookie(Some(&token))))
        }
    };
    let next = req.local_target(query.next.as_deref());
    let mut response = login_form(&req.base, &session, &next, None).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

fn login_form(
    base: &str,
    session: &Session,
    next: &str,
    error: Option<&str>,
) -> axum::response::Html<String> {
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
    axum::response::Html(markup.into_string())
}

/// `POST /login`: checks the password; success opens a new logged-in session.
pub(crate) async fn login(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let Ok(req) = Req::from_request_parts(&mut parts, &state).await;
    let body = match read_body(Request::from_parts(parts, body), &state).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let fields = parse_form(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(session) = req.session.clone() else {
        return forbidden(
            "no session cookie came with the login form: allow cookies for this site and reload the login page",
        );
    };
    if !field("csrf").is_some_and(|t| session.csrf_matches(&t)) {
        return forbidden(CSRF_MESSAGE);
    }
    let attempt = field("password").unwrap_or_default();
    let password = state.0.config.password.clone();
    let ok = tokio::task::spawn_blocking(move || password.verify(&attempt))
        .await
        .unwrap_or(false);
    let next = req.local_target(field("next").as_deref());
    if ok {
        // A new token on login: a token planted before login is worth nothing after it.
        state.0.sessions.remove(&session.key);
        let (token, _) = state.0.sessions.create(true);
        let mut response = see_other(&next);
        response
            .headers_mut()
            .append(SET_COOKIE, req.cookie(Some(&token)));
        return response;
    }
    {
        let _turn = state.0.failed_logins.lock().await;
        tokio::time::sleep(state.0.config.failed_login_delay).await;
    }
    tracing::warn!("admin: failed login");
    (
        StatusCode::UNAUTHORIZED,
        login_form(&req.base, &session, &next, Some("Wrong password.")),
    )
        .into_response()
}

/// `POST /logout`: ends the session.
pub(crate) async fn logout(State(state): State<AppState>, req: Req, form: ActionForm) -> Response {
    state.0.sessions.remove(&form.authed.session.key);
    let mut response = see_other(&format!("{}/login", req.base));
    response.headers_mut().append(SET_COOKIE, req.cookie(None));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_what_the_nest_stripped() {
        assert_eq!(mount_prefix("/admin/execs", "/execs"), "/admin");
        assert_eq!(mount_prefix("/admin", "/"), "/admin");
        assert_eq!(mount_prefix("/admin/", "/"), "/admin");
        assert_eq!(mount_prefix("/execs", "/execs"), "");
        assert_eq!(mount_prefix("/", "/"), "");
        assert_eq!(mount_prefix("/a/b/tasks", "/tasks"), "/a/b");
    }

    #[test]
    fn redirect_targets_stay_inside_the_admin() {
        let req = Req {
            base: "/admin".into(),
            secure: false,
            session: None,
            original: String::new(),
        };
        assert_eq!(
            req.local_target(Some("/admin/execs?state=failed")),
            "/admin/execs?state=failed"
        );
        assert_eq!(req.local_target(Some("https://evil.example/")), "/admin");
        assert_eq!(req.local_target(Some("//evil.example/admin/")), "/admin");
        assert_eq!(req.local_target(Some("/administrator")), "/admin");
        assert_eq!(req.local_target(None), "/admin");
        let root = Req {
            base: String::new(),
            ..req
        };
        assert_eq!(root.local_target(Some("//evil.example")), "/");
        assert_eq!(root.local_target(Some("/execs")), "/execs");
    }
}
