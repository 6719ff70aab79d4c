use toosimple_core::task;

#[task(retries = -2, timeout = 0, retry_delay = -1)]
pub fn send(to: String) {
    let _ = to;
}

fn main() {}
