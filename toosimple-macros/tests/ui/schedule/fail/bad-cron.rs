use toosimple_core::{schedule, task};

#[schedule(cron = "61 * * * *")]
#[task]
pub fn tick() {}

fn main() {}
