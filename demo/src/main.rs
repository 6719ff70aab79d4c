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
//! - toosimple's subcommands, beside these two in `demo --help` through
//!   [`toosimple_worker::Cli`]: `demo worker --queue emails`, `demo status`,
//!   `demo enqueue flaky_import '{"batch": 7}'`, ...
//!
//! The database is `TOOSIMPLE_DATABASE_URL` (default `sqlite://toosimple.sqlite3`); mail goes
//! to `TOOSIMPLE_SMTP_URL`, or into `TOOSIMPLE_MAIL_DIR` (default `./outbox`) as `.eml` files.

mod serve;
mod subscribers;
mod tasks;
mod tour;
mod web;

use std::process::ExitCode;

use toosimple_worker::Parsed;
use toosimple_worker::clap::{Arg, ArgAction, Command};

/// `demo --help`'s notes: what no subcommand does, and the environment the demo reads
/// besides toosimple's.
const ENVIRONMENT: &str = "\
Without a command, demo runs the site (--bind, --no-worker) and a worker in one process;
Ctrl-C stops both.

The demo's environment:
  TOOSIMPLE_SMTP_URL      deliver mail through this SMTP server (smtp://host:port)
  TOOSIMPLE_MAIL_DIR      otherwise write .eml files into this folder [default: ./outbox]
  DEMO_PUBLIC_URL         the site's address in emailed links [default: http://127.0.0.1:8000]
  TOOSIMPLE_ADMIN_PASSWORD  mounts the admin dashboard at /admin with this password
                          (or TOOSIMPLE_ADMIN_PASSWORD_HASH, its argon2 hash)
  TOOSIMPLE_ADMIN_SECRET  seals the admin's session cookies: 64 random bytes, hex or
                          base64 (without it, a restart logs everyone out)";

/// The demo's command line: the site (no subcommand) and `tour`, beside toosimple's.
fn cli() -> toosimple_worker::Cli {
    toosimple_worker::cli!()
        .after_help(ENVIRONMENT)
        .subcommand(
            Command::new("tour")
                .about("A scripted walk-through: queues examples of every task, runs a worker until they are done, prints the executions; exits 0"),
        )
        .augment(|command| {
            command
                // No subcommand runs the site.
                .subcommand_required(false)
                .arg_required_else_help(false)
                .args_conflicts_with_subcommands(true)
                .arg(
                    Arg::new("bind")
                        .long("bind")
                        .value_name("ADDR")
                        .default_value(serve::DEFAULT_BIND)
                        .help("Where the site listens (no subcommand)"),
                )
                .arg(
                    Arg::new("no_worker")
                        .long("no-worker")
                        .action(ArgAction::SetTrue)
                        .help("Serve the site only; run `demo worker` processes separately"),
                )
        })
}

/// Opens the database named by `--database-url` or the environment, and creates the demo's
/// own table: `demo worker` and `demo migrate` need it too.
fn migrate_app_tables(url: Option<&str>) {
    let store = match url {
        Some(url) => toosimple_core::init(url),
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
    match cli().parse() {
        Parsed::Toosimple(command) => {
            if matches!(command.name(), "worker" | "migrate") {
                migrate_app_tables(command.database_url());
            }
            command.run()
        }
        Parsed::App {
            matches,
            database_url,
        } => match matches.subcommand_name() {
            Some("tour") => tour::run(),
            _ => serve::run(serve::Options {
                bind: matches
                    .get_one::<String>("bind")
                    .cloned()
                    .unwrap_or_else(|| serve::DEFAULT_BIND.to_string()),
                worker: !matches.get_flag("no_worker"),
                database_url,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Parsed {
        cli()
            .try_parse_from(std::iter::once("demo").chain(text.split_whitespace()))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn app(text: &str) -> toosimple_worker::clap::ArgMatches {
        match parse(text) {
            Parsed::App { matches, .. } => matches,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn the_command_definition_is_consistent() {
        cli().command().clone().debug_assert();
    }

    #[test]
    fn arguments_choose_the_action() {
        let site = app("");
        assert_eq!(site.subcommand_name(), None);
        assert_eq!(
            site.get_one::<String>("bind").map(String::as_str),
            Some(serve::DEFAULT_BIND)
        );
        let site = app("--bind 0.0.0.0:9000 --no-worker");
        assert_eq!(
            site.get_one::<String>("bind").map(String::as_str),
            Some("0.0.0.0:9000")
        );
        assert!(site.get_flag("no_worker"));
        assert_eq!(app("tour").subcommand_name(), Some("tour"));
        match parse("worker --queue emails") {
            Parsed::Toosimple(command) => assert_eq!(command.name(), "worker"),
            other => panic!("{other:?}"),
        }
        let wrong = |text: &str| {
            cli()
                .try_parse_from(std::iter::once("demo").chain(text.split_whitespace()))
                .is_err()
        };
        assert!(wrong("tour extra"));
        assert!(wrong("--bind"));
        assert!(wrong("--bind 1.2.3.4:5 --what"));
        assert!(wrong("--no-worker status"));
    }
}
