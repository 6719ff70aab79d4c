use toosimple_core::{TaskExec, task};

// A plain function, without #[hook]: nothing registers it.
fn notify(exec: &TaskExec) {
    let _ = exec;
}

#[task(hook = notify)]
fn send(to: String) {
    let _ = to;
}

fn main() {}
