use toosimple_core::task;

pub struct Receipt;

#[task]
pub fn send(to: String) -> Result<Receipt, String> {
    let _ = to;
    Ok(Receipt)
}

fn main() {}
