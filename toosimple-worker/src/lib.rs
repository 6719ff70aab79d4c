//! The toosimple worker runtime and command-line interface.
//!
//! The worker itself lands with the worker issue; for now [`main`] only applies migrations so
//! that an application binary can already be wired as it will stay:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     toosimple_worker::main()
//! }
//! ```

use std::process::ExitCode;

/// Runs the command-line interface of an application that defines tasks.
pub fn main() -> ExitCode {
    match toosimple_core::Store::from_env() {
        Ok(store) => {
            eprintln!("toosimple: database {} is migrated", store.url());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("toosimple: {e}");
            ExitCode::from(99)
        }
    }
}
