//! A chaos run: the database, the worker processes, the fault schedule, the final check.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use toosimple_core::{State, Store, TaskExec, TaskExecFilter};

use crate::check::{Evidence, Findings, check};
use crate::mariadb::PrivateMariadb;
use crate::netns::Partitionable;
use crate::postgres::PrivatePostgres;
use crate::tasks::{DIR_ENV, EFFECTS, ENQUEUED, LABEL_ENV};

/// Set by Ctrl-C (or SIGTERM) on the harness: the run stops its faults and workers and cleans
/// up (server, namespace, tmpfs) instead of leaving them behind.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn interrupted() -> Result<(), String> {
    if INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
        Err("interrupted: faults healed, workers stopped, everything cleaned up".to_string())
    } else {
        Ok(())
    }
}

/// Set in the environment of the processes a run starts, to say which part they play.
pub const ROLE_ENV: &str = "TOOSIMPLE_CHAOS_ROLE";
/// The queue of the run's tasks (so that a user's own database may hold others).
pub const QUEUE: &str = "chaos";

/// Which database a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A SQLite file in the run's folder (on a small tmpfs for the full-disk fault).
    Sqlite,
    /// A private PostgreSQL server started for the run, or `--postgres-url`.
    Postgres,
    /// A private MariaDB server started for the run, or `--mysql-url`.
    Mysql,
}

/// The faults a run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Fault {
    /// `kill -9` of a random worker, restarted at once.
    Kill,
    /// SIGTERM (terminate: running tasks interrupted and replaced), then a restart.
    Term,
    /// SIGINT (a graceful stop: running tasks finish, buffered rows go back), then a restart.
    Int,
    /// SIGSTOP past the heartbeat timeout, then SIGCONT: the worker is rescued while it
    /// sleeps, and its late outcomes must be refused.
    Pause,
    /// The database server (PostgreSQL, MariaDB) stopped, cleanly or by a crash, and started
    /// again.
    Restart,
    /// One worker's link to PostgreSQL cut past the heartbeat timeout, then restored.
    Partition,
    /// Extra processes enqueuing as fast as they can, beside the workers' writes.
    Contention,
    /// SQLite's disk filled to its last byte for a moment.
    DiskFull,
    /// Some tasks outlast their time limit on their first run (part of the workload).
    Slow,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill -9",
            Fault::Term => "SIGTERM",
            Fault::Int => "SIGINT",
            Fault::Pause => "SIGSTOP/SIGCONT",
            Fault::Restart => "database server restart",
            Fault::Partition => "network partition",
            Fault::Contention => "write contention",
            Fault::DiskFull => "full disk",
            Fault::Slow => "slow tasks (time-outs)",
        }
    }

    /// Whether the fault applies to `backend` (and to a server the run does not own).
    fn applies(self, backend: Backend, own_server: bool) -> bool {
        match self {
            Fault::Restart => backend != Backend::Sqlite && own_server,
            Fault::Partition => backend == Backend::Postgres && own_server,
            Fault::DiskFull => backend == Backend::Sqlite,
            _ => true,
        }
    }
}

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// The database.
    pub backend: Backend,
    /// Tasks fed over the fault phase (bursts of contention add more).
    pub tasks: i64,
    /// Worker processes.
    pub workers: usize,
    /// Each worker's concurrency.
    pub concurrency: usize,
    /// The fault phase's length; it runs on until each fault was injected once.
    pub seconds: f64,
    /// The seed of the fault schedule and of the workload.
    pub seed: u64,
    /// The faults to inject (those that apply to the backend).
    pub faults: Vec<Fault>,
    /// The workers' heartbeat timeout, in seconds.
    pub heartbeat_timeout: f64,
    /// The mean time between two faults, in seconds.
    pub fault_every: f64,
    /// How long to wait, after the fault phase, for every task to finish.
    pub drain_timeout: f64,
    /// A PostgreSQL database to run on instead of a private server (restarts and partitions
    /// then need the run's own server and are skipped).
    pub postgres_url: Option<String>,
    /// A MariaDB or MySQL database to run on instead of a private MariaDB server (restarts
    /// then need the run's own server and are skipped).
    pub mysql_url: Option<String>,
    /// Keep the run's folder (ledgers, worker logs) and print where it is.
    pub keep: bool,
}

