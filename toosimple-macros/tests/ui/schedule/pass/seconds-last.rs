//! The two ways to say that `*/15 * * * * *` means what toosimple reads (every second of
//! minutes 0, 15, 30 and 45): `seconds_last = true`, or the sixth field spelled `0-59`; and the
//! seconds-first meaning (every 15 seconds) written seconds last.
use chrono::{TimeZone, Utc};
use toosimple_core::{CronSchedule, schedule, schedules, task};

#[task]
#[schedule(name = "opted-out", cron = "*/15 * * * * *", seconds_last = true)]
#[schedule(name = "spelled-out", cron = "*/15 * * * * 0-59")]
#[schedule(name = "every-15-seconds", cron = "* * * * * */15")]
pub fn poll() {}

fn main() {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 14, 58).unwrap();
    let next = |name: &str| {
        let def = schedules().into_iter().find(|s| s.name() == name).unwrap();
        let cron = CronSchedule::parse(def.cron(), def.tz()).unwrap();
        let first = cron.next_after(start).unwrap();
        let second = cron.next_after(first).unwrap();
        (first.format("%M:%S").to_string(), second.format("%M:%S").to_string())
    };
    assert_eq!(next("opted-out"), ("15:00".to_string(), "15:01".to_string()));
    assert_eq!(next("spelled-out"), next("opted-out"));
    assert_eq!(next("every-15-seconds"), ("15:00".to_string(), "15:15".to_string()));
}
