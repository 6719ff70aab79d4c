//! `schedule add|list|pause|resume|remove`: schedules created at run time, stored in the
//! database (django-q's Schedule model, django-pq's `pqschedule`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use toosimple_core::{Every, NewSchedule, Store, Weekdays, Window};

use super::{Failure, values};

#[derive(Debug, Subcommand)]
pub(super) enum ScheduleCommand {
    /// Store a schedule: `schedule add nightly render_report '{"pages": 3}' --cron "0 2 * * *"`.
    Add(Box<AddArgs>),
    /// List the stored schedules: when, last and next due, repeats left, paused.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Pause a stored schedule: nothing is enqueued until it is resumed.
    Pause {
        /// The schedule's name.
        name: String,
    },
    /// Resume a paused schedule (what fell due meanwhile is not caught up).
    Resume {
        /// The schedule's name.
        name: String,
    },
    /// Remove a stored schedule (its executions stay).
    Remove {
        /// The schedule's name.
        name: String,
    },
    /// The latest finished run of a schedule (stored or compiled): its state and result.
    Result {
        /// The schedule's name.
        name: String,
        /// Print the execution as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["cron", "interval"])))]
pub(super) struct AddArgs {
    /// Its name, unique among the stored and compiled schedules.
    name: String,
    /// The task it enqueues (`app tasks` lists them).
    task: String,
    /// The task's arguments, a JSON object keyed by parameter name.
    args: String,
    /// A cron expression: five fields, or six with seconds last ("0 2 * * *").
    #[arg(long, value_name = "EXPR")]
    cron: Option<String>,
    /// The cron expression's time zone (an IANA name).
    #[arg(long, default_value = "UTC", requires = "cron")]
    tz: String,
    /// A step from --start: a duration (90s, 1h, 7d, or seconds), `monthly`, `N months`, or
    /// `month-end` (the last day of each month).
    #[arg(long, value_name = "STEP", value_parser = interval)]
    interval: Option<Every>,
    /// The first occurrence (a step) or the time before which none falls (RFC 3339); now by
    /// default.
    #[arg(long, value_name = "TIME", value_parser = values::due)]
    start: Option<DateTime<Utc>>,
    /// How many occurrences to enqueue (-1: for ever), or the time after which none is
    /// (RFC 3339).
    #[arg(long, value_name = "N|UNTIL", allow_hyphen_values = true, value_parser = repeat)]
    repeat: Option<Repeat>,
    /// Only occurrences within this daily window, UTC: HH:MM/HH:MM (e.g. 02:00/18:30).
    #[arg(long, value_name = "HH:MM/HH:MM", value_parser = |t: &str| t.parse::<Window>())]
    between: Option<Window>,
    /// Only occurrences on these days: mon,tue,wed,thu,fri,sat,sun.
    #[arg(long, value_name = "DAYS", value_parser = |t: &str| t.parse::<Weekdays>())]
    weekdays: Option<Weekdays>,
    /// Enqueue on this queue instead of the task's.
    #[arg(long, value_parser = values::queue)]
    queue: Option<String>,
    /// Hand each finished execution to this registered hook instead of the task's.
    #[arg(long, value_name = "NAME")]
    hook: Option<String>,
}

/// `--repeat`: a count, or an end.
#[derive(Debug, Clone)]
pub(super) enum Repeat {
    Times(i32),
    Until(DateTime<Utc>),
}

fn repeat(text: &str) -> Result<Repeat, String> {
    if let Ok(n) = text.trim().parse::<i32>() {
        if n < -1 {
            return Err("write a number of occurrences from 0, -1 for ever, or an end time".into());
        }
        return Ok(Repeat::Times(n));
    }
    values::due(text)
        .map(Repeat::Until)
        .map_err(|_| {
            format!(
                "{text:?} is neither a number of occurrences (-1: for ever) nor an end time: write e.g. 10 or 2031-01-01T00:00:00Z"
            )
        })
}

fn interval(text: &str) -> Result<Every, String> {
    let lower = text.trim().to_ascii_lowercase();
    match lower.as_str() {
        "monthly" => return Ok(Every::Months(1)),
        "month-end" | "month_end" | "last-day-of-month" => return Ok(Every::MonthEnd),
        _ => {}
    }
    if let Some(n) = lower
        .strip_suffix("months")
        .or_else(|| lower.strip_suffix("month"))
        .and_then(|n| n.trim().parse::<u32>().ok())
    {
        if n == 0 {
            return Err("a step of 0 months never moves: write monthly, or 2 months".into());
        }
        return Ok(Every::Months(n));
    }
    let step: Duration = values::duration(text)?;
    if step < Duration::from_secs(1) {
        return Err(
            "an interval under a second would run without end: write e.g. 30s, 1h, monthly or month-end"
                .into(),
        );
    }
    Ok(Every::Seconds(step.as_secs()))
}

pub(super) fn run(store: &Store, command: ScheduleCommand) -> Result<(), Failure> {
    match command {
        ScheduleCommand::Add(args) => {
            let json: serde_json::Value =
                serde_json::from_str(&args.args).map_err(|e| {
                    Failure::Refused(format!(
                        "the arguments are not valid JSON ({e}): write an object keyed by parameter name, e.g. '{{\"a\": 1}}'"
                    ))
                })?;
            let every = match (args.cron, args.interval) {
                (Some(expr), _) => Every::Cron { expr, tz: args.tz },
                (None, Some(every)) => every,
                (None, None) => unreachable!("clap requires --cron or --interval"),
            };
            let mut new = NewSchedule::new(&args.name, &args.task, json).every(every);
            if let Some(start) = args.start {
                new = new.start(start);
            }
            match args.repeat {
                Some(Repeat::Times(n)) => new = new.repeat(n),
                Some(Repeat::Until(end)) => new = new.until(end),
                None => {}
            }
            if let Some(window) = args.between {
                new = new.between(window);
            }
            if let Some(days) = args.weekdays {
                new = new.weekdays(days);
            }
            if let Some(queue) = args.queue {
                new = new.on_queue(queue);
            }
            if let Some(hook) = args.hook {
                new = new.hook(hook);
            }
            let stored = store.add_schedule(&new)?;
            out!(
                "stored schedule {} ({}); next due {}",
                stored.name,
                stored.every,
                stored
                    .next_due(Utc::now() - chrono::TimeDelta::seconds(1))
                    .map_or("never".to_string(), |t| t
                        .format("%Y-%m-%d %H:%M:%S UTC")
                        .to_string())
            );
        }
        ScheduleCommand::List { json } => {
            let all = store.list_schedules()?;
            let rows = toosimple_core::ScheduleExec::list_in(store)?;
            let now = Utc::now();
            if json {
                let listed: Vec<serde_json::Value> = all
                    .iter()
                    .map(|s| {
                        let row = rows.iter().find(|r| r.name == s.name);
                        let mut value = serde_json::to_value(s).unwrap_or_default();
                        value["last_due"] = serde_json::json!(row.and_then(|r| r.last_due));
                        value["last_task"] = serde_json::json!(row.and_then(|r| r.last_task));
                        value["next_due"] =
                            serde_json::json!(if s.paused { None } else { s.next_due(now) });
                        value
                    })
                    .collect();
                out!(
                    "{}",
                    serde_json::to_string_pretty(&listed).unwrap_or_default()
                );
                return Ok(());
            }
            out!(
                "{:<20} {:<18} {:<28} {:<20} {:<20} {:>6}  options",
                "schedule",
                "task",
                "when",
                "last due",
                "next due",
                "left"
            );
            if all.is_empty() {
                out!("(no stored schedules: `schedule add` stores one)");
            }
            let time = |t: Option<DateTime<Utc>>| {
                t.map_or("-".to_string(), |t| {
                    t.format("%Y-%m-%d %H:%M:%S").to_string()
                })
            };
            for s in &all {
                let row = rows.iter().find(|r| r.name == s.name);
                let mut options = Vec::new();
                if s.paused {
                    options.push("paused".to_string());
                }
                if let Some(w) = s.between {
                    options.push(format!("between {w}"));
                }
                if let Some(d) = s.weekdays {
                    options.push(format!("on {d}"));
                }
                if let Some(end) = s.ends {
                    options.push(format!("until {}", end.format("%Y-%m-%d %H:%M:%S")));
                }
                if let Some(q) = &s.queue {
                    options.push(format!("queue {q}"));
                }
                if let Some(h) = &s.hook {
                    options.push(format!("hook {h}"));
                }
                out!(
                    "{:<20} {:<18} {:<28} {:<20} {:<20} {:>6}  {}",
                    s.name,
                    s.task,
                    s.every.to_string(),
                    time(
                        row.and_then(|r| r.last_due)
                            .filter(|_| row.is_some_and(|r| r.last_task.is_some()))
                    ),
                    if s.paused {
                        "paused".to_string()
                    } else {
                        time(s.next_due(now))
                    },
                    s.repeats_left.map_or("∞".to_string(), |n| n.to_string()),
                    options.join(", ")
                );
            }
        }
        ScheduleCommand::Pause { name } => {
            store.pause_schedule(&name, true)?;
            out!("paused schedule {name}");
        }
        ScheduleCommand::Resume { name } => {
            let s = store.pause_schedule(&name, false)?;
            out!(
                "resumed schedule {name}; next due {}",
                s.next_due(Utc::now()).map_or("never".to_string(), |t| t
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string())
            );
        }
        ScheduleCommand::Remove { name } => {
            store.remove_schedule(&name)?;
            out!("removed schedule {name}");
        }
        ScheduleCommand::Result { name, json } => {
            let Some(run) = store.latest_schedule_run(&name)? else {
                return Err(Failure::Refused(format!(
                    "schedule `{name}` has no finished run yet: `schedule list` shows when it is next due"
                )));
            };
            if json {
                out!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
            } else {
                out!(
                    "{name}: execution {} {} at {}",
                    run.id,
                    run.state,
                    run.finished.map_or("-".to_string(), |t| t
                        .format("%Y-%m-%d %H:%M:%S UTC")
                        .to_string())
                );
                match (&run.result, &run.error) {
                    (Some(result), _) => out!("result: {result}"),
                    (None, Some(error)) => out!("error: {error}"),
                    (None, None) => {}
                }
            }
        }
    }
    Ok(())
}
