//! The toosimple demo: a newsletter sign-up site whose welcome emails are background tasks.
//!
//! Run with: `cargo run -p demo` (then open <http://127.0.0.1:8000>), or
//! `cargo run -p demo -- tour` for a scripted walk-through, or
//! `cargo run -p demo -- <subcommand>` for toosimple's command line (`worker`, `status`, ...).
//!
//! - `demo [--bind ADDR] [--no-worker]`: migrations, the web site (with the admin dashboard at
//!   `/admin` when `TOOSIMPLE_ADMIN_PASSWORD` is set), and (unless `--no-worker`) a worker in
//!   the same process; Ctrl-C stops both cleanly.
//! - `demo tour`: queues examples of every task, runs a worker until they are done, prints
//!   the executions, exits 0.
//! - anything else goes to `toosimple_worker::main()`: `demo worker --queue emails`,
//!   `demo status`, `demo enqueue flaky_import '{"batch": 7}'`, ...
//!
//! The database is `TOOSIMPLE_DATABASE_URL` (default `sqlite://toosimple.sqlite3`); mail goes
//! to `TOOSIMPLE_SMTP_URL`, or into `TOOSIMPLE_MAIL_DIR` (default `./outbox`) as `.eml` files.

mod serve;
mod subscribers;
mod tasks;
mod tour;
mod web;

use std::process::ExitCode;

/// `demo --help`: the demo's own commands, then toosimple's command line.
const HELP: &str = "\
The toosimple demo: a newsletter sign-up site whose welcome emails are background tasks.

Usage: demo [--bind ADDR] [--no-worker]   run the site (default 127.0.0.1:8000) and a worker
       demo tour                          a scripted walk-through; exits 0
       demo <COMMAND> ...                 toosimple's command line (below)

Site options:
  --bind <ADDR>   where the web server listens [default: 127.0.0.1:8000]
  --no-worker     serve the site only; run `demo worker` processes separately

Environment:
  TOOSIMPLE_DATABASE_URL  the database: sqlite://path or postgres://user:password@host/db
                          [default: sqlite://toosimple.sqlite3]
  TOOSIMPLE_SMTP_URL      deliver mail through this SMTP server (smtp://host:port)
  TOOSIMPLE_MAIL_DIR      otherwise write .eml files into this folder [default: ./outbox]
  DEMO_PUBLIC_URL         the site's address in emailed links [default: http://127.0.0.1:8000]
  TOOSIMPLE_ADMIN_PASSWORD  mounts the admin dashboard at /admin with this password
                          (or TOOSIMPLE_ADMIN_PASSWORD_HASH, its argon2 hash)
  TOOSIMPLE_ADMIN_SECRET  seals the admin's session cookies: 64 random bytes, hex or
                          base64 (without it, a restart logs everyone out)
  TOOSIMPLE_LOG           log filter (e.g. info, debug) [default: info]

toosimple's command line:
";

/// What the first arguments ask for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Serve(serve::Options),
    Tour,
    Help,
    Toosimple,
}

fn action(args: &[String]) -> Result<Action, String> {
    match args.first().map(String::as_str) {
        None => Ok(Action::Serve(serve::Options::default())),
        Some(first) if first.starts_with("--bind") || first == "--no-worker" => {
            serve::Options::parse(args).map(Action::Serve)
        }
        Some("tour") if args.len() == 1 => Ok(Action::Tour),
        Some("tour") => Err(format!(
            "`demo tour` takes no arguments, got {:?}",
            &args[1..]
        )),
        Some("-h" | "--help" | "help") if args.len() == 1 => Ok(Action::Help),
        Some(_) => Ok(Action::Toosimple),
    }
}

/// Opens the database named by `--database-url` (anywhere in `args`) or the environment, and
/// creates the demo's own table: `demo worker` and `demo migrate` need it too.
fn migrate_app_tables(args: &[String]) {
    let flag = args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--database-url=")
            .map(str::to_string)
            .or_else(|| {
                (a == "--database-url")
                    .then(|| args.get(i + 1).cloned())
                    .flatten()
            })
    });
    let store = match flag {
        Some(url) => toosimple_core::init(&url),
        None => toosimple_core::default_store(),
    };
    // A connection failure is left for toosimple's command line to report as it does.
    if let Ok(store) = store
        && let Err(e) = subscribers::migrate(&store)
    {
        eprintln!("demo: {}", e.report());
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match action(&args) {
        Ok(Action::Serve(options)) => serve::run(options),
        Ok(Action::Tour) => tour::run(),
        Ok(Action::Help) => {
            print!("{HELP}");
            toosimple_worker::main()
        }
        Ok(Action::Toosimple) => {
            if matches!(args[0].as_str(), "worker" | "migrate") {
                migrate_app_tables(&args);
            }
            toosimple_worker::main()
        }
        Err(message) => {
            eprintln!("demo: {message}\n\nRun `demo --help` for usage.");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn arguments_choose_the_action() {
        assert_eq!(action(&[]), Ok(Action::Serve(serve::Options::default())));
        assert_eq!(
            action(&args("--bind 0.0.0.0:9000 --no-worker")),
            Ok(Action::Serve(serve::Options {
                bind: "0.0.0.0:9000".into(),
                worker: false
            }))
        );
        assert_eq!(action(&args("tour")), Ok(Action::Tour));
        assert!(action(&args("tour extra")).is_err());
        assert_eq!(action(&args("--help")), Ok(Action::Help));
        assert_eq!(
            action(&args("worker --queue emails")),
            Ok(Action::Toosimple)
        );
        assert_eq!(action(&args("status")), Ok(Action::Toosimple));
        assert!(action(&args("--bind")).is_err());
        assert!(action(&args("--bind 1.2.3.4:5 --what")).is_err());
    }
}
