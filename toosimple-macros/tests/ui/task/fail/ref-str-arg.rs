use toosimple_core::task;

#[task]
pub fn greet(name: &str) -> String {
    format!("hello {name}")
}

fn main() {
    // The stub module keeps this call from adding errors of its own.
    let _ = greet::queue("x");
}
