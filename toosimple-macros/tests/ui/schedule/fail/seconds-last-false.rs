//! There is no seconds-first reading to opt into: `seconds_last = false` is refused with the
//! expression written seconds last.
use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "*/15 * * * * *", seconds_last = false)]
pub fn poll() {}

fn main() {}
