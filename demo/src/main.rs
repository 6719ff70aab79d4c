//! A small application using toosimple.
//!
//! Run with: `cargo run -p demo` (a walk-through: enqueue a few tasks and show their rows),
//! or `cargo run -p demo -- <subcommand>` for the toosimple command line.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use toosimple_core::{State, TaskExec, TaskExecFilter, task};

/// A newsletter subscriber.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscriber {
    email: String,
    name: String,
}

/// Sends the welcome email (printed, in this demo).
#[task(queue = "emails", retries = 3, retry_delay = 2)]
pub fn send_welcome(subscriber: Subscriber) -> Result<(), String> {
    println!("Welcome, {} <{}>!", subscriber.name, subscriber.email);
    Ok(())
}

/// Refreshes the subscriber count; unique, so repeated calls collapse into one pending run.
#[task(unique = true, priority = 5)]
pub fn refresh_stats() -> i64 {
    42
}

fn tour() -> Result<(), toosimple_core::Error> {
    let store = toosimple_core::default_store()?;
    println!("database: {}", store.url());
    let ann = Subscriber {
        email: "ann@example.com".into(),
        name: "Ann".into(),
    };
    let welcome = send_welcome::queue(ann)?;
    let first = refresh_stats::queue()?;
    let second = refresh_stats::queue()?;
    println!(
        "queued send_welcome as #{}; refresh_stats as #{} (again: #{}, duplicate: {})",
        welcome.id(),
        first.id(),
        second.id(),
        second.is_duplicate()
    );
    let pending = TaskExec::list(
        &TaskExecFilter::default()
            .state(State::Queued)
            .state(State::Sleeping)
            .limit(10),
    )?;
    println!(
        "{:>6}  {:<14} {:<10} {:<9} args",
        "id", "task", "queue", "state"
    );
    for exec in pending {
        println!(
            "{:>6}  {:<14} {:<10} {:<9} {}",
            exec.id, exec.task_name, exec.queue, exec.state, exec.args
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    if std::env::args().len() > 1 {
        return toosimple_worker::main();
    }
    match tour() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}