/// What a run found.
pub struct Report {
    /// The options it ran with.
    pub options: Options,
    /// Faults injected, by kind.
    pub injected: BTreeMap<Fault, usize>,
    /// Faults asked for that do not apply here, with why.
    pub skipped: Vec<String>,
    /// The invariants' findings.
    pub findings: Findings,
    /// Enqueues refused (by a full disk or a restarting server): not acknowledged, not lost.
    pub refused: usize,
    /// Late outcomes refused by fencing, as the workers logged them.
    pub fenced: usize,
    /// Worker processes started in all.
    pub worker_processes: usize,
    /// How long the run took.
    pub elapsed: Duration,
    /// Where its folder is, when kept.
    pub kept: Option<PathBuf>,
}

impl Report {
    /// Whether every invariant held and every fault asked for was injected.
    pub fn passed(&self) -> bool {
        self.findings.violations.is_empty()
            && self
                .options
                .faults
                .iter()
                .all(|f| self.injected.get(f).copied().unwrap_or(0) > 0 || !self.applies(*f))
    }

    fn applies(&self, fault: Fault) -> bool {
        fault.applies(self.options.backend, self.options.postgres_url.is_none())
    }

    /// The report as people read it.
    pub fn text(&self) -> String {
        let f = &self.findings;
        let mut out = String::new();
        let o = &self.options;
        out.push_str(&format!(
            "chaos run on {:?}: {} tasks, {} workers × {} slots, {:.0} s of faults, seed {}\n",
            o.backend, f.tasks, o.workers, o.concurrency, o.seconds, o.seed
        ));
        out.push_str(&format!(
            "  executions {} ({}), worker processes {}, {:.1} s in all\n",
            f.executions,
            f.by_state
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.worker_processes,
            self.elapsed.as_secs_f64()
        ));
        out.push_str("  faults injected:");
        for (fault, n) in &self.injected {
            out.push_str(&format!(" {} ×{n};", fault.name()));
        }
        out.push('\n');
        for skipped in &self.skipped {
            out.push_str(&format!("  not injected: {skipped}\n"));
        }
        out.push_str(&format!(
            "  interrupted {}, retried after a failure or time-out {}, enqueues refused {}, late outcomes refused (fencing) {}\n",
            f.interrupted, f.retried, self.refused, self.fenced
        ));
        out.push_str("  duplicated side effects:");
        if f.duplicates_by_cause.is_empty() {
            out.push_str(" none");
        }
        for (cause, n) in &f.duplicates_by_cause {
            out.push_str(&format!(" {n} {cause};"));
        }
        out.push('\n');
        out.push_str(&format!(
            "  lost {}, double-recorded {}\n",
            f.lost, f.double_recorded
        ));
        for fault in &o.faults {
            if self.applies(*fault) && self.injected.get(fault).copied().unwrap_or(0) == 0 {
                out.push_str(&format!("  NEVER INJECTED: {}\n", fault.name()));
            }
        }
        for violation in &f.violations {
            out.push_str(&format!("  VIOLATION: {violation}\n"));
        }
        if let Some(kept) = &self.kept {
            out.push_str(&format!("  ledgers and logs kept in {}\n", kept.display()));
        }
        out.push_str(if self.passed() {
            "PASSED\n"
        } else {
            "FAILED\n"
        });
        out
    }

    /// The report as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        let f = &self.findings;
        serde_json::json!({
            "backend": format!("{:?}", self.options.backend).to_lowercase(),
            "tasks": f.tasks,
            "executions": f.executions,
            "workers": self.options.workers,
            "seconds": self.options.seconds,
            "seed": self.options.seed,
            "worker_processes": self.worker_processes,
            "faults": self.injected.iter().map(|(k, n)| (k.name().to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "by_state": f.by_state,
            "interrupted": f.interrupted,
            "retried": f.retried,
            "refused": self.refused,
            "fenced": self.fenced,
            "duplicates_by_cause": f.duplicates_by_cause,
            "lost": f.lost,
            "double_recorded": f.double_recorded,
            "violations": f.violations,
            "passed": self.passed(),
            "elapsed_s": self.elapsed.as_secs_f64(),
        })
    }
}

/// A worker process of one slot.
struct WorkerProcess {
    child: Child,
    label: String,
    log: PathBuf,
    /// Whether it logged its start: a process signalled before it listens for signals may
    /// lose a SIGINT (one started with SIGINT ignored, as background jobs of a shell are).
    started: bool,
}

impl WorkerProcess {
    fn has_started(&mut self) -> bool {
        if !self.started {
            self.started =
                std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains("worker started"));
        }
        self.started
    }
}

