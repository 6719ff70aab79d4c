//! Define a task, enqueue it, run a worker until nothing is left, read the results.
//!
//! Run with: `cargo run -p toosimple --example quickstart`
//!
//! It works on a SQLite file in a temporary folder and exits 0 once every execution
//! succeeded. In an application, the queueing side and `app worker` are separate processes
//! sharing `TOOSIMPLE_DATABASE_URL`; here one process plays both.

use std::time::Duration;

use toosimple::worker::{Exit, Worker};
use toosimple::{State, task};

#[task(retries = 2)]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[task(queue = "emails")]
fn welcome(email: String) -> String {
    format!("welcome, {email}!")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!(
        "sqlite://{}",
        dir.path().join("quickstart.sqlite3").display()
    );
    toosimple::init(&url)?; // creates the file and its tables

    let sum = add::queue(2, 3)?;
    let later = add::queue_at(toosimple::chrono::Utc::now(), 40, 2)?; // due now: Sleeping, then woken
    let hello = welcome::queue("ann@example.com".into())?;
    println!(
        "queued executions {}, {} and {}",
        sum.id(),
        later.id(),
        hello.id()
    );

    // `app worker --until-done`, in-process: runs every queue until nothing is left.
    let exit = Worker::new().until_done().run();
    assert_eq!(exit, Exit::Stopped);

    assert_eq!(sum.wait(Duration::from_secs(1))?, 5);
    assert_eq!(later.wait(Duration::from_secs(1))?, 42);
    println!("{}", hello.wait(Duration::from_secs(1))?);
    for exec in [sum.exec()?, hello.exec()?] {
        assert_eq!(exec.state, State::Succeeded);
        let result = exec.result.unwrap_or_default();
        println!("{} #{}: {} -> {result}", exec.task_name, exec.id, exec.args);
    }
    Ok(())
}
