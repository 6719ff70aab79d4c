use toosimple_core::{TaskExec, hook};

#[hook]
fn notify(exec: &TaskExec) -> i64 {
    exec.id
}

fn main() {}
