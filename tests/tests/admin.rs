//! The admin dashboard (toosimple-admin): every page and action through `tower::ServiceExt::oneshot`
//! on SQLite and PostgreSQL, the executions page on 100,000 rows, and a real headless Chromium
//! driven through chromedriver.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::{NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use http_body_util::BodyExt;
use serde_json::json;
use toosimple_admin::{AdminConfig, Password, ROUTES, Secret, router};
use toosimple_core::schema::{task_execs::dsl as te, worker_statuses::dsl as ws};
use toosimple_core::{AnyConnection, State, TaskExec, TaskExecFilter};
use toosimple_tests::tasks::{add, fail_with, failing_hook, morning, send, shout};
use toosimple_tests::{TestDb, backend_suite, wait_until};
use tower::ServiceExt;

backend_suite!(
    every_route_needs_a_session,
    wrong_password_opens_no_session,
    login_sets_a_strict_http_only_cookie_and_logout_ends_it,
    cookies_are_http_only_strict_and_secure_behind_https,
    every_post_without_a_valid_token_is_forbidden,
    overview_shows_counts_chart_and_online_workers,
    executions_filter_search_and_page,
    execution_page_shows_everything_and_the_replaced_by_chain,
    requeue_one_and_many_reports_the_new_ids,
    cancel_cancels_only_pending_executions,
    delete_removes_executions,
    purge_deletes_finished_executions_older_than_n_days,
    schedules_page_and_run_now,
    workers_page_shows_state_exit_code_and_log,
    workers_page_shows_running_and_handled_and_stops_a_worker,
    metrics_need_the_token_or_a_session_and_show_queue_depths,
    schedules_page_lists_stored_schedules_and_pauses_resumes_and_removes_them,
    queues_page_pauses_resumes_and_sets,
    tasks_page_lists_options,
    user_data_is_html_escaped_on_every_page,
    works_at_the_root_and_under_any_prefix,
    stylesheet_is_served_and_pages_forbid_scripts,
    executions_page_stays_fast_with_100k_rows,
    admin_subcommand_refuses_to_start_without_a_password,
    admin_subcommand_serves_the_dashboard_until_sigterm,
    overview_marks_estimated_counts_and_says_what_they_are,
    view_counts_are_exact_up_to_the_limit_and_estimated_beyond,
    keyset_pages_walk_every_row_once_newest_first,
);

const PASSWORD: &str = "correct horse battery staple";
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(300);
/// The cookie that holds the session.
const SESSION: &str = "toosimple_admin_session";

/// A secret for routers that must share sessions.
fn secret(fill: u8) -> Secret {
    Secret::from_bytes(&[fill; 64]).unwrap()
}

/// A response, read whole.
struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Resp {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// The value of the first `name="csrf"` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in:\n{}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "body:\n{}", self.body);
        self
    }
}

/// A browser-like client of the admin router: keeps the cookies, calls the router through
/// `oneshot` (no socket), from the address `peer` when set.
struct Client {
    rt: tokio::runtime::Runtime,
    app: Router,
    prefix: String,
    cookies: BTreeMap<String, String>,
    csrf: String,
    peer: Option<SocketAddr>,
}

impl Client {
    fn new(db: &TestDb) -> Client {
        Client::mounted(db, "/admin")
    }

    /// The admin nested under `prefix` (or at the root for "").
    fn mounted(db: &TestDb, prefix: &str) -> Client {
        Client::with_config(config(db), prefix)
    }

    fn with_config(config: AdminConfig, prefix: &str) -> Client {
        let admin = router(config);
        let app = if prefix.is_empty() {
            admin
        } else {
            Router::new().nest(prefix, admin)
        };
        Client {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            app,
            prefix: prefix.to_string(),
            cookies: BTreeMap::new(),
            csrf: String::new(),
            peer: None,
        }
    }

    /// The session cookie, as `name=value`.
    fn session(&self) -> Option<String> {
        self.cookies.get(SESSION).map(|v| format!("{SESSION}={v}"))
    }

    /// Sets (or drops) the session cookie, given as `name=value`.
    fn set_session(&mut self, cookie: Option<String>) {
        match cookie {
            Some(cookie) => {
                let (_, value) = cookie.split_once('=').unwrap();
                self.cookies.insert(SESSION.to_string(), value.to_string());
            }
            None => {
                self.cookies.remove(SESSION);
            }
        }
    }

    /// The URL of `path` under the prefix; the overview `/` is the bare prefix (axum's `nest`
    /// does not route `/admin/` to the nested `/`).
    fn url(&self, path: &str) -> String {
        if path == "/" && !self.prefix.is_empty() {
            return self.prefix.clone();
        }
        format!("{}{path}", self.prefix)
    }

    fn send(&mut self, request: Request<Body>) -> Resp {
        let response = self
            .rt
            .block_on(self.app.clone().oneshot(request))
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = self
            .rt
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        for cookie in headers.get_all(header::SET_COOKIE) {
            let cookie = cookie.to_str().unwrap();
            let (name, value) = cookie.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Resp {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    fn request(&self, method: &str, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder().method(method).uri(self.url(path));
        if !self.cookies.is_empty() {
            let cookies: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            builder = builder.header(header::COOKIE, cookies.join("; "));
        }
        if let Some(peer) = self.peer {
            builder = builder.extension(ConnectInfo(peer));
        }
        builder
    }

    fn get(&mut self, path: &str) -> Resp {
        let request = self.request("GET", path).body(Body::empty()).unwrap();
        self.send(request)
    }

    /// POSTs `fields` as a form, as they are (no CSRF token added).
    fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let body = form_body(fields);
        let request = self
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(request)
    }

    /// POSTs `fields` with the session's CSRF token.
    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all)
    }

    /// POSTs an action and follows its redirect; returns the page it lands on.
    fn act(&mut self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let done = self.post(path, fields);
        assert_eq!(done.status, StatusCode::SEE_OTHER, "body:\n{}", done.body);
        let location = done.location().to_string();
        let target = location
            .strip_prefix(&self.prefix)
            .unwrap_or_else(|| panic!("{location} is under {}", self.prefix))
            .to_string();
        let target = if target.is_empty() {
            "/".to_string()
        } else {
            target
        };
        let page = self.get(&target);
        page.assert_ok();
        page
    }

    fn try_login(&mut self, password: &str) -> Resp {
        let page = self.get("/login");
        page.assert_ok();
        let csrf = page.csrf();
        self.post_raw(
            "/login",
            &[("csrf", &csrf), ("password", password), ("next", "")],
        )
    }

    fn login(mut self) -> Client {
        let done = self.try_login(PASSWORD);
        assert_eq!(done.status, StatusCode::SEE_OTHER, "body:\n{}", done.body);
        let home = self.get("/");
        home.assert_ok();
        self.csrf = home.csrf();
        self
    }
}

/// The tests' configuration: short failed-login delay, small pages, and no secret (each
/// router makes up its own, as without `TOOSIMPLE_ADMIN_SECRET`).
fn config(db: &TestDb) -> AdminConfig {
    AdminConfig::new(db.store.clone(), Password::plain(PASSWORD))
        .failed_login_delay(FAILED_LOGIN_DELAY)
        .page_size(5)
}

fn form_body(fields: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(&encode(k));
        s.push('=');
        s.push_str(&encode(v));
    }
    s
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn exec(db: &TestDb, id: i64) -> TaskExec {
    TaskExec::get_in(&db.store, id).unwrap()
}

fn all_execs(db: &TestDb) -> Vec<TaskExec> {
    TaskExec::list_in(&db.store, &TaskExecFilter::default().limit(10_000)).unwrap()
}

/// Adds a worker status row as a running (or stopped) worker would leave it.
fn insert_worker(
    db: &TestDb,
    label: &str,
    last_tick: NaiveDateTime,
    stopped: Option<(i32, Option<&str>)>,
) {
    let mut conn = db.store.connection().unwrap();
    diesel::insert_into(ws::worker_statuses)
        .values((
            ws::label.eq(label),
            ws::queues.eq("[\"default\",\"emails\"]"),
            ws::excluded_queues.eq("[]"),
            ws::timeout.eq(300.0),
            ws::last_tick.eq(last_tick),
            ws::started.eq(last_tick - TimeDelta::minutes(5)),
            ws::stopped.eq(stopped.map(|_| last_tick)),
            ws::exit_code.eq(stopped.map(|(code, _)| code)),
            ws::exit_log.eq(stopped.and_then(|(_, log)| log)),
        ))
        .execute(&mut *conn)
        .unwrap();
}

