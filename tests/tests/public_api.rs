//! The public API exactly as DESIGN.md writes it, compiled and run on SQLite.
//!
//! This binary defines its own tasks and does not link the `toosimple_tests` task library
//! (whose task names are the same).

use toosimple_core::{State, TaskExec, TaskHandle, schedule, task};

#[derive(Debug)]
pub struct MailError;

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mail error")
    }
}

#[task] // name "add", queue "default", priority 0
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

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
    let _ = to;
    Ok(())
}

#[schedule(cron = "30 8 * * *", args = ("John".to_string(),))]
#[task]
pub fn morning(name: String) -> String {
    format!("Good morning {name} !")
}

#[test]
fn the_design_snippet_runs() -> Result<(), toosimple_core::Error> {
    let dir = tempfile::tempdir().unwrap();
    toosimple_core::init(&format!(
        "sqlite://{}",
        dir.path().join("api.sqlite3").display()
    ))?;

    let h: TaskHandle<i64> = add::queue(2, 3)?; // Queued
    let later = add::queue_at(chrono::Utc::now() + chrono::Duration::hours(1), 2, 3)?; // Sleeping
    let id: i64 = h.id();
    let exec: TaskExec = h.exec()?; // fresh row
    let same: TaskExec = TaskExec::get(id)?; // an error names a missing id
    assert_eq!(exec, same);
    assert_eq!(exec.state, State::Queued);
    assert_eq!(later.state()?, State::Sleeping);

    // Stand in for a worker: run the registered function and record its result.
    let def = toosimple_core::find_task("add")?;
    let toosimple_core::runtime::Invoker::Sync(run) = def.invoker() else {
        panic!("add is sync")
    };
    let result = run(exec.args.clone()).unwrap();
    let store = h.store()?;
    let mut conn = store.connection()?;
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE task_execs SET state = 'succeeded', result = '{result}' WHERE id = {id}"
        )),
        &mut *conn,
    )?;

    assert_eq!(h.wait(std::time::Duration::from_secs(10))?, 5); // blocks until done
    assert_eq!(send::queue("a@b.c".into())?.exec()?.queue, "emails");
    assert_eq!(morning("Ann".into()), "Good morning Ann !");
    Ok(())
}
