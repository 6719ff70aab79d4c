//! `#[hook]` registers a function by name; tasks, schedules and calls name it.
use toosimple_core::{TaskExec, find_hook, find_task, hook, schedule, schedules, task};

#[hook]
fn notify(exec: &TaskExec) -> Result<(), String> {
    Err(format!("told nobody about {}", exec.id))
}

#[hook(name = "audit.log")]
pub fn audit(_exec: &TaskExec) {}

mod nested {
    #[toosimple_core::hook]
    pub(crate) fn deep(_: &toosimple_core::TaskExec) -> std::io::Result<()> {
        Ok(())
    }
}

#[task(hook = notify)]
fn send(to: String) {
    let _ = to;
}

#[schedule(cron = "manual", hook = crate::nested::deep)]
#[task(hook = self::audit)]
fn report() {}

fn main() {
    assert_eq!(notify::NAME, "notify");
    assert_eq!(audit::HOOK.name(), "audit.log");
    assert_eq!(find_hook("audit.log").unwrap().name(), "audit.log");
    assert_eq!(find_task("send").unwrap().hook(), Some(notify::HOOK));
    assert_eq!(find_task("report").unwrap().hook(), Some(audit::HOOK));
    assert_eq!(schedules()[0].hook(), Some(nested::deep::HOOK));
    let names: Vec<&str> = toosimple_core::hooks().unwrap().iter().map(|h| h.name()).collect();
    assert_eq!(names, ["audit.log", "deep", "notify"]);
    // The function is still callable as written.
    let _ = send::with().hook(audit::HOOK);
    let _: fn(&TaskExec) -> Result<(), String> = notify;
}
