use toosimple_core::task;

pub struct Mail {
    pub to: String,
}

#[task]
pub fn send(id: u32, mail: Mail) {
    let _ = (id, mail.to);
}

fn main() {}
