use chrono::{DateTime, Utc};
use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "0 * * * *", datetime_arg = "at")]
pub fn report(at: DateTime<Utc>) {
    let _ = at;
}

fn main() {}
