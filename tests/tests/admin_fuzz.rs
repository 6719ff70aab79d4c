//! Bad requests never break the admin: arbitrary query strings on every GET route, arbitrary
//! path segments, and arbitrary form bodies (with and without a valid CSRF token) on every POST
//! route, logged in and not, answer 2xx, 3xx or 4xx on both backends, never a 5xx nor a panic;
//! and a redirect never leaves the admin.
//!
//! Routes come from `toosimple_admin::ROUTES`, so a new route is fuzzed without a change here.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use toosimple_admin::{AdminConfig, Password, ROUTES, Secret, router};
use toosimple_tests::tasks::{add, fail_with};
use toosimple_tests::{TestDb, backend_suite};
use tower::ServiceExt;

backend_suite!(
    any_query_string_on_any_get_route_is_answered_without_a_server_error,
    any_form_on_any_post_route_is_answered_without_a_server_error,
    any_login_attempt_is_answered_without_a_server_error_and_stays_on_site,
    a_nul_character_in_a_filter_lists_nothing_instead_of_a_server_error,
    purging_older_than_the_first_year_deletes_nothing_instead_of_a_server_error,
);

const PASSWORD: &str = "correct horse battery staple";
const PREFIX: &str = "/admin";

/// Few enough cases for the debug suite (`PROPTEST_CASES` runs a longer hunt); no regression
/// files: a finding becomes a named test.
fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..Config::default()
    }
}

struct Resp {
    status: StatusCode,
    location: String,
    body: String,
}

/// The admin under `/admin`, called through `oneshot`, keeping its cookies.
struct Client {
    rt: tokio::runtime::Runtime,
    app: Router,
    cookies: BTreeMap<String, String>,
    csrf: String,
}

impl Client {
    fn new(db: &TestDb) -> Client {
        let admin = router(
            AdminConfig::new(db.store.clone(), Password::plain(PASSWORD))
                .secret(Secret::from_bytes(&[7; 64]).unwrap())
                .failed_login_delay(Duration::ZERO)
                .page_size(5),
        );
        Client {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            app: Router::new().nest(PREFIX, admin),
            cookies: BTreeMap::new(),
            csrf: String::new(),
        }
    }

    fn send(&mut self, method: &str, uri: &str, form: Option<String>) -> Resp {
        let mut builder = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            let cookies: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            builder = builder.header(header::COOKIE, cookies.join("; "));
        }
        let body = match form {
            Some(form) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form)
            }
            None => Body::empty(),
        };
        let request = builder.body(body).expect("a request");
        let response = self
            .rt
            .block_on(self.app.clone().oneshot(request))
            .expect("the router answers");
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        for cookie in response.headers().get_all(header::SET_COOKIE) {
            let cookie = String::from_utf8_lossy(cookie.as_bytes()).into_owned();
            if let Some((name, value)) = cookie.split(';').next().and_then(|c| c.split_once('=')) {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        let bytes = self
            .rt
            .block_on(response.into_body().collect())
            .expect("the body")
            .to_bytes();
        Resp {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The value of the first `name="csrf"` field of `page`.
    fn csrf_of(page: &Resp) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = page
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field in:\n{}", page.body));
        let rest = &page.body[at + marker.len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    fn log_in(&mut self) {
        let page = self.send("GET", &format!("{PREFIX}/login"), None);
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let form = encode_form(&[
            ("csrf".into(), Client::csrf_of(&page)),
            ("password".into(), PASSWORD.into()),
        ]);
        let done = self.send("POST", &format!("{PREFIX}/login"), Some(form));
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let home = self.send("GET", PREFIX, None);
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        self.csrf = Client::csrf_of(&home);
    }
}

fn encode_form(fields: &[(String, String)]) -> String {
    let pairs: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    pairs.join("&")
}

/// Percent-encodes every byte but the unreserved ones.
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

/// Rows for the pages to show: succeeded, failed, queued.
fn seed(db: &TestDb) {
    let done = add::queue(1, 2).unwrap();
    db.run_by_hand(done.id());
    let failed = fail_with::queue("<script>boom</script>\u{0}".into()).unwrap();
    db.run_by_hand(failed.id());
    add::queue(3, 4).unwrap();
}

/// A route's path with its `{param}`s filled by `segment`.
fn fill(path: &str, segment: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push_str(&rest[..open]);
        out.push_str(segment);
        rest = &rest[close..];
    }
    out.push_str(rest);
    if out == "/" {
        PREFIX.to_string()
    } else {
        format!("{PREFIX}{out}")
    }
}

/// Text where parsers break: numbers past every integer type, signs, dates, states, NUL,
/// HTML, percent signs, URLs that leave the site.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", "0", "1", "-1", "2", "9223372036854775807", "9223372036854775808",
            "-9223372036854775809", "99999999999999999999999", "1e400", "NaN", "1.5", " 7 ",
            "failed", "succeeded", "queued", "FAILED", "bogus", "default", "add", "%", "%00",
            "\u{0}", "'; DROP TABLE task_execs; --", "<script>alert(1)</script>", "//evil.example",
            "https://evil.example/", "/\\evil.example", "\\\\evil.example", "/admin/execs",
            "/admin//evil.example", "javascript:alert(1)", "2030-01-01T08:00:00Z",
            "36500000", "-36500000", "365000000000000",
        ])
        .prop_map(str::to_string),
        2 => any::<String>(),
        1 => "[0-9\\-+. ]{0,25}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec![
            "state", "queue", "task", "id", "before", "next", "back", "days", "name", "csrf",
            "password", "id[]",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// A query string or form body: well-formed pairs, or raw bytes percent-encoded and not.
