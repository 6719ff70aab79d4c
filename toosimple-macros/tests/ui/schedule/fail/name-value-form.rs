use toosimple_core::{schedule, task};

#[task]
#[schedule = "30 8 * * *"]
pub fn morning() {}

fn main() {}