/// Everything a run holds while it runs.
struct Run {
    options: Options,
    exe: PathBuf,
    dir: PathBuf,
    url: String,
    /// The URL a worker inside the partitionable namespace uses.
    inner_url: Option<String>,
    slots: Vec<WorkerProcess>,
    generations: Vec<usize>,
    logs: Vec<PathBuf>,
    faulted: BTreeSet<String>,
    injected: BTreeMap<Fault, usize>,
    enqueuers: Vec<Child>,
    next_key: i64,
    server: Option<Server>,
    partition: Option<Partitionable>,
    violations: Vec<String>,
    slow: bool,
}

/// The run's own database server, which the restart fault stops and starts.
enum Server {
    Postgres(PrivatePostgres),
    Mariadb(PrivateMariadb),
}

impl Server {
    fn stop_server(&self, mode: &str) -> Result<(), String> {
        match self {
            Server::Postgres(server) => server.stop_server(mode),
            Server::Mariadb(server) => server.stop_server(mode),
        }
    }

    fn start_server(&self) -> Result<(), String> {
        match self {
            Server::Postgres(server) => server.start_server(),
            Server::Mariadb(server) => server.start_server(),
        }
    }
}

/// Runs a chaos run and reports what it found. Errs when it cannot set up (no PostgreSQL
/// server programs, no root for a tmpfs or a namespace, …).
pub fn run(options: Options) -> Result<Report, String> {
    let started = Instant::now();
    // A second handler is refused when runs follow each other in one process: the first stays.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed));
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let folder = tempfile::Builder::new()
        .prefix("toosimple-chaos-")
        .tempdir()
        .map_err(|e| format!("cannot create the run's folder: {e}"))?;
    let dir = folder.path().to_path_buf();
    let own_server = match options.backend {
        Backend::Sqlite => true,
        Backend::Postgres => options.postgres_url.is_none(),
        Backend::Mysql => options.mysql_url.is_none(),
    };
    let mut skipped = Vec::new();
    let mut faults = Vec::new();
    for fault in &options.faults {
        if fault.applies(options.backend, own_server) {
            faults.push(*fault);
        } else {
            skipped.push(format!(
                "{} (not on {:?}{})",
                fault.name(),
                options.backend,
                if options.backend != Backend::Sqlite {
                    " with a server this run does not own"
                } else {
                    ""
                }
            ));
        }
    }
    let wants = |f: Fault| faults.contains(&f);

    // The database, and for SQLite's full disk a tmpfs under it.
    let mut tmpfs = None;
    let mut server = None;
    let mut partition = None;
    let mut inner_url = None;
    let url = match options.backend {
        Backend::Sqlite => {
            let db_dir = dir.join("db");
            std::fs::create_dir(&db_dir).map_err(|e| format!("cannot create {db_dir:?}: {e}"))?;
            if wants(Fault::DiskFull) {
                let size = (64 + options.tasks as u64 * 4 / 1024).to_string() + "m";
                tmpfs = Some(Tmpfs::mount(&db_dir, &size)?);
            }
            format!("sqlite://{}", db_dir.join("chaos.sqlite3").display())
        }
        Backend::Postgres => match &options.postgres_url {
            Some(url) => url.clone(),
            None => {
                if wants(Fault::Partition) {
                    partition = Some(Partitionable::create()?);
                }
                let also: Vec<String> = partition
                    .iter()
                    .map(|p| p.host_address().to_string())
                    .collect();
                let started = PrivatePostgres::start(&also, &["max_connections=200"])?;
                let url = started.create_database("chaos")?;
                if let Some(p) = &partition {
                    inner_url = Some(started.url_via(p.host_address(), "chaos"));
                }
                server = Some(Server::Postgres(started));
                url
            }
        },
        Backend::Mysql => match &options.mysql_url {
            Some(url) => url.clone(),
            None => {
                let started = PrivateMariadb::start()?;
                let url = started.create_database("chaos")?;
                server = Some(Server::Mariadb(started));
                url
            }
        },
    };
    let store = toosimple_core::init(&url).map_err(|e| e.to_string())?;

    let mut run = Run {
        exe,
        dir: dir.clone(),
        url: url.clone(),
        inner_url,
        slots: Vec::new(),
        generations: vec![0; options.workers],
        logs: Vec::new(),
        faulted: BTreeSet::new(),
        injected: BTreeMap::new(),
        enqueuers: Vec::new(),
        next_key: options.tasks,
        server,
        partition,
        violations: Vec::new(),
        slow: wants(Fault::Slow),
        options: Options {
            faults: faults.clone(),
            ..options.clone()
        },
    };
    if run.slow {
        run.injected.insert(Fault::Slow, 0);
    }
    for slot in 0..options.workers {
        let worker = run.spawn_worker(slot)?;
        run.slots.push(worker);
    }
    // The feed runs over most of the fault phase, so that faults find tasks running.
    let feed = run.spawn_enqueuer(0, options.tasks, options.seconds * 0.8)?;
    run.enqueuers.push(feed);

    let outcome = run.fault_phase(&faults, tmpfs.as_ref());
    let outcome = outcome.and_then(|_| run.drain(&store));
    // Stop the workers whatever happened, so that the table holds still for the check.
    run.stop_workers();
    outcome?;

    let evidence = run.evidence(&store)?;
    let mut findings = check(&evidence);
    findings.violations.splice(0..0, run.violations.drain(..));
    if run.slow {
        let slow = (0..run.next_key)
            .filter(|&k| {
                crate::enqueuer::plan(options.seed, k, true).0 == crate::tasks::Kind::SlowOnce
            })
            .count();
        run.injected.insert(Fault::Slow, slow);
    }
    let fenced = run
        .logs
        .iter()
        .map(|log| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .matches("dropped the outcome of executions another worker had rescued")
                .count()
        })
        .sum();
    if options.keep {
        // The table as the check saw it, for reading a failure after the server is gone.
        let lines: String = evidence
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "args": r.args, "state": r.state.as_str(), "worker": r.worker,
                    "replaced_by": r.replaced_by, "retries": r.retries, "error": r.error,
                    "created": r.created, "started": r.started, "finished": r.finished,
                })
                .to_string()
                    + "\n"
            })
            .collect();
        let _ = std::fs::write(dir.join("rows.jsonl"), lines);
    }
    let kept = options.keep.then(|| folder.keep());
    drop(tmpfs);
    Ok(Report {
        options: run.options.clone(),
        injected: run.injected.clone(),
        skipped,
        refused: evidence_refused(&evidence),
        findings,
        fenced,
        worker_processes: run.logs.len(),
        elapsed: started.elapsed(),
        kept,
    })
}