fn sets_finished(db: &TestDb, id: i64, state: State, finished: NaiveDateTime) {
    let mut conn = db.store.connection().unwrap();
    diesel::update(te::task_execs.find(id))
        .set((
            te::state.eq(state.as_str()),
            te::started.eq(finished - TimeDelta::seconds(1)),
            te::finished.eq(finished),
        ))
        .execute(&mut *conn)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Security

fn wrong_password_opens_no_session(db: &TestDb) {
    let mut client = Client::new(db);
    let started = Instant::now();
    let r = client.try_login("wrong password");
    assert!(
        started.elapsed() >= FAILED_LOGIN_DELAY,
        "a failed login waits"
    );
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong password."));
    assert!(r.set_cookies().is_empty(), "no new session cookie");
    let r = client.get("/");
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/admin/login"));
    // An empty password is wrong too.
    let r = client.try_login("");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(client.get("/tasks").status, StatusCode::SEE_OTHER);
}

fn login_sets_a_strict_http_only_cookie_and_logout_ends_it(db: &TestDb) {
    let mut client = Client::new(db);
    let login_page = client.get("/login?next=%2Fadmin%2Fworkers");
    let anonymous = client.session().expect("the login page opens a session");
    let csrf = login_page.csrf();
    let r = client.post_raw(
        "/login",
        &[
            ("csrf", &csrf),
            ("password", PASSWORD),
            ("next", "/admin/workers"),
        ],
    );
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/admin/workers");
    let cookie = &r.set_cookies()[0];
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("; Path=/admin"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert_ne!(
        client.session(),
        Some(anonymous.clone()),
        "a new token on login"
    );
    client.get("/workers").assert_ok();

    // The token from before login is worth nothing.
    let logged_in = client.session();
    client.set_session(Some(anonymous));
    assert_eq!(client.get("/workers").status, StatusCode::SEE_OTHER);
    client.set_session(logged_in);

    // An open redirect is refused.
    let mut other = Client::new(db);
    let page = other.get("/login");
    let csrf = page.csrf();
    let r = other.post_raw(
        "/login",
        &[
            ("csrf", &csrf),
            ("password", PASSWORD),
            ("next", "https://evil.example/"),
        ],
    );
    assert_eq!(r.location(), "/admin");

    client.csrf = client.get("/").csrf();
    let token = client.session();
    let r = client.post("/logout", &[]);
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/admin/login");
    assert!(r.set_cookies()[0].contains("Max-Age=0"));
    assert!(client.session().is_none());
    // A copy of the cookie no longer works either.
    client.set_session(token);
    assert_eq!(client.get("/").status, StatusCode::SEE_OTHER);
}

/// Every (method, path, public) of the router, with `{id}` filled in.
fn every_route(id: i64) -> Vec<(&'static str, String, bool)> {
    ROUTES
        .iter()
        .flat_map(|route| {
            let path = route.path.replace("{id}", &id.to_string());
            route
                .methods
                .iter()
                .map(move |method| (*method, path.clone(), route.public))
        })
        .collect()
}

/// Sends `method path` with `fields` (a form for a POST); panics on a method the test does
/// not know, so that a new one gets a thought.
fn call(client: &mut Client, method: &str, path: &str, fields: &[(&str, &str)]) -> Resp {
    match method {
        "GET" => client.get(path),
        "POST" => client.post_raw(path, fields),
        other => panic!("no test sends {other} {path}: add it to `call`"),
    }
}

fn every_route_needs_a_session(db: &TestDb) {
    let id = add::queue(1, 2).unwrap().id();
    let id_text = id.to_string();
    // The only routes without a session: a new public route must be listed here on purpose.
    let public: Vec<&str> = ROUTES.iter().filter(|r| r.public).map(|r| r.path).collect();
    assert_eq!(public, ["/login", "/static/admin.css"]);
    let config = || config(db).secret(secret(1));
    let other_secret = Client::with_config(config().secret(secret(2)), "/admin")
        .login()
        .session();
    let garbage = Some(format!("{SESSION}=bm90IGEgc2Vzc2lvbg"));
    for who in ["no cookie", "anonymous", "another secret", "garbage"] {
        let mut client = Client::with_config(config(), "/admin");
        let csrf = match who {
            "anonymous" => client.get("/login").csrf(),
            "another secret" => {
                client.set_session(other_secret.clone());
                String::new()
            }
            "garbage" => {
                client.set_session(garbage.clone());
                String::new()
            }
            _ => String::new(),
        };
        let fields = [
            ("csrf", csrf.as_str()),
            ("id", id_text.as_str()),
            ("days", "0"),
            ("name", "morning"),
        ];
        for (method, path, public) in every_route(id) {
            if public {
                continue;
            }
            let r = call(&mut client, method, &path, &fields);
            let to_login =
                r.status == StatusCode::SEE_OTHER && r.location().starts_with("/admin/login?next=");
            assert!(
                to_login
                    || r.status == StatusCode::UNAUTHORIZED
                    || r.status == StatusCode::FORBIDDEN,
                "{who}: {method} {path} answered {} {}",
                r.status,
                r.location()
            );
            if method == "GET" {
                let next = client.url(&path);
                assert_eq!(
                    r.location(),
                    format!("/admin/login?next={}", encode(&next)),
                    "{who}: {method} {path} comes back after login"
                );
            }
        }
    }
    // Nothing happened.
    assert_eq!(all_execs(db).len(), 1);
    assert_eq!(exec(db, id).state, State::Queued);
    // The next= of a page with a query.
    let mut client = Client::new(db);
    let r = client.get("/execs?state=failed");
    assert_eq!(
        r.location(),
        "/admin/login?next=%2Fadmin%2Fexecs%3Fstate%3Dfailed"
    );
    // The public routes answer without a session.
    let login = client.get("/login");
    login.assert_ok();
    assert!(login.body.contains("type=\"password\""));
    client.get("/static/admin.css").assert_ok();
}

fn every_post_without_a_valid_token_is_forbidden(db: &TestDb) {
    let id = fail_with::queue("x".into()).unwrap().id();
    db.run_by_hand(id);
    let id_text = id.to_string();
    let mut client = Client::new(db);
    let before_login = client.get("/login").csrf();
    let mut client = client.login();
    let other = Client::new(db).login();
    let posts: Vec<String> = every_route(id)
        .into_iter()
        .filter(|(method, _, _)| *method == "POST")
        .map(|(_, path, _)| path)
        .collect();
    assert!(
        posts.contains(&"/login".to_string()) && posts.len() >= 7,
        "{posts:?}"
    );
    let fields = [
        ("id", id_text.as_str()),
        ("days", "0"),
        ("name", "morning"),
        ("password", PASSWORD),
    ];
    for path in &posts {
        for (what, token) in [
            ("no token", None),
            ("an empty token", Some("")),
            ("a wrong token", Some("0123456789abcdef")),
            ("another session's token", Some(other.csrf.as_str())),
            ("the token from before login", Some(before_login.as_str())),
            (
                "the token with a byte more",
                Some(&*format!("{}0", client.csrf)),
            ),
        ] {
            let mut all: Vec<(&str, &str)> = token.map(|t| ("csrf", t)).into_iter().collect();
            all.extend_from_slice(&fields);
            let r = client.post_raw(path, &all);
            assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path} with {what}");
            assert!(r.body.contains("security token"), "{path}: {}", r.body);
        }
        // Not a form at all.
        let request = client
            .request("POST", path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(r#"{{"id": {id}, "days": 0}}"#)))
            .unwrap();
        assert_eq!(
            client.send(request).status,
            StatusCode::FORBIDDEN,
            "JSON to {path}"
        );
    }
    // Nothing was requeued, deleted or purged, and the session still works.
    assert_eq!(all_execs(db).len(), 1);
    client.get("/").assert_ok();
    // The login form checks its token too, against the login page's anonymous session.
    let mut fresh = Client::new(db);
    fresh.get("/login");
    let r = fresh.post_raw("/login", &[("csrf", "nope"), ("password", PASSWORD)]);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(fresh.get("/").status, StatusCode::SEE_OTHER);
    // Without any session cookie, the login form is refused with the reason.
    let mut cookieless = Client::new(db);
    let r = cookieless.post_raw("/login", &[("csrf", "x"), ("password", PASSWORD)]);
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("cookie"));
    // With the right token each POST route does its work (the checks above are not vacuous).
    for path in posts
        .iter()
        .filter(|p| !p.ends_with("/login") && !p.ends_with("/logout"))
    {
        let r = client.post(path, &fields);
        assert_eq!(r.status, StatusCode::SEE_OTHER, "POST {path}: {}", r.body);
    }
}

/// Whether a redirect to `location` stays on this site, under `/admin`.
fn on_site(location: &str) -> bool {
    (location == "/admin" || location.starts_with("/admin/") || location.starts_with("/admin?"))
        && !location.contains("//")
        && !location.contains('\\')
}

const OFF_SITE: &[&str] = &[
    "https://evil.example",
    "https://evil.example/admin",
    "http:/evil.example",
    "//evil.example",
    "//evil.example/admin",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/admin/\\evil.example",
    "/admin//evil.example",
    "/admin/../..//evil.example",
    "/admin/%2e%2e/%2e%2e//evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)//%0a/admin",
    "data:text/html,<script>alert(1)</script>",
    " /admin",
    "/admin\r\nLocation: https://evil.example",
    "%2F%2Fevil.example",
    "/administrator",
    "evil.example",
];

#[test]
fn next_never_redirects_off_site() {
    let db = TestDb::sqlite();
    let mut anonymous = Client::new(&db);
    let mut client = Client::new(&db).login();
    for evil in OFF_SITE {
        // The login page puts only a local target in its form.
        let page = anonymous.get(&format!("/login?next={}", encode(evil)));
        page.assert_ok();
        assert!(
            page.body.contains(r#"name="next" value="/admin">"#),
            "{evil:?}: {}",
            page.body
        );
        // Logging in with it lands on the overview.
        let mut fresh = Client::new(&db);
        let csrf = fresh.get("/login").csrf();
        let r = fresh.post_raw(
            "/login",
            &[("csrf", &csrf), ("password", PASSWORD), ("next", evil)],
        );
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), "/admin", "login with next={evil:?}");
        // Already logged in, the login page redirects at once.
        let r = client.get(&format!("/login?next={}", encode(evil)));
        assert_eq!(
            r.location(),
            "/admin",
            "logged-in login page, next={evil:?}"
        );
        // The actions' back= too.
        for (action, fields) in [
            ("/execs/requeue", vec![("back", *evil)]),
            ("/execs/purge", vec![("days", "3650"), ("back", *evil)]),
            ("/schedules/run", vec![("name", "nope"), ("back", *evil)]),
        ] {
            let r = client.post(action, &fields);
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}: {}", r.body);
            assert!(
                on_site(r.location()),
                "{action} back={evil:?} → {}",
                r.location()
            );
        }
    }
    // Local targets are kept.
    let mut fresh = Client::new(&db);
    let csrf = fresh.get("/login").csrf();
    let r = fresh.post_raw(
        "/login",
        &[
            ("csrf", &csrf),
            ("password", PASSWORD),
            ("next", "/admin/execs?state=failed"),
        ],
    );
    assert_eq!(r.location(), "/admin/execs?state=failed");
    // At the root, the same.
    let mut root = Client::mounted(&db, "");
    let csrf = root.get("/login").csrf();
    let r = root.post_raw(
        "/login",
        &[
            ("csrf", &csrf),
            ("password", PASSWORD),
            ("next", "//evil.example"),
        ],
    );
    assert_eq!(r.location(), "/");
}

