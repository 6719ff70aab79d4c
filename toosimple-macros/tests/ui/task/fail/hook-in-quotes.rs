use toosimple_core::task;

#[task(hook = "notify")]
fn send(to: String) {
    let _ = to;
}

fn main() {
    send::queue("ann".to_string()).unwrap();
}