fn evidence_refused(evidence: &Evidence) -> usize {
    evidence.refused.len()
}

impl Run {
    /// Starts slot `slot`'s next worker process (inside the namespace for slot 0 when the run
    /// partitions).
    fn spawn_worker(&mut self, slot: usize) -> Result<WorkerProcess, String> {
        let generation = self.generations[slot];
        self.generations[slot] += 1;
        let label = format!("chaos-{slot}-{generation}");
        let log = self.dir.join(format!("{label}.log"));
        let stderr = File::create(&log).map_err(|e| format!("cannot create {log:?}: {e}"))?;
        let (mut command, url) = match (&self.partition, &self.inner_url) {
            (Some(p), Some(inner)) if slot == 0 => (p.command(&self.exe), inner.clone()),
            _ => (Command::new(&self.exe), self.url.clone()),
        };
        command
            .args([
                "worker", "--queue", QUEUE, "--tick", "0.2", "--label", &label,
            ])
            .args(["--timeout", &self.options.heartbeat_timeout.to_string()])
            .args(["--concurrency", &self.options.concurrency.to_string()])
            .env(ROLE_ENV, "app")
            .env("TOOSIMPLE_DATABASE_URL", url)
            .env(DIR_ENV, &self.dir)
            .env(LABEL_ENV, &label)
            .env("TOOSIMPLE_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        self.logs.push(log.clone());
        Ok(WorkerProcess {
            child,
            label,
            log,
            started: false,
        })
    }

    /// Starts an enqueuing process for keys `from..from + count` over `seconds`.
    fn spawn_enqueuer(&self, from: i64, count: i64, seconds: f64) -> Result<Child, String> {
        Command::new(&self.exe)
            .args(["enqueue", "--from", &from.to_string()])
            .args(["--count", &count.to_string()])
            .args(["--seconds", &seconds.to_string()])
            .args(["--seed", &self.options.seed.to_string()])
            .args(if self.slow { &["--slow"][..] } else { &[] })
            .env(ROLE_ENV, "enqueue")
            .env("TOOSIMPLE_DATABASE_URL", &self.url)
            .env(DIR_ENV, &self.dir)
            .env("TOOSIMPLE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start an enqueuer: {e}"))
    }

