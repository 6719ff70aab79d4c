//! `stop` and `ping`: django-queue-manager's shell commands, through the database. A worker
//! reads a stop request back with each heartbeat (so within one tick), and `ping` waits for
//! the worker's next heartbeat.

use std::time::{Duration, Instant};

use chrono::Utc;
use toosimple_core::{StopRequest, Store, WorkerState, WorkerStatus};

use super::Failure;

/// How often `stop --wait` and `ping` look at the status rows.
const POLL: Duration = Duration::from_millis(100);

/// `stop LABEL...|--all [--terminate] [--wait]`.
pub(super) fn stop(
    store: &Store,
    labels: &[String],
    terminate: bool,
    wait: bool,
) -> Result<(), Failure> {
    let request = if terminate {
        StopRequest::Terminate
    } else {
        StopRequest::Graceful
    };
    let all = labels.is_empty();
    let rows = store.request_stop((!all).then_some(labels), request)?;
    let now = Utc::now();
    let asked: Vec<&WorkerStatus> = rows.iter().filter(|w| w.stopped.is_none()).collect();
    if !all {
        for w in rows.iter().filter(|w| w.stopped.is_some()) {
            out!("{} has already stopped: {}", w.label, ended(w, now));
        }
    }
    if asked.is_empty() {
        if all {
            out!("no worker is running on {}", store.location());
        }
        return Ok(());
    }
    for w in &asked {
        let what = match request {
            StopRequest::Graceful => "stop: it finishes its running tasks, then exits 0",
            StopRequest::Terminate => {
                "terminate: its running tasks are interrupted and replaced, then it exits 77"
            }
        };
        out!(
            "asked {} to {what} (it looks at its next heartbeat, within {})",
            w.label,
            seconds(w.tick)
        );
    }
    if !wait {
        return Ok(());
    }
    let labels: Vec<String> = asked.iter().map(|w| w.label.clone()).collect();
    let mut pending = labels.clone();
    let mut silent = Vec::new();
    while !pending.is_empty() {
        std::thread::sleep(POLL);
        let now = Utc::now();
        let mut still = Vec::new();
        for label in pending {
            match store.worker_status(&label)? {
                Some(w) if w.stopped.is_some() => out!("{label} {}", ended(&w, now)),
                Some(w) if w.state_at(now) == WorkerState::TimedOut => {
                    out!(
                        "{label} stopped beating before it stopped (last heartbeat at {}): \
                         its running tasks are rescued by the other workers",
                        w.last_tick.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                    silent.push(label);
                }
                _ => still.push(label),
            }
        }
        pending = still;
    }
    if silent.is_empty() {
        Ok(())
    } else {
        Err(Failure::Refused(format!(
            "{} did not record a stop: see `status`",
            silent.join(", ")
        )))
    }
}

/// How a stopped worker ended, in words.
fn ended(w: &WorkerStatus, now: chrono::DateTime<Utc>) -> String {
    let at = w.stopped.map_or("-".to_string(), |t| {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    });
    let code = w.exit_code.map_or("-".to_string(), |c| c.to_string());
    format!("{} at {at} (exit {code})", w.state_at(now).as_str())
}

fn seconds(s: f64) -> String {
    humantime::format_duration(Duration::from_millis((s * 1000.0).round() as u64)).to_string()
}

/// `ping LABEL [--timeout D]`: waits for the worker's next heartbeat.
pub(super) fn ping(store: &Store, label: &str, timeout: Option<Duration>) -> Result<(), Failure> {
    let Some(first) = store.worker_status(label)? else {
        let known = WorkerStatus::list_in(store)?
            .into_iter()
            .filter(|w| w.stopped.is_none())
            .map(|w| w.label)
            .collect();
        return Err(toosimple_core::Error::UnknownWorker {
            label: label.to_string(),
            known,
        }
        .into());
    };
    let now = Utc::now();
    if first.stopped.is_some() {
        return Err(Failure::Refused(format!(
            "{label} is not running: it {}",
            ended(&first, now)
        )));
    }
    // Two beats' time, and a second for a busy database.
    let timeout = timeout.unwrap_or_else(|| Duration::from_secs_f64(first.tick * 2.0 + 1.0));
    let asked = Instant::now();
    let deadline = asked + timeout;
    loop {
        let w = store
            .worker_status(label)?
            .ok_or_else(|| Failure::Refused(format!("{label}'s status row was deleted")))?;
        if w.stopped.is_some() {
            return Err(Failure::Refused(format!(
                "{label} stopped while pinged: it {}",
                ended(&w, Utc::now())
            )));
        }
        if w.last_tick > first.last_tick {
            let running = toosimple_core::TaskExec::running_per_worker_in(store)?
                .into_iter()
                .find(|(worker, _)| worker == label)
                .map_or(0, |(_, n)| n);
            out!(
                "pong from {label} in {} ms: {}, {running} task(s) running, {} handled since it started at {}",
                asked.elapsed().as_millis(),
                w.state_at(Utc::now()).as_str(),
                w.handled,
                w.started.format("%Y-%m-%d %H:%M:%S UTC"),
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            let age = (Utc::now() - w.last_tick).num_milliseconds() as f64 / 1000.0;
            return Err(Failure::Refused(format!(
                "no answer from {label} within {}: its last heartbeat was {age:.1} s ago ({}); \
                 it beats every {}",
                humantime::format_duration(timeout),
                w.state_at(Utc::now()).as_str(),
                seconds(w.tick)
            )));
        }
        std::thread::sleep(POLL);
    }
}
