//! Bad stored arguments never panic a worker: whatever text a row's `args` holds (any JSON
//! value, JSON of the wrong shape, text that is not JSON, bytes that are not UTF-8), the
//! worker's own run path decodes it into the task's parameters or ends the execution `Invalid`
//! with a reason, and the execution is recorded as such on both backends.
//!
//! The oracle for "decodes" is serde itself: a struct with the task's parameters as fields,
//! read from the same JSON object, with unknown fields denied (the worker refuses extra
//! arguments) and missing parameters read as `null` (as the worker does, so that an `Option`
//! parameter added in a new version accepts old rows).

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toosimple_core::schema::task_execs::dsl as te;
use toosimple_core::store::{ClaimedExec, Outcome};
use toosimple_core::{State, TaskExec, task};
use toosimple_tests::TestDb;
use toosimple_worker::{Exit, Worker};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Kind {
    Plain,
    Number(i32),
    Fields { flag: bool },
}

/// Parameters of every kind serde decodes differently: integers, text, an optional list of
/// bytes, a map of floats, an enum, a tuple with a char.
#[task(name = "fuzz.typed")]
fn typed(
    n: i64,
    s: String,
    o: Option<Vec<u8>>,
    m: BTreeMap<String, f64>,
    e: Kind,
    t: (u8, char),
) -> usize {
    let _ = (n, o, m, e, t);
    s.len()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde only: the oracle of `typed`'s decoding
struct TypedArgs {
    n: i64,
    s: String,
    o: Option<Vec<u8>>,
    m: BTreeMap<String, f64>,
    e: Kind,
    t: (u8, char),
}

/// No parameters: only `{}` fits.
#[task(name = "fuzz.none")]
fn none() {}

/// An async task: its arguments are decoded on the task runtime, not a blocking thread.
#[task(name = "fuzz.async")]
async fn asynchronous(v: Value, w: Option<i8>) -> Value {
    let _ = w;
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde only: the oracle of `asynchronous`'s decoding
struct AsyncArgs {
    v: Value,
    w: Option<i8>,
}

const TASKS: [&str; 3] = ["fuzz.typed", "fuzz.none", "fuzz.async"];

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

/// Whether the worker should decode `args` (the stored text) for `task`.
fn decodes(task: &str, args: &str) -> bool {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(args) else {
        return false;
    };
    let params: &[&str] = match task {
        "fuzz.typed" => &["n", "s", "o", "m", "e", "t"],
        "fuzz.async" => &["v", "w"],
        _ => &[],
    };
    for param in params {
        object.entry(*param).or_insert(Value::Null);
    }
    let value = Value::Object(object);
    match task {
        "fuzz.typed" => serde_json::from_value::<TypedArgs>(value).is_ok(),
        "fuzz.none" => value.as_object().is_some_and(|m| m.is_empty()),
        "fuzz.async" => serde_json::from_value::<AsyncArgs>(value).is_ok(),
        other => unreachable!("{other}"),
    }
}

/// Text, with the characters JSON and databases treat specially.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 ]{0,8}",
        1 => any::<String>(),
        1 => Just("\u{0}".to_string()),
        1 => "[\"\\\\'`%_\u{0}\u{7f}\u{fffd}é日🚀]{1,4}",
    ]
}

/// Any JSON value, with the parameter names as likely keys and the values they take as
/// likely leaves, so that many objects come close to fitting.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-300i64..300).prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        text().prop_map(Value::from),
        prop::sample::select(vec!["Plain", "Number", "Fields", "x"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["n", "s", "o", "m", "e", "t", "v", "w", "flag", "Number", "Fields"])
            .prop_map(str::to_string),
        1 => text(),
    ]
}

