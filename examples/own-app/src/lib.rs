//! The tasks of an application that depends only on `toosimple`.

use toosimple::{schedule, task};

/// Triples `n` in a worker.
#[task(retries = 2)]
pub fn triple(n: i64) -> i64 {
    n * 3
}

/// Fails for negative numbers (no retries), to see a failure recorded.
#[task(queue = "checks")]
pub fn non_negative(n: i64) -> Result<i64, String> {
    if n < 0 {
        return Err(format!("{n} is negative"));
    }
    Ok(n)
}

/// `#[schedule]` above `#[task]`: the schedule moves itself below `#[task]` by its full path,
/// which must be the facade's here.
#[schedule(cron = "30 8 * * *", args = ("John".to_string(),))]
#[task]
pub fn morning(name: String) -> String {
    format!("Good morning {name} !")
}

/// `#[task]` above `#[schedule]`, by full paths through the facade.
#[toosimple::task(name = "own_app.nightly")]
#[toosimple::schedule(cron = "@daily", name = "nightly")]
pub async fn nightly() {}
