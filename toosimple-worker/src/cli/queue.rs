//! `queue list|pause|resume|set|reset`: the queues' settings, stored in the database
//! (django-queue-manager's queues with `max_retries`, django-pq's serial queues).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Args, Subcommand};
use toosimple_core::{QueueChange, QueueSettings, State, Store, TaskExec};

use super::{Failure, values};

#[derive(Debug, Subcommand)]
pub(super) enum QueueCommand {
    /// List the queues (configured ones, and those of this binary's tasks or of stored
    /// executions) with their settings, queued and running executions.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pause a queue: workers claim nothing from it (within a tick); running tasks finish.
    Pause {
        /// The queue's name.
        #[arg(value_parser = values::queue)]
        queue: String,
    },
    /// Resume a paused queue: workers claim from it again at their next tick.
    Resume {
        /// The queue's name.
        #[arg(value_parser = values::queue)]
        queue: String,
    },
    /// Change a queue's settings: `queue set reports --limit 1 --retries 3 --timeout 10m`.
    Set(SetArgs),
    /// Forget a queue's settings: it behaves again as a queue nobody configured.
    Reset {
        /// The queue's name.
        #[arg(value_parser = values::queue)]
        queue: String,
    },
}

#[derive(Debug, Args)]
pub(super) struct SetArgs {
    /// The queue's name.
    #[arg(value_parser = values::queue)]
    queue: String,
    /// At most N of its executions run at once across every worker and machine (1: one at a
    /// time); `none` removes the limit.
    #[arg(long, value_name = "N|none", value_parser = limit)]
    limit: Option<Setting<u32>>,
    /// Retries of its executions that set none of their own (-1: for ever); `none` removes
    /// the default.
    #[arg(long, value_name = "N|none", allow_hyphen_values = true, value_parser = retries)]
    retries: Option<Setting<i32>>,
    /// Time limit of its executions that set none of their own: 30s, 10m, or seconds; `none`
    /// removes the default.
    #[arg(long, value_name = "DURATION|none", value_parser = timeout)]
    timeout: Option<Setting<Duration>>,
}

/// A value given to `queue set`, or `none` to remove the setting.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setting<T>(Option<T>);

fn none_or<T>(
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Setting<T>, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        Ok(Setting(None))
    } else {
        parse(text.trim()).map(|v| Setting(Some(v)))
    }
}

fn limit(text: &str) -> Result<Setting<u32>, String> {
    none_or(text, |t| match t.parse::<u32>() {
        Ok(0) => Err(
            "a limit of 0 would run nothing: write 1 or more, or pause the queue \
                      (`queue pause`)"
                .to_string(),
        ),
        Ok(n) if i32::try_from(n).is_ok() => Ok(n),
        _ => Err(format!(
            "{t:?} is not a limit: write a whole number from 1 (1: one at a time), or none"
        )),
    })
}

fn retries(text: &str) -> Result<Setting<i32>, String> {
    none_or(text, |t| match t.parse::<i32>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(format!(
            "{t:?} is not a number of retries: write 0 or more, -1 for ever, or none"
        )),
    })
}

fn timeout(text: &str) -> Result<Setting<Duration>, String> {
    none_or(text, |t| match values::duration(t) {
        Ok(d) if d.is_zero() => Err(
            "a time limit of 0 fails every run: write one above zero, e.g. 30s or 10m, or none"
                .to_string(),
        ),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e}; or none")),
    })
}

/// A duration as the list shows it: whole seconds when it has no fraction.
fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One line of `queue list`: the settings (the defaults for a queue nobody configured) and
/// how many of its executions wait and run.
#[derive(serde::Serialize)]
struct Listed {
    queue: String,
    configured: bool,
    paused: bool,
    concurrency_limit: Option<u32>,
    default_retries: Option<i32>,
    default_timeout_ms: Option<u128>,
    queued: i64,
    running: i64,
}

