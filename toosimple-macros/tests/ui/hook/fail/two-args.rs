use toosimple_core::{TaskExec, hook};

#[hook]
fn notify(exec: &TaskExec, extra: u32) {
    let _ = (exec, extra);
}

fn main() {
    let _ = notify::HOOK;
}
