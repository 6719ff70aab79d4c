//! The application's command line: toosimple's subcommands under the application's name,
//! version and about text, beside the application's own subcommands.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

use super::{Command, Manage};

/// Said after `app --help`: what no flag shows.
const AFTER_HELP: &str = "\
Environment:
  TOOSIMPLE_DATABASE_URL  the database, as --database-url [default: sqlite://toosimple.sqlite3]
  TOOSIMPLE_LOG           the log filter on stderr, tracing's env-filter syntax, e.g. debug or
                          info,toosimple_worker=debug [default: info]
  NO_COLOR                no colour in the logs, even on a terminal

Durations (--tick, --timeout, purge --older-than): 500ms, 1s, 2m, 1h 30m, 7d, 2w; a plain
number is seconds (purge wants the unit).

Signals (worker): a first SIGINT (Ctrl-C) stops claiming and lets running tasks finish;
SIGTERM or a second SIGINT interrupts them, each with a replacement execution.

Exit codes:
  0   done; a worker stopped by SIGINT, --once or --until-done
  1   the command could not do what was asked (the reason is on stderr)
  2   the command line is wrong (the message says what to write)
  77  a worker terminated by SIGTERM or a second SIGINT
  99  a worker crashed (the reason is logged and kept in its status row)";

/// Said after `app worker --help`.
const WORKER_AFTER_HELP: &str = "\
Durations: 500ms, 1s, 2m, 1h 30m; a plain number is seconds.

Signals: a first SIGINT (Ctrl-C) stops claiming and lets running tasks finish (exit 0);
SIGTERM or a second SIGINT interrupts them, each with a replacement execution (exit 77).
A worker that cannot go on exits 99, the reason logged and kept in its status row.
Logs go to stderr, filtered by TOOSIMPLE_LOG (e.g. debug) [default: info].";

/// The about text of an application that gives none.
pub(super) const DEFAULT_ABOUT: &str =
    "Background tasks of this application: run workers and manage executions.";

/// An application's command line: toosimple's subcommands (`worker`, `status`, `enqueue`, ...)
/// under the application's own name, version and about text, beside the application's own
/// subcommands.
///
/// [`cli!`](crate::cli!) makes one from the calling crate's `Cargo.toml`; [`Cli::run`] runs
/// toosimple's subcommands; with subcommands of its own, the application takes the result of
/// [`Cli::parse`] and runs those itself.
///
/// ```no_run
/// use std::process::ExitCode;
/// use toosimple_worker::{Parsed, clap};
///
/// fn main() -> ExitCode {
///     let cli = toosimple_worker::cli!() // `app --version` says "app 1.2.0"
///         .subcommand(clap::Command::new("report").about("Print this month's report"));
///     match cli.parse() {
///         Parsed::Toosimple(command) => command.run(),
///         Parsed::App { matches, .. } => match matches.subcommand_name() {
///             Some("report") => {
///                 println!("all good");
///                 ExitCode::SUCCESS
///             }
///             _ => unreachable!("clap accepts only the subcommands declared"),
///         },
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Cli {
    command: clap::Command,
}

impl Cli {
    /// A command line named `name` (what `--version` and `--help` say) at `version`, with
    /// toosimple's subcommands only. [`cli!`](crate::cli!) fills both in from Cargo.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Cli {
        let worker_help = |worker: clap::Command| worker.after_help(WORKER_AFTER_HELP);
        Cli {
            command: Manage::command()
                .name(name.into())
                .version(version.into())
                .about(DEFAULT_ABOUT)
                .long_about(None)
                .after_help(AFTER_HELP)
                .mut_subcommand("worker", worker_help)
                .subcommand_required(true)
                .arg_required_else_help(true),
        }
    }

    /// The one-line description `--help` opens with. An empty text (what Cargo gives a
    /// crate without `description`) keeps the default.
    pub fn about(mut self, about: impl Into<String>) -> Cli {
        let about = about.into();
        if !about.trim().is_empty() {
            self.command = self.command.about(about);
        }
        self
    }

    /// Text `--help` shows at its end, above toosimple's notes on the environment, signals
    /// and exit codes: the application's own environment variables, say.
    pub fn after_help(mut self, text: impl Into<String>) -> Cli {
        let text = text.into();
        self.command = self
            .command
            .after_help(format!("{}\n\n{AFTER_HELP}", text.trim_end()));
        self
    }

    /// Adds one of the application's own subcommands beside toosimple's: [`Cli::parse`] gives
    /// its matches back as [`Parsed::App`]. Its name must be none of toosimple's (clap's
    /// debug assertions say so).
    pub fn subcommand(mut self, subcommand: clap::Command) -> Cli {
        self.command = self.command.subcommand(subcommand);
        self
    }

    /// Changes the whole clap command: options of the application's own before any
    /// subcommand, a run without a subcommand (`subcommand_required(false)`, then
    /// [`Parsed::App`] without one), styles, ... Toosimple's subcommands and the global
    /// `--database-url` must stay.
    ///
    /// ```
    /// use toosimple_worker::clap::{Arg, ArgAction};
    ///
    /// let cli = toosimple_worker::Cli::new("app", "1.0.0").augment(|command| {
    ///     command
    ///         .subcommand_required(false)
    ///         .arg_required_else_help(false)
    ///         .arg(Arg::new("verbose").long("verbose").action(ArgAction::SetTrue))
    /// });
    /// assert!(cli.command().get_arguments().any(|a| a.get_id() == "verbose"));
    /// ```
    pub fn augment(mut self, change: impl FnOnce(clap::Command) -> clap::Command) -> Cli {
        self.command = change(self.command);
        self
    }

    /// The clap command as it stands: for shell completions, man pages or tests.
    pub fn command(&self) -> &clap::Command {
        &self.command
    }

    /// Parses the process's arguments and runs toosimple's subcommand; returns its exit code
    /// (see `--help`). For an application without subcommands of its own: with them, use
    /// [`Cli::parse`].
    pub fn run(self) -> ExitCode {
        match self.parse() {
            Parsed::Toosimple(command) => command.run(),
            Parsed::App { matches, .. } => {
                eprintln!(
                    "error: `{}` is a subcommand of the application's own, which \
                     toosimple_worker::Cli::run does not run: match the result of Cli::parse \
                     instead",
                    matches.subcommand_name().unwrap_or("(none)")
                );
                ExitCode::FAILURE
            }
        }
    }

    /// Parses the process's arguments. A wrong command line, `--help` and `--version` print
    /// their text and exit (2 for the wrong command line, 0 otherwise), as clap does.
    pub fn parse(self) -> Parsed {
        self.try_parse_from(std::env::args_os())
            .unwrap_or_else(|error| error.exit())
    }

    /// Parses `args`, the program's name first. Besides clap's own checks, the worker's
    /// options are checked together (a heartbeat timeout longer than the tick).
    pub fn try_parse_from<I, T>(self, args: I) -> Result<Parsed, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = self.command;
        let matches = command.try_get_matches_from_mut(args)?;
        let ours = matches
            .subcommand_name()
            .is_some_and(<Command as clap::Subcommand>::has_subcommand);
        if !ours {
            let database_url = matches.get_one::<String>("database_url").cloned();
            return Ok(Parsed::App {
                matches,
                database_url,
            });
        }
        let manage = Manage::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        if let Command::Worker(args) = &manage.command
            && let Err(message) = args.check()
        {
            let kind = ErrorKind::ArgumentConflict;
            // The worker's usage line under the message, where clap has it.
            return Err(match command.find_subcommand_mut("worker") {
                Some(worker) => worker.error(kind, message),
                None => command.error(kind, message),
            });
        }
        Ok(Parsed::Toosimple(Builtin {
            manage: Box::new(manage),
        }))
    }
}

