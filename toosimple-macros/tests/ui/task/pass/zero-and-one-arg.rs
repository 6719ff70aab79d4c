//! Zero and one argument: `queue_many` takes `()` and `(A,)` items.
use toosimple_core::{TaskHandle, task};

#[task]
pub fn tick() -> u8 {
    1
}

#[task]
pub fn double(n: i64) -> i64 {
    n * 2
}

#[allow(dead_code)]
fn never_called() -> Result<(), toosimple_core::Error> {
    let _: TaskHandle<u8> = tick::queue()?;
    let _: Vec<TaskHandle<u8>> = tick::queue_many([(), ()])?;
    let _: Vec<TaskHandle<i64>> = double::queue_many([(1,), (2,)])?;
    let _: Vec<TaskHandle<i64>> = double::queue_many((0..10).map(|n| (n,)))?;
    Ok(())
}

fn main() {
    assert_eq!(tick::__toosimple::args().unwrap(), serde_json::json!({}));
    assert_eq!(double::__toosimple::args(4).unwrap(), serde_json::json!({"n": 4}));
}
