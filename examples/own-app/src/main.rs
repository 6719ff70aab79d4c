//! The application's own binary: the toosimple command line with its tasks linked.
//!
//! Run with: `cargo run -p own-app -- worker --until-done`

use own_app as _;

fn main() -> std::process::ExitCode {
    toosimple::worker::main()
}