fn describe(s: &QueueSettings) -> String {
    let mut parts = Vec::new();
    if s.paused {
        parts.push("paused".to_string());
    }
    match s.concurrency_limit {
        Some(1) => parts.push("limit 1 (serial)".to_string()),
        Some(n) => parts.push(format!("limit {n}")),
        None => {}
    }
    if let Some(r) = s.default_retries {
        parts.push(format!("retries {r}"));
    }
    if let Some(t) = s.default_timeout {
        parts.push(format!("timeout {}", duration_text(t)));
    }
    if parts.is_empty() {
        "defaults".to_string()
    } else {
        parts.join(", ")
    }
}

pub(super) fn run(store: &Store, command: QueueCommand) -> Result<(), Failure> {
    match command {
        QueueCommand::List { json } => list(store, json)?,
        QueueCommand::Pause { queue } => {
            store.pause_queue(&queue)?;
            out!(
                "paused queue {queue}: workers claim nothing from it within a tick; running tasks finish"
            );
        }
        QueueCommand::Resume { queue } => {
            store.resume_queue(&queue)?;
            out!("resumed queue {queue}");
        }
        QueueCommand::Set(args) => {
            let mut change = QueueChange::new();
            if let Some(Setting(limit)) = args.limit {
                change = change.concurrency_limit(limit);
            }
            if let Some(Setting(retries)) = args.retries {
                change = change.default_retries(retries);
            }
            if let Some(Setting(timeout)) = args.timeout {
                change = change.default_timeout(timeout);
            }
            if change.is_empty() {
                return Err(Failure::Refused(format!(
                    "nothing to change: give --limit N, --retries N or --timeout DURATION \
                     (or `none` to remove one), e.g. `queue set {} --limit 1`",
                    args.queue
                )));
            }
            let s = store.set_queue(&args.queue, &change)?;
            out!("queue {}: {}", s.name, describe(&s));
        }
        QueueCommand::Reset { queue } => {
            if store.reset_queue(&queue)? {
                out!("queue {queue}: back to the defaults");
            } else {
                out!("queue {queue} had no settings: it has the defaults");
            }
        }
    }
    Ok(())
}

fn list(store: &Store, json: bool) -> Result<(), Failure> {
    let mut queues: BTreeMap<String, QueueSettings> = BTreeMap::new();
    for def in toosimple_core::tasks()?.iter() {
        queues
            .entry(def.queue().to_string())
            .or_insert_with(|| QueueSettings::unconfigured(def.queue()));
    }
    let counts = TaskExec::counts_in(store)?;
    for count in &counts {
        queues
            .entry(count.queue.clone())
            .or_insert_with(|| QueueSettings::unconfigured(&count.queue));
    }
    for s in store.queues()? {
        queues.insert(s.name.clone(), s);
    }
    let count_of = |queue: &str, state: State| {
        counts
            .iter()
            .filter(|c| c.queue == queue && c.state == state)
            .map(|c| c.count)
            .sum::<i64>()
    };
    let listed: Vec<Listed> = queues
        .values()
        .map(|s| Listed {
            queue: s.name.clone(),
            configured: s.is_configured(),
            paused: s.paused,
            concurrency_limit: s.concurrency_limit,
            default_retries: s.default_retries,
            default_timeout_ms: s.default_timeout.map(|t| t.as_millis()),
            queued: count_of(&s.name, State::Queued),
            running: count_of(&s.name, State::Processing),
        })
        .collect();
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&listed).unwrap_or_default()
        );
        return Ok(());
    }
    out!("{:<20} {:>7} {:>7}  settings", "queue", "queued", "running");
    if queues.is_empty() {
        out!("(no queues: no task, execution or setting names one)");
    }
    for (s, line) in queues.values().zip(&listed) {
        out!(
            "{:<20} {:>7} {:>7}  {}",
            s.name,
            line.queued,
            line.running,
            describe(s)
        );
    }
    Ok(())
}
