use toosimple_core::task;

#[task]
pub fn store<T: serde::Serialize>(value: T) {
    let _ = value;
}

fn main() {}