fn encoded() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec((key(), value()), 0..6).prop_map(|pairs| encode_form(&pairs)),
        1 => "[a-z=&%0-9A-F+;#?]{0,30}",
        1 => any::<String>().prop_map(|s| s.replace(['#', ' '], "")),
    ]
}

/// A path segment for `{id}`-like parameters.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => value().prop_map(|v| encode(&v)),
        1 => "[a-zA-Z0-9%.~_-]{0,12}",
    ]
    .prop_filter("a segment", |s| !s.is_empty())
}

fn assert_answered(what: &str, resp: &Resp) -> Result<(), TestCaseError> {
    prop_assert!(
        resp.status.is_success() || resp.status.is_redirection() || resp.status.is_client_error(),
        "{what}: {} {}",
        resp.status,
        resp.body
    );
    if resp.status.is_redirection() {
        let location = &resp.location;
        prop_assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.contains('\\'),
            "{what} redirects off-site to {location:?}"
        );
    }
    Ok(())
}

fn any_query_string_on_any_get_route_is_answered_without_a_server_error(db: &TestDb) {
    seed(db);
    let mut client = Client::new(db);
    client.log_in();
    // The runner takes a `Fn`: the client's cookies change from case to case.
    let client = std::cell::RefCell::new(client);
    let gets: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.methods.contains(&"GET"))
        .map(|r| r.path)
        .collect();
    let mut runner = TestRunner::new(config(256));
    runner
        .run(
            &(
                prop::sample::select(gets),
                segment(),
                encoded(),
                any::<bool>(),
            ),
            |(path, segment, query, logged_in)| {
                let mut client = client.borrow_mut();
                let uri = format!("{}?{query}", fill(path, &segment));
                // An unparseable URI is refused by the HTTP layer before the router.
                if uri.parse::<axum::http::Uri>().is_err() {
                    return Ok(());
                }
                let saved = client.cookies.clone();
                if !logged_in {
                    client.cookies.clear();
                }
                let resp = client.send("GET", &uri, None);
                client.cookies = saved;
                assert_answered(&format!("GET {uri}"), &resp)?;
                if logged_in && !path.contains('{') && !path.starts_with("/static") {
                    prop_assert_ne!(resp.status, StatusCode::FORBIDDEN, "GET {}", uri);
                }
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

fn any_form_on_any_post_route_is_answered_without_a_server_error(db: &TestDb) {
    seed(db);
    let mut client = Client::new(db);
    client.log_in();
    let client = std::cell::RefCell::new(client);
    let posts: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.methods.contains(&"POST") && r.path != "/logout")
        .map(|r| r.path)
        .collect();
    let form = prop_oneof![
        // With the session's token first: the form reaches the action itself.
        3 => prop::collection::vec((key(), value()), 0..6).prop_map(Some),
        // Raw bodies: the token check and the form decoding.
        1 => encoded().prop_map(|_| None),
    ];
    let mut runner = TestRunner::new(config(256));
    runner
        .run(
            &(prop::sample::select(posts), segment(), form, encoded()),
            |(path, segment, fields, raw)| {
                let mut client = client.borrow_mut();
                let uri = fill(path, &segment);
                if uri.parse::<axum::http::Uri>().is_err() {
                    return Ok(());
                }
                let body = match fields {
                    Some(fields) => {
                        let mut all = vec![("csrf".to_string(), client.csrf.clone())];
                        all.extend(fields);
                        encode_form(&all)
                    }
                    None => raw,
                };
                let resp = client.send("POST", &uri, Some(body.clone()));
                assert_answered(&format!("POST {uri} {body:?}"), &resp)?;
                // A logged-out session (a field named `next` does not log out) would make every
                // later case a 403 and fuzz nothing: log in again.
                if client.send("GET", PREFIX, None).status != StatusCode::OK {
                    client.log_in();
                }
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

fn any_login_attempt_is_answered_without_a_server_error_and_stays_on_site(db: &TestDb) {
    let client = std::cell::RefCell::new(Client::new(db));
    let login = format!("{PREFIX}/login");
    let mut runner = TestRunner::new(config(128));
    runner
        .run(
            &(
                encoded(),
                value(),
                prop::option::of(value()),
                any::<bool>(),
                prop::bool::weighted(0.3),
            ),
            |(query, password, next, with_token, right_password)| {
                let mut client = client.borrow_mut();
                client.cookies.clear();
                let uri = format!("{login}?{query}");
                let page = if uri.parse::<axum::http::Uri>().is_ok() {
                    client.send("GET", &uri, None)
                } else {
                    client.send("GET", &login, None)
                };
                assert_answered(&format!("GET {uri}"), &page)?;
                let mut fields = Vec::new();
                if with_token && page.status == StatusCode::OK {
                    fields.push(("csrf".to_string(), Client::csrf_of(&page)));
                }
                let password = if right_password {
                    PASSWORD.to_string()
                } else {
                    password
                };
                fields.push(("password".to_string(), password));
                if let Some(next) = next {
                    fields.push(("next".to_string(), next));
                }
                let resp = client.send("POST", &login, Some(encode_form(&fields)));
                assert_answered(&format!("POST {login} {fields:?}"), &resp)?;
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Finding: `GET /admin/execs?queue=%00` (or `task=%00`) was a 500 on PostgreSQL, which
/// refuses a NUL character in a query ("invalid byte sequence for encoding UTF8: 0x00").
fn a_nul_character_in_a_filter_lists_nothing_instead_of_a_server_error(db: &TestDb) {
    seed(db);
    let mut client = Client::new(db);
    client.log_in();
    for query in [
        "queue=%00",
        "task=add%00",
        "queue=default&task=%00&state=failed",
    ] {
        let resp = client.send("GET", &format!("{PREFIX}/execs?{query}"), None);
        assert_eq!(resp.status, StatusCode::OK, "{query}: {}", resp.body);
    }
    let filter = toosimple_core::TaskExecFilter::default().queue("default\u{0}");
    assert!(
        toosimple_core::TaskExec::list_in(&db.store, &filter)
            .unwrap()
            .is_empty()
    );
}

/// Finding: purging executions older than 36,500,000 days (100,000 years, a date chrono holds)
/// was a 500 on PostgreSQL ("timestamp out of range"); the CLI's `purge --older-than 3000000d`
/// failed the same way.
fn purging_older_than_the_first_year_deletes_nothing_instead_of_a_server_error(db: &TestDb) {
    seed(db);
    let mut client = Client::new(db);
    client.log_in();
    let form = encode_form(&[
        ("csrf".into(), client.csrf.clone()),
        ("days".into(), "36500000".into()),
    ]);
    let resp = client.send("POST", &format!("{PREFIX}/execs/purge"), Some(form));
    assert_eq!(resp.status, StatusCode::SEE_OTHER, "{}", resp.body);
    let ancient = chrono::Utc::now() - chrono::TimeDelta::days(3_000_000);
    assert_eq!(
        toosimple_core::TaskExec::purge_in(&db.store, ancient, &[]).unwrap(),
        0
    );
    assert_eq!(db.count("finished IS NOT NULL"), 2);
}
