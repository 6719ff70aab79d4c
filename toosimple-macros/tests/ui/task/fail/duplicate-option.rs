use toosimple_core::task;

#[task(priority = 1, queue = "emails", priority = 2)]
pub fn send(to: String) {
    let _ = to;
}

fn main() {}
