use toosimple_core::task;

#[task]
pub struct Send {
    pub to: String,
}

fn main() {}
