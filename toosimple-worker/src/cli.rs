//! The manage-style command line: `app worker`, `app status`, `app enqueue`, ...

use std::process::ExitCode;
use std::time::Duration;

pub use app::{Builtin, Cli, Parsed};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use toosimple_core::{Cancellation, DATABASE_URL_ENV, Error, State, Store, TaskCount, TaskExec};

use crate::worker::{RunMode, Worker};

mod app;
mod values;

/// `println!` that hands a failed write back (`println!` panics): `status | head` closes
/// the pipe before the output ends.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(Failure::Stdout)?
    }};
}

mod control;
mod flow;
mod queue;
mod schedule;

/// Why a command failed: its own error, or its output could not be written.
enum Failure {
    Error(Error),
    Stdout(std::io::Error),
    /// The command cannot do what was asked; the message says why.
    Refused(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

/// Toosimple's command line as clap derives it; [`Cli`] gives it the application's name,
/// version and about text.
#[derive(Debug, Parser)]
struct Manage {
    /// The database (sqlite://path or postgres://...); default sqlite://toosimple.sqlite3.
    #[arg(long, global = true, env = DATABASE_URL_ENV, value_name = "URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a worker: claim queued tasks and execute them.
    Worker(WorkerArgs),
    /// Run N worker processes and restart those that die (django-q's cluster).
    #[cfg(unix)]
    Cluster(ClusterArgs),
    /// Serve the admin dashboard (password: TOOSIMPLE_ADMIN_PASSWORD or ..._HASH).
    #[cfg(feature = "admin")]
    Admin {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8001", value_parser = values::bind)]
        bind: std::net::SocketAddr,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Show executions per queue and state, and the workers (running, and stopped in the last hour).
    Status {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// List every worker ever recorded, including those stopped over an hour ago.
        #[arg(long)]
        all: bool,
    },
    /// Enqueue a task by name with JSON arguments: `enqueue add '{"a": 1, "b": 2}'`.
    Enqueue {
        /// The task's registered name.
        task: String,
        /// Its arguments, a JSON object keyed by parameter name.
        #[arg(default_value = "{}")]
        args: String,
        /// When it may run (RFC 3339, e.g. 2030-01-01T08:00:00Z); now when absent.
        #[arg(long, value_parser = values::due)]
        due: Option<DateTime<Utc>>,
        /// This call's options over the task's own.
        #[command(flatten)]
        options: CallArgs,
    },
    /// Enqueue a new execution with the same task and arguments as execution ID.
    Requeue {
        /// The execution to copy.
        #[arg(value_parser = values::exec_id)]
        id: i64,
    },
    /// Show execution ID: its state, timings, outcome, and while it runs its progress and any
    /// cancel requested.
    Show {
        /// The execution to show.
        #[arg(value_parser = values::exec_id)]
        id: i64,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel execution ID: a pending one at once; a running one is stopped by its worker
    /// within a heartbeat (async tasks aborted, sync tasks see the flag) and recorded cancelled.
    Cancel {
        /// The execution to cancel.
        #[arg(value_parser = values::exec_id)]
        id: i64,
    },
    /// Delete finished executions older than a duration.
    Purge {
        /// Age of the executions to delete, with its unit: 30s, 15m, 12h, 7d, 2w.
        #[arg(long = "older-than", alias = "older_than", value_name = "AGE", value_parser = values::age)]
        older_than: Duration,
        /// Only executions in this state (repeatable); any finished state by default.
        #[arg(long)]
        state: Vec<State>,
    },
    /// List the registered tasks and their options.
    Tasks,
    /// List the schedules: cron, description, time zone, last and next due, last task's state.
    Schedules {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Enqueue a schedule's task now, outside its cron (its datetime argument is None).
    #[command(name = "run-schedule", alias = "run_schedule")]
    RunSchedule {
        /// The schedule's name.
        name: String,
    },
    /// Schedules created at run time, stored in the database: add, list, pause, resume, remove.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Flows (task calls run one after another): show one by id or name, list them.
    #[command(subcommand)]
    Flow(flow::FlowCommand),
    /// The queues' settings, stored in the database: list, pause, resume, set (concurrency
    /// limit, default retries and time limit), reset.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// Ask running workers to stop; each sees the request at its next heartbeat (its --tick).
    Stop {
        /// The workers' labels (`status` lists them).
        #[arg(
            value_name = "LABEL",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        labels: Vec<String>,
        /// Every worker that has not stopped.
        #[arg(long)]
        all: bool,
        /// Interrupt their running tasks, each with a replacement, and exit 77 (as SIGTERM);
        /// without it they finish them and exit 0 (as a first SIGINT).
        #[arg(long)]
        terminate: bool,
        /// Wait until each has stopped, and say how.
        #[arg(long)]
        wait: bool,
    },
    /// A live view of the workers, queues and throughput, refreshed every second (q quits).
    Monitor {
        /// Time between refreshes.
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = values::positive_duration)]
        refresh: Duration,
    },
    /// Ask a worker whether it is alive: waits for its next heartbeat.
    Ping {
        /// The worker's label.
        label: String,
        /// How long to wait; default: two of its ticks and a second.
        #[arg(long, value_name = "DURATION", value_parser = values::positive_duration)]
        timeout: Option<Duration>,
    },
}

impl Command {
    /// The subcommand's name, as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Worker(_) => "worker",
            #[cfg(unix)]
            Command::Cluster(_) => "cluster",
            #[cfg(feature = "admin")]
            Command::Admin { .. } => "admin",
            Command::Migrate => "migrate",
            Command::Status { .. } => "status",
            Command::Enqueue { .. } => "enqueue",
            Command::Requeue { .. } => "requeue",
            Command::Show { .. } => "show",
            Command::Cancel { .. } => "cancel",
            Command::Purge { .. } => "purge",
            Command::Tasks => "tasks",
            Command::Schedules { .. } => "schedules",
            Command::RunSchedule { .. } => "run-schedule",
            Command::Stop { .. } => "stop",
            Command::Schedule(_) => "schedule",
            Command::Flow(_) => "flow",
            Command::Queue(_) => "queue",
            Command::Ping { .. } => "ping",
            Command::Monitor { .. } => "monitor",
        }
    }
}

/// `enqueue`'s options for one call, over the task's own (`CallOptions`).
#[derive(Debug, Args)]
struct CallArgs {
    /// Run on this queue instead of the task's.
    #[arg(long, value_parser = values::queue)]
    queue: Option<String>,
    /// Claimed before lower priorities.
    #[arg(long, allow_hyphen_values = true)]
    priority: Option<i32>,
    /// Retries after a failure (-1: for ever).
    #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i32).range(-1..))]
    retries: Option<i32>,
    /// The first retry's delay (it doubles after each): 30s, 5m, or seconds.
    #[arg(long = "retry-delay", alias = "retry_delay", value_name = "DELAY", value_parser = values::duration)]
    retry_delay: Option<Duration>,
    /// Fail a run that takes longer than this: 30s, 500ms, or seconds.
    #[arg(long, value_name = "LIMIT", value_parser = values::positive_duration)]
    timeout: Option<Duration>,
    /// Delete the finished execution this long after it finished: 1h, 7d, seconds, 0 (once
    /// recorded), or keep (-1: until purged).
    #[arg(long, allow_hyphen_values = true, value_parser = values::ttl)]
    ttl: Option<toosimple_core::Ttl>,
    /// Call this registered hook with the finished execution, instead of the task's.
    #[arg(long, value_name = "NAME", value_parser = values::hook)]
    hook: Option<toosimple_core::Hook>,
}

impl CallArgs {
    fn options(&self, due: Option<DateTime<Utc>>) -> toosimple_core::CallOptions {
        let mut options = toosimple_core::CallOptions::new();
        if let Some(hook) = self.hook {
            options = options.hook(hook);
        }
        if let Some(queue) = &self.queue {
            options = options.on_queue(queue.clone());
        }
        if let Some(priority) = self.priority {
            options = options.priority(priority);
        }
        if let Some(due) = due {
            options = options.at(due);
        }
        if let Some(retries) = self.retries {
            options = options.retries(retries);
        }
        if let Some(delay) = self.retry_delay {
            options = options.retry_delay(delay);
        }
        if let Some(limit) = self.timeout {
            options = options.timeout(limit);
        }
        if let Some(ttl) = self.ttl {
            options = options.ttl(ttl);
        }
        options
    }
}

/// The `worker` subcommand's options (django-toosimple-q's underscore spellings work too).
#[derive(Debug, Args)]
struct WorkerArgs {
    /// Serve only these queues (comma-separated, or repeat the flag).
    #[arg(
        long = "queue",
        value_name = "QUEUE",
        value_delimiter = ',',
        value_parser = values::queue,
        conflicts_with = "exclude_queue"
    )]
    queue: Vec<String>,
    /// Serve every queue but these (comma-separated, or repeat the flag).
    #[arg(
        long = "exclude-queue",
        alias = "exclude_queue",
        value_name = "QUEUE",
        value_delimiter = ',',
        value_parser = values::queue
    )]
    exclude_queue: Vec<String>,
    /// Claim from the --queue queues in the order given: all it can of the first before the
    /// second (priority orders each queue's own tasks).
    #[arg(long = "in-order", alias = "in_order", requires = "queue")]
    in_order: bool,
    /// Run one round, then stop.
    #[arg(long, conflicts_with = "until_done")]
    once: bool,
    /// Stop once nothing is left to run.
    #[arg(long = "until-done", alias = "until_done")]
    until_done: bool,
    /// Time between heartbeats and idle looks for work (at least 10ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = values::tick)]
    tick: Duration,
    /// This worker's label; `{pid}` is replaced by the process id.
    #[arg(long, default_value = "worker-{pid}", value_parser = values::label)]
    label: String,
    /// Heartbeat timeout, longer than the tick: time without a heartbeat after which other
    /// workers rescue this one's tasks (not a task's run limit, `#[task(timeout)]`).
    #[arg(long = "timeout", value_name = "DURATION", default_value = "300s", value_parser = values::duration)]
    heartbeat_timeout: Duration,
    /// How many tasks run at once (1 or more); default: the number of CPUs.
    #[arg(long, value_name = "N", value_parser = values::concurrency)]
    concurrency: Option<usize>,
    /// How many rows to claim beyond the free slots while tasks are short (under 20 ms), so a
    /// freed slot starts its next task without a round trip; default: the concurrency; 0 off.
    #[arg(long, value_name = "ROWS")]
    claim_ahead: Option<usize>,
    /// Do not materialize schedules.
    #[arg(long = "no-schedules", alias = "no_schedules")]
    no_schedules: bool,
    /// A registered hook to call with every execution that fails (failed, invalid or
    /// interrupted), beside its own hook.
    #[arg(long = "error-hook", value_name = "NAME", value_parser = values::hook)]
    error_hook: Option<toosimple_core::Hook>,
    /// How long an execution without a TTL of its own is kept once finished (django-pq's
    /// result TTL): 500s, 7d, 0 (deleted once recorded), or keep (-1, the default).
    #[arg(
        long = "result-ttl",
        alias = "result_ttl",
        value_name = "TTL",
        allow_hyphen_values = true,
        value_parser = values::ttl
    )]
    result_ttl: Option<toosimple_core::Ttl>,
    /// Keep only the N newest successes without a TTL of their own (django-q's save limit);
    /// failures are always kept; 0 keeps all (the default).
    #[arg(long = "save-limit", alias = "save_limit", value_name = "N")]
    save_limit: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics (executions by task, queue and outcome,
    /// run times, start delays, queue depths).
    #[arg(long, value_name = "ADDR", value_parser = values::socket_addr)]
    metrics_bind: Option<std::net::SocketAddr>,
    /// Stop by itself (exit 0) after this many tasks: a fresh process for leaky task code.
    #[arg(long, value_name = "N", value_parser = values::count)]
    max_tasks: Option<u64>,
    /// In development: restart when this program's binary changes on disk (after `cargo
    /// build`), finishing running tasks first.
    #[cfg(unix)]
    #[arg(long)]
    reload: bool,
    /// The `app cluster` that started this worker (set by the cluster).
    #[arg(long, hide = true)]
    cluster: Option<String>,
    /// How many times the cluster restarted this worker (set by the cluster).
    #[arg(long, hide = true, default_value_t = 0)]
    cluster_restarts: i32,
}

