//! An application whose two tasks share a name: its worker must crash with exit code 99 and
//! say why in its status row. It does not link the `toosimple_tests` library.

use toosimple_core::task;

mod billing {
    /// One `invoice`.
    #[toosimple_core::task(name = "invoice")]
    pub fn send_invoice(id: i64) -> i64 {
        id
    }
}

/// Another `invoice`.
#[task(name = "invoice")]
pub fn old_invoice(id: i64) -> i64 {
    id
}

fn main() -> std::process::ExitCode {
    let _ = (billing::send_invoice, old_invoice);
    toosimple_worker::main()
}
