use toosimple_core::schedule;

#[schedule(cron = "30 8 * * *")]
pub fn morning() {}

fn main() {}
