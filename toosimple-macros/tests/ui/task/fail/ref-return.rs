use toosimple_core::task;

#[task]
pub fn name() -> &'static str {
    "x"
}

fn main() {}