/// Makes a [`Cli`] named after the calling crate: its binary's name (the package's, outside
/// a binary), its version and its `description` from `Cargo.toml`, read at compile time.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     toosimple_worker::cli!().run()
/// }
/// ```
#[macro_export]
macro_rules! cli {
    () => {
        $crate::Cli::new(
            match ::std::option_env!("CARGO_BIN_NAME") {
                ::std::option::Option::Some(name) => name,
                ::std::option::Option::None => ::std::env!("CARGO_PKG_NAME"),
            },
            ::std::env!("CARGO_PKG_VERSION"),
        )
        .about(::std::env!("CARGO_PKG_DESCRIPTION"))
    };
}

/// What [`Cli::parse`] found.
#[derive(Debug)]
pub enum Parsed {
    /// One of toosimple's subcommands: [`Builtin::run`] runs it.
    Toosimple(Builtin),
    /// The application's own subcommand, or no subcommand where the application allows it.
    App {
        /// Everything clap matched; `matches.subcommand()` names the subcommand.
        matches: clap::ArgMatches,
        /// `--database-url` or `TOOSIMPLE_DATABASE_URL`, when given.
        database_url: Option<String>,
    },
}

/// One of toosimple's subcommands, parsed and checked, not run yet.
#[derive(Debug)]
pub struct Builtin {
    pub(super) manage: Box<Manage>,
}

impl Builtin {
    /// The subcommand's name: `worker`, `migrate`, `status`, ... (what the application may
    /// want to prepare for, such as its own tables before `worker` or `migrate`).
    pub fn name(&self) -> &'static str {
        self.manage.command.name()
    }

    /// `--database-url` or `TOOSIMPLE_DATABASE_URL`, when given.
    pub fn database_url(&self) -> Option<&str> {
        self.manage.database_url.as_deref()
    }

    /// Runs it and returns its exit code (see `--help`).
    pub fn run(self) -> ExitCode {
        super::run(*self.manage)
    }
}
