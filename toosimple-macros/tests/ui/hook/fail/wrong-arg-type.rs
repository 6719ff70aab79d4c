use toosimple_core::hook;

#[hook]
fn notify(message: String) {
    let _ = message;
}

fn main() {}
