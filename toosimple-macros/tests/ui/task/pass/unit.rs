//! A task returning nothing: its result is JSON `null`, its handle's output `()`.
use toosimple_core::{TaskHandle, find_task, runtime::Invoker, task};

#[task]
fn log(line: String) {
    let _ = line;
}

#[allow(dead_code)]
fn never_called() -> Result<(), toosimple_core::Error> {
    let _h: TaskHandle<()> = log::queue("x".into())?;
    Ok(())
}

fn main() {
    let Invoker::Sync(run) = find_task("log").unwrap().invoker() else { panic!() };
    assert_eq!(run(serde_json::json!({"line": "x"})), Ok(serde_json::Value::Null));
}
