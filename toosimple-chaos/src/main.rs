//! The `toosimple-chaos` command; see the library's docs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use toosimple_chaos::harness::{self, Backend, Fault, Options, ROLE_ENV};

/// Runs toosimple's workers through faults and checks that nothing was lost or recorded
/// twice.
#[derive(Debug, Parser)]
#[command(name = "toosimple-chaos")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// The database to run on.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// Tasks fed over the fault phase (contention bursts add 200 each).
    #[arg(long, default_value_t = 5_000)]
    tasks: i64,
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Each worker's concurrency.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds of faults (the run goes on until each fault kind was injected once).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// The seed of the fault schedule and the workload (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The faults to inject (comma-separated; default: all that apply to the backend).
    #[arg(long, value_enum, value_delimiter = ',')]
    faults: Vec<Fault>,
    /// The workers' heartbeat timeout, in seconds (pauses and partitions outlast it).
    #[arg(long, default_value_t = 4.0)]
    heartbeat_timeout: f64,
    /// The mean time between two faults, in seconds.
    #[arg(long, default_value_t = 1.0)]
    fault_every: f64,
    /// Seconds to wait, after the faults, for every task to finish.
    #[arg(long, default_value_t = 300.0)]
    drain_timeout: f64,
    /// Run on this PostgreSQL database instead of a private server started for the run
    /// (restarts and partitions need the run's own server and are then left out). The run
    /// uses the queue `chaos` only.
    #[arg(long)]
    postgres_url: Option<String>,
    /// Run on this MariaDB or MySQL database instead of a private MariaDB server started for
    /// the run (restarts need the run's own server and are then left out). The run uses the
    /// queue `chaos` only.
    #[arg(long)]
    mysql_url: Option<String>,
    /// Keep the run's folder (ledgers, worker logs).
    #[arg(long)]
    keep: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The parts the run's own processes play.
#[derive(Debug, Subcommand)]
enum Role {
    /// Internal: enqueue a range of keys.
    #[command(hide = true)]
    Enqueue {
        #[arg(long)]
        from: i64,
        #[arg(long)]
        count: i64,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        slow: bool,
    },
}

fn main() -> ExitCode {
    // The workers are this program too: as the application's own command line.
    if std::env::var(ROLE_ENV).is_ok_and(|r| r == "app") {
        return toosimple_worker::main();
    }
    let cli = Cli::parse();
    if let Some(Role::Enqueue {
        from,
        count,
        seconds,
        seed,
        slow,
    }) = cli.role
    {
        let Some(dir) = std::env::var_os(toosimple_chaos::tasks::DIR_ENV) else {
            eprintln!("{} is not set", toosimple_chaos::tasks::DIR_ENV);
            return ExitCode::from(2);
        };
        toosimple_chaos::enqueuer::run(dir.as_ref(), from, count, seconds, seed, slow);
        return ExitCode::SUCCESS;
    }
    let faults = if cli.faults.is_empty() {
        <Fault as clap::ValueEnum>::value_variants().to_vec()
    } else {
        cli.faults
    };
    let seed = cli.seed.unwrap_or_else(rand::random);
    let options = Options {
        backend: cli.backend,
        tasks: cli.tasks,
        workers: cli.workers.max(1),
        concurrency: cli.concurrency.max(1),
        seconds: cli.seconds,
        seed,
        faults,
        heartbeat_timeout: cli.heartbeat_timeout,
        fault_every: cli.fault_every,
        drain_timeout: cli.drain_timeout,
        postgres_url: cli.postgres_url,
        mysql_url: cli.mysql_url,
        keep: cli.keep,
    };
    match harness::run(options) {
        Ok(report) => {
            if cli.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("toosimple-chaos: {e}");
            ExitCode::from(2)
        }
    }
}
