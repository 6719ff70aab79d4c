//! An async task: registered with an async invoker that awaits the function.
use std::task::{Context, Poll, Waker};

use toosimple_core::{TaskHandle, find_task, runtime::Invoker, task};

#[task]
pub async fn shout(text: String) -> String {
    text.to_uppercase()
}

#[allow(dead_code)]
fn never_called() -> Result<(), toosimple_core::Error> {
    let _h: TaskHandle<String> = shout::queue("hi".to_string())?;
    Ok(())
}

fn main() {
    let Invoker::Async(run) = find_task("shout").unwrap().invoker() else {
        panic!("not async")
    };
    let mut future = run(serde_json::json!({"text": "hi"}));
    let mut cx = Context::from_waker(Waker::noop());
    let Poll::Ready(result) = future.as_mut().poll(&mut cx) else {
        panic!("pending")
    };
    assert_eq!(result, Ok(serde_json::json!("HI")));
}
