//! The public-API snippet of DESIGN.md, type-checked (nothing connects to a database here).
use toosimple_core::{schedule, task, TaskExec, TaskHandle, State};

#[derive(Debug)]
pub struct MailError;
impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mail error")
    }
}

#[task]                                     // name "add", queue "default", priority 0
pub fn add(a: i64, b: i64) -> i64 { a + b }

#[task(name = "mail.send", queue = "emails", priority = 5, retries = 3, retry_delay = 2,
       unique = true, timeout = 30)]
pub async fn send(to: String) -> Result<(), MailError> { let _ = to; Ok(()) }

#[schedule(cron = "30 8 * * *", args = ("John".to_string(),))]
#[task]
pub fn morning(name: String) -> String { format!("Good morning {name} !") }

#[allow(dead_code)]
fn never_called() -> Result<(), toosimple_core::Error> {
    let h: TaskHandle<i64> = add::queue(2, 3)?;                      // Queued
    let later = add::queue_at(chrono::Utc::now() + chrono::Duration::hours(1), 2, 3)?; // Sleeping
    let _ = later;
    let id: i64 = h.id();
    let exec: TaskExec = h.exec()?;                                   // fresh row
    let same: TaskExec = TaskExec::get(id)?;                          // an error names a missing id
    assert_eq!(exec.state, State::Queued);
    let _ = same;
    assert_eq!(h.wait(std::time::Duration::from_secs(10))?, 5);       // blocks until done
    let _: TaskHandle<()> = send::queue("a@b.c".to_string())?;
    Ok(())
}

fn main() {
    let names: Vec<&str> = toosimple_core::tasks().unwrap().iter().map(|t| t.name()).collect();
    assert_eq!(names, ["add", "mail.send", "morning"]);
}
