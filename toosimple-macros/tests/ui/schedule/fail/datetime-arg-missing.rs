use chrono::{DateTime, Utc};
use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "0 * * * *", datetime_arg = "when")]
pub fn report(at: Option<DateTime<Utc>>) {
    let _ = at;
}

fn main() {}
