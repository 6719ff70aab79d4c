use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "30 8 * * *", timezone = "Europe/Paris", every = "day")]
pub fn morning() {}

fn main() {}