fn cookies_are_http_only_strict_and_secure_behind_https(db: &TestDb) {
    for https in [false, true] {
        let mut client = Client::new(db);
        let mut seen = Vec::new();
        let mut send = |client: &mut Client, method: &str, path: &str, fields: &[(&str, &str)]| {
            let mut builder = client.request(method, path);
            if https {
                builder = builder.header("x-forwarded-proto", "https");
            }
            let request = if method == "POST" {
                builder
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form_body(fields)))
            } else {
                builder.body(Body::empty())
            }
            .unwrap();
            let r = client.send(request);
            seen.extend(r.set_cookies());
            r
        };
        let csrf = send(&mut client, "GET", "/login", &[]).csrf();
        let r = send(
            &mut client,
            "POST",
            "/login",
            &[("csrf", &csrf), ("password", PASSWORD)],
        );
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let csrf = send(&mut client, "GET", "/", &[]).csrf();
        // An action leaves a message in the flash cookie; the next page drops it.
        let r = send(&mut client, "POST", "/execs/requeue", &[("csrf", &csrf)]);
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(client.cookies.contains_key("toosimple_admin_flash"));
        send(&mut client, "GET", "/execs", &[]);
        assert!(!client.cookies.contains_key("toosimple_admin_flash"));
        send(&mut client, "POST", "/logout", &[("csrf", &csrf)]);
        let names: Vec<&str> = seen.iter().map(|c| c.split('=').next().unwrap()).collect();
        assert!(
            names.contains(&SESSION) && names.contains(&"toosimple_admin_flash"),
            "{seen:?}"
        );
        for cookie in &seen {
            assert!(cookie.contains("; Path=/admin"), "{cookie}");
            if cookie.contains("Max-Age=0") {
                continue; // a removal: its value is empty
            }
            assert!(cookie.contains("; HttpOnly"), "{cookie}");
            assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
            assert_eq!(
                cookie.contains("; Secure"),
                https,
                "https={https}: {cookie}"
            );
            assert!(!cookie.contains("Domain="), "{cookie}");
        }
    }
    // `Forwarded: proto=https` counts too.
    let mut client = Client::new(db);
    let request = client
        .request("GET", "/login")
        .header("forwarded", "for=10.0.0.1;proto=https")
        .body(Body::empty())
        .unwrap();
    assert!(client.send(request).set_cookies()[0].contains("; Secure"));
}

#[test]
fn sessions_hold_across_routers_with_the_same_secret() {
    let db = TestDb::sqlite();
    let replica = || Client::with_config(config(&db).secret(secret(7)), "/admin");
    // The login page from one replica, the login posted to another.
    let mut a = replica();
    let csrf = a.get("/login").csrf();
    let mut b = replica();
    b.cookies = a.cookies.clone();
    let r = b.post_raw("/login", &[("csrf", &csrf), ("password", PASSWORD)]);
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // The session works on the first replica, and on a router started afresh ("a restart").
    a.cookies = b.cookies.clone();
    let page = a.get("/");
    page.assert_ok();
    let mut restarted = replica();
    restarted.cookies = a.cookies.clone();
    restarted.get("/tasks").assert_ok();
    // A form from one replica is accepted by another, and its message shows on a third.
    a.csrf = page.csrf();
    let r = a.post("/execs/purge", &[("days", "1")]);
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    restarted.cookies = a.cookies.clone();
    assert!(restarted.get("/execs").body.contains("Purged 0 executions"));
    // A router with another secret refuses the session, and a tampered cookie is refused.
    let mut other = Client::with_config(config(&db).secret(secret(8)), "/admin");
    other.cookies = a.cookies.clone();
    assert_eq!(other.get("/tasks").status, StatusCode::SEE_OTHER);
    let mut tampered = replica();
    let mut value = a.cookies[SESSION].clone().into_bytes();
    let last = value.len() - 3;
    value[last] = if value[last] == b'A' { b'B' } else { b'A' };
    tampered.set_session(Some(format!(
        "{SESSION}={}",
        String::from_utf8(value).unwrap()
    )));
    assert_eq!(tampered.get("/tasks").status, StatusCode::SEE_OTHER);
    // A logged-out session is refused by the router that logged it out.
    let cookie = a.session();
    a.post("/logout", &[]);
    a.set_session(cookie);
    assert_eq!(a.get("/tasks").status, StatusCode::SEE_OTHER);
}

