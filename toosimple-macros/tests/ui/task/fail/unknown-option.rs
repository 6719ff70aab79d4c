use toosimple_core::task;

#[task(queue = "emails", colour = "blue")]
pub fn send(to: String) {
    let _ = to;
}

fn main() {}
