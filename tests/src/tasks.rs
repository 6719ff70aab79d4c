//! Tasks the tests enqueue, defined in a library crate on purpose (see the crate docs).

use serde::{Deserialize, Serialize};
use toosimple_core::{TaskExec, hook, schedule, task};

/// Adds two numbers.
#[task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// A value with every shape of data a task argument can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Everything {
    pub text: String,
    pub nested: Inner,
    pub maybe: Option<Vec<i32>>,
    pub none: Option<String>,
    pub list: Vec<Inner>,
    pub min: i64,
    pub max: i64,
    pub float: f64,
    pub unit: (),
}

/// A nested struct inside [`Everything`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inner {
    pub name: String,
    pub flag: bool,
}

impl Everything {
    /// A value using unicode, extremes and nesting.
    pub fn sample() -> Everything {
        Everything {
            text: "héllo wörld ✓ 日本語 🚀 \"quoted\" \\ \n tab\t".to_string(),
            nested: Inner {
                name: "inner".into(),
                flag: true,
            },
            maybe: Some(vec![-1, 0, 1]),
            none: None,
            list: vec![
                Inner {
                    name: "a".into(),
                    flag: false,
                },
                Inner {
                    name: "ß".into(),
                    flag: true,
                },
            ],
            min: i64::MIN,
            max: i64::MAX,
            float: -1234.5678e-3,
            unit: (),
        }
    }
}

/// Returns its argument.
#[task]
pub fn echo(value: Everything) -> Everything {
    value
}

/// Takes several arguments of different types, returns them as a tuple.
#[task]
pub fn many_args(
    text: String,
    maybe: Option<i64>,
    list: Vec<String>,
    float: f64,
) -> (String, Option<i64>, Vec<String>, f64) {
    (text, maybe, list, float)
}

/// Returns nothing.
#[task]
pub fn nothing() {}

/// An async task.
#[task]
pub async fn shout(text: String) -> String {
    text.to_uppercase()
}

/// Fails with the given message.
#[task]
pub fn fail_with(message: String) -> Result<i64, String> {
    Err(message)
}

/// A unique task: one pending execution per key.
#[task(unique = true)]
pub fn refresh(key: String) -> String {
    key
}

/// The error type of [`send`].
#[derive(Debug)]
pub struct MailError(pub String);

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mail error: {}", self.0)
    }
}

/// The fully optioned task of DESIGN.md.
#[task(
    name = "mail.send",
    queue = "emails",
    priority = 5,
    retries = 3,
    retry_delay = 2,
    unique = true,
    timeout = 30
)]
pub async fn send(to: String) -> Result<(), MailError> {
    if to.contains('@') {
        Ok(())
    } else {
        Err(MailError(format!("{to} is not an address")))
    }
}

/// The scheduled task of DESIGN.md; `manual` here, so that the workers of unrelated tests never
/// enqueue it (tests/tests/public_api.rs has the daily one).
#[schedule(cron = "manual", args = ("John".to_string(),))]
#[task]
pub fn morning(name: String) -> String {
    format!("Good morning {name} !")
}

diesel::table! {
    /// What [`record`] writes: one row per execution, to count executions exactly.
    side_effects (id) {
        id -> BigInt,
        n -> BigInt,
        pid -> BigInt,
    }
}

/// Records that it ran with `n` in `side_effects` (see `TestDb::create_side_effects`).
#[task]
pub fn record(n: i64) -> Result<(), String> {
    use diesel::prelude::*;
    let store = toosimple_core::default_store().map_err(|e| e.to_string())?;
    let mut conn = store.connection().map_err(|e| e.to_string())?;
    diesel::insert_into(side_effects::table)
        .values((
            side_effects::n.eq(n),
            side_effects::pid.eq(i64::from(std::process::id())),
        ))
        .execute(&mut *conn)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Records `n` with a high priority.
#[task(priority = 2)]
pub fn record_high(n: i64) -> Result<(), String> {
    record(n)
}

/// Records `n` on queue `q1`.
#[task(queue = "q1")]
pub fn record_q1(n: i64) -> Result<(), String> {
    record(n)
}

/// Records `n` on queue `q2`.
#[task(queue = "q2")]
pub fn record_q2(n: i64) -> Result<(), String> {
    record(n)
}

/// Always fails; retried three times with delays 1, 2 and 4 s.
#[task(retries = 3, retry_delay = 1)]
pub fn always_fails() -> Result<(), String> {
    Err("it always fails".to_string())
}

/// Fails the first time (it creates the file `marker`), then returns `a + b`: one retry,
/// at once.
#[task(retries = 1, retry_delay = 0)]
pub fn fails_once(marker: String, a: i64, b: i64) -> Result<i64, String> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Ok(_) => Err("the first run fails".to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(a + b),
        Err(e) => Err(format!("cannot create {marker}: {e}")),
    }
}

