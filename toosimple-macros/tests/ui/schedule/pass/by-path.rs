//! `#[toosimple_core::schedule]` and `#[toosimple_core::task]` written by path, with neither
//! imported, in both orders: no unresolved import, and no unused-import warning either.
#![deny(warnings)]

use toosimple_core::schedules;

#[toosimple_core::schedule(cron = "30 8 * * *", args = ("John".to_string(),))]
#[toosimple_core::task]
pub fn morning(name: String) -> String {
    format!("Good morning {name} !")
}

#[toosimple_core::task(queue = "reports")]
#[toosimple_core::schedule(name = "evening", cron = "0 20 * * *")]
pub fn report() {}

fn main() {
    let all = schedules();
    let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["evening", "morning"]);
    let morning = all.iter().find(|s| s.name() == "morning").unwrap();
    assert_eq!(morning.task(), "morning");
    assert_eq!(morning.args().unwrap(), serde_json::json!({"name": "John"}));
    let evening = all.iter().find(|s| s.name() == "evening").unwrap();
    assert_eq!(evening.task(), "report");
    let _ = morning::queue;
    let _ = report::queue;
}