#[test]
fn failed_logins_are_slowed_per_client() {
    let db = TestDb::sqlite();
    let delay = FAILED_LOGIN_DELAY;
    let mut a = Client::new(&db);
    a.peer = Some("192.0.2.1:50000".parse().unwrap());
    let mut b = Client {
        app: a.app.clone(),
        ..Client::new(&db)
    };
    b.peer = Some("198.51.100.2:50000".parse().unwrap());
    let csrf_a = a.get("/login").csrf();
    let csrf_b = b.get("/login").csrf();
    let attempt = |client: &Client, csrf: &str, password: &str| {
        client
            .request("POST", "/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form_body(&[
                ("csrf", csrf),
                ("password", password),
            ])))
            .unwrap()
    };
    let wrong: Vec<_> = (0..6)
        .map(|i| attempt(&a, &csrf_a, &format!("guess {i}")))
        .collect();
    let b_wrong = attempt(&b, &csrf_b, "guess");
    let a_right = attempt(&a, &csrf_a, PASSWORD);
    let app = a.app.clone();
    a.rt.block_on(async move {
        let started = Instant::now();
        let guesses: Vec<_> = wrong
            .into_iter()
            .map(|r| tokio::spawn(app.clone().oneshot(r)))
            .collect();
        // Another client's failed login waits its own delay, not behind a's six.
        let b_started = Instant::now();
        let r = app.clone().oneshot(b_wrong).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(b_started.elapsed() >= delay, "b's failure waits too");
        let pending = guesses.iter().filter(|g| !g.is_finished()).count();
        assert!(
            pending >= 2,
            "b finished after {pending} of a's six failures were left"
        );
        // The right password from a, sent while a's guesses are queued, waits behind them:
        // one client gets one guess per delay however many it sends at once.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !guesses.iter().any(|g| g.is_finished()) {
            assert!(Instant::now() < deadline, "none of a's guesses came back");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(guesses.iter().any(|g| !g.is_finished()));
        let right_started = Instant::now();
        let r = app.clone().oneshot(a_right).await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "the right password still logs in"
        );
        assert!(
            right_started.elapsed() >= delay,
            "a's right password came back after {:?}, before a's queued failures",
            right_started.elapsed()
        );
        for guess in guesses {
            assert_eq!(
                guess.await.unwrap().unwrap().status(),
                StatusCode::UNAUTHORIZED
            );
        }
        assert!(
            started.elapsed() >= delay * 6,
            "a's six failures took turns: {:?}",
            started.elapsed()
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Pages

fn overview_shows_counts_chart_and_online_workers(db: &TestDb) {
    let now = Utc::now().naive_utc();
    let ok = add::queue(1, 2).unwrap().id();
    db.run_by_hand(ok);
    let failed = fail_with::queue("boom".into()).unwrap().id();
    db.run_by_hand(failed);
    let old = add::queue(3, 4).unwrap().id();
    sets_finished(db, old, State::Succeeded, now - TimeDelta::hours(3));
    send::queue("ann@example.com".into()).unwrap();
    add::queue(5, 6).unwrap();
    insert_worker(db, "worker-online", now, None);
    insert_worker(
        db,
        "worker-gone",
        now - TimeDelta::hours(1),
        Some((0, None)),
    );

    let mut client = Client::new(db).login();
    let page = client.get("/");
    page.assert_ok();
    let body = &page.body;
    assert!(body.contains("<h1>Overview</h1>"));
    // Per state: 2 succeeded, 1 failed, 2 queued.
    assert!(body.contains(r#"<span class="count">2</span><span class="what">succeeded</span>"#));
    assert!(body.contains(r#"<span class="count">1</span><span class="what">failed</span>"#));
    assert!(body.contains(r#"<span class="count">2</span><span class="what">queued</span>"#));
    // Per queue.
    assert!(body.contains(r#"href="/admin/execs?queue=emails">emails</a>"#));
    assert!(body.contains(r#"href="/admin/execs?state=queued&amp;queue=default">1</a>"#));
    // The chart counts only the last hour.
    assert!(body.contains("<svg"), "an inline SVG chart");
    assert!(body.contains("last hour: 1 succeeded, 1 failed"));
    assert!(body.contains(r#"<rect class="ok""#) && body.contains(r#"<rect class="failed""#));
    // Online workers only.
    assert!(body.contains("Online workers (1)"));
    assert!(body.contains("worker-online"));
    assert!(!body.contains("worker-gone"));
    // A worker that does not say which tasks it links hides nothing; one that does shows the
    // queued executions of the others.
    assert!(!body.contains("unknown to every online worker"));
    db.execute("UPDATE worker_statuses SET tasks = '[\"add\"]' WHERE label = 'worker-online'");
    let body = client.get("/").body;
    assert!(
        body.contains("Queued, but unknown to every online worker"),
        "{body}"
    );
    assert!(
        body.contains(r#"<a href="/admin/execs?state=queued&amp;task=mail.send">mail.send</a></td><td>emails</td><td class="num">1</td>"#),
        "{body}"
    );
}

fn executions_filter_search_and_page(db: &TestDb) {
    let mut adds = Vec::new();
    for i in 0..7 {
        adds.push(add::queue(i, i).unwrap().id());
    }
    let failed = fail_with::queue("nope".into()).unwrap().id();
    db.run_by_hand(failed);
    let mail = send::queue("bob@example.com".into()).unwrap().id();
    let mut client = Client::new(db).login();

    // Newest first, five per page (page_size 5), then the older page.
    let first = client.get("/execs");
    first.assert_ok();
    let pos = |body: &str, id: i64| body.find(&format!("id=\"e{id}\""));
    assert!(pos(&first.body, mail) < pos(&first.body, failed));
    assert!(pos(&first.body, adds[6]).is_some());
    assert!(pos(&first.body, adds[0]).is_none());
    let older = format!("/execs?before={}", adds[4]);
    assert!(first.body.contains(&format!("href=\"/admin{}\"", older)));
    let second = client.get(&older);
    second.assert_ok();
    assert!(pos(&second.body, adds[0]).is_some());
    assert!(pos(&second.body, adds[4]).is_none());
    assert!(second.body.contains("← Newest"));
    assert!(!second.body.contains("Older →"));

    // By state.
    let r = client.get("/execs?state=failed");
    r.assert_ok();
    assert!(pos(&r.body, failed).is_some());
    assert_eq!(r.body.matches("<tr id=\"e").count(), 1);
    assert!(r.body.contains(r#"<option value="failed" selected>"#));
    // By queue.
    let r = client.get("/execs?queue=emails");
    assert_eq!(r.body.matches("<tr id=\"e").count(), 1);
    assert!(pos(&r.body, mail).is_some());
    // By task, with the state filter left empty.
    let r = client.get("/execs?state=&queue=&task=add");
    assert_eq!(r.body.matches("<tr id=\"e").count(), 5);
    assert!(r.body.contains("Older →"));
    assert!(r.body.contains(&format!(
        "href=\"/admin/execs?task=add&amp;before={}\"",
        adds[2]
    )));
    // Nothing matches.
    let r = client.get("/execs?task=nope");
    assert!(r.body.contains("No execution matches."));
    // Search by id goes to the execution; a missing id says so.
    let r = client.get(&format!("/execs?id={failed}"));
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("/admin/execs/{failed}"));
    let r = client.get("/execs?id=999999");
    r.assert_ok();
    assert!(r.body.contains("No execution has id 999999."));
    let r = client.get("/execs?id=abc");
    assert!(r.body.contains("is not an execution id"));
    // A wrong state is a clear 400.
    let r = client.get("/execs?state=done");
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("unknown task state"));
}

fn execution_page_shows_everything_and_the_replaced_by_chain(db: &TestDb) {
    let first = fail_with::queue("first try".into()).unwrap().id();
    db.run_by_hand(first);
    let second = fail_with::queue("second try".into()).unwrap().id();
    db.run_by_hand(second);
    let third = fail_with::queue("third".into()).unwrap().id();
    db.execute(&format!(
        "UPDATE task_execs SET replaced_by = {second}, worker = 'w-1' WHERE id = {first}"
    ));
    db.execute(&format!(
        "UPDATE task_execs SET replaced_by = {third} WHERE id = {second}"
    ));
    let mut client = Client::new(db).login();
    let r = client.get(&format!("/execs/{second}"));
    r.assert_ok();
    let body = &r.body;
    assert!(body.contains(&format!("<h1>Execution #{second}</h1>")));
    assert!(body.contains("fail_with"));
    assert!(
        body.contains("&quot;message&quot;: &quot;second try&quot;"),
        "{body}"
    );
    assert!(body.contains(r#"<pre class="error">second try</pre>"#));
    for field in [
        "due",
        "created",
        "started",
        "finished",
        "run time",
        "worker",
        "retries left",
    ] {
        assert!(body.contains(&format!("<dt>{field}</dt>")), "{field}");
    }
    // Both ways along the chain.
    assert!(body.contains(&format!("<a href=\"/admin/execs/{first}\">#{first}</a>")));
    assert!(body.contains(&format!("<a href=\"/admin/execs/{third}\">#{third}</a>")));
    // The last of the chain links back to both.
    let r = client.get(&format!("/execs/{third}"));
    let replaces = &r.body[r.body.find("<dt>replaces</dt>").unwrap()..];
    assert!(replaces.find(&format!("#{first}")) < replaces.find(&format!("#{second}")));
    assert!(
        r.body.contains("Cancel"),
        "a queued execution can be cancelled"
    );
    // The first one shows its worker, and a result for a succeeded one.
    let r = client.get(&format!("/execs/{first}"));
    assert!(r.body.contains("<dd>w-1</dd>"));
    let ok = add::queue(20, 22).unwrap().id();
    db.run_by_hand(ok);
    let r = client.get(&format!("/execs/{ok}"));
    assert!(r.body.contains("<h2>Result</h2>") && r.body.contains(">42</pre>"));
    // A hook, and how it failed.
    let hooked = add::with()
        .hook(failing_hook::HOOK)
        .queue(1, 1)
        .unwrap()
        .id();
    let r = client.get(&format!("/execs/{hooked}"));
    assert!(
        r.body
            .contains("<dd>failing_hook <span class=\"muted\">not called yet</span></dd>"),
        "{}",
        r.body
    );
    db.execute(&format!(
        "UPDATE task_execs SET hook_ran = created, hook_error = 'hook `failing_hook` failed: down' WHERE id = {hooked}"
    ));
    let r = client.get(&format!("/execs/{hooked}"));
    assert!(r.body.contains("<h2>Hook error</h2>"), "{}", r.body);
    assert!(
        r.body.contains("hook `failing_hook` failed: down</pre>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("not called yet"));
    // Unknown and malformed ids are 404.
    assert_eq!(client.get("/execs/999999").status, StatusCode::NOT_FOUND);
    assert!(
        client
            .get("/execs/999999")
            .body
            .contains("no task execution with id 999999")
    );
    assert_eq!(client.get("/execs/abc").status, StatusCode::NOT_FOUND);
}

fn requeue_one_and_many_reports_the_new_ids(db: &TestDb) {
    let a = fail_with::queue("a".into()).unwrap().id();
    let b = add::queue(1, 1).unwrap().id();
    let c = shout::queue("hi".into()).unwrap().id();
    for id in [a, b, c] {
        db.run_by_hand(id);
    }
    let mut client = Client::new(db).login();
    let page = client.act(
        "/execs/requeue",
        &[
            ("id", &a.to_string()),
            ("back", &format!("/admin/execs/{a}")),
        ],
    );
    let new_a = all_execs(db)[0].id;
    assert!(new_a > c);
    assert!(
        page.body.contains(&format!(
            "Requeued 1 execution as <a href=\"/admin/execs/{new_a}\">#{new_a}</a>"
        )),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!("<h1>Execution #{a}</h1>")),
        "back to where it was"
    );
    let copy = exec(db, new_a);
    assert_eq!(copy.task_name, "fail_with");
    assert_eq!(copy.args, exec(db, a).args);
    assert_eq!(copy.state, State::Queued);

    let page = client.act(
        "/execs/requeue",
        &[
            ("id", &b.to_string()),
            ("id", &c.to_string()),
            ("id", &a.to_string()),
            ("back", "/admin/execs?state=failed"),
        ],
    );
    let all = all_execs(db);
    let new: Vec<i64> = all[..3].iter().rev().map(|e| e.id).collect();
    let links: Vec<String> = new
        .iter()
        .map(|id| format!("<a href=\"/admin/execs/{id}\">#{id}</a>"))
        .collect();
    assert!(
        page.body
            .contains(&format!("Requeued 3 executions as {}", links.join(", "))),
        "{}",
        page.body
    );
    assert_eq!(exec(db, new[0]).args, json!({"a": 1, "b": 1}));
    assert_eq!(exec(db, new[1]).args, json!({"text": "hi"}));
    // The filter survived the round trip.
    assert!(page.body.contains(r#"<option value="failed" selected>"#));
    // The message is shown once.
    assert!(!client.get("/execs").body.contains("Requeued"));

    // Nothing selected, or an id that does not exist.
    let page = client.act("/execs/requeue", &[]);
    assert!(page.body.contains("Select at least one execution first."));
    let page = client.act("/execs/requeue", &[("id", "999999")]);
    assert!(
        page.body
            .contains("Could not requeue #999999: no task execution with id 999999")
    );
    assert_eq!(
        client.post("/execs/requeue", &[("id", "x")]).status,
        StatusCode::BAD_REQUEST
    );
}

fn cancel_cancels_only_pending_executions(db: &TestDb) {
    let queued = add::queue(1, 2).unwrap().id();
    let sleeping = add::queue_at(Utc::now() + TimeDelta::hours(1), 1, 2)
        .unwrap()
        .id();
    let done = add::queue(3, 4).unwrap().id();
    db.run_by_hand(done);
    let mut client = Client::new(db).login();
    let page = client.act(
        "/execs/cancel",
        &[("id", &queued.to_string()), ("id", &sleeping.to_string())],
    );
    assert!(
        page.body.contains("Cancelled 2 executions"),
        "{}",
        page.body
    );
    assert_eq!(exec(db, queued).state, State::Cancelled);
    assert_eq!(exec(db, sleeping).state, State::Cancelled);
    let page = client.act(
        "/execs/cancel",
        &[
            ("id", &done.to_string()),
            ("back", &format!("/admin/execs/{done}")),
        ],
    );
    assert!(page.body.contains(&format!(
        "Cancelled nothing (#{done} already finished: only sleeping, queued or running executions can be cancelled)"
    )));
    assert_eq!(exec(db, done).state, State::Succeeded);
    assert!(
        !page.body.contains(">Cancel</button>"),
        "no cancel button once finished"
    );
    // A running execution gets a cancel request, shown until its worker honours it.
    let running = add::queue(5, 6).unwrap().id();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'w', progress = 0.25, \
         progress_message = 'a quarter' WHERE id = {running}"
    ));
    let page = client.get(&format!("/execs/{running}"));
    assert!(page.body.contains("25% a quarter"), "{}", page.body);
    assert!(page.body.contains(">Cancel</button>"), "{}", page.body);
    let page = client.act(
        "/execs/cancel",
        &[
            ("id", &running.to_string()),
            ("back", &format!("/admin/execs/{running}")),
        ],
    );
    assert!(
        page.body
            .contains(&format!("cancel requested for #{running}")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("cancel requested <time"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(">Cancel</button>"), "{}", page.body);
    assert_eq!(exec(db, running).state, State::Processing);
    assert!(exec(db, running).cancel_requested.is_some());
}

fn delete_removes_executions(db: &TestDb) {
    let a = add::queue(1, 2).unwrap().id();
    let b = fail_with::queue("x".into()).unwrap().id();
    db.run_by_hand(b);
    let c = add::queue(5, 6).unwrap().id();
    db.execute(&format!(
        "UPDATE task_execs SET replaced_by = {c} WHERE id = {b}"
    ));
    let mut client = Client::new(db).login();
    let page = client.act(
        "/execs/delete",
        &[
            ("id", &a.to_string()),
            ("id", &c.to_string()),
            ("id", "999999"),
        ],
    );
    assert!(
        page.body
            .contains("Deleted 2 executions (1 no longer existed)"),
        "{}",
        page.body
    );
    let left: Vec<i64> = all_execs(db).iter().map(|e| e.id).collect();
    assert_eq!(left, vec![b]);
    assert_eq!(exec(db, b).replaced_by, None, "the chain link is cleared");
    // From the detail page: back to the list.
    let page = client.act(
        "/execs/delete",
        &[("id", &b.to_string()), ("back", "/admin/execs")],
    );
    assert!(page.body.contains("Deleted 1 execution"));
    assert!(page.body.contains("<h1>Executions</h1>"));
    assert!(all_execs(db).is_empty());
}

fn purge_deletes_finished_executions_older_than_n_days(db: &TestDb) {
    let now = Utc::now().naive_utc();
    let old_ok = add::queue(1, 1).unwrap().id();
    sets_finished(db, old_ok, State::Succeeded, now - TimeDelta::days(40));
    let old_failed = add::queue(2, 2).unwrap().id();
    sets_finished(db, old_failed, State::Failed, now - TimeDelta::days(31));
    let recent = add::queue(3, 3).unwrap().id();
    sets_finished(db, recent, State::Succeeded, now - TimeDelta::days(2));
    let old_queued = add::queue(4, 4).unwrap().id();
    db.execute(&format!(
        "UPDATE task_execs SET created = '2000-01-01 00:00:00', due = '2000-01-01 00:00:00' WHERE id = {old_queued}"
    ));
    let mut client = Client::new(db).login();
    let page = client.act("/execs/purge", &[("days", "30"), ("back", "/admin")]);
    assert!(
        page.body
            .contains("Purged 2 executions finished more than 30 days ago"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<h1>Overview</h1>"));
    let left: Vec<i64> = all_execs(db).iter().map(|e| e.id).rev().collect();
    assert_eq!(left, vec![recent, old_queued]);
    assert_eq!(
        client.post("/execs/purge", &[("days", "-1")]).status,
        StatusCode::BAD_REQUEST
    );
    let page = client.act("/execs/purge", &[("days", "0")]);
    assert!(
        page.body
            .contains("Purged 1 execution finished more than 0 days ago")
    );
}

fn schedules_page_and_run_now(db: &TestDb) {
    let mut client = Client::new(db).login();
    let page = client.get("/schedules");
    page.assert_ok();
    let body = &page.body;
    assert!(body.contains("<strong>morning</strong>"), "{body}");
    assert!(body.contains("<code>manual</code>"));
    let def = toosimple_core::schedules()
        .into_iter()
        .find(|s| s.name() == "morning")
        .unwrap();
    assert!(body.contains(&maud_escape(&def.describe())));
    assert!(body.contains("<td>UTC</td>"));
    assert!(body.contains("none yet"));
    assert!(body.contains("Run now"));

    let page = client.act("/schedules/run", &[("name", "morning")]);
    let run = all_execs(db)[0].clone();
    assert_eq!(run.task_name, "morning");
    assert_eq!(run.args, json!({"name": "John"}));
    assert!(
        page.body.contains(&format!(
            "Ran schedule morning now as <a href=\"/admin/execs/{0}\">#{0}</a>",
            run.id
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("<h1>Schedules</h1>"));
    // The page now shows the last execution and its state.
    db.run_by_hand(run.id);
    let page = client.get("/schedules");
    assert!(
        page.body
            .contains(&format!("<a href=\"/admin/execs/{0}\">#{0}</a>", run.id)),
        "{}",
        page.body
    );
    assert!(page.body.contains("state-succeeded"));
    // The handle API works on it as usual.
    let handle = morning::queue("Ann".into()).unwrap();
    assert_eq!(handle.exec().unwrap().task_name, "morning");

    let page = client.act("/schedules/run", &[("name", "nope")]);
    assert!(
        page.body.contains("Could not run schedule nope"),
        "{}",
        page.body
    );
}

fn maud_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn workers_page_shows_state_exit_code_and_log(db: &TestDb) {
    let now = Utc::now().naive_utc();
    insert_worker(db, "alpha", now, None);
    insert_worker(db, "beta", now - TimeDelta::hours(2), None);
    insert_worker(
        db,
        "gamma",
        now - TimeDelta::minutes(3),
        Some((99, Some("database <gone>\nat line 2"))),
    );
    insert_worker(db, "delta", now, Some((77, None)));
    let mut client = Client::new(db).login();
    let page = client.get("/workers");
    page.assert_ok();
    let body = &page.body;
    let row = |label: &str| {
        let start = body.find(&format!("<td>{label}</td>")).unwrap();
        &body[start..start + body[start..].find("</tr>").unwrap()]
    };
    assert!(row("alpha").contains("worker-online"));
    assert!(
        row("beta").contains("worker-timed_out"),
        "silent past its timeout"
    );
    assert!(row("gamma").contains("worker-crashed") && row("gamma").contains(">99<"));
    assert!(row("delta").contains("worker-terminated") && row("delta").contains(">77<"));
    assert!(row("alpha").contains("default, emails"));
    assert!(body.contains("database &lt;gone&gt;\nat line 2"));
    assert!(body.contains("ago"));
}

fn workers_page_shows_running_and_handled_and_stops_a_worker(db: &TestDb) {
    let now = Utc::now().naive_utc();
    insert_worker(db, "busy", now, None);
    insert_worker(db, "done", now, Some((0, None)));
    db.execute("UPDATE worker_statuses SET handled = 1234 WHERE label = 'busy'");
    let running = add::queue(1, 2).unwrap().id();
    db.execute(&format!(
        "UPDATE task_execs SET state = 'processing', worker = 'busy' WHERE id = {running}"
    ));
    let mut client = Client::new(db).login();
    let page = client.get("/workers");
    page.assert_ok();
    let row = |body: &str, label: &str| {
        let start = body.find(&format!("<td>{label}</td>")).unwrap();
        body[start..start + body[start..].find("</tr>").unwrap()].to_string()
    };
    let busy = row(&page.body, "busy");
    assert!(busy.contains(r#"<td class="num running">1</td>"#), "{busy}");
    assert!(
        busy.contains(r#"<td class="num handled">1234</td>"#),
        "{busy}"
    );
    assert!(busy.contains(r#"value="graceful""#) && busy.contains(r#"value="terminate""#));
    assert!(
        !row(&page.body, "done").contains("/workers/stop"),
        "no stop button for a stopped worker"
    );

    let page = client.act("/workers/stop", &[("label", "busy"), ("mode", "graceful")]);
    assert!(
        page.body
            .contains("Asked busy to stop: it finishes its running tasks"),
        "{}",
        page.body
    );
    let status = db.store.worker_status("busy").unwrap().unwrap();
    assert_eq!(
        status.stop_request,
        Some(toosimple_core::StopRequest::Graceful)
    );
    let busy = row(&page.body, "busy");
    assert!(
        busy.contains("worker-stopping") && busy.contains("graceful asked"),
        "{busy}"
    );
    assert!(
        !busy.contains(r#"value="graceful""#) && busy.contains(r#"value="terminate""#),
        "only the escalation is left: {busy}"
    );

    let page = client.act("/workers/stop", &[("label", "busy"), ("mode", "terminate")]);
    assert!(
        page.body.contains("Asked busy to terminate"),
        "{}",
        page.body
    );
    assert_eq!(
        db.store
            .worker_status("busy")
            .unwrap()
            .unwrap()
            .stop_request,
        Some(toosimple_core::StopRequest::Terminate)
    );
    let page = client.act("/workers/stop", &[("label", "done"), ("mode", "graceful")]);
    assert!(
        page.body.contains("done has already stopped."),
        "{}",
        page.body
    );
    let page = client.act("/workers/stop", &[("label", "ghost"), ("mode", "graceful")]);
    assert!(
        page.body
            .contains("Could not stop ghost: no worker labelled `ghost`"),
        "{}",
        page.body
    );
    let bad = client.post("/workers/stop", &[("label", "busy"), ("mode", "kill")]);
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

fn metrics_need_the_token_or_a_session_and_show_queue_depths(db: &TestDb) {
    add::queue(1, 2).unwrap();
    add::queue(2, 2).unwrap();
    insert_worker(db, "w", Utc::now().naive_utc(), None);
    let config = config(db).metrics_token("s3cret-token");
    let mut client = Client::with_config(config, "");
    let scrape = |client: &mut Client, token: &str| {
        let request = client
            .request("GET", "/metrics")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        client.send(request)
    };
    let answer = scrape(&mut client, "s3cret-token");
    answer.assert_ok();
    assert!(
        answer
            .body
            .contains(r#"toosimple_queue_depth{queue="default",state="queued"} 2"#),
        "{}",
        answer.body
    );
    assert!(
        answer
            .body
            .contains(r#"toosimple_workers{state="online"} 1"#),
        "{}",
        answer.body
    );
    let wrong = scrape(&mut client, "guess");
    assert_eq!(wrong.status, StatusCode::SEE_OTHER, "to the login page");
    assert!(!wrong.body.contains("toosimple_queue_depth"));
    // A logged-in session reads it without the token.
    let mut client = client.login();
    let page = client.get("/metrics");
    page.assert_ok();
    assert!(
        page.body.contains("# TYPE toosimple_queue_depth gauge"),
        "{}",
        page.body
    );
}

/// The Queues page lists the binary's queues with their settings, pauses and resumes one,
/// saves its settings (empty fields remove one), and refuses a bad value without changing
/// anything.
fn queues_page_pauses_resumes_and_sets(db: &TestDb) {
    let mut client = Client::new(db).login();
    let page = client.get("/queues");
    page.assert_ok();
    assert!(
        page.body.contains(r#"id="q-q1""#),
        "a task's queue: {}",
        page.body
    );
    let page = client.act("/queues", &[("name", "reports"), ("action", "pause")]);
    assert!(page.body.contains("Paused queue reports"), "{}", page.body);
    assert!(db.store.queue("reports").unwrap().paused);
    let start = page.body.find(r#"id="q-reports""#).expect("its row");
    let row = &page.body[start..start + page.body[start..].find("</tr>").unwrap()];
    assert!(row.contains(r#"value="resume""#), "{row}");
    let page = client.act("/queues", &[("name", "reports"), ("action", "resume")]);
    assert!(page.body.contains("Resumed queue reports"), "{}", page.body);
    assert!(!db.store.queue("reports").unwrap().paused);
    let page = client.act(
        "/queues",
        &[
            ("name", "reports"),
            ("action", "set"),
            ("limit", "1"),
            ("retries", "3"),
            ("timeout", "90"),
        ],
    );
    assert!(
        page.body.contains("Saved the settings of queue reports"),
        "{}",
        page.body
    );
    let saved = db.store.queue("reports").unwrap();
    assert_eq!(saved.concurrency_limit, Some(1));
    assert_eq!(saved.default_retries, Some(3));
    assert_eq!(saved.default_timeout, Some(Duration::from_secs(90)));
    let page = client.act(
        "/queues",
        &[
            ("name", "reports"),
            ("action", "set"),
            ("limit", "0"),
            ("retries", ""),
            ("timeout", ""),
        ],
    );
    assert!(
        page.body.contains("Nothing was changed: the limit"),
        "{}",
        page.body
    );
    assert_eq!(db.store.queue("reports").unwrap(), saved);
    let page = client.act(
        "/queues",
        &[
            ("name", "reports"),
            ("action", "set"),
            ("limit", ""),
            ("retries", "3"),
            ("timeout", ""),
        ],
    );
    page.assert_ok();
    let cleared = db.store.queue("reports").unwrap();
    assert_eq!(
        (
            cleared.concurrency_limit,
            cleared.default_retries,
            cleared.default_timeout
        ),
        (None, Some(3), None)
    );
}

fn schedules_page_lists_stored_schedules_and_pauses_resumes_and_removes_them(db: &TestDb) {
    db.store
        .add_schedule(
            &toosimple_core::NewSchedule::new("nightly", "add", json!({"a": 1, "b": 2}))
                .every(toosimple_core::Every::Seconds(3600))
                .between("02:00/04:30".parse().unwrap())
                .weekdays("mon,tue".parse().unwrap())
                .repeat(5),
        )
        .unwrap();
    let mut client = Client::new(db).login();
    let page = client.get("/schedules");
    page.assert_ok();
    let start = page.body.find(r#"id="stored-nightly""#).expect("its row");
    let row = &page.body[start..start + page.body[start..].find("</tr>").unwrap()];
    for expected in [
        "every 3600 s",
        "between 02:00/04:30",
        "on mon,tue",
        ">5<",
        r#"value="pause""#,
    ] {
        assert!(row.contains(expected), "{expected:?} in {row}");
    }
    let page = client.act(
        "/schedules/stored",
        &[("name", "nightly"), ("action", "pause")],
    );
    assert!(
        page.body.contains("Paused schedule nightly"),
        "{}",
        page.body
    );
    assert!(db.store.list_schedules().unwrap()[0].paused);
    assert!(page.body.contains(r#"value="resume""#));
    let page = client.act(
        "/schedules/stored",
        &[("name", "nightly"), ("action", "resume")],
    );
    assert!(
        page.body.contains("Resumed schedule nightly"),
        "{}",
        page.body
    );
    assert!(!db.store.list_schedules().unwrap()[0].paused);
    let page = client.act(
        "/schedules/stored",
        &[("name", "nightly"), ("action", "remove")],
    );
    assert!(
        page.body.contains("Removed schedule nightly"),
        "{}",
        page.body
    );
    assert!(db.store.list_schedules().unwrap().is_empty());
    let page = client.act(
        "/schedules/stored",
        &[("name", "nightly"), ("action", "remove")],
    );
    assert!(
        page.body.contains("Could not remove schedule nightly"),
        "{}",
        page.body
    );
    let page = client.act(
        "/schedules/stored",
        &[("name", "nightly"), ("action", "explode")],
    );
    assert!(
        page.body
            .contains("is not something to do to a schedule: pause, resume or remove"),
        "{}",
        page.body
    );
}

fn tasks_page_lists_options(db: &TestDb) {
    let _ = db;
    let mut client = Client::new(db).login();
    let page = client.get("/tasks");
    page.assert_ok();
    let body = &page.body;
    let start = body
        .find("id=\"t-mail.send\"")
        .expect("mail.send is listed");
    let row = &body[start..start + body[start..].find("</tr>").unwrap()];
    for cell in [
        "<td>emails</td>",
        ">5</td>",
        ">3</td>",
        ">2 s</td>",
        "<td>yes</td>",
        ">30 s</td>",
        "href=\"/admin/execs?task=mail.send\"",
    ] {
        assert!(row.contains(cell), "{cell} in {row}");
    }
    assert!(body.contains("id=\"t-add\""));
    assert!(body.contains("tests/src/tasks.rs"));
}

fn user_data_is_html_escaped_on_every_page(db: &TestDb) {
    const XSS: &str = "<script>alert(1)</script>";
    let arg = shout::queue(XSS.to_string()).unwrap().id();
    let err = fail_with::queue(format!("\"><img src=x onerror=alert(2)>{XSS}"))
        .unwrap()
        .id();
    db.run_by_hand(err);
    db.run_by_hand(arg);
    insert_worker(db, XSS, Utc::now().naive_utc(), None);
    insert_worker(
        db,
        "stopped <b>",
        Utc::now().naive_utc(),
        Some((1, Some(XSS))),
    );
    let mut client = Client::new(db).login();
    let assert_inert = |page: &str, r: &Resp| {
        for raw in ["<script", "<img", "\"><b>", "<b>"] {
            assert!(!r.body.contains(raw), "{page} has a raw {raw}:\n{}", r.body);
        }
    };
    // Every page of the router (each execution page for both executions), and the filters
    // and errors that echo what they were given.
    let mut pages = Vec::new();
    for (method, path, _) in every_route(arg).into_iter().chain(every_route(err)) {
        if method == "GET" && path != "/static/admin.css" && !pages.contains(&path) {
            pages.push(path);
        }
    }
    pages.extend([
        format!("/execs?task={}", encode(XSS)),
        format!("/execs?queue={}", encode("\"><b>q")),
        format!("/execs?id={}", encode(XSS)),
        format!("/execs/{}", encode(XSS)),
        format!("/execs?state={}", encode(XSS)),
    ]);
    for page in &pages {
        let r = client.get(page);
        assert!(
            r.status == StatusCode::OK
                || r.status == StatusCode::NOT_FOUND
                || r.status == StatusCode::BAD_REQUEST
                // /login, logged in, sends the browser on
                || r.status == StatusCode::SEE_OTHER,
            "{page}: {}",
            r.status
        );
        assert_inert(page, &r);
    }
    // The login form, with a next= that is script.
    let mut anonymous = Client::new(db);
    let r = anonymous.get(&format!("/login?next={}", encode(&format!("/admin/{XSS}"))));
    r.assert_ok();
    assert_inert("/login", &r);
    // What each page shows, as text.
    let r = client.get("/execs");
    assert!(
        r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the list's arguments"
    );
    let r = client.get(&format!("/execs/{arg}"));
    assert!(r.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        r.body.contains("&lt;SCRIPT&gt;ALERT(1)&lt;/SCRIPT&gt;"),
        "the result too"
    );
    let r = client.get(&format!("/execs/{err}"));
    assert!(
        r.body
            .contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;")
    );
    let workers = client.get("/workers").body;
    assert!(workers.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    assert!(
        workers.contains("<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>"),
        "the exit log"
    );
    assert!(
        client
            .get("/")
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "online"
    );
    // A message that repeats what the form said.
    let page = client.act("/schedules/run", &[("name", XSS)]);
    assert_inert("the flash", &page);
    assert!(
        page.body.contains("Could not run schedule &lt;script&gt;"),
        "{}",
        page.body
    );
}

fn works_at_the_root_and_under_any_prefix(db: &TestDb) {
    let id = add::queue(1, 2).unwrap().id();
    for prefix in ["", "/ops/tasks"] {
        let mut client = Client::mounted(db, prefix);
        let r = client.get("/execs");
        assert_eq!(
            r.location(),
            format!("{prefix}/login?next={}", encode(&format!("{prefix}/execs")))
        );
        let client_logged = client.login();
        let mut client = client_logged;
        let cookie_path = if prefix.is_empty() { "/" } else { prefix };
        let page = client.get("/execs");
        page.assert_ok();
        assert!(
            page.body
                .contains(&format!("href=\"{prefix}/static/admin.css"))
        );
        assert!(page.body.contains(&format!("href=\"{prefix}/execs/{id}\"")));
        assert!(
            page.body
                .contains(&format!("action=\"{prefix}/execs/requeue\""))
        );
        assert!(page.body.contains(&format!("action=\"{prefix}/logout\"")));
        let home = if prefix.is_empty() { "/" } else { prefix };
        assert!(
            page.body
                .contains(&format!("class=\"brand\" href=\"{home}\""))
        );
        // The overview answers at the bare prefix.
        let overview = client.get(if prefix.is_empty() { "/" } else { "" });
        overview.assert_ok();
        assert!(overview.body.contains("<h1>Overview</h1>"));
        let r = client.post("/logout", &[]);
        assert_eq!(r.location(), format!("{prefix}/login"));
        assert!(r.set_cookies()[0].contains(&format!("Path={cookie_path};")));
    }
}

fn stylesheet_is_served_and_pages_forbid_scripts(db: &TestDb) {
    let mut client = Client::new(db);
    let css = client.get("/static/admin.css");
    css.assert_ok();
    assert!(
        css.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        css.body.contains("@media (max-width: 600px)"),
        "a phone layout"
    );
    let login = client.get("/login");
    let csp = login.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
    assert_eq!(login.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(login.body.contains("name=\"viewport\""));
    assert!(!login.body.contains("<script"));
    assert!(
        !login.body.contains("http://") && !login.body.contains("https://"),
        "no CDN"
    );
}

// ---------------------------------------------------------------------------------------------
// 100,000 rows

/// Inserts `n` finished executions in bulk, as `queue_many` would, spread over the last hour:
/// one in ten failed, one in five on queue `emails`.
fn insert_many(db: &TestDb, n: usize) {
    let now = Utc::now().naive_utc();
    let mut conn = db.store.connection().unwrap();
    // Batch inserts need the concrete connection: diesel's multi-backend one has no
    // multi-row VALUES.
    macro_rules! insert_all {
        ($c:expr) => {
            $c.transaction(|c| {
                let mut rows = Vec::with_capacity(2000);
                for i in 0..n {
                    let when = now - TimeDelta::milliseconds((n - i) as i64 * 3_500_000 / n as i64);
                    let failed = i % 10 == 3;
                    rows.push((
                        te::task_name.eq(if i % 5 == 0 { "mail.send" } else { "add" }),
                        te::args.eq(format!("{{\"a\":{i},\"b\":{}}}", i % 7)),
                        te::queue.eq(if i % 5 == 0 { "emails" } else { "default" }),
                        te::state.eq(if failed { "failed" } else { "succeeded" }),
                        te::due.eq(when),
                        te::created.eq(when),
                        te::finished.eq(Some(when)),
                        te::error.eq(failed.then(|| "boom".to_string())),
                    ));
                    if rows.len() == 2000 || i == n - 1 {
                        diesel::insert_into(te::task_execs)
                            .values(std::mem::take(&mut rows))
                            .execute(c)?;
                    }
                }
                diesel::QueryResult::Ok(())
            })
        };
    }
    match &mut *conn {
        AnyConnection::Sqlite(c) => insert_all!(c),
        AnyConnection::Postgresql(c) => insert_all!(c),
        AnyConnection::Mysql(c) => insert_all!(c),
    }
    .unwrap();
}

fn executions_page_stays_fast_with_100k_rows(db: &TestDb) {
    const N: usize = 100_000;
    let started = Instant::now();
    insert_many(db, N);
    let inserted = started.elapsed();
    match db.store.backend() {
        toosimple_core::Backend::Postgres => db.execute("ANALYZE task_execs"),
        toosimple_core::Backend::Mysql => db.execute("ANALYZE TABLE task_execs"),
        toosimple_core::Backend::Sqlite => {}
    }
    assert_eq!(db.count("true"), N as i64);
    // The default page size (50 rows).
    let config = AdminConfig::new(db.store.clone(), Password::plain(PASSWORD));
    let mut client = Client::with_config(config, "/admin").login();
    let mut report = vec![format!(
        "{:?}: inserted {N} rows in {inserted:.2?}",
        db.store.backend()
    )];
    let mut worst = Duration::ZERO;
    for page in [
        "/execs",
        "/execs?state=failed",
        "/execs?queue=emails",
        "/execs?task=mail.send",
        "/execs?before=50",
        "/execs?state=failed&before=1000",
        "/execs/50000",
        "/",
    ] {
        // The median of three loads.
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let r = client.get(page);
            times.push(t.elapsed());
            r.assert_ok();
        }
        times.sort();
        worst = worst.max(times[1]);
        report.push(format!("  GET /admin{page:<36} {:>8.1?}", times[1]));
    }
    let t = Instant::now();
    TaskExec::counts_in(&db.store).unwrap();
    report.push(format!(
        "  (of the overview: TaskExec::counts_in        {:>8.1?})",
        t.elapsed()
    ));
    println!("{}", report.join("\n"));
    assert!(
        worst < Duration::from_secs(2),
        "a page took {worst:?} on {N} rows:\n{}",
        report.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The `admin` subcommand

const APP: &str = env!("CARGO_BIN_EXE_testapp");

fn admin_subcommand_refuses_to_start_without_a_password(db: &TestDb) {
    let output = db
        .app(APP)
        .args(["admin", "--bind", "127.0.0.1:0"])
        .env_remove(toosimple_admin::PASSWORD_ENV)
        .env_remove(toosimple_admin::PASSWORD_HASH_ENV)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the admin has no password: set TOOSIMPLE_ADMIN_PASSWORD"),
        "{stderr}"
    );
    // A malformed hash is refused too, naming the variable.
    let output = db
        .app(APP)
        .args(["admin", "--bind", "127.0.0.1:0"])
        .env(toosimple_admin::PASSWORD_HASH_ENV, "not-a-hash")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("TOOSIMPLE_ADMIN_PASSWORD_HASH is not an argon2 hash")
    );
    // So is a secret too short to seal cookies with.
    let output = db
        .app(APP)
        .args(["admin", "--bind", "127.0.0.1:0"])
        .env(toosimple_admin::PASSWORD_ENV, PASSWORD)
        .env_remove(toosimple_admin::PASSWORD_HASH_ENV)
        .env(toosimple_admin::SECRET_ENV, "short")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the admin secret is not usable")
            && stderr.contains("TOOSIMPLE_ADMIN_SECRET"),
        "{stderr}"
    );
}

/// Starts `app admin` on a free port with `secret` in `TOOSIMPLE_ADMIN_SECRET`; returns the
/// process and its URL once it answers.
fn start_admin(db: &TestDb, secret: &str) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = db
        .app(APP)
        .args(["admin", "--bind", &format!("127.0.0.1:{port}")])
        .env(toosimple_admin::PASSWORD_ENV, PASSWORD)
        .env_remove(toosimple_admin::PASSWORD_HASH_ENV)
        .env(toosimple_admin::SECRET_ENV, secret)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let site = format!("http://127.0.0.1:{port}");
    wait_until("the admin answers", Duration::from_secs(20), || {
        ureq::get(&format!("{site}/static/admin.css"))
            .call()
            .is_ok()
    });
    (child, site)
}

/// Sends SIGTERM to `child` and waits for it to exit successfully.
fn terminate(mut child: std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    wait_until(
        "the admin stops on SIGTERM",
        Duration::from_secs(20),
        || {
            status = child.try_wait().unwrap();
            status.is_some()
        },
    );
    assert!(status.unwrap().success());
}

fn admin_subcommand_serves_the_dashboard_until_sigterm(db: &TestDb) {
    let secret = "5a".repeat(64);
    let (child, site) = start_admin(db, &secret);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let home = agent.get(&format!("{site}/")).call().unwrap();
    assert_eq!(home.status(), 303);
    assert_eq!(home.header("location"), Some("/login?next=%2F"));
    let login = agent.get(&format!("{site}/login")).call().unwrap();
    let cookie = login
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body = login.into_string().unwrap();
    let csrf = Resp {
        status: StatusCode::OK,
        headers: Default::default(),
        body,
    }
    .csrf();
    let done = agent
        .post(&format!("{site}/login"))
        .set("cookie", &cookie)
        .send_form(&[("csrf", &csrf), ("password", PASSWORD)])
        .unwrap();
    assert_eq!(done.status(), 303);
    let cookie = done
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let tasks = |site: &str| {
        agent
            .get(&format!("{site}/tasks"))
            .set("cookie", &cookie)
            .call()
            .unwrap()
    };
    let page = tasks(&site);
    assert_eq!(page.status(), 200);
    assert!(
        page.into_string().unwrap().contains("mail.send"),
        "the app's tasks are listed"
    );
    terminate(child);

    // Restarted with the same secret, the admin still knows the session; with another, not.
    let (child, site) = start_admin(db, &secret);
    assert_eq!(tasks(&site).status(), 200, "the session survives a restart");
    terminate(child);
    let (child, site) = start_admin(db, &"a5".repeat(64));
    assert_eq!(
        tasks(&site).status(),
        303,
        "another secret, another set of sessions"
    );
    terminate(child);
}

// ---------------------------------------------------------------------------------------------
// A real browser

mod browser {
    use super::*;
    use std::net::TcpListener as StdListener;
    use std::process::{Child, Command, Stdio};

    use base64::Engine;
    use serde_json::Value;

    const CHROMIUM: &str = "/usr/bin/chromium";
    const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
    const DEADLINE: Duration = Duration::from_secs(20);

    fn chromium_present() -> bool {
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists()
    }

    /// The build script's verdict matches this machine: the browser test is ignored exactly
    /// when the browser is missing outside CI (a stale verdict would skip it with Chromium
    /// installed, or fail it without).
    #[test]
    fn browser_test_is_ignored_exactly_when_chromium_is_missing() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert_eq!(
            cfg!(chromium_missing),
            !chromium_present() && !ci,
            "chromium present: {}, CI: {ci}",
            chromium_present()
        );
    }

    struct Driver {
        url: String,
        child: Child,
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    struct Session {
        url: String,
        _profile: tempfile::TempDir,
    }

    fn call(method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
        let request = ureq::request(method, url).timeout(Duration::from_secs(60));
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => r.into_json::<Value>().map_err(|e| e.to_string()),
            Err(ureq::Error::Status(code, r)) => Err(format!(
                "{method} {url}: {code} {}",
                r.into_string().unwrap_or_default()
            )),
            Err(e) => Err(format!("{method} {url}: {e}")),
        }
    }

    impl Session {
        fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
            call(method, &format!("{}{path}", self.url), body).map(|v| v["value"].clone())
        }

        fn must(&self, method: &str, path: &str, body: Option<Value>) -> Value {
            self.cmd(method, path, body)
                .unwrap_or_else(|e| panic!("{e}"))
        }

        fn goto(&self, url: &str) {
            self.must("POST", "/url", Some(json!({ "url": url })));
        }

        fn current_url(&self) -> String {
            self.must("GET", "/url", None).as_str().unwrap().to_string()
        }

        fn find(&self, css: &str) -> Option<String> {
            let v = self
                .cmd(
                    "POST",
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .ok()?;
            v.as_object()?.values().next()?.as_str().map(str::to_string)
        }

        /// Waits for an element to appear.
        fn wait_for(&self, css: &str) -> String {
            let mut found = None;
            wait_until(&format!("element {css}"), DEADLINE, || {
                found = self.find(css);
                found.is_some()
            });
            found.unwrap()
        }

        fn click(&self, css: &str) {
            let el = self.wait_for(css);
            self.must("POST", &format!("/element/{el}/click"), Some(json!({})));
        }

        fn type_into(&self, css: &str, text: &str) {
            let el = self.wait_for(css);
            self.must(
                "POST",
                &format!("/element/{el}/value"),
                Some(json!({ "text": text })),
            );
        }

        fn text(&self, css: &str) -> String {
            let el = self.wait_for(css);
            self.must("GET", &format!("/element/{el}/text"), None)
                .as_str()
                .unwrap_or("")
                .to_string()
        }

        fn screenshot(&self, path: &std::path::Path) {
            let data = self.must("GET", "/screenshot", None);
            let png = base64::engine::general_purpose::STANDARD
                .decode(data.as_str().unwrap())
                .unwrap();
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, png).unwrap();
        }

        fn resize(&self, width: u32, height: u32) {
            self.must(
                "POST",
                "/window/rect",
                Some(json!({"width": width, "height": height})),
            );
        }
    }

    fn free_port() -> u16 {
        StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start_driver() -> Driver {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        wait_until("chromedriver ready", DEADLINE, || {
            call("GET", &format!("{}/status", driver.url), None)
                .is_ok_and(|v| v["value"]["ready"] == json!(true))
        });
        driver
    }

    fn new_session(driver: &Driver) -> Session {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--no-first-run".to_string(),
            "--window-size=1280,900".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args }
            }}
        });
        let created = call("POST", &format!("{}/session", driver.url), Some(caps))
            .unwrap_or_else(|e| panic!("create a browser session: {e}"));
        let id = created["value"]["sessionId"].as_str().unwrap().to_string();
        Session {
            url: format!("{}/session/{id}", driver.url),
            _profile: profile,
        }
    }

    /// Log in, filter executions to Failed, requeue one, see the new execution appear, open
    /// its page; and a screenshot of the overview in `test-artifacts/`.
    ///
    /// Without the browser, `tests/build.rs` marks it ignored (outside CI), so that the test
    /// summary counts it as skipped rather than passed; run anyway, it fails.
    #[test]
    #[cfg_attr(
        chromium_missing,
        ignore = "needs /usr/bin/chromium and /usr/bin/chromedriver: apt-get install chromium chromium-driver"
    )]
    fn log_in_filter_requeue_and_follow_in_chromium() {
        assert!(
            chromium_present(),
            "{CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver"
        );
        let db = TestDb::sqlite();
        // Data: a busy last hour for the chart, a few failures, pending work, two workers.
        insert_many(&db, 600);
        let failed = fail_with::queue("<script>alert(1)</script>".into())
            .unwrap()
            .id();
        db.run_by_hand(failed);
        for i in 0..3 {
            add::queue(i, 1).unwrap();
        }
        send::queue("ann@example.com".into()).unwrap();
        let now = Utc::now().naive_utc();
        insert_worker(&db, "web-1", now, None);
        insert_worker(&db, "web-2", now - TimeDelta::seconds(4), None);
        db.execute("UPDATE worker_statuses SET handled = 1520 WHERE label = 'web-1'");
        db.store
            .add_schedule(
                &toosimple_core::NewSchedule::new("reports", "add", json!({"a": 1, "b": 2}))
                    .every(toosimple_core::Every::Seconds(3600))
                    .between("02:00/18:30".parse().unwrap())
                    .weekdays("mon,tue,wed,thu,fri".parse().unwrap()),
            )
            .unwrap();

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = AdminConfig::new(db.store.clone(), Password::plain(PASSWORD))
            .failed_login_delay(FAILED_LOGIN_DELAY);
        let app = Router::new().nest("/admin", router(config));
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, app).await });
        let site = format!("http://{addr}/admin");

        let driver = start_driver();
        let s = new_session(&driver);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Log in: the overview asks for the password first.
            s.goto(&site);
            s.wait_for("input#password");
            assert!(s.current_url().contains("/admin/login"));
            s.type_into("input#password", PASSWORD);
            s.click("form.login button[type=submit]");
            s.wait_for("figure.chart svg");
            assert_eq!(s.text("h1"), "Overview");
            s.screenshot(&artifacts().join("admin-overview.png"));
            s.resize(390, 844);
            s.screenshot(&artifacts().join("admin-overview-phone.png"));
            s.resize(1280, 900);

            // Executions, filtered to Failed.
            s.click("nav a[href='/admin/execs']");
            s.wait_for("form.filters select[name=state]");
            s.click("select[name=state] option[value=failed]");
            s.click("form.filters button[type=submit]");
            wait_until("the failed filter applied", DEADLINE, || {
                s.current_url().contains("state=failed")
            });
            let row = format!("tr#e{failed}");
            s.wait_for(&row);
            let badges = s.text("table.execs tbody");
            assert!(!badges.contains("succeeded"), "only failed rows: {badges}");
            assert!(
                s.text(&row).contains("<script>alert(1)</script>"),
                "shown as text"
            );

            // Requeue it.
            s.click(&format!("{row} input[type=checkbox]"));
            s.click("button.requeue");
            s.wait_for(".flash.ok");
            let flash = s.text(".flash.ok");
            assert!(flash.starts_with("Requeued 1 execution as #"), "{flash}");
            let new_id: i64 = flash.rsplit('#').next().unwrap().trim().parse().unwrap();
            assert_eq!(exec(&db, new_id).args, exec(&db, failed).args);
            assert!(
                s.current_url().contains("state=failed"),
                "back to the filtered list"
            );

            // The new execution appears in the list, queued.
            s.goto(&format!("{site}/execs"));
            let new_row = format!("tr#e{new_id}");
            s.wait_for(&new_row);
            assert!(s.text(&new_row).contains("queued"));
            s.screenshot(&artifacts().join("admin-executions.png"));

            // Its page.
            s.click(&format!("{new_row} a[href='/admin/execs/{new_id}']"));
            wait_until("the execution page", DEADLINE, || {
                s.find("h1")
                    .is_some_and(|_| s.text("h1") == format!("Execution #{new_id}"))
            });
            assert!(s.text("pre.json").contains("<script>alert(1)</script>"));
            s.screenshot(&artifacts().join("admin-execution.png"));

            // Schedules: the compiled ones and those stored at run time.
            s.goto(&format!("{site}/schedules"));
            s.wait_for("tr#stored-reports");
            assert!(s.text("tr#stored-reports").contains("every 3600 s"));
            s.screenshot(&artifacts().join("admin-schedules.png"));
            s.click("tr#stored-reports button[value=pause]");
            s.wait_for(".flash.ok");
            assert!(s.text(".flash.ok").starts_with("Paused schedule reports"));

            // Workers: what each runs and handled, and a stop button.
            s.goto(&format!("{site}/workers"));
            s.wait_for("table.workers");
            s.screenshot(&artifacts().join("admin-workers.png"));
            s.click("form.stop button[value=graceful]");
            s.wait_for(".flash.ok");
            assert!(s.text(".flash.ok").starts_with("Asked web-1 to stop"));
            // No script ran: there is no alert open.
            assert!(s.cmd("GET", "/alert/text", None).is_err());
        }));
        let _ = s.cmd("DELETE", "", None);
        drop(driver);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
        assert!(artifacts().join("admin-overview.png").exists());
    }

    fn artifacts() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("test-artifacts")
    }
}

// ---------------------------------------------------------------------------------------------
// Counts and lists that stay bounded on big tables

/// Adds `n` executions of `task` in `state` on `queue`, finished now when `state` is final.
fn insert_state(db: &TestDb, queue: &str, task: &str, state: State, n: usize) {
    let now = Utc::now().naive_utc();
    let finished = (!state.is_pending() && state != State::Processing).then_some(now);
    let mut conn = db.store.connection().unwrap();
    for _ in 0..n {
        diesel::insert_into(te::task_execs)
            .values((
                te::task_name.eq(task),
                te::args.eq("{}"),
                te::queue.eq(queue),
                te::priority.eq(0),
                te::state.eq(state.as_str()),
                te::due.eq(now),
                te::created.eq(now),
                te::finished.eq(finished),
                te::retries.eq(0),
                te::retry_delay.eq(0i64),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
}

fn overview_marks_estimated_counts_and_says_what_they_are(db: &TestDb) {
    insert_state(db, "default", "add", State::Failed, 3);
    insert_state(db, "emails", "mail.send", State::Failed, 1);
    insert_state(db, "default", "add", State::Queued, 1);
    // Under the limit (10,000 by default): every count exact, nothing marked.
    let mut client = Client::new(db).login();
    let body = client.get("/").body;
    assert!(
        body.contains(r#"<span class="count">4</span><span class="what">failed</span>"#),
        "{body}"
    );
    assert!(!body.contains("approximate"), "{body}");
    // Over it, the failed executions' split per queue is estimated, and marked so, with
    // a legend; the queued one is still counted.
    let config =
        AdminConfig::new(db.store.clone(), Password::plain(PASSWORD)).exact_counts_up_to(2);
    let mut client = Client::with_config(config, "/admin").login();
    let page = client.get("/");
    page.assert_ok();
    let body = page.body;
    assert!(body.contains(r#"class="muted approximate-note""#), "{body}");
    assert!(
        body.contains(r#"<a class="approximate" title="an estimate: more executions than the page counts one by one" href="/admin/execs?state=failed&amp;queue=default">≈"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<span class="count">1</span><span class="what">queued</span>"#),
        "{body}"
    );
    // SQLite counts the total exactly; the others estimate it, and say so on the card.
    let card_estimated = body.contains(r#"<span class="count approximate""#);
    assert_eq!(
        card_estimated,
        db.store.backend() != toosimple_core::Backend::Sqlite,
        "{body}"
    );
}

fn view_counts_are_exact_up_to_the_limit_and_estimated_beyond(db: &TestDb) {
    use toosimple_core::Count;
    insert_state(db, "default", "add", State::Failed, 3);
    insert_state(db, "emails", "mail.send", State::Failed, 2);
    insert_state(db, "default", "add", State::Queued, 1);
    insert_state(db, "emails", "mail.send", State::Succeeded, 2);
    // Within the limit: the same numbers as counting every row, none marked.
    let exact = TaskExec::view_counts_in(&db.store, 100).unwrap();
    assert_eq!(exact.per_queue, TaskExec::counts_in(&db.store).unwrap());
    assert!(!exact.any_approximate());
    assert_eq!(exact.state(State::Failed), Count::exact(5));
    assert_eq!(exact.state(State::Sleeping), Count::exact(0));
    assert_eq!(exact.per_state.len(), State::ALL.len());

    // A limit of 2: succeeded (2) and queued (1) are still counted, failed (5) is not.
    let bounded = TaskExec::view_counts_in(&db.store, 2).unwrap();
    assert_eq!(bounded.exact_up_to, 2);
    assert_eq!(bounded.state(State::Succeeded), Count::exact(2));
    assert_eq!(bounded.state(State::Queued), Count::exact(1));
    let failed = bounded.state(State::Failed);
    match db.store.backend() {
        // SQLite's total is the table's count less the other states: exact.
        toosimple_core::Backend::Sqlite => assert_eq!(failed, Count::exact(5)),
        // The planner's estimate of a table never analyzed, never below the 3 rows read.
        _ => assert!(failed.approximate && failed.n >= 3, "{failed:?}"),
    }
    let failed_per_queue: Vec<_> = bounded
        .per_queue
        .iter()
        .filter(|c| c.state == State::Failed)
        .collect();
    assert!(!failed_per_queue.is_empty());
    assert!(
        failed_per_queue
            .iter()
            .all(|c| c.approximate && c.count >= 1)
    );
    assert!(
        bounded
            .per_queue
            .iter()
            .filter(|c| c.state != State::Failed)
            .all(|c| !c.approximate)
    );
    assert!(bounded.any_approximate());
    // Marked in JSON only when estimated, as `status --json` prints them.
    let json = serde_json::to_value(&bounded.per_queue).unwrap();
    for entry in json.as_array().unwrap() {
        assert_eq!(
            entry.get("approximate").is_some(),
            entry["state"] == "failed",
            "{entry}"
        );
    }
}

fn keyset_pages_walk_every_row_once_newest_first(db: &TestDb) {
    for i in 0..6 {
        insert_state(db, "default", "add", State::Succeeded, 1);
        insert_state(db, "emails", "mail.send", State::Failed, 1);
        if i % 2 == 0 {
            insert_state(db, "default", "add", State::Queued, 1);
        }
    }
    for filter in [
        TaskExecFilter::default(),
        TaskExecFilter::default().state(State::Failed),
        TaskExecFilter::default().queue("default"),
        TaskExecFilter::default()
            .task_name("add")
            .state(State::Queued),
    ] {
        let all: Vec<i64> = TaskExec::list_in(&db.store, &filter.clone().limit(1000))
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert!(!all.is_empty());
        assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
        // Pages of 4, each from the last id of the one before, as the admin's "Older →".
        let mut walked = Vec::new();
        let mut before = None;
        loop {
            let mut page = filter.clone().limit(4);
            if let Some(id) = before {
                page = page.before_id(id);
            }
            let rows = TaskExec::list_in(&db.store, &page).unwrap();
            assert!(rows.len() <= 4);
            let Some(last) = rows.last() else { break };
            before = Some(last.id);
            walked.extend(rows.iter().map(|e| e.id));
        }
        assert_eq!(walked, all, "{filter:?}");
    }
    // The admin's pager links the next page by the last id shown.
    let config = AdminConfig::new(db.store.clone(), Password::plain(PASSWORD)).page_size(4);
    let mut client = Client::with_config(config, "/admin").login();
    let first = client.get("/execs?state=failed");
    let ids: Vec<i64> = TaskExec::list_in(
        &db.store,
        &TaskExecFilter::default().state(State::Failed).limit(4),
    )
    .unwrap()
    .iter()
    .map(|e| e.id)
    .collect();
    assert!(
        first
            .body
            .contains(&format!("/admin/execs?state=failed&amp;before={}", ids[3])),
        "{}",
        first.body
    );
    assert!(!first.body.contains("offset"));
}
