//! `queue_many` over tuples, `queue_in` / `queue_at_in` inside a caller's connection.
use toosimple_core::{AnyConnection, TaskHandle, task};

#[task]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[allow(dead_code)]
fn never_called(conn: &mut AnyConnection) -> Result<(), toosimple_core::Error> {
    let many: Vec<TaskHandle<i64>> = add::queue_many(vec![(1, 2), (3, 4)])?;
    let _ = many;
    let _: TaskHandle<i64> = add::queue_in(conn, 1, 2)?;
    let _: TaskHandle<i64> = add::queue_at_in(conn, chrono::Utc::now(), 1, 2)?;
    Ok(())
}

fn main() {}
