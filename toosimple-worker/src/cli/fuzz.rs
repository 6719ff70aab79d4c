//! Bad command lines never panic: any argv is parsed by clap or refused with its message, and
//! what clap accepts goes through the checks the subcommand makes before touching the database
//! (the worker's options, `purge`'s age) without a panic.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use proptest::prelude::*;
use proptest::test_runner::Config;
use toosimple_core::WorkerStatus;

use super::*;

/// Few enough cases for the debug suite (`PROPTEST_CASES` runs a longer hunt); no regression
/// files: a finding becomes a named test.
fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..Config::default()
    }
}

const WORDS: &[&str] = &[
    "worker",
    "admin",
    "migrate",
    "status",
    "enqueue",
    "requeue",
    "cancel",
    "show",
    "purge",
    "tasks",
    "schedules",
    "run-schedule",
    "run_schedule",
    "help",
    "--database-url",
    "--queue",
    "--exclude-queue",
    "--exclude_queue",
    "--once",
    "--until-done",
    "--until_done",
    "--tick",
    "--label",
    "--timeout",
    "--concurrency",
    "--claim-ahead",
    "--no-schedules",
    "--no_schedules",
    "--json",
    "--due",
    "--older-than",
    "--older_than",
    "--state",
    "--bind",
    "--help",
    "-h",
    "--version",
    "-V",
    "--",
    "-",
];

/// Values where parsers break: signs, floats that are not finite or not representable as a
/// duration, integers past `u64`, ages past chrono's range, dates, states, addresses.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "0.000000001",
    "1e-300",
    "1e300",
    "1e19",
    "1e13",
    "inf",
    "-inf",
    "NaN",
    "-0",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "7d",
    "30s",
    "100000000d",
    "40000000000000w",
    "18446744073709551615s",
    "99999999999999999999w",
    "2030-01-01T08:00:00Z",
    "+262143-12-31T23:59:59Z",
    "-262144-01-01T00:00:00Z",
    "2030-02-30T00:00:00Z",
    "failed",
    "succeeded",
    "bogus",
    "{}",
    "{\"a\": 1}",
    "[1]",
    "{not json",
    "127.0.0.1:0",
    "[::1]:8001",
    "localhost:99999",
    "sqlite://",
    "postgres://bob:pw@db/app",
    "worker-{pid}-{pid}",
];

/// One argument: a word of the CLI, a value, either glued to a flag (`--tick=inf`), or
/// anything at all, sometimes not UTF-8.
fn argument() -> impl Strategy<Value = OsString> {
    let word = prop::sample::select(WORDS).prop_map(OsString::from);
    let value = prop::sample::select(VALUES).prop_map(OsString::from);
    let glued = (prop::sample::select(WORDS), prop::sample::select(VALUES))
        .prop_map(|(flag, value)| OsString::from(format!("{flag}={value}")));
    prop_oneof![
        4 => word,
        4 => value,
        2 => glued,
        1 => any::<String>().prop_map(OsString::from),
        1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(OsString::from_vec),
    ]
}

/// A command line: usually a subcommand first, then arguments.
fn argv() -> impl Strategy<Value = Vec<OsString>> {
    (
        prop::option::weighted(0.8, prop::sample::select(&WORDS[..13])),
        prop::collection::vec(argument(), 0..8),
    )
        .prop_map(|(subcommand, rest)| {
            let mut argv = vec![OsString::from("app")];
            argv.extend(subcommand.map(OsString::from));
            argv.extend(rest);
            argv
        })
}

/// `worker` with its own options, each given a value where it takes one: the parts of argv
/// that reach past clap into the worker's configuration.
fn worker_argv() -> impl Strategy<Value = Vec<OsString>> {
    let option = (
        prop::sample::select(&WORDS[14..27]),
        prop_oneof![4 => prop::sample::select(VALUES).prop_map(str::to_string), 1 => any::<String>()],
    );
    prop::collection::vec(option, 0..6).prop_map(|options| {
        let mut argv = vec![OsString::from("app"), OsString::from("worker")];
        for (flag, value) in options {
            argv.push(OsString::from(flag));
            if !matches!(
                flag,
                "--once" | "--until-done" | "--until_done" | "--no-schedules" | "--no_schedules"
            ) {
                argv.push(OsString::from(value));
            }
        }
        argv
    })
}

/// The command line as an application's binary builds it.
fn try_parse(argv: &[OsString]) -> Result<Parsed, clap::Error> {
    Cli::new("app", "0.0.0").try_parse_from(argv)
}

/// What the subcommand checks before it opens the database, as `run` would, and what the
/// parsers promise: a worker's options make sense together.
fn check_parsed(parsed: Parsed) -> Result<(), TestCaseError> {
    let Parsed::Toosimple(Builtin { manage }) = parsed else {
        return Err(TestCaseError::fail("only toosimple's subcommands exist"));
    };
    match manage.command {
        Command::Worker(args) => {
            prop_assert!(args.tick >= values::MIN_TICK);
            prop_assert!(args.heartbeat_timeout > args.tick);
            prop_assert!(args.concurrency != Some(0));
            prop_assert!(
                args.queue
                    .iter()
                    .chain(&args.exclude_queue)
                    .all(|q| !q.is_empty() && !q.contains(',') && q.trim() == q)
            );
            if let Err(error) = worker_from(&args) {
                prop_assert!(!error.report().is_empty());
            }
            // Other workers read this worker's timeout from its status row to tell whether it
            // is alive: any timeout the CLI takes must be readable by them.
            let now = Utc::now();
            let status = WorkerStatus {
                id: 1,
                label: args.label.clone(),
                queues: args.queue.clone(),
                excluded_queues: args.exclude_queue.clone(),
                heartbeat_timeout: args.heartbeat_timeout.as_secs_f64(),
                last_tick: now,
                started: now,
                stopped: None,
                exit_code: None,
                exit_log: None,
                tasks: None,
                stop_request: None,
                handled: 0,
                tick: args.tick.as_secs_f64(),
                cluster: None,
                restarts: 0,
            };
            let _ = status.state_at(now);
            let _ = status.is_silent_at(DateTime::<Utc>::MAX_UTC);
        }
        Command::Purge { older_than, .. } => {
            let now = Utc::now();
            prop_assert!(purge_cutoff(now, older_than) <= now);
        }
        _ => {}
    }
    Ok(())
}

#[test]
fn the_command_definition_is_consistent() {
    Cli::new("app", "0.0.0").command().clone().debug_assert();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_command_line_parses_or_is_refused_with_a_message(argv in argv()) {
        match try_parse(&argv) {
            Ok(cli) => check_parsed(cli)?,
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn any_worker_options_parse_or_are_refused_with_a_message(argv in worker_argv()) {
        match try_parse(&argv) {
            Ok(cli) => check_parsed(cli)?,
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn any_age_parses_or_says_why(text in prop_oneof![
        any::<String>(),
        "[0-9]{0,25}[smhdwy]?",
        "[ 0-9smhdw+\\-.]{0,12}",
    ]) {
        match values::age(&text) {
            Ok(age) => prop_assert!(purge_cutoff(Utc::now(), age) <= Utc::now()),
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }
}
