use toosimple_core::task;

#[task]
pub fn show(value: impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {}
