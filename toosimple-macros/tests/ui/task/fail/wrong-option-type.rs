use toosimple_core::task;

#[task(priority = "high", unique = 1)]
pub fn send(to: String) {
    let _ = to;
}

fn main() {}
