//! An application binary as users write one: the tests run its `worker` and other subcommands.

use toosimple_tests as _;

fn main() -> std::process::ExitCode {
    toosimple_worker::main()
}
