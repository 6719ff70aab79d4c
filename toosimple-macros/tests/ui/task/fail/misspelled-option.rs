use toosimple_core::task;

#[task(retry = 3, timeout_secs = 30)]
pub fn send(to: String) {
    let _ = to;
}

fn main() {}
