use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "0 0 * * * * 2030")]
pub fn tick() {}

fn main() {}