/// Panics.
#[task]
pub fn panics(message: String) {
    panic!("{message}");
}

/// Sleeps `ms` milliseconds on a blocking thread, then records `n`.
#[task]
pub fn sleepy(ms: u64, n: i64) -> Result<(), String> {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    record(n)
}

/// Records `n` as it starts and `-n` as it ends, `ms` milliseconds later: the spans of runs,
/// in `side_effects`' order, show which ran at the same time (`n` must not be 0).
#[task]
pub fn records_its_span(ms: u64, n: i64) -> Result<(), String> {
    record(n)?;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    record(-n)
}

/// Sleeps `ms` milliseconds, then records `n`; times out after 1 s.
#[task(timeout = 1)]
pub fn sleepy_with_timeout(ms: u64, n: i64) -> Result<(), String> {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    record(n)
}

/// Sleeps `ms` milliseconds asynchronously, then records `n`; times out after 1 s. Cancelled
/// before its sleep ends (its future dropped), it records `-n` instead: a cancellation that
/// tests can wait for, rather than checking after a while that `n` never came.
#[task(timeout = 1)]
pub async fn async_sleepy_with_timeout(ms: u64, n: i64) -> Result<(), String> {
    let mut cancelled = RecordOnDrop(Some(-n));
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    cancelled.0 = None;
    record(n)
}

/// Records `n` as it starts, then sleeps `ms` milliseconds asynchronously; cancelled before
/// its sleep ends (its future dropped), it also records `-n`. A test waits for `n` before
/// cancelling it: a row being `Processing` only says it was claimed, not that it runs yet.
#[task]
pub async fn announced_sleep(ms: u64, n: i64) -> Result<(), String> {
    record(n)?;
    let mut cancelled = RecordOnDrop(Some(-n));
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    cancelled.0 = None;
    Ok(())
}

/// Records its number when dropped, unless emptied first.
struct RecordOnDrop(Option<i64>);

impl Drop for RecordOnDrop {
    fn drop(&mut self) {
        if let Some(n) = self.0.take() {
            let _ = record(n);
        }
    }
}

/// Sleeps `ms` milliseconds, then appends the line `n` to the file `path`: a side effect
/// outside the database, to count executions while the database is down or restarting.
#[task]
pub fn append_line(path: String, n: i64, ms: u64) -> Result<(), String> {
    use std::io::Write;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    // One write of a whole line to a file opened for appending: lines never interleave.
    file.write_all(format!("{n}\n").as_bytes())
        .map_err(|e| format!("{path}: {e}"))
}

/// Returns the occurrence it was enqueued for (schedules' `datetime_arg`).
#[task]
pub fn at_time(at: Option<chrono::DateTime<chrono::Utc>>) -> Option<String> {
    at.map(|t| t.to_rfc3339())
}

/// Wrongly blocks its thread for `ms` milliseconds inside an async body (as a
/// `std::thread::sleep` or blocking I/O would), then records `n`: the worker must keep its
/// heartbeat and name the task.
#[task]
pub async fn blocks_its_thread(ms: u64, n: i64) -> Result<(), String> {
    std::thread::sleep(std::time::Duration::from_millis(ms));
    record(n)
}

/// Notes the database's time of this run in the `run_times` table (PostgreSQL only, created by
/// the test), then fails; retried twice, after 2 then 4 s.
#[task(retries = 2, retry_delay = 2)]
pub fn fails_noting_db_time(n: i64) -> Result<(), String> {
    use diesel::prelude::*;
    let store = toosimple_core::default_store().map_err(|e| e.to_string())?;
    let mut conn = store.connection().map_err(|e| e.to_string())?;
    diesel::sql_query("INSERT INTO run_times (n) VALUES ($1)")
        .bind::<diesel::sql_types::BigInt, _>(n)
        .execute(&mut *conn)
        .map_err(|e| e.to_string())?;
    Err(format!("run {n} fails on purpose"))
}

