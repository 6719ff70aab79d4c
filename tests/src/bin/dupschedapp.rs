//! An application with two schedules of one name on different tasks: its worker must refuse
//! to start (exit code 99) and name both. It does not link the `toosimple_tests` library.

use toosimple_core::{schedule, task};

/// Runs daily.
#[schedule(name = "report", cron = "0 6 * * *")]
#[task]
pub fn daily_report() {}

/// Also claims the name `report`.
#[schedule(name = "report", cron = "0 7 * * *")]
#[task]
pub fn other_report() {}

fn main() -> std::process::ExitCode {
    toosimple_worker::main()
}
