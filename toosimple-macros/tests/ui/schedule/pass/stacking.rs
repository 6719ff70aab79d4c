//! `#[schedule]` above or below `#[task]`, with the path form too: both register the schedule,
//! with arguments built through the task's own argument encoder.
use toosimple_core::{schedule, schedules, task};

#[schedule(cron = "30 8 * * *", args = ("John".to_string(),))]
#[task]
pub fn morning(name: String) -> String {
    format!("Good morning {name} !")
}

#[task]
#[schedule(cron = "0 20 * * *", args = ("Jane".to_string(),))]
pub fn evening(name: String) -> String {
    format!("Good evening {name} !")
}

#[toosimple_core::schedule(cron = "* * * * * */15")]
#[toosimple_core::task]
pub fn every_fifteen_seconds() {}

fn main() {
    let all = schedules();
    let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["evening", "every_fifteen_seconds", "morning"]);
    let morning = all.iter().find(|s| s.name() == "morning").unwrap();
    assert_eq!(morning.task(), "morning");
    assert_eq!(morning.cron(), "30 8 * * *");
    assert_eq!(morning.args().unwrap(), serde_json::json!({"name": "John"}));
    assert_eq!(morning.tz(), "UTC");
    assert!(morning.location().ends_with("stacking.rs:5"), "{}", morning.location());
    let evening = all.iter().find(|s| s.name() == "evening").unwrap();
    assert_eq!(evening.args().unwrap(), serde_json::json!({"name": "Jane"}));
    assert!(evening.location().ends_with("stacking.rs:12"), "{}", evening.location());
    let fifteen = all.iter().find(|s| s.name() == "every_fifteen_seconds").unwrap();
    assert_eq!(fifteen.cron(), "* * * * * */15");
    assert_eq!(fifteen.args().unwrap(), serde_json::json!({}));
}
