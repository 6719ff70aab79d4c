use toosimple_core::task;

#[task]
pub fn count(values: Vec<&std::collections::HashMap<String, u8>>) -> usize {
    values.len()
}

fn main() {}