    fn signal(&self, slot: usize, name: &str) {
        let _ = Command::new("kill")
            .args([
                &format!("-{name}"),
                &self.slots[slot].child.id().to_string(),
            ])
            .status();
    }

    /// Waits up to `timeout` for slot `slot`'s process to exit.
    fn reap(&mut self, slot: usize, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.slots[slot].child.try_wait() {
                Ok(Some(status)) => return Some(status.code().unwrap_or(-1)),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return None,
            }
        }
    }

    /// Sends `signal` to slot `slot`; the fault loop restarts it once it has exited.
    fn stop(&mut self, slot: usize, signal: &str, faulted: bool) -> Stopping {
        if faulted {
            self.faulted.insert(self.slots[slot].label.clone());
        }
        self.signal(slot, signal);
        Stopping {
            slot,
            signal: signal.to_string(),
            deadline: Instant::now() + Duration::from_secs(60),
        }
    }

    /// Restarts each stopping slot whose process has exited; kills, as a violation, one that
    /// outlived its deadline. Returns the slots still stopping.
    fn reap_stopped(&mut self, stopping: Vec<Stopping>) -> Result<Vec<Stopping>, String> {
        let mut left = Vec::new();
        for stop in stopping {
            match self.slots[stop.slot].child.try_wait() {
                Ok(Some(_)) => {}
                Ok(None) if Instant::now() < stop.deadline => {
                    left.push(stop);
                    continue;
                }
                _ => {
                    let worker = &self.slots[stop.slot];
                    self.violations.push(format!(
                        "worker {} did not exit within 60 s of SIG{}; see {}",
                        worker.label,
                        stop.signal,
                        worker.log.display()
                    ));
                    self.faulted.insert(worker.label.clone());
                    self.signal(stop.slot, "KILL");
                    self.reap(stop.slot, Duration::from_secs(10));
                }
            }
            self.slots[stop.slot] = self.spawn_worker(stop.slot)?;
        }
        Ok(left)
    }

    /// Injects faults for the run's seconds (and until each kind was injected once), healing
    /// each timed fault when its time is up; restarts any worker that exits by itself, as a
    /// violation.
    fn fault_phase(&mut self, faults: &[Fault], tmpfs: Option<&Tmpfs>) -> Result<(), String> {
        let mut rng = StdRng::seed_from_u64(self.options.seed);
        let mut first_round: Vec<Fault> = faults
            .iter()
            .copied()
            .filter(|f| *f != Fault::Slow)
            .collect();
        first_round.shuffle(&mut rng);
        let kinds = first_round.clone();
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(self.options.seconds);
        let hold = Duration::from_secs_f64(self.options.heartbeat_timeout + 3.0);
        let mut next = start + Duration::from_millis(500);
        let mut busy: BTreeSet<usize> = BTreeSet::new();
        let mut heals: Vec<(Instant, Heal)> = Vec::new();
        let mut stopping: Vec<Stopping> = Vec::new();
        loop {
            let now = Instant::now();
            let stop = interrupted();
            let (due, later): (Vec<_>, Vec<_>) = heals
                .drain(..)
                .partition(|(at, _)| *at <= now || stop.is_err());
            heals = later;
            for (_, heal) in due {
                match heal {
                    Heal::Resume(slot) => self.signal(slot, "CONT"),
                    Heal::Link => {
                        self.partition
                            .as_ref()
                            .expect("a partition was made")
                            .set_link(true)?;
                    }
                    Heal::Disk(filler) => {
                        std::fs::remove_file(&filler)
                            .map_err(|e| format!("cannot free the disk: {e}"))?;
                    }
                }
            }
            stop.clone()?;
            stopping = self.reap_stopped(stopping)?;
            busy.retain(|slot| {
                heals.iter().any(|(_, h)| h.holds(*slot))
                    || stopping.iter().any(|s| s.slot == *slot)
            });
            self.restart_crashed(&busy)?;
            if now >= end && first_round.is_empty() {
                if heals.is_empty() && stopping.is_empty() {
                    return Ok(());
                }
            } else if now >= next && !kinds.is_empty() {
                let fault = first_round
                    .pop()
                    .unwrap_or_else(|| *kinds.choose(&mut rng).expect("some kinds"));
                let free: Vec<usize> = (0..self.slots.len())
                    .filter(|s| !busy.contains(s))
                    .filter(|s| self.slots[*s].has_started())
                    .collect();
                let victim = free.choose(&mut rng).copied();
                let injected = match (fault, victim) {
                    (Fault::Kill | Fault::Term | Fault::Int, Some(slot)) => {
                        let (signal, faulted) = match fault {
                            Fault::Kill => ("KILL", true),
                            Fault::Term => ("TERM", true),
                            _ => ("INT", false),
                        };
                        stopping.push(self.stop(slot, signal, faulted));
                        busy.insert(slot);
                        true
                    }
                    (Fault::Pause, Some(slot)) => {
                        self.faulted.insert(self.slots[slot].label.clone());
                        self.signal(slot, "STOP");
                        busy.insert(slot);
                        heals.push((now + hold, Heal::Resume(slot)));
                        true
                    }
                    (Fault::Partition, _) if !busy.contains(&0) => {
                        self.faulted.insert(self.slots[0].label.clone());
                        self.partition
                            .as_ref()
                            .expect("a partition was made")
                            .set_link(false)?;
                        busy.insert(0);
                        heals.push((now + hold, Heal::Link));
                        true
                    }
                    (Fault::Restart, _) => {
                        let server = self.server.as_ref().expect("a private server");
                        let mode = if rng.random_bool(0.5) {
                            "fast"
                        } else {
                            "immediate"
                        };
                        server.stop_server(mode)?;
                        std::thread::sleep(Duration::from_millis(rng.random_range(100..1500)));
                        server.start_server()?;
                        true
                    }
                    (Fault::Contention, _) => {
                        for _ in 0..2 {
                            let from = self.next_key;
                            self.next_key += 100;
                            let burst = self.spawn_enqueuer(from, 100, 0.0)?;
                            self.enqueuers.push(burst);
                        }
                        true
                    }
                    (Fault::DiskFull, _)
                        if !heals.iter().any(|(_, h)| matches!(h, Heal::Disk(_))) =>
                    {
                        let tmpfs = tmpfs.expect("a tmpfs for the full disk");
                        let filler = tmpfs.fill()?;
                        heals.push((now + Duration::from_millis(1500), Heal::Disk(filler)));
                        true
                    }
                    _ => false,
                };
                if injected {
                    *self.injected.entry(fault).or_default() += 1;
                    // A timeline to read beside the workers' logs when a run fails.
                    let target = match (fault, victim) {
                        (Fault::Partition, _) => self.slots[0].label.clone(),
                        (Fault::Kill | Fault::Term | Fault::Int | Fault::Pause, Some(slot)) => {
                            self.slots[slot].label.clone()
                        }
                        _ => String::new(),
                    };
                    let _ = crate::tasks::append_synced(
                        &self.dir.join("faults.log"),
                        &format!(
                            "{} {} {target}\n",
                            chrono::Utc::now().to_rfc3339(),
                            fault.name()
                        ),
                    );
                } else if !first_round.contains(&fault) {
                    // Its target is busy with another fault: try it again later.
                    first_round.insert(0, fault);
                }
                let mean = self.options.fault_every.max(0.05);
                next = Instant::now()
                    + Duration::from_secs_f64(rng.random_range(mean * 0.5..mean * 1.5));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts every worker (not stopped by a fault) that exited by itself: a violation,
    /// since a worker outlives its database's faults.
    fn restart_crashed(&mut self, busy: &BTreeSet<usize>) -> Result<(), String> {
        for slot in 0..self.slots.len() {
            if busy.contains(&slot) {
                continue;
            }
            if let Ok(Some(status)) = self.slots[slot].child.try_wait() {
                let worker = &self.slots[slot];
                self.violations.push(format!(
                    "worker {} exited by itself ({status}); see {}",
                    worker.label,
                    worker.log.display()
                ));
                self.faulted.insert(worker.label.clone());
                self.slots[slot] = self.spawn_worker(slot)?;
            }
        }
        Ok(())
    }

    /// Waits for the enqueuers, then for every task of the run to finish.
    fn drain(&mut self, store: &Store) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs_f64(self.options.drain_timeout);
        for mut enqueuer in self.enqueuers.drain(..) {
            loop {
                match enqueuer.try_wait() {
                    Ok(Some(status)) if status.success() => break,
                    Ok(Some(status)) => {
                        self.violations
                            .push(format!("an enqueuer failed ({status})"));
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        interrupted()?;
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => return Err("the enqueuers did not finish in time".to_string()),
                }
            }
        }
        let busy = BTreeSet::new();
        loop {
            interrupted()?;
            self.restart_crashed(&busy)?;
            let pending: i64 = TaskExec::counts_in(store)
                .map_err(|e| e.to_string())?
                .iter()
                .filter(|c| {
                    c.queue == QUEUE
                        && matches!(c.state, State::Queued | State::Sleeping | State::Processing)
                })
                .map(|c| c.count)
                .sum();
            if pending == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.violations.push(format!(
                    "{pending} executions still pending {:.0} s after the faults stopped",
                    self.options.drain_timeout
                ));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops every worker gracefully (killing those that will not stop).
    fn stop_workers(&mut self) {
        for slot in 0..self.slots.len() {
            self.signal(slot, "CONT");
            self.signal(slot, "INT");
        }
        for slot in 0..self.slots.len() {
            if self.reap(slot, Duration::from_secs(60)).is_none() {
                let label = self.slots[slot].label.clone();
                self.violations
                    .push(format!("worker {label} did not stop within 60 s of SIGINT"));
                self.signal(slot, "KILL");
                self.reap(slot, Duration::from_secs(10));
            }
        }
        if let Some(p) = &self.partition {
            let _ = p.set_link(true);
        }
    }

    /// Reads the ledgers and the run's rows.
    fn evidence(&self, store: &Store) -> Result<Evidence, String> {
        let mut rows = Vec::new();
        let mut before = None;
        loop {
            let mut filter = TaskExecFilter::default().queue(QUEUE).limit(5_000);
            if let Some(id) = before {
                filter = filter.before_id(id);
            }
            let page = TaskExec::list_in(store, &filter).map_err(|e| e.to_string())?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            rows.extend(page);
        }
        let mut acknowledged = BTreeSet::new();
        let mut refused = BTreeSet::new();
        for line in read_lines(&self.dir.join(ENQUEUED))? {
            let mut words = line.splitn(3, ' ');
            let (mark, key) = (words.next(), words.next().and_then(|k| k.parse().ok()));
            match (mark, key) {
                (Some("E"), Some(key)) => acknowledged.insert(key),
                (Some("R"), Some(key)) => refused.insert(key),
                _ => return Err(format!("unreadable enqueue ledger line {line:?}")),
            };
        }
        let mut effects: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for line in read_lines(&self.dir.join(EFFECTS))? {
            let (key, label) = line
                .split_once(' ')
                .and_then(|(k, l)| Some((k.parse().ok()?, l.to_string())))
                .ok_or_else(|| format!("unreadable effects ledger line {line:?}"))?;
            effects.entry(key).or_default().push(label);
        }
        Ok(Evidence {
            rows,
            acknowledged,
            refused,
            effects,
            faulted: self.faulted.clone(),
        })
    }
}

/// What ends a timed fault.
enum Heal {
    Resume(usize),
    Link,
    Disk(PathBuf),
}

impl Heal {
    /// Whether the fault it ends holds worker slot `slot`.
    fn holds(&self, slot: usize) -> bool {
        match self {
            Heal::Resume(paused) => *paused == slot,
            Heal::Link => slot == 0,
            Heal::Disk(_) => false,
        }
    }
}

/// A worker asked to stop, restarted once it has exited.
struct Stopping {
    slot: usize,
    signal: String,
    deadline: Instant,
}

fn read_lines(path: &Path) -> Result<Vec<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// A tmpfs mounted on a folder, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cannot mount a tmpfs for the full-disk fault (needs root; or leave out disk-full): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a file until no byte is left; returns its path.
    fn fill(&self) -> Result<PathBuf, String> {
        use std::io::Write;
        let path = self.dir.join("filler");
        let mut file = File::create(&path).map_err(|e| format!("cannot fill the disk: {e}"))?;
        let block = [0u8; 65536];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&[0u8]).is_ok() {}
        Ok(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
