use toosimple_core::{schedule, task};

#[schedule(cron = "30 8 * * *")]
#[task]
#[schedule(cron = "30 20 * * *")]
pub fn greet() {}

fn main() {}
