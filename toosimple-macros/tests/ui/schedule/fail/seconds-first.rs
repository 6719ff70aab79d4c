//! `*/15 * * * * *` is every 15 seconds to a seconds-first reader (Quartz, Spring), and every
//! second of minutes 0, 15, 30 and 45 to toosimple (seconds last): refused, with both readings.
use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "*/15 * * * * *")]
pub fn poll() {}

fn main() {}
