//! `app admin --bind ADDR`: serves the toosimple-admin dashboard alone.

use std::net::SocketAddr;
use std::process::ExitCode;

use toosimple_admin::{AdminConfig, Password};

/// Checks the password, connects, and serves until Ctrl-C or SIGTERM.
pub(crate) fn run(
    bind: SocketAddr,
    open: impl FnOnce() -> Result<toosimple_core::Store, toosimple_core::Error>,
) -> ExitCode {
    // Refuse before touching the database: an unguarded admin must never start.
    let password = match Password::from_env() {
        Ok(password) => password,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match open() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {}", e.report());
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = AdminConfig::new(store, password);
    match runtime.block_on(toosimple_admin::serve(config, bind)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot serve the admin on {bind}: {e}");
            ExitCode::FAILURE
        }
    }
}
