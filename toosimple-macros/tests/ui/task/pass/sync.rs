//! A sync task: registered with its defaults, its runner decodes arguments by name.
use toosimple_core::{TaskHandle, find_task, runtime::Invoker, task};

#[task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[allow(dead_code)]
fn never_called() -> Result<(), toosimple_core::Error> {
    let _h: TaskHandle<i64> = add::queue(2, 3)?;
    let _later: TaskHandle<add::Output> = add::queue_at(chrono::Utc::now(), 2, 3)?;
    Ok(())
}

fn main() {
    assert_eq!(add(2, 3), 5);
    assert_eq!(add::NAME, "add");
    let def = find_task("add").unwrap();
    assert_eq!(def.queue(), "default");
    assert_eq!(def.priority(), 0);
    assert_eq!(def.retries(), 0);
    assert_eq!(def.timeout(), None);
    assert!(def.location().ends_with("sync.rs:5"), "{}", def.location());
    let Invoker::Sync(run) = def.invoker() else { panic!("not sync") };
    assert_eq!(run(serde_json::json!({"a": 2, "b": 3})), Ok(serde_json::json!(5)));
    let bad = run(serde_json::json!({"a": "x", "b": 3})).unwrap_err().to_string();
    assert!(bad.starts_with("argument `a`:"), "{bad}");
    let extra = run(serde_json::json!({"a": 1, "b": 3, "c": 0})).unwrap_err().to_string();
    assert_eq!(extra, "unexpected argument `c`");
    assert_eq!(
        add::__toosimple::args(2, 3).unwrap(),
        serde_json::json!({"a": 2, "b": 3})
    );
}
