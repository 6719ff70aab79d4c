//! Tasks returning `Result`: `Ok` is the result, `Err` (any `Display`) fails the execution.
use toosimple_core::{TaskHandle, find_task, runtime::{Invoker, RunError}, task};

#[derive(Debug)]
pub struct MailError(String);
impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mail error: {}", self.0)
    }
}

#[task]
pub fn check(ok: bool) -> Result<u32, MailError> {
    if ok { Ok(7) } else { Err(MailError("nope".into())) }
}

#[task]
pub fn read(path: String) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

mod errors {
    pub type Result<T> = std::result::Result<T, String>;
    pub type Plain = std::result::Result<i32, String>;
}
mod bare {
    use super::errors::Plain as Result;
    use toosimple_core::task;

    /// A `Result` alias written without generic arguments.
    #[task]
    pub fn plain(n: i32) -> Result {
        if n > 0 { Ok(n) } else { Err(format!("{n} is not positive")) }
    }
}
use bare::plain;

#[task]
pub fn aliased(n: i32) -> errors::Result<i32> {
    Ok(n)
}

#[allow(dead_code)]
fn never_called() -> std::result::Result<(), toosimple_core::Error> {
    let _: TaskHandle<u32> = check::queue(true)?;
    let _: TaskHandle<Vec<u8>> = read::queue("/etc/hostname".into())?;
    let _: TaskHandle<i32> = plain::queue(1)?;
    let _: TaskHandle<i32> = aliased::queue(1)?;
    Ok(())
}

fn main() {
    let Invoker::Sync(run) = find_task("check").unwrap().invoker() else { panic!() };
    assert_eq!(run(serde_json::json!({"ok": true})), Ok(serde_json::json!(7)));
    assert_eq!(
        run(serde_json::json!({"ok": false})),
        Err(RunError::Failed("mail error: nope".into()))
    );
    let Invoker::Sync(run) = find_task("plain").unwrap().invoker() else { panic!() };
    assert_eq!(
        run(serde_json::json!({"n": 0})),
        Err(RunError::Failed("0 is not positive".into()))
    );
}