/// An object with exactly the parameters of `fuzz.typed`, each a value that fits or does
/// not: the decoding of each parameter, rather than the shape of the object, is under test.
fn typed_object() -> impl Strategy<Value = Value> {
    let n = prop_oneof![8 => any::<i64>().prop_map(Value::from), 1 => json()];
    let s = prop_oneof![8 => text().prop_map(Value::from), 1 => json()];
    let o = prop_oneof![
        4 => Just(Value::Null),
        4 => prop::collection::vec(any::<u8>(), 0..4).prop_map(|b| serde_json::json!(b)),
        1 => json()
    ];
    let m = prop_oneof![
        8 => prop::collection::btree_map(text(), any::<f64>(), 0..3).prop_map(|m| serde_json::json!(m)),
        1 => json()
    ];
    let e = prop_oneof![
        3 => Just(serde_json::json!("Plain")),
        3 => any::<i32>().prop_map(|n| serde_json::json!({ "Number": n })),
        2 => any::<bool>().prop_map(|flag| serde_json::json!({ "Fields": { "flag": flag } })),
        1 => json()
    ];
    let t = prop_oneof![
        8 => (any::<u8>(), any::<char>()).prop_map(|t| serde_json::json!(t)),
        1 => json()
    ];
    (
        n,
        s,
        o,
        m,
        e,
        t,
        prop::option::weighted(0.1, (key(), json())),
    )
        .prop_map(|(n, s, o, m, e, t, extra)| {
            let mut object = serde_json::json!({ "n": n, "s": s, "o": o, "m": m, "e": e, "t": t });
            if let Some((k, v)) = extra {
                object[k] = v;
            }
            object
        })
}

/// What a row's `args` may hold: JSON as the application writes it, any JSON, JSON text
/// broken in places, text that is not JSON at all, and bytes that are not UTF-8 (read back
/// as the database hands them to the worker).
fn stored_args() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => typed_object().prop_map(|v| v.to_string()),
        3 => json().prop_map(|v| v.to_string()),
        1 => (json(), any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(v, a, b)| {
                // A slice of valid JSON: truncated objects, unbalanced quotes.
                let text = v.to_string();
                let (a, b) = (a.index(text.len() + 1), b.index(text.len() + 1));
                let (start, end) = (a.min(b), a.max(b));
                String::from_utf8_lossy(&text.as_bytes()[start..end]).into_owned()
            }),
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 0..16)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        1 => prop::sample::select(vec!["", "null", "[]", "{}", "{", "\"{}\"", "1e400", "{\"n\":1e400}"])
            .prop_map(str::to_string),
    ]
}

