use toosimple_core::{schedule, task};

#[schedule(cron = "30 8 * * *", args = ("John".to_string(), 2))]
#[task]
pub fn morning(name: String) -> String {
    format!("Good morning {name} !")
}

fn main() {}
