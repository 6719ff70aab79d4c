//! An application with a schedule every second, for the tests of many workers materializing
//! one schedule. Its tasks are its own: it does not link the `toosimple_tests` library.

use chrono::{DateTime, Utc};
use toosimple_core::{schedule, task};

/// Runs every second; receives its occurrence. Missed occurrences are caught up: a worker
/// stalled past one (a loaded machine) must still make it once.
#[schedule(cron = "* * * * * *", datetime_arg = "at", catch_up = true)]
#[task]
pub fn every_second(at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    at
}

fn main() -> std::process::ExitCode {
    toosimple_worker::main()
}
