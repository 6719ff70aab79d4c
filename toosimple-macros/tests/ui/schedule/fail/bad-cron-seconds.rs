use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "* * * * * 75")]
pub fn tick() {}

fn main() {}
