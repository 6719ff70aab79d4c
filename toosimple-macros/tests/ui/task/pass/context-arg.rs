//! A `TaskContext` parameter, anywhere in the list and by any path, is given by the worker: it
//! is not an argument of `queue`, nor of a schedule's `args`, nor stored.
use toosimple_core::{TaskContext, find_task, schedule, task};

#[task]
fn first(ctx: TaskContext, rows: u32) -> u32 {
    ctx.progress(0.5, "halfway");
    rows
}

#[schedule(cron = "0 3 * * *", args = (2, "b".to_string()))]
#[task]
async fn middle(a: i64, ctx: toosimple_core::TaskContext, b: String) -> String {
    assert!(!ctx.is_cancelled());
    format!("{a}{b}")
}

#[task]
fn only(ctx: TaskContext) {
    let _ = ctx.id();
}

fn main() {
    let _: fn(u32) -> _ = first::queue;
    let _: fn(i64, String) -> _ = middle::queue;
    let _: fn() -> _ = only::queue;
    let _ = first::with().queue(3);
    assert_eq!(first(TaskContext::detached(), 3), 3);
    let def = find_task("first").unwrap();
    assert!(def.check_args(&serde_json::json!({"rows": 3})).is_ok());
    let def = find_task("middle").unwrap();
    assert!(def.check_args(&serde_json::json!({"a": 1, "b": "x"})).is_ok());
}
