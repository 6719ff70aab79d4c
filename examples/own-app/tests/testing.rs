//! The README's "Testing your own tasks" path, under `cargo test`'s parallel threads: each
//! test's `TestStore` is its own database, and a worker sees only that test's executions.

use std::time::Duration;

use own_app::{non_negative, triple};
use toosimple::testing::TestStore;
use toosimple::worker::{Exit, Worker};
use toosimple::{State, TaskExec, TaskExecFilter};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What each test does: queue into a fresh database, drain it, and check that the worker saw
/// this test's executions and no other's.
fn queue_and_drain(n: i64) -> Result {
    let db = TestStore::new()?;
    let ok = triple::queue(n)?;
    let failed = non_negative::queue(-n - 1)?;
    assert_eq!(Worker::new().until_done().run(), Exit::Stopped);

    assert_eq!(ok.wait(Duration::from_secs(1))?, 3 * n);
    assert_eq!(failed.state()?, State::Failed);
    let rows = TaskExec::list_in(db.store(), &TaskExecFilter::default())?;
    let mut args: Vec<String> = rows.iter().map(|r| r.args.to_string()).collect();
    args.sort();
    let mut expected = vec![format!("{{\"n\":{}}}", -n - 1), format!("{{\"n\":{n}}}")];
    expected.sort();
    assert_eq!(args, expected, "the executions of another test leaked in");
    Ok(())
}

#[test]
fn a_queued_task_runs_in_the_tests_own_database() -> Result {
    queue_and_drain(21)
}

#[test]
fn a_failing_task_is_recorded_in_the_tests_own_database() -> Result {
    let _db = TestStore::new()?;
    let handle = non_negative::queue(-1)?;
    assert_eq!(Worker::new().until_done().run(), Exit::Stopped);
    let exec = handle.exec()?;
    assert_eq!(exec.state, State::Failed);
    assert_eq!(exec.error.as_deref(), Some("-1 is negative"));
    Ok(())
}

/// Whatever the runner (nextest gives each test a process of its own), tests on threads of one
/// process: with one `init` per test instead, their workers ran each other's executions and
/// their handles read another database.
#[test]
fn tests_on_parallel_threads_each_see_only_their_own_executions() -> Result {
    let threads: Vec<_> = (1..=6)
        .map(|n| std::thread::spawn(move || queue_and_drain(n * 100)))
        .collect();
    for thread in threads {
        thread.join().expect("the test thread panicked")?;
    }
    Ok(())
}

/// A failed assertion inside one test does not leave its database as the next test's.
#[test]
fn a_test_that_panics_hands_over_a_clean_default_store() -> Result {
    let first = std::thread::spawn(|| {
        let _db = TestStore::new().unwrap();
        triple::queue(1).unwrap();
        panic!("a test failing while it holds its database");
    });
    assert!(first.join().is_err());
    let _db = TestStore::new()?;
    assert_eq!(TaskExec::list(&TaskExecFilter::default())?, Vec::new());
    Ok(())
}

#[test]
fn the_facade_links_the_tasks_and_schedules_it_defines_and_brings() -> Result {
    let tasks: Vec<&str> = toosimple::tasks()?.iter().map(|t| t.name()).collect();
    for name in ["triple", "non_negative", "morning", "own_app.nightly"] {
        assert!(tasks.contains(&name), "{name} missing from {tasks:?}");
    }
    // The `mail` feature: its task is linked without naming toosimple_mail.
    assert!(tasks.contains(&toosimple::mail::TASK_NAME), "{tasks:?}");
    let schedules: Vec<&str> = toosimple::schedules().iter().map(|s| s.name()).collect();
    assert!(schedules.contains(&"morning"), "{schedules:?}");
    assert!(schedules.contains(&"nightly"), "{schedules:?}");
    Ok(())
}

/// `readme.rs` beside this file is the README's test example, run as a test file of its own:
/// the README must show it word for word.
#[test]
fn the_readme_shows_readme_rs_word_for_word() {
    let readme = include_str!("../../../README.md");
    let section = &readme[readme
        .find("## Testing your own tasks")
        .expect("the section")..];
    let start = section.find("```rust,ignore\n").expect("its block") + "```rust,ignore\n".len();
    let block = &section[start..start + section[start..].find("```\n").expect("its end")];
    assert_eq!(
        block,
        include_str!("readme.rs"),
        "update tests/readme.rs or the README"
    );
}
