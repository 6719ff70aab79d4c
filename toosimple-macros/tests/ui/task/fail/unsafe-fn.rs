use toosimple_core::task;

#[task]
pub unsafe fn send(to: String) {
    let _ = to;
}

fn main() {}