fn claimed(id: i64, task: &str, args: String) -> ClaimedExec {
    ClaimedExec {
        id,
        task_name: task.to_string(),
        args,
        queue: "default".to_string(),
        priority: 0,
        due: chrono::Utc::now().naive_utc(),
        retries: 0,
        retry_delay: 0,
        unique_key: None,
        timeout_ms: None,
        result_ttl: None,
        hook: None,
        signature: None,
        flow_id: None,
        own_retries: true,
        trace_context: None,
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// The worker's run path for one execution, without a database: any stored text ends
    /// `Succeeded` exactly when serde decodes it, otherwise `Invalid` with a reason; never
    /// `Failed` (which is what a panic while decoding would become).
    #[test]
    fn any_stored_arguments_run_or_are_invalid_with_a_reason(
        task in prop::sample::select(TASKS.to_vec()),
        args in stored_args(),
    ) {
        let expected = decodes(task, &args);
        let completion = toosimple_worker::run_claimed(claimed(1, task, args.clone()))
            .expect("the task is registered");
        match completion.outcome {
            Outcome::Succeeded(_) => prop_assert!(expected, "{task} ran with {args:?}"),
            Outcome::Invalid(reason) => {
                prop_assert!(!expected, "{task} refused {args:?}: {reason}");
                prop_assert!(!reason.trim().is_empty());
            }
            other => return Err(TestCaseError::fail(format!("{task} with {args:?}: {other:?}"))),
        }
    }
}

/// Rows of the tasks above with their `args` overwritten by `stored_args()`, drained by a
/// worker in-process: every row ends recorded, `Succeeded` or `Invalid` with a reason as the
/// oracle says, none left queued or processing, the worker stopping normally.
fn drain_corrupt_rows(db: &TestDb, cases: u32) {
    let postgres = db.store.backend() == toosimple_core::Backend::Postgres;
    let rows = prop::collection::vec((prop::sample::select(TASKS.to_vec()), stored_args()), 1..12);
    let mut runner = TestRunner::new(config(cases));
    runner
        .run(&rows, |rows| {
            db.execute("DELETE FROM task_execs");
            let mut written = Vec::new();
            for (task, args) in rows {
                // PostgreSQL cannot store a NUL character in a text column: no row holds one.
                let args = if postgres {
                    args.replace('\u{0}', "")
                } else {
                    args
                };
                let id =
                    toosimple_core::enqueue_by_name(&db.store, task, serde_json::json!({}), None)
                        .expect("enqueue")
                        .id();
                let mut conn = db.store.connection().expect("a connection");
                diesel::update(te::task_execs.find(id))
                    .set(te::args.eq(&args))
                    .execute(&mut *conn)
                    .expect("overwrite the arguments");
                written.push((id, task, args));
            }
            prop_assert_eq!(drain_within(db, Duration::from_secs(60)), Exit::Stopped);
            for (id, task, args) in written {
                let exec = TaskExec::get_in(&db.store, id).expect("the row");
                if decodes(task, &args) {
                    prop_assert_eq!(exec.state, State::Succeeded, "{} with {:?}", task, args);
                } else {
                    prop_assert_eq!(exec.state, State::Invalid, "{} with {:?}", task, args);
                    let reason = exec.error.unwrap_or_default();
                    prop_assert!(!reason.trim().is_empty(), "{task} with {args:?}: no reason");
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn sqlite_corrupt_rows_are_recorded_invalid_with_a_reason() {
    drain_corrupt_rows(&TestDb::sqlite(), 24);
}

#[test]
fn postgres_corrupt_rows_are_recorded_invalid_with_a_reason() {
    let Some(db) = TestDb::postgres() else { return };
    drain_corrupt_rows(&db, 24);
}

/// Drains `db` with a worker on a thread, failing after `limit` instead of hanging: the
/// finding below kept the worker retrying the same refused batch forever.
fn drain_within(db: &TestDb, limit: Duration) -> Exit {
    let worker = Worker::new()
        .store(db.store.clone())
        .tick(Duration::from_millis(50))
        .label("fuzz-worker")
        .schedules(false)
        .until_done();
    let (done, exit) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(worker.run()));
    exit.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the worker did not drain the queue within {limit:?}"))
}

/// Finding: an argument named `"\u0000"` makes the reason quote a NUL character, which
/// PostgreSQL refuses in a text column: the whole batch of outcomes failed to record, again at
/// every round, and its rows stayed `Processing` under a worker that never stopped.
fn a_nul_character_in_a_reason_is_recorded_not_refused(db: &TestDb) {
    let bad = toosimple_core::enqueue_by_name(&db.store, "fuzz.none", serde_json::json!({}), None)
        .unwrap()
        .id();
    db.execute(&format!(
        "UPDATE task_execs SET args = '{{\"\\u0000\": 1}}' WHERE id = {bad}"
    ));
    let good = toosimple_core::enqueue_by_name(&db.store, "fuzz.none", serde_json::json!({}), None)
        .unwrap()
        .id();
    assert_eq!(drain_within(db, Duration::from_secs(30)), Exit::Stopped);
    let exec = TaskExec::get_in(&db.store, bad).unwrap();
    assert_eq!(exec.state, State::Invalid);
    assert_eq!(exec.error.as_deref(), Some("unexpected argument `\\0`"));
    assert_eq!(
        TaskExec::get_in(&db.store, good).unwrap().state,
        State::Succeeded
    );
}

#[test]
fn sqlite_a_nul_character_in_a_reason_is_recorded_not_refused() {
    a_nul_character_in_a_reason_is_recorded_not_refused(&TestDb::sqlite());
}

#[test]
fn postgres_a_nul_character_in_a_reason_is_recorded_not_refused() {
    let Some(db) = TestDb::postgres() else { return };
    a_nul_character_in_a_reason_is_recorded_not_refused(&db);
}