/// The `cluster` subcommand's options: its own, then every worker flag, given to each child.
#[cfg(unix)]
#[derive(Debug, Args)]
struct ClusterArgs {
    /// How many worker processes to run.
    #[arg(long, value_name = "N", value_parser = values::count)]
    processes: u64,
    /// Recycle a worker whose resident memory grows above this (512MB, 1GB): it is asked to
    /// stop gracefully, then started again.
    #[arg(long, value_name = "SIZE", value_parser = values::bytes)]
    max_memory: Option<u64>,
    /// The first restart's delay after a death; it doubles with each death in a row, up to a
    /// minute.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = values::positive_duration)]
    restart_delay: Duration,
    #[command(flatten)]
    worker: WorkerArgs,
}

impl WorkerArgs {
    /// These flags as a child of `app cluster` gets them: all but the label, which the
    /// cluster gives each child, and the cluster's own.
    #[cfg(unix)]
    fn child_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for queue in &self.queue {
            args.extend(["--queue".to_string(), queue.clone()]);
        }
        for queue in &self.exclude_queue {
            args.extend(["--exclude-queue".to_string(), queue.clone()]);
        }
        if self.in_order {
            args.push("--in-order".to_string());
        }
        if self.once {
            args.push("--once".to_string());
        }
        if self.until_done {
            args.push("--until-done".to_string());
        }
        args.extend([
            "--tick".to_string(),
            format!("{}ms", self.tick.as_millis()),
            "--timeout".to_string(),
            format!("{}ms", self.heartbeat_timeout.as_millis()),
        ]);
        if let Some(n) = self.concurrency {
            args.extend(["--concurrency".to_string(), n.to_string()]);
        }
        if let Some(n) = self.claim_ahead {
            args.extend(["--claim-ahead".to_string(), n.to_string()]);
        }
        if self.no_schedules {
            args.push("--no-schedules".to_string());
        }
        if self.reload {
            args.push("--reload".to_string());
        }
        if let Some(hook) = &self.error_hook {
            args.extend(["--error-hook".to_string(), hook.name().to_string()]);
        }
        if let Some(ttl) = self.result_ttl {
            let ttl = match ttl {
                toosimple_core::Ttl::Keep => "keep".to_string(),
                ttl => format!("{}s", ttl.as_seconds()),
            };
            args.extend(["--result-ttl".to_string(), ttl]);
        }
        if let Some(n) = self.save_limit {
            args.extend(["--save-limit".to_string(), n.to_string()]);
        }
        args
    }
}

