//! The link-time registry of `#[schedule]` definitions.

use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::cron::CronSchedule;
use crate::error::Result;
use crate::hook::Hook;

/// The definition of one schedule, as written in its `#[schedule(...)]` attribute.
///
/// Built by the macro and collected at link time; read them with [`schedules`].
#[derive(Debug, Clone, Copy)]
pub struct ScheduleDef {
    name: &'static str,
    task: &'static str,
    cron: &'static str,
    args: fn() -> Result<Value>,
    queue: Option<&'static str>,
    run_on_creation: bool,
    catch_up: bool,
    datetime_arg: Option<&'static str>,
    tz: &'static str,
    hook: Option<Hook>,
    location: &'static str,
}

impl ScheduleDef {
    /// A schedule of task `task` on `cron` (validated by the macro), with its arguments builder,
    /// in UTC, neither catching up nor running on creation.
    pub const fn new(
        name: &'static str,
        task: &'static str,
        cron: &'static str,
        args: fn() -> Result<Value>,
        location: &'static str,
    ) -> Self {
        ScheduleDef {
            name,
            task,
            cron,
            args,
            queue: None,
            run_on_creation: false,
            catch_up: false,
            datetime_arg: None,
            tz: "UTC",
            hook: None,
            location,
        }
    }

    /// Sets the queue of the workers that materialize this schedule.
    pub const fn with_queue(mut self, queue: &'static str) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Runs the most recent occurrence as soon as the schedule is first seen.
    pub const fn with_run_on_creation(mut self, yes: bool) -> Self {
        self.run_on_creation = yes;
        self
    }

    /// Enqueues every missed occurrence instead of only the latest.
    pub const fn with_catch_up(mut self, yes: bool) -> Self {
        self.catch_up = yes;
        self
    }

    /// Names the task parameter that receives the occurrence's date.
    pub const fn with_datetime_arg(mut self, param: &'static str) -> Self {
        self.datetime_arg = Some(param);
        self
    }

    /// Calls `hook` with each finished execution this schedule enqueued, instead of its
    /// task's hook.
    pub const fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The hook of the executions it enqueues, when it names one.
    pub const fn hook(&self) -> Option<Hook> {
        self.hook
    }

    /// Sets the time zone the cron expression is read in (an IANA name).
    pub const fn with_tz(mut self, tz: &'static str) -> Self {
        self.tz = tz;
        self
    }

    /// The schedule's name (unique).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The name of the task it enqueues.
    pub const fn task(&self) -> &'static str {
        self.task
    }

    /// The cron expression as written (seconds, if any, are the sixth field).
    pub const fn cron(&self) -> &'static str {
        self.cron
    }

    /// The task arguments each occurrence is enqueued with, as a JSON object.
    pub fn args(&self) -> Result<Value> {
        (self.args)()
    }

    /// The queue of the workers that materialize it (`None`: its task's queue's workers).
    pub const fn queue(&self) -> Option<&'static str> {
        self.queue
    }

    /// Whether the most recent occurrence runs when the schedule is first seen.
    pub const fn run_on_creation(&self) -> bool {
        self.run_on_creation
    }

    /// Whether missed occurrences are all enqueued.
    pub const fn catch_up(&self) -> bool {
        self.catch_up
    }

    /// The task parameter receiving the occurrence.
    pub const fn datetime_arg(&self) -> Option<&'static str> {
        self.datetime_arg
    }

    /// The time zone name.
    pub const fn tz(&self) -> &'static str {
        self.tz
    }

    /// Where it is defined (`file:line`).
    pub const fn location(&self) -> &'static str {
        self.location
    }

    /// Its cron expression parsed in its time zone.
    pub fn schedule(&self) -> Result<CronSchedule> {
        CronSchedule::parse(self.cron, self.tz)
    }

    /// A human description of when it runs.
    pub fn describe(&self) -> String {
        self.schedule()
            .map(|s| s.describe())
            .unwrap_or_else(|e| e.to_string())
    }

    /// Its first occurrence after `after`; `None` for a manual schedule.
    pub fn next_due(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule().ok()?.next_after(after)
    }
}

inventory::collect!(ScheduleDef);

/// Every schedule linked into this program, sorted by name.
pub fn schedules() -> Vec<&'static ScheduleDef> {
    let mut all: Vec<&'static ScheduleDef> = inventory::iter::<ScheduleDef>.into_iter().collect();
    all.sort_by_key(|s| (s.name, s.location));
    all
}

/// Checks the linked schedules before a worker starts: two schedules may not share a name
/// (the error names both places), each must name a registered task, and each cron expression
/// and time zone must parse.
pub fn check_schedules() -> Result<()> {
    let all = schedules();
    for pair in all.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(crate::Error::DuplicateSchedule {
                name: pair[0].name.to_string(),
                first: pair[0].location.to_string(),
                second: pair[1].location.to_string(),
            });
        }
    }
    for def in &all {
        crate::find_task(def.task)?;
        def.schedule()?;
    }
    Ok(())
}
