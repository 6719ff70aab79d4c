use toosimple_core::{schedule, task};

#[schedule(cron = "30 8 * * *", args = ("John", 3))]
#[task]
pub fn morning(name: String, times: u8) -> String {
    name.repeat(times.into())
}

fn main() {}