impl WorkerArgs {
    /// The checks across options, which no single flag's parser can make.
    fn check(&self) -> Result<(), String> {
        if self.heartbeat_timeout <= self.tick {
            return Err(format!(
                "the heartbeat timeout (--timeout {}) must be longer than the tick (--tick {}): \
                 other workers would take this one for dead between two of its heartbeats and \
                 rescue its tasks while they run; write e.g. --timeout {} or a shorter --tick",
                humantime::format_duration(self.heartbeat_timeout),
                humantime::format_duration(self.tick),
                humantime::format_duration(Duration::from_secs(
                    self.tick.as_secs().saturating_mul(3).max(30)
                )),
            ));
        }
        Ok(())
    }
}

/// The finish time before which `purge --older-than` deletes, from `now`: the start of time
/// when the age reaches back past it (nothing is that old).
fn purge_cutoff(now: DateTime<Utc>, older_than: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(older_than)
        .ok()
        .and_then(|age| now.checked_sub_signed(age))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Runs one of toosimple's subcommands, parsed and checked.
fn run(cli: Manage) -> ExitCode {
    init_tracing("info");
    // Each command opens its database itself: a worker so that it can wait through an outage
    // at start, the others to choose whether a missing SQLite file may be created.
    let db = Database {
        url: cli.database_url,
    };
    match cli.command {
        Command::Worker(args) => run_worker(args, db.url),
        #[cfg(unix)]
        Command::Cluster(args) => run_cluster(args, db.url),
        #[cfg(feature = "admin")]
        Command::Admin { bind } => crate::admin::run(bind, || db.existing()),
        other => match run_command(other, &db) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::Error(e)) => {
                eprintln!("error: {}", e.report());
                ExitCode::FAILURE
            }
            // The reader has all it wanted (`| head`): nothing to report.
            Err(Failure::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                ExitCode::SUCCESS
            }
            Err(Failure::Stdout(e)) => {
                eprintln!("error: cannot write the output: {e}");
                ExitCode::FAILURE
            }
            Err(Failure::Refused(message)) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The database the command line names (`--database-url` or `TOOSIMPLE_DATABASE_URL`), if any.
struct Database {
    url: Option<String>,
}

impl Database {
    /// For commands that add executions (`enqueue`, `migrate`, ...): created and migrated if
    /// need be.
    fn create(&self) -> Result<Store, Error> {
        match &self.url {
            Some(url) => toosimple_core::init(url),
            None => toosimple_core::default_store(),
        }
    }

    /// For commands that read or change existing executions: a SQLite file that does not
    /// exist is an error, not a new, empty database left behind.
    fn existing(&self) -> Result<Store, Error> {
        Store::connect_existing(
            self.url
                .as_deref()
                .unwrap_or(toosimple_core::store::DEFAULT_DATABASE_URL),
        )
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Logs to stderr, filtered by `TOOSIMPLE_LOG` (tracing's env-filter syntax, e.g.
/// `info,toosimple_worker=debug`), `default` when unset or not a filter (said on stderr).
/// Does nothing if a subscriber is already installed.
pub fn init_tracing(default: &str) {
    let filter = match std::env::var("TOOSIMPLE_LOG") {
        Ok(text) if !text.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&text)
            .unwrap_or_else(|e| {
                // Said before any log line: a mistyped filter otherwise looks like a quiet app.
                eprintln!(
                    "warning: TOOSIMPLE_LOG={text:?} is not a log filter ({e}): write e.g. \
                     info, debug or info,toosimple_worker=debug; logging at {default}"
                );
                tracing_subscriber::EnvFilter::new(default)
            }),
        _ => tracing_subscriber::EnvFilter::new(default),
    };
    // Escape codes only where a terminal reads them, not into files and pipes; NO_COLOR
    // (https://no-color.org) turns them off on a terminal too.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run_worker(args: WorkerArgs, database_url: Option<String>) -> ExitCode {
    let worker = match worker_from(&args) {
        Ok(worker) => match database_url {
            Some(url) => worker.database_url(url),
            None => worker,
        },
        Err(e) => {
            eprintln!("error: {}", e.report());
            return exit_code(toosimple_core::EXIT_CRASHED);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code(toosimple_core::EXIT_CRASHED);
        }
    };
    let shutdown = worker.shutdown_handle();
    #[cfg(unix)]
    let reload = match args.reload.then(crate::reload::own_binary).transpose() {
        Ok(binary) => binary,
        Err(e) => {
            eprintln!("error: --reload cannot find this program's own file: {e}");
            return exit_code(toosimple_core::EXIT_CRASHED);
        }
    };
    #[cfg(unix)]
    let changed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    #[cfg(unix)]
    let watch = (reload.clone(), changed.clone());
    let exit = runtime.block_on(async move {
        #[cfg(unix)]
        if let (Some(binary), changed) = watch {
            crate::reload::watch(binary, shutdown.clone(), changed);
        }
        tokio::spawn(crate::signals::forward(shutdown));
        worker.run_async().await
    });
    // Sync tasks abandoned at termination must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    #[cfg(unix)]
    if let Some(binary) = reload
        && exit == crate::worker::Exit::Stopped
        && changed.load(std::sync::atomic::Ordering::SeqCst)
    {
        let error = crate::reload::exec_again(&binary);
        eprintln!("error: --reload cannot start {}: {error}", binary.display());
        return exit_code(toosimple_core::EXIT_CRASHED);
    }
    exit_code(exit.code())
}

#[cfg(unix)]
fn run_cluster(args: ClusterArgs, database_url: Option<String>) -> ExitCode {
    let program = match std::env::current_exe() {
        Ok(program) => program,
        Err(e) => {
            eprintln!("error: cannot find this program's own file to start its workers: {e}");
            return exit_code(toosimple_core::EXIT_CRASHED);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit_code(toosimple_core::EXIT_CRASHED);
        }
    };
    let cluster = crate::cluster::Cluster::new(
        usize::try_from(args.processes).unwrap_or(usize::MAX),
        program,
        &args.worker.label,
    )
    .worker_args(args.worker.child_args())
    .database_url(database_url)
    .max_tasks(args.worker.max_tasks)
    .max_memory(args.max_memory)
    .metrics_bind(args.worker.metrics_bind)
    .backoff(crate::cluster::Backoff {
        first: args.restart_delay,
        ..crate::cluster::Backoff::default()
    });
    exit_code(runtime.block_on(cluster.run()).code())
}

fn worker_from(args: &WorkerArgs) -> Result<Worker, Error> {
    let mut worker = Worker::new()
        .tick(args.tick)
        .label(&args.label)
        .heartbeat_timeout(args.heartbeat_timeout)
        .schedules(!args.no_schedules)
        .mode(if args.once {
            RunMode::Once
        } else if args.until_done {
            RunMode::UntilDone
        } else {
            RunMode::Forever
        });
    if !args.queue.is_empty() {
        worker = worker
            .queues(args.queue.iter().cloned())
            .in_order(args.in_order);
    } else if !args.exclude_queue.is_empty() {
        worker = worker.exclude_queues(args.exclude_queue.iter().cloned());
    }
    if let Some(slots) = args.concurrency {
        worker = worker.concurrency(slots);
    }
    if let Some(rows) = args.claim_ahead {
        worker = worker.claim_ahead(rows);
    }
    if let Some(hook) = args.error_hook {
        worker = worker.error_hook(hook);
    }
    if let Some(ttl) = args.result_ttl {
        worker = worker.result_ttl(ttl);
    }
    if let Some(n) = args.save_limit {
        worker = worker.save_limit(n);
    }
    if let Some(tasks) = args.max_tasks {
        worker = worker.max_tasks(tasks);
    }
    if let Some(addr) = args.metrics_bind {
        worker = worker.metrics_bind(addr);
    }
    if let Some(cluster) = &args.cluster {
        worker = worker.in_cluster(cluster.clone(), args.cluster_restarts);
    }
    Ok(worker)
}

fn run_command(command: Command, db: &Database) -> Result<(), Failure> {
    match command {
        Command::Worker(_) => unreachable!("handled by run_worker"),
        #[cfg(unix)]
        Command::Cluster(_) => unreachable!("handled by run_cluster"),
        #[cfg(feature = "admin")]
        Command::Admin { .. } => unreachable!("handled by admin::run"),
        Command::Migrate => {
            let store = db.create()?;
            if store.created() {
                out!("created a new database at {}", store.location());
            }
            out!("migrations applied to {}", store.location());
        }
        Command::Status { json, all } => status(&db.existing()?, json, all)?,
        Command::Enqueue {
            task,
            args,
            due,
            options,
        } => {
            let store = db.create()?;
            let args: serde_json::Value =
                serde_json::from_str(&args).map_err(|source| Error::InvalidOption {
                    option: "ARGS".to_string(),
                    reason: format!("not valid JSON: {source}"),
                })?;
            if !args.is_object() {
                return Err(Failure::Error(Error::InvalidOption {
                    option: "ARGS".to_string(),
                    reason: "must be a JSON object keyed by parameter name, e.g. '{\"a\": 1}'"
                        .to_string(),
                }));
            }
            // Refused now rather than stored and found `Invalid` by a worker later.
            toosimple_core::find_task(&task)?.check_args(&args)?;
            let handle =
                toosimple_core::enqueue_by_name_with(&store, &task, args, &options.options(due))?;
            let exec = handle.exec()?;
            let duplicate = if handle.is_duplicate() {
                " (a duplicate of a pending unique execution)"
            } else {
                ""
            };
            out!(
                "enqueued {task} as #{} ({}){duplicate}",
                exec.id,
                exec.state
            );
        }
        Command::Requeue { id } => {
            let store = db.existing()?;
            let handle = TaskExec::requeue_in(&store, id)?;
            out!("requeued #{id} as #{}", handle.id());
        }
        Command::Show { id, json } => {
            let exec = TaskExec::get_in(&db.existing()?, id)?;
            show(&exec, json)?;
        }
        Command::Cancel { id } => {
            let store = db.existing()?;
            match TaskExec::cancel_in(&store, id)? {
                Cancellation::Cancelled => out!("cancelled #{id}"),
                Cancellation::Requested => out!(
                    "cancel requested for #{id}: it is running; its worker stops it within a \
                     heartbeat and records it cancelled"
                ),
                Cancellation::Finished(state) => {
                    return Err(Failure::Refused(format!(
                        "cannot cancel #{id}: it has already finished ({state}); only sleeping, \
                         queued or running executions can be cancelled"
                    )));
                }
            }
        }
        Command::Purge { older_than, state } => {
            let store = db.existing()?;
            let before = purge_cutoff(Utc::now(), older_than);
            let deleted = TaskExec::purge_in(&store, before, &state)?;
            out!(
                "deleted {deleted} finished execution(s) older than {}",
                age_text(older_than)
            );
        }
        Command::Tasks => tasks()?,
        Command::Schedules { json } => schedules(&db.existing()?, json)?,
        Command::RunSchedule { name } => {
            let store = db.create()?;
            let handle = toosimple_core::run_schedule(&store, &name)?;
            out!("enqueued schedule {name} as #{}", handle.id());
        }
        Command::Stop {
            labels,
            all: _,
            terminate,
            wait,
        } => control::stop(&db.existing()?, &labels, terminate, wait)?,
        Command::Schedule(command) => {
            let store = match &command {
                schedule::ScheduleCommand::Add(_) => db.create()?,
                _ => db.existing()?,
            };
            schedule::run(&store, command)?
        }
        Command::Flow(command) => flow::run(&db.existing()?, command)?,
        Command::Queue(command) => {
            let store = match &command {
                queue::QueueCommand::List { .. } => db.existing()?,
                _ => db.create()?,
            };
            queue::run(&store, command)?
        }
        Command::Ping { label, timeout } => control::ping(&db.existing()?, &label, timeout)?,
        Command::Monitor { refresh } => {
            crate::monitor::run(&db.existing()?, refresh).map_err(Failure::Stdout)?
        }
    }
    Ok(())
}

/// An age as `purge` was given it, in words: "7 days", not "604800s".
fn age_text(age: Duration) -> String {
    let seconds = age.as_secs();
    let (count, unit) = [("day", 86_400), ("hour", 3_600), ("minute", 60)]
        .into_iter()
        .find(|&(_, size)| seconds >= size && seconds.is_multiple_of(size))
        .map_or((seconds, "second"), |(unit, size)| (seconds / size, unit));
    format!("{count} {unit}{}", if count == 1 { "" } else { "s" })
}

/// How long `status` keeps listing a stopped worker: a deployment's restarts add a row each,
/// and years of them would bury the live ones.
const RECENTLY_STOPPED: chrono::TimeDelta = chrono::TimeDelta::hours(1);

fn status(store: &Store, json: bool, all: bool) -> Result<(), Failure> {
    let now = Utc::now();
    let crate::status::Status {
        counts,
        mut workers,
        unknown,
        running,
        running_execs,
    } = crate::status::Status::read(store, now)?;
    let listed = workers.len();
    if !all {
        workers.retain(|w| w.stopped.is_none_or(|at| at >= now - RECENTLY_STOPPED));
    }
    let hidden = listed - workers.len();
    if json {
        let workers: Vec<serde_json::Value> = workers
            .iter()
            .map(|w| {
                let mut value = serde_json::to_value(w).unwrap_or_default();
                value["state"] = serde_json::json!(w.state_at(now));
                value["running"] = serde_json::json!(
                    running
                        .iter()
                        .find(|(label, _)| *label == w.label)
                        .map_or(0, |(_, n)| *n)
                );
                value
            })
            .collect();
        let out = serde_json::json!({
            "database": store.url(),
            "counts": counts.per_queue,
            "per_state": counts.per_state,
            "unknown_to_online_workers": unknown,
            "workers": workers,
            "running": running_execs,
        });
        out!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    out!("database: {}", store.url());
    out!();
    out!("{:<20} {:<12} {:>8}", "queue", "state", "count");
    if counts.per_queue.is_empty() {
        out!("(no executions)");
    }
    for count in &counts.per_queue {
        out!(
            "{:<20} {:<12} {:>8}",
            count.queue,
            count.state.as_str(),
            count.shown()
        );
    }
    if counts.any_approximate() {
        // An estimate must not pass for a count: said under the table.
        out!(
            "(≈: an estimate; a state with more than {} executions is not counted row by row: its total comes from the database's statistics, its split per queue from its newest {})",
            counts.exact_up_to,
            counts.exact_up_to
        );
    }
    if !unknown.is_empty() {
        // Queued rows of tasks no online worker links stay queued (a deploy rolling out
        // needs them to), but nothing runs them: said, so that they are not missed.
        out!();
        out!(
            "queued, but unknown to every online worker (a worker that links the task runs them):"
        );
        out!("{:<28} {:<20} {:>8}", "task", "queue", "count");
        for TaskCount { task, queue, count } in &unknown {
            out!("{task:<28} {queue:<20} {count:>8}");
        }
    }
    if !running_execs.is_empty() {
        out!();
        out!("{:<8} {:<28} {:<24} progress", "running", "task", "worker");
        for exec in &running_execs {
            let progress = exec
                .progress
                .as_ref()
                .map_or("-".to_string(), |p| p.to_string());
            let cancel = if exec.cancel_requested.is_some() {
                " (cancel requested)"
            } else {
                ""
            };
            out!(
                "{:<8} {:<28} {:<24} {progress}{cancel}",
                format!("#{}", exec.id),
                exec.task_name,
                exec.worker.as_deref().unwrap_or("-"),
            );
        }
    }
    out!();
    out!(
        "{:<24} {:<11} {:<26} {:>7} {:>8} queues",
        "worker",
        "state",
        "last tick",
        "running",
        "handled"
    );
    if workers.is_empty() && hidden == 0 {
        out!("(no workers)");
    }
    for w in &workers {
        let queues = if !w.queues.is_empty() {
            w.queues.join(",")
        } else if !w.excluded_queues.is_empty() {
            format!("all but {}", w.excluded_queues.join(","))
        } else {
            "all".to_string()
        };
        let runs = running
            .iter()
            .find(|(label, _)| *label == w.label)
            .map_or(0, |(_, n)| *n);
        let restarts = match (&w.cluster, w.restarts) {
            (Some(cluster), n) => format!(" (cluster {cluster}, restarted {n}×)"),
            (None, _) => String::new(),
        };
        out!(
            "{:<24} {:<11} {:<26} {runs:>7} {:>8} {queues}{restarts}",
            w.label,
            w.state_at(now).as_str(),
            w.last_tick.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
            w.handled,
        );
    }
    if hidden > 0 {
        out!(
            "({hidden} worker{} stopped over an hour ago not shown: `status --all` lists every worker)",
            if hidden == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// `show ID`: one execution, as text or JSON.
fn show(exec: &TaskExec, json: bool) -> Result<(), Failure> {
    if json {
        out!("{}", serde_json::to_string_pretty(exec).unwrap_or_default());
        return Ok(());
    }
    let time = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or("-".to_string(), |t| {
            t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
        })
    };
    out!("#{} {} ({})", exec.id, exec.task_name, exec.state);
    out!("queue:     {} (priority {})", exec.queue, exec.priority);
    out!("args:      {}", exec.args);
    out!("due:       {}", time(Some(exec.due)));
    out!("started:   {}", time(exec.started));
    out!("finished:  {}", time(exec.finished));
    if let Some(worker) = &exec.worker {
        out!("worker:    {worker}");
    }
    if let Some(progress) = &exec.progress {
        out!("progress:  {progress}");
    }
    if exec.state == State::Processing
        && let Some(at) = exec.cancel_requested
    {
        out!("cancel requested at {}", time(Some(at)));
    }
    if let Some(result) = &exec.result {
        out!("result:    {result}");
    }
    if let Some(error) = &exec.error {
        out!("error:     {error}");
    }
    if let Some(next) = exec.replaced_by {
        out!("replaced by #{next}");
    }
    Ok(())
}

fn schedules(store: &Store, json: bool) -> Result<(), Failure> {
    let rows = toosimple_core::ScheduleExec::list_in(store)?;
    let now = Utc::now();
    let registered = toosimple_core::schedules();
    let mut listed = Vec::new();
    for def in &registered {
        let row = rows.iter().find(|r| r.name == def.name());
        let last_task_state = match row.and_then(|r| r.last_task) {
            Some(id) => TaskExec::get_in(store, id).ok().map(|e| e.state),
            None => None,
        };
        listed.push(serde_json::json!({
            "name": def.name(),
            "task": def.task(),
            "cron": def.cron(),
            "description": def.describe(),
            "tz": def.tz(),
            "catch_up": def.catch_up(),
            // Until its task is first enqueued, the row's `last_due` is only the time the
            // schedule was registered (where catching up starts), not an occurrence.
            "last_due": row.filter(|r| r.last_task.is_some()).and_then(|r| r.last_due),
            "next_due": def.next_due(now),
            "last_task": row.and_then(|r| r.last_task),
            "last_task_state": last_task_state,
            "state": row.map(|r| r.state.as_str()),
        }));
    }
    for row in rows
        .iter()
        .filter(|r| !registered.iter().any(|d| d.name() == r.name))
    {
        listed.push(serde_json::json!({
            "name": row.name, "state": row.state.as_str(), "last_due": row.last_due,
            "last_task": row.last_task,
        }));
    }
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&listed).unwrap_or_default()
        );
        return Ok(());
    }
    out!(
        "{:<20} {:<18} {:<14} {:<22} {:<22} {:<11} description",
        "schedule",
        "cron",
        "tz",
        "last due",
        "next due",
        "last task"
    );
    if listed.is_empty() {
        out!(
            "(no schedules: none is linked into this binary; a #[schedule] in a library crate needs `use that_crate as _;` in main.rs)"
        );
    }
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map_or("-".to_string(), |t| {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            })
    };
    for s in &listed {
        out!(
            "{:<20} {:<18} {:<14} {:<22} {:<22} {:<11} {}",
            s["name"].as_str().unwrap_or("-"),
            s["cron"].as_str().unwrap_or("-"),
            s["tz"].as_str().unwrap_or("-"),
            if s["last_task"].is_null() && s["last_due"].is_null() {
                "never".to_string()
            } else {
                time(&s["last_due"])
            },
            time(&s["next_due"]),
            s["last_task_state"].as_str().unwrap_or("-"),
            s["description"]
                .as_str()
                .unwrap_or("(not registered: invalid)"),
        );
    }
    Ok(())
}

fn tasks() -> Result<(), Failure> {
    let tasks = toosimple_core::tasks()?;
    if tasks.is_empty() {
        return Err(Error::NoTasks.into());
    }
    out!(
        "{:<28} {:<12} {:>8} {:>7} {:>11} {:>6} {:>7} {:<16} defined at",
        "task",
        "queue",
        "priority",
        "retries",
        "retry_delay",
        "unique",
        "timeout",
        "hook"
    );
    for t in tasks {
        out!(
            "{:<28} {:<12} {:>8} {:>7} {:>10}s {:>6} {:>7} {:<16} {}",
            t.name(),
            t.queue(),
            t.priority(),
            t.retries(),
            t.retry_delay(),
            if t.is_unique() { "yes" } else { "no" },
            t.timeout().map_or("-".to_string(), |s| format!("{s}s")),
            t.hook().map_or("-", |h| h.name()),
            t.location()
        );
    }
    Ok(())
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use values::age as parse_age;

    fn parse(argv: &[&str]) -> Result<Parsed, clap::Error> {
        Cli::new("app", "0.0.0").try_parse_from(argv)
    }

    fn worker_args(argv: &[&str]) -> WorkerArgs {
        match parse(argv) {
            Ok(Parsed::Toosimple(Builtin { manage })) => match manage.command {
                Command::Worker(args) => args,
                other => panic!("{argv:?}: {other:?}"),
            },
            other => panic!("{argv:?}: {other:?}"),
        }
    }

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_age("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_age("7").unwrap_err().contains("no unit"));
        assert!(parse_age("7x").unwrap_err().contains("unknown time unit"));
    }

    #[test]
    fn ages_are_said_in_words() {
        assert_eq!(age_text(parse_age("7d").unwrap()), "7 days");
        assert_eq!(age_text(parse_age("2w").unwrap()), "14 days");
        assert_eq!(age_text(parse_age("1h").unwrap()), "1 hour");
        assert_eq!(age_text(parse_age("90m").unwrap()), "90 minutes");
        assert_eq!(age_text(parse_age("45s").unwrap()), "45 seconds");
        assert_eq!(age_text(parse_age("0s").unwrap()), "0 seconds");
    }

    /// Finding: a count that fits a `u64` but not once multiplied by its unit overflowed (a
    /// panic in debug builds, a wrapped, much shorter age in release builds: purge deleted
    /// recent executions).
    #[test]
    fn an_age_too_long_for_a_duration_is_an_error_not_an_overflow() {
        let error = parse_age("40000000000000w").unwrap_err();
        assert!(error.contains("longer than a duration holds"), "{error}");
        let error = parse(&["app", "purge", "--older-than", "18446744073709551615m"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("longer than a duration holds"), "{error}");
    }

    /// Finding: an age reaching back past chrono's first date (`--older-than 100000000d`,
    /// 273,790 years) panicked when subtracted from now.
    #[test]
    fn an_age_older_than_chronos_range_purges_before_the_start_of_time() {
        let now = Utc::now();
        let age = parse_age("100000000d").unwrap();
        assert_eq!(purge_cutoff(now, age), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            purge_cutoff(now, Duration::from_secs(3_600)),
            now - chrono::TimeDelta::hours(1)
        );
    }

    #[test]
    fn underscore_aliases_parse() {
        let args = worker_args(&[
            "app",
            "worker",
            "--until_done",
            "--exclude_queue",
            "slow",
            "--no_schedules",
        ]);
        assert!(args.until_done && args.no_schedules);
        assert_eq!(args.exclude_queue, ["slow"]);
        assert!(parse(&["app", "worker", "--once", "--until-done"]).is_err());
        assert!(parse(&["app", "worker", "--queue", "a", "--exclude-queue", "b"]).is_err());
    }

    #[test]
    fn queues_split_on_commas_and_the_flag_repeats() {
        let args = worker_args(&[
            "app",
            "worker",
            "--queue",
            "emails,default",
            "--queue",
            "reports",
        ]);
        assert_eq!(args.queue, ["emails", "default", "reports"]);
        let args = worker_args(&["app", "worker", "--exclude-queue", "slow, big"]);
        assert_eq!(args.exclude_queue, ["slow", "big"]);
        let error = parse(&["app", "worker", "--queue", "emails,,default"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("an empty queue name"), "{error}");
    }

    #[test]
    fn worker_durations_take_units_and_the_timeout_must_exceed_the_tick() {
        let args = worker_args(&["app", "worker", "--tick", "500ms", "--timeout", "2m"]);
        assert_eq!(args.tick, Duration::from_millis(500));
        assert_eq!(args.heartbeat_timeout, Duration::from_secs(120));
        let args = worker_args(&["app", "worker", "--tick", "0.2", "--timeout", "1"]);
        assert_eq!(args.tick, Duration::from_millis(200));
        let defaults = worker_args(&["app", "worker"]);
        assert_eq!(defaults.tick, Duration::from_secs(1));
        assert_eq!(
            defaults.heartbeat_timeout,
            crate::worker::maintenance::heartbeat::DEFAULT_HEARTBEAT_TIMEOUT
        );
        let error = parse(&["app", "worker", "--timeout", "5", "--tick", "10"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(
            error
                .to_string()
                .contains("(--timeout 5s) must be longer than the tick (--tick 10s)"),
            "{error}"
        );
    }

    /// The help is the application's: its name, version and about text, then toosimple's
    /// notes.
    #[test]
    fn help_and_version_are_the_applications() {
        let cli = Cli::new("shop", "2.3.4").about("The shop's back office");
        let mut command = cli.command().clone();
        assert_eq!(command.render_version(), "shop 2.3.4\n");
        let help = command.render_help().to_string();
        assert!(help.starts_with("The shop's back office"), "{help}");
        assert!(
            help.contains("TOOSIMPLE_LOG") && help.contains("77"),
            "{help}"
        );
        // Cargo's empty description keeps the default.
        let help = Cli::new("shop", "1")
            .about("")
            .command()
            .clone()
            .render_help();
        assert!(help.to_string().starts_with(app::DEFAULT_ABOUT), "{help}");
    }

    #[test]
    fn an_applications_subcommand_comes_back_to_it() {
        let cli = Cli::new("shop", "1").subcommand(clap::Command::new("report"));
        match cli.try_parse_from(["shop", "--database-url", "sqlite://x", "report"]) {
            Ok(Parsed::App {
                matches,
                database_url,
            }) => {
                assert_eq!(matches.subcommand_name(), Some("report"));
                assert_eq!(database_url.as_deref(), Some("sqlite://x"));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::new("shop", "1").subcommand(clap::Command::new("report"));
        match cli.try_parse_from(["shop", "migrate"]) {
            Ok(Parsed::Toosimple(builtin)) => assert_eq!(builtin.name(), "migrate"),
            other => panic!("{other:?}"),
        }
    }
}
