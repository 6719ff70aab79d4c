//! Progress (River #163): a running task reports a fraction and a message through the
//! `TaskContext` it takes; its worker writes the latest report on the row at most once a
//! second, and the handle reads it back.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use toosimple_core::{Progress, State};
use toosimple_tests::tasks::{gate, halfway, many_reports};
use toosimple_tests::{TestDb, backend_suite, wait_until};
use toosimple_worker::Exit;

const DEADLINE: Duration = Duration::from_secs(30);

backend_suite!(
    the_handle_reads_the_progress_while_the_task_runs,
    progress_reports_are_coalesced_to_one_write_a_second,
);

fn the_handle_reads_the_progress_while_the_task_runs(db: &TestDb) {
    let key = gate::unique("halfway");
    let handle = halfway::queue(key.clone(), 7).unwrap();
    assert_eq!(handle.progress().unwrap(), None);
    let worker = {
        let worker = db.worker().concurrency(1).until_done();
        std::thread::spawn(move || worker.run())
    };
    let halfway = Some(Progress {
        fraction: 0.5,
        message: Some("halfway".to_string()),
    });
    // The task waits on the gate: it is still running when its progress is read back.
    wait_until("the progress to be written", DEADLINE, || {
        handle.progress().unwrap() == halfway
    });
    assert_eq!(handle.state().unwrap(), State::Processing);
    gate::open(&key);
    assert_eq!(handle.wait(DEADLINE).unwrap(), 7);
    assert_eq!(worker.join().unwrap(), Exit::Stopped);
    // The last progress written stays on the finished row.
    assert_eq!(handle.progress().unwrap(), halfway);
}

fn progress_reports_are_coalesced_to_one_write_a_second(db: &TestDb) {
    let key = gate::unique("many");
    // 1,000 reports over about two seconds (each pause at least 2 ms).
    let handle = many_reports::queue(key.clone(), 1000, 2000).unwrap();
    let worker = {
        let worker = db.worker().concurrency(1).until_done();
        std::thread::spawn(move || worker.run())
    };
    wait_until("the task to start", DEADLINE, || {
        handle.state().unwrap() == State::Processing
    });
    // Watch the row the whole time the task reports, and until the last report is written:
    // every stored value that lasts a few milliseconds is seen.
    let started = Instant::now();
    let last = Progress {
        fraction: 1.0,
        message: Some("report 1000".to_string()),
    };
    let mut seen = BTreeSet::new();
    loop {
        if let Some(progress) = handle.progress().unwrap() {
            seen.insert(progress.message.clone().unwrap_or_default());
            if gate::is_open(&format!("{key}-reported")) && progress == last {
                break;
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the last report was not written in time; seen {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!("{} values stored in {elapsed:.1} s: {seen:?}", seen.len());
    // At most one write a second (plus the first): far fewer values than reports.
    assert!(
        (seen.len() as f64) <= elapsed.ceil() + 1.0,
        "{} values stored in {elapsed:.1} s: {seen:?}",
        seen.len()
    );
    assert!(seen.len() < 20, "{seen:?}");
    assert_eq!(handle.state().unwrap(), State::Processing);
    gate::open(&key);
    assert_eq!(handle.wait(DEADLINE).unwrap(), 1000);
    assert_eq!(worker.join().unwrap(), Exit::Stopped);
    assert_eq!(handle.progress().unwrap(), Some(last));
}