/// Notes each execution it is handed in `side_effects` (see [`record`]): its id, negated when
/// the row in the database does not hold the finished state the hook was given (a hook runs
/// once the outcome is committed, so it always should).
#[hook]
pub fn note_execution(exec: &TaskExec) -> Result<(), String> {
    let stored = TaskExec::get(exec.id).map_err(|e| e.to_string())?;
    let committed = exec.state.is_finished() && stored.state == exec.state;
    record(if committed { exec.id } else { -exec.id })
}

/// A hook that fails.
#[hook]
pub fn failing_hook(exec: &TaskExec) -> Result<(), String> {
    Err(format!("no one to tell about {}", exec.id))
}

/// A hook that panics.
#[hook(name = "hooks.panicking")]
pub fn panicking_hook(exec: &TaskExec) {
    panic!("the hook of {} panicked", exec.id);
}

/// Succeeds or fails as asked, retried once at once; each finished execution is handed to
/// [`note_execution`].
#[task(hook = note_execution, retries = 1, retry_delay = 0)]
pub fn hooked(succeed: bool) -> Result<(), String> {
    if succeed {
        Ok(())
    } else {
        Err("asked to fail".to_string())
    }
}

/// Named gates shared by the tests and the tasks they run in the same process: a task waits
/// on a gate the test opens (or opens one the test waits on), so that the test controls the
/// timing instead of sleeping and hoping.
pub mod gate {
    use std::collections::HashSet;
    use std::sync::{Condvar, Mutex};
    use std::time::{Duration, Instant};

    static OPEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    static CHANGED: Condvar = Condvar::new();

    /// Opens gate `name`.
    pub fn open(name: &str) {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.get_or_insert_with(HashSet::new)
            .insert(name.to_string());
        CHANGED.notify_all();
    }

    /// Whether gate `name` is open.
    pub fn is_open(name: &str) -> bool {
        let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.as_ref().is_some_and(|o| o.contains(name))
    }

    /// Blocks until gate `name` opens; `false` if it did not within `timeout`.
    pub fn wait(name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if open.as_ref().is_some_and(|o| o.contains(name)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            open = CHANGED
                .wait_timeout(open, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A name no other test uses: `what` and a number.
    pub fn unique(what: &str) -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{what}-{n}")
    }
}

/// How long the gated tasks wait for their test at most, so that a failed test never leaves
/// a task running forever.
const GATE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reports progress 0.5 "halfway", then waits for gate `key` and returns `n`.
#[task]
pub async fn halfway(key: String, n: i64, ctx: toosimple_core::TaskContext) -> i64 {
    ctx.progress(0.5, "halfway");
    let deadline = std::time::Instant::now() + GATE_LIMIT;
    while !gate::is_open(&key) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    n
}

/// Reports progress `reports` times, `i / reports` with the message `report i`, one every
/// `pause_us` microseconds; then opens gate `{key}-reported` and waits for gate `key`.
#[task]
pub fn many_reports(
    key: String,
    reports: u32,
    pause_us: u64,
    ctx: toosimple_core::TaskContext,
) -> u32 {
    for i in 1..=reports {
        ctx.progress(f64::from(i) / f64::from(reports), format!("report {i}"));
        std::thread::sleep(std::time::Duration::from_micros(pause_us));
    }
    gate::open(&format!("{key}-reported"));
    gate::wait(&key, GATE_LIMIT);
    reports
}

/// Opens gate `{key}-started`, then awaits forever (a minute at most); opens gate
/// `{key}-dropped` when its future is dropped (aborted) before it ends.
#[task]
pub async fn awaits_forever(key: String) -> Result<(), String> {
    struct OpenOnDrop(Option<String>);
    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            if let Some(name) = self.0.take() {
                gate::open(&name);
            }
        }
    }
    let mut dropped = OpenOnDrop(Some(format!("{key}-dropped")));
    gate::open(&format!("{key}-started"));
    tokio::time::sleep(GATE_LIMIT).await;
    dropped.0 = None;
    Err("nobody cancelled it".to_string())
}

/// Opens gate `{key}-started`, then checks its cancel flag every 5 ms (a minute at most);
/// once it sees it, opens gate `{key}-saw-cancel` and returns.
#[task]
pub fn checks_for_cancel(key: String, ctx: toosimple_core::TaskContext) -> Result<(), String> {
    gate::open(&format!("{key}-started"));
    let deadline = std::time::Instant::now() + GATE_LIMIT;
    while std::time::Instant::now() < deadline {
        if ctx.is_cancelled() {
            gate::open(&format!("{key}-saw-cancel"));
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err("nobody cancelled it".to_string())
}
