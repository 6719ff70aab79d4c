use toosimple_core::task;

pub struct Mailer;

impl Mailer {
    #[task]
    pub fn send(&self, to: String) {
        let _ = to;
    }
}

fn main() {}
