//! `demo tour`: a scripted walk-through that queues an example of every task, runs a worker
//! until they are done, and prints the executions.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use toosimple_core::{State, Store, TaskExec, TaskExecFilter};
use toosimple_worker::Worker;

use crate::subscribers::{self, SignupError};
use crate::tasks::{cleanup_unconfirmed, flaky_import, nightly_digest, render_report};

/// How long the tour waits for its executions (retries included) to finish.
const DEADLINE: Duration = Duration::from_secs(90);

/// Runs the tour; exit code 0 unless the database cannot be used.
pub fn run() -> ExitCode {
    match tour() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo tour: {}", e.report());
            ExitCode::FAILURE
        }
    }
}

/// How the reader starts this binary again: `cargo run -p demo --` when cargo ran it (what a
/// newcomer following the README types), `demo` when it was run directly (an installed binary,
/// the container).
fn demo_command() -> &'static str {
    if std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == env!("CARGO_PKG_NAME")) {
        "cargo run -p demo --"
    } else {
        "demo"
    }
}

fn step(text: &str) {
    println!("\n== {text}");
}

fn tour() -> Result<(), toosimple_core::Error> {
    let store = toosimple_core::default_store()?;
    subscribers::migrate(&store)?;
    println!("database: {} (migrations applied)", store.url());
    println!("mail: {:?}", toosimple_mail::Transport::current());
    let first_id = next_id(&store)?;

    step("A sign-up: the subscriber row and its welcome email task, in one transaction");
    let email = format!("reader-{}@example.com", Utc::now().timestamp_millis());
    match subscribers::sign_up(&store, &email, "Zoë Reader") {
        Ok(s) => println!(
            "subscriber #{} {email}: send_welcome queued as #{}",
            s.id, s.welcome_exec
        ),
        Err(e) => println!("sign-up failed: {e}"),
    }
    match subscribers::sign_up(&store, &email, "Zoë again") {
        Err(e @ SignupError::Duplicate(_)) => {
            println!("the same address again: \"{e}\"; nothing was queued")
        }
        other => println!("unexpected: {other:?}"),
    }

    step("Queue an example of every other task");
    let imports = flaky_import::queue_many([(1,), (2,), (3,)])?;
    println!(
        "flaky_import x3 (queue imports, 4 retries): #{}",
        ids(imports.iter().map(|h| h.id()))
    );
    let quick = render_report::queue(3)?;
    let slow = render_report::queue(40)?;
    println!(
        "render_report (async, timeout 2 s): 3 pages #{}, 40 pages #{} (will time out)",
        quick.id(),
        slow.id()
    );
    let eight = Utc::now()
        .with_hour(8)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0));
    let digest = nightly_digest::queue(eight)?;
    println!(
        "nightly_digest for this morning's occurrence: #{} (its schedule would queue it at 8:00)",
        digest.id()
    );
    let cleanup = cleanup_unconfirmed::queue()?;
    let again = cleanup_unconfirmed::queue()?;
    println!(
        "cleanup_unconfirmed (unique): #{}, queued again: #{} (duplicate: {})",
        cleanup.id(),
        again.id(),
        again.is_duplicate()
    );
    let note = lettre::Message::builder()
        .from(crate::tasks::MAIL_FROM.parse().expect("a valid address"))
        .to("editor@example.com".parse().expect("a valid address"))
        .subject("The tour ran ✓")
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body("Sent with toosimple_mail::send.".to_string())
        .expect("a valid message");
    let mail = toosimple_mail::send(&note)?;
    println!(
        "toosimple_mail::send: #{} (task toosimple_mail.send)",
        mail.id()
    );

    step("Run a worker until they are done (retries included)");
    let worker = Worker::new()
        .store(store.clone())
        .tick(Duration::from_millis(100))
        .schedules(false)
        .label("demo-tour-{pid}");
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());
    let started = Instant::now();
    let mut finished = false;
    while started.elapsed() < DEADLINE {
        std::thread::sleep(Duration::from_millis(200));
        if pending(&store, first_id)? == 0 {
            finished = true;
            break;
        }
    }
    shutdown.graceful();
    let exit = running
        .join()
        .unwrap_or_else(|_| toosimple_worker::Exit::Crashed("the worker thread panicked".into()));
    println!(
        "worker stopped ({exit:?}) after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !finished {
        println!(
            "some executions are still pending after {DEADLINE:?} (a mail server down?): `{} worker` will run them",
            demo_command()
        );
    }

    step("The executions, oldest first");
    print_table(&store, first_id)?;

    let demo = demo_command();
    step(&format!("Schedules (run by `{demo}` and `{demo} worker`)"));
    for schedule in toosimple_core::schedules() {
        println!(
            "{:<22} {:<12} {}; next {}",
            schedule.name(),
            schedule.cron(),
            schedule.describe().trim_end_matches('.'),
            schedule.next_due(Utc::now()).map_or("never".into(), |d| d
                .format("%Y-%m-%d %H:%M UTC")
                .to_string())
        );
    }

    step("Next");
    println!("{demo} status    counts per queue and state, and the workers");
    println!("{demo}           the sign-up site on http://127.0.0.1:8000 with a worker");
    println!("{demo} worker --queue emails --until-done");
    Ok(())
}

fn ids(ids: impl Iterator<Item = i64>) -> String {
    ids.map(|i| i.to_string()).collect::<Vec<_>>().join(", #")
}

/// The id the next execution will get (at least): executions from `first_id` on are the tour's.
fn next_id(store: &Store) -> Result<i64, toosimple_core::Error> {
    let latest = TaskExec::list_in(store, &TaskExecFilter::default().limit(1))?;
    Ok(latest.first().map_or(0, |e| e.id) + 1)
}

fn tour_execs(store: &Store, first_id: i64) -> Result<Vec<TaskExec>, toosimple_core::Error> {
    let mut all = Vec::new();
    let mut filter = TaskExecFilter::default().limit(500);
    loop {
        let page = TaskExec::list_in(store, &filter)?;
        let last = page.last().map(|e| e.id);
        let done = page.len() < 500 || last.is_some_and(|id| id < first_id);
        all.extend(page.into_iter().filter(|e| e.id >= first_id));
        match last {
            Some(id) if !done => filter = filter.before_id(id),
            _ => break,
        }
    }
    all.reverse();
    Ok(all)
}

fn pending(store: &Store, first_id: i64) -> Result<usize, toosimple_core::Error> {
    Ok(tour_execs(store, first_id)?
        .iter()
        .filter(|e| matches!(e.state, State::Queued | State::Sleeping | State::Processing))
        .count())
}

fn print_table(store: &Store, first_id: i64) -> Result<(), toosimple_core::Error> {
    println!(
        "{:>5}  {:<20} {:<12} {:<11} {:>7}  {:<8} result / error",
        "id", "task", "queue", "state", "retries", "next"
    );
    for exec in tour_execs(store, first_id)? {
        let outcome = match (&exec.result, &exec.error) {
            (_, Some(error)) => error.clone(),
            (Some(result), None) => result.to_string(),
            (None, None) => String::new(),
        };
        let outcome: String = outcome.chars().take(70).collect();
        println!(
            "{:>5}  {:<20} {:<12} {:<11} {:>7}  {:<8} {}",
            exec.id,
            exec.task_name,
            exec.queue,
            exec.state.as_str(),
            exec.retries,
            exec.replaced_by.map_or(String::new(), |r| format!("#{r}")),
            outcome
        );
    }
    Ok(())
}
