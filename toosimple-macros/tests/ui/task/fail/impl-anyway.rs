use toosimple_core::{TaskHandle, task};

#[task(priority = "high")]
pub fn send(to: String) -> u32 {
    let _ = to;
    1
}

#[allow(dead_code)]
fn enqueue() -> Result<(), toosimple_core::Error> {
    // Only the option's error: `send::queue` still exists, with its types.
    let handle: TaskHandle<u32> = send::queue("a@b.c".to_string())?;
    let _ = send::queue_at(chrono::Utc::now(), "a@b.c".to_string())?;
    let _ = send::queue_many([("a@b.c".to_string(),)])?;
    let _ = handle;
    Ok(())
}

fn main() {}
