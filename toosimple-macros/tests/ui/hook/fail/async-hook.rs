use toosimple_core::{TaskExec, hook};

#[hook]
async fn notify(exec: &TaskExec) {
    let _ = exec;
}

fn main() {
    let _ = notify::HOOK;
}
