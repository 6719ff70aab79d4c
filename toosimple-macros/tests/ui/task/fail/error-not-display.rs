use toosimple_core::task;

#[derive(Debug)]
pub struct MailError;

#[task]
pub fn send(to: String) -> Result<(), MailError> {
    let _ = to;
    Ok(())
}

fn main() {}
