use toosimple_core::{schedule, task};

#[task]
#[schedule(name = "morning")]
pub fn morning() {}

fn main() {}
