use toosimple_core::{schedule, task};

#[task]
#[schedule(cron = "30 8 * * *")]
pub fn morning(name: String) -> String {
    format!("Good morning {name} !")
}

fn main() {}
