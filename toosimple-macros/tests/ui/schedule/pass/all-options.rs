//! Every `#[schedule]` option, several schedules on one task (in both orders), `datetime_arg`
//! filled with `None` in the arguments, and a `manual` schedule.
use chrono::{DateTime, Utc};
use toosimple_core::{schedule, schedules, task};

#[schedule(name = "report.hourly", cron = "0 * * * *", args = (3,), datetime_arg = "at",
           queue = "reports", run_on_creation = true, catch_up = true, tz = "Europe/Paris")]
#[task(name = "report")]
#[schedule(name = "report.manual", cron = "manual", args = (1,), datetime_arg = "at")]
#[schedule(name = "report.nightly", cron = "0 2 * * * 30", args = (None, 2))]
pub fn report(at: Option<DateTime<Utc>>, level: u8) {
    let _ = (at, level);
}

#[task]
#[schedule(cron = "@daily", datetime_arg = "when")]
pub fn daily(when: Option<chrono::DateTime<chrono::Utc>>) {
    let _ = when;
}

fn main() {
    let all = schedules();
    let get = |name: &str| *all.iter().find(|s| s.name() == name).unwrap();
    let hourly = get("report.hourly");
    assert_eq!(hourly.task(), "report");
    assert_eq!(hourly.queue(), Some("reports"));
    assert!(hourly.run_on_creation());
    assert!(hourly.catch_up());
    assert_eq!(hourly.datetime_arg(), Some("at"));
    assert_eq!(hourly.tz(), "Europe/Paris");
    assert_eq!(hourly.args().unwrap(), serde_json::json!({"at": null, "level": 3}));
    let manual = get("report.manual");
    assert_eq!(manual.cron(), "manual");
    assert_eq!(manual.queue(), None);
    assert!(!manual.catch_up());
    let nightly = get("report.nightly");
    assert_eq!(nightly.datetime_arg(), None);
    assert_eq!(nightly.args().unwrap(), serde_json::json!({"at": null, "level": 2}));
    let daily = get("daily");
    assert_eq!(daily.args().unwrap(), serde_json::json!({"when": null}));
}
