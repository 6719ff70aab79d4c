// tests/tasks.rs
use toosimple::testing::TestStore;
use toosimple::worker::{Exit, Worker};
use toosimple::{State, task};

#[task(retries = 2)]
fn double(n: i64) -> i64 {
    n * 2
}

#[test]
fn double_runs_in_a_worker() -> Result<(), Box<dyn std::error::Error>> {
    assert_eq!(double(21), 42); // the function, called directly

    let _db = TestStore::new()?; // a new SQLite file, deleted when the test ends
    let handle = double::queue(21)?;
    assert_eq!(Worker::new().until_done().run(), Exit::Stopped);
    assert_eq!(handle.state()?, State::Succeeded);
    assert_eq!(handle.wait(std::time::Duration::from_secs(1))?, 42);
    Ok(())
}

#[test]
fn each_test_has_a_database_of_its_own() -> Result<(), Box<dyn std::error::Error>> {
    let _db = TestStore::new()?;
    let handle = double::queue(1)?;
    assert_eq!(Worker::new().until_done().run(), Exit::Stopped);
    assert_eq!(
        toosimple::TaskExec::list(&Default::default())?,
        vec![handle.exec()?]
    );
    Ok(())
}
