use toosimple_core::{TaskExec, hook};

#[hook(name = "notify", retries = 3)]
fn notify(exec: &TaskExec) {
    let _ = exec;
}

fn main() {}
