//! `app cluster`: a supervisor running N worker processes of the application's own binary,
//! as django-q's sentinel "spawns all processes, checks the health of all workers,
//! reincarnating processes if any fail".
//!
//! Each child is `app worker` with the cluster's worker flags and a label of its own,
//! `{label}.{n}`, kept across its restarts: a child restarted after `kill -9` registers under
//! its old label, which interrupts (and replaces) what its predecessor left running at once,
//! instead of after a heartbeat timeout. A child that dies (killed, crashed) is restarted
//! after a delay that doubles with each death in a row (logged, and counted in its status
//! row's `restarts`); one that exits by itself (`--until-done`, `--once`, a remote `stop`) is
//! not, unless the cluster recycles it: after `--max-tasks` tasks (the child's own flag: it
//! stops claiming and exits 0) or above `--max-memory` (the supervisor asks it to stop
//! gracefully).
//!
//! Signals follow the worker's semantics, forwarded to every child: a first SIGINT stops them
//! gracefully (exit 0), SIGTERM or a second SIGINT terminates them (exit 77). Children run in
//! a process group of their own, so that a Ctrl-C on the terminal reaches them once, through
//! the supervisor, and (on Linux) they are sent SIGTERM if the supervisor itself dies.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;
use toosimple_core::{EXIT_STOPPED, EXIT_TERMINATED, Store};

use crate::worker::Exit;

/// How the cluster waits before restarting a child that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first restart of a run of deaths.
    pub first: Duration,
    /// The longest wait: the delay doubles up to it.
    pub max: Duration,
    /// A child that lived this long before dying starts a new run of deaths (back to `first`).
    pub healthy_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
            healthy_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait before restarting after `deaths` deaths in a row (1 for the first).
    pub fn delay(&self, deaths: u32) -> Duration {
        let doublings = deaths.saturating_sub(1).min(30);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// A supervised set of worker processes, configured with builder methods, then
/// [`run`](Cluster::run).
#[derive(Debug, Clone)]
pub struct Cluster {
    processes: usize,
    program: PathBuf,
    worker_args: Vec<OsString>,
    label: String,
    database_url: Option<String>,
    max_tasks: Option<u64>,
    max_memory: Option<u64>,
    metrics_bind: Option<std::net::SocketAddr>,
    backoff: Backoff,
}

impl Cluster {
    /// `processes` children running `program worker` (the application's own binary, which
    /// must hand its command line to toosimple), labelled `{label}.1` to `{label}.N`.
    pub fn new(processes: usize, program: impl Into<PathBuf>, label: impl AsRef<str>) -> Cluster {
        Cluster {
            processes: processes.max(1),
            program: program.into(),
            worker_args: Vec::new(),
            label: label
                .as_ref()
                .replace("{pid}", &std::process::id().to_string()),
            database_url: None,
            max_tasks: None,
            max_memory: None,
            metrics_bind: None,
            backoff: Backoff::default(),
        }
    }

    /// The flags each child's `worker` subcommand gets (all but `--label`).
    pub fn worker_args<I, S>(mut self, args: I) -> Cluster
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.worker_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The database the children use (else theirs: `TOOSIMPLE_DATABASE_URL` or the default).
    pub fn database_url(mut self, url: Option<String>) -> Cluster {
        self.database_url = url;
        self
    }

    /// Recycles a child after it handled `tasks` tasks (it stops claiming, finishes them,
    /// exits 0, and is started again).
    pub fn max_tasks(mut self, tasks: Option<u64>) -> Cluster {
        self.max_tasks = tasks;
        self
    }

    /// Recycles a child whose resident memory grows above `bytes` (Linux: read from `/proc`):
    /// it is asked to stop gracefully, then started again.
    pub fn max_memory(mut self, bytes: Option<u64>) -> Cluster {
        self.max_memory = bytes;
        self
    }

    /// Has child `n` serve its metrics on `addr`'s port plus `n - 1` (`9464`, `9465`, …).
    pub fn metrics_bind(mut self, addr: Option<std::net::SocketAddr>) -> Cluster {
        self.metrics_bind = addr;
        self
    }

    /// How long it waits before restarting a child that died.
    pub fn backoff(mut self, backoff: Backoff) -> Cluster {
        self.backoff = backoff;
        self
    }

    /// The label of child `n` (from 1).
    pub fn child_label(&self, n: usize) -> String {
        format!("{}.{n}", self.label)
    }

    /// Runs the children until they are stopped (a signal, or each stopping by itself):
    /// [`Exit::Stopped`] when they all stopped gracefully, [`Exit::Terminated`] after a
    /// termination.
    pub async fn run(self) -> Exit {
        let mut signals = match Signals::listen() {
            Ok(signals) => signals,
            Err(e) => return Exit::Crashed(format!("cannot listen for signals: {e}")),
        };
        let mut slots: Vec<Slot> = (1..=self.processes)
            .map(|n| Slot::new(n, self.child_label(n)))
            .collect();
        tracing::info!(
            cluster = %self.label,
            processes = self.processes,
            program = %self.program.display(),
            "cluster starting its workers"
        );
        for slot in &mut slots {
            self.start(slot);
        }
        let mut stopping: Option<Stopping> = None;
        let mut store: Option<Store> = None;
        let mut watch = tokio::time::interval(Duration::from_millis(100));
        let mut memory_check = Instant::now();
        loop {
            tokio::select! {
                signal = signals.next() => {
                    let next = match (signal, stopping) {
                        (Signal::Interrupt, None) => Stopping::Graceful,
                        _ => Stopping::Terminate,
                    };
                    if stopping != Some(next) {
                        stopping = Some(next);
                        let (name, what) = match next {
                            Stopping::Graceful => (libc::SIGINT, "SIGINT: stopping every worker gracefully (SIGINT again to terminate)"),
                            Stopping::Terminate => (libc::SIGTERM, "terminating every worker"),
                        };
                        tracing::warn!(cluster = %self.label, "{what}");
                        for slot in &slots {
                            slot.signal(name);
                        }
                    }
                }
                _ = watch.tick() => {}
            }
            for slot in &mut slots {
                let Some(code) = slot.exited() else { continue };
                self.on_exit(slot, code, stopping.is_some(), &mut store)
                    .await;
            }
            if stopping.is_none() {
                for slot in &mut slots {
                    if slot.restart_at.is_some_and(|at| Instant::now() >= at) {
                        self.start(slot);
                    }
                }
                if let Some(limit) = self.max_memory
                    && memory_check.elapsed() >= Duration::from_secs(1)
                {
                    memory_check = Instant::now();
                    for slot in &mut slots {
                        slot.check_memory(limit, &self.label);
                    }
                }
            }
            let all_done = slots
                .iter()
                .all(|s| s.child.is_none() && (s.restart_at.is_none() || stopping.is_some()));
            if all_done {
                let exit = match stopping {
                    Some(Stopping::Terminate) => Exit::Terminated,
                    _ => Exit::Stopped,
                };
                tracing::info!(cluster = %self.label, restarts = slots.iter().map(|s| s.restarts).sum::<u32>(), "cluster stopped");
                return exit;
            }
        }
    }

    /// Starts slot's child; a failure to start counts as a death.
    fn start(&self, slot: &mut Slot) {
        slot.restart_at = None;
        let mut command = Command::new(&self.program);
        command
            .arg("worker")
            .args(&self.worker_args)
            .args(["--label", &slot.label, "--cluster", &self.label])
            .args(["--cluster-restarts", &slot.restarts.to_string()])
            .kill_on_drop(false);
        if let Some(tasks) = self.max_tasks {
            command.args(["--max-tasks", &tasks.to_string()]);
        }
        if let Some(mut addr) = self.metrics_bind {
            let offset = u16::try_from(slot.number - 1).unwrap_or(u16::MAX);
            addr.set_port(addr.port().saturating_add(offset));
            command.args(["--metrics-bind", &addr.to_string()]);
        }
        if let Some(url) = &self.database_url {
            command.env(toosimple_core::DATABASE_URL_ENV, url);
        }
        #[cfg(unix)]
        {
            // Signals reach the children through the supervisor only: a Ctrl-C on the terminal
            // would otherwise be a first SIGINT from the terminal and a second from here.
            command.process_group(0);
            #[cfg(target_os = "linux")]
            // SAFETY: prctl is async-signal-safe and touches only the child being set up.
            unsafe {
                command.pre_exec(|| {
                    // Orphans would go on claiming tasks under a cluster nobody supervises.
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        match command.spawn() {
            Ok(child) => {
                tracing::info!(cluster = %self.label, worker = %slot.label, pid = child.id(), restarts = slot.restarts, "worker process started");
                slot.pid = child.id();
                slot.child = Some(child);
                slot.started = Instant::now();
                slot.recycling = false;
            }
            Err(e) => {
                slot.deaths += 1;
                let delay = self.backoff.delay(slot.deaths);
                tracing::error!(cluster = %self.label, worker = %slot.label, "cannot start {}: {e}; trying again in {delay:?}", self.program.display());
                slot.restart_at = Some(Instant::now() + delay);
            }
        }
    }

    /// Decides what follows a child's exit: nothing while stopping, a recycle, a restart
    /// after a backoff for a death, or nothing for a child that stopped by itself.
    async fn on_exit(
        &self,
        slot: &mut Slot,
        code: ExitCode,
        stopping: bool,
        store: &mut Option<Store>,
    ) {
        let label = slot.label.clone();
        if stopping {
            tracing::info!(cluster = %self.label, worker = %label, "worker process ended: {code}");
            return;
        }
        if slot.recycling {
            slot.restarts += 1;
            tracing::info!(cluster = %self.label, worker = %label, restarts = slot.restarts, "recycled (memory limit): starting it again");
            self.start(slot);
            return;
        }
        let clean = matches!(code, ExitCode::Code(EXIT_STOPPED));
        if clean || matches!(code, ExitCode::Code(EXIT_TERMINATED)) {
            let status = self.status_of(&label, store).await;
            if status.as_ref().is_some_and(|s| s.stop_request.is_some()) {
                tracing::info!(cluster = %self.label, worker = %label, "stopped on request ({code}): not restarted");
                return;
            }
            let served = status.as_ref().map_or(0, |s| s.handled.max(0) as u64);
            if clean && self.max_tasks.is_some_and(|max| served >= max) {
                slot.restarts += 1;
                tracing::info!(cluster = %self.label, worker = %label, handled = served, restarts = slot.restarts, "recycled after --max-tasks: starting it again");
                self.start(slot);
                return;
            }
            if clean {
                // `--until-done`, `--once`: done.
                tracing::info!(cluster = %self.label, worker = %label, "stopped by itself ({code}): not restarted");
                return;
            }
        }
        if slot.started.elapsed() >= self.backoff.healthy_after {
            slot.deaths = 0;
        }
        slot.deaths += 1;
        slot.restarts += 1;
        let delay = self.backoff.delay(slot.deaths);
        tracing::warn!(
            cluster = %self.label,
            worker = %label,
            restarts = slot.restarts,
            "worker process died ({code}); restarting it in {delay:?} (restart #{})",
            slot.restarts
        );
        slot.restart_at = Some(Instant::now() + delay);
    }

    /// The status row of worker `label`, if the database answers.
    async fn status_of(
        &self,
        label: &str,
        store: &mut Option<Store>,
    ) -> Option<toosimple_core::WorkerStatus> {
        if store.is_none() {
            let url = self.database_url.clone();
            *store = tokio::task::spawn_blocking(move || match url {
                Some(url) => Store::connect(&url),
                None => Store::from_env(),
            })
            .await
            .ok()?
            .map_err(|e| {
                tracing::warn!(cluster = %self.label, "cannot read the workers' status: {}", e.report())
            })
            .ok();
        }
        let store = store.clone()?;
        let label = label.to_string();
        tokio::task::spawn_blocking(move || store.worker_status(&label))
            .await
            .ok()?
            .ok()
            .flatten()
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitCode {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitCode::Code(code) => write!(f, "exit code {code}"),
            ExitCode::Signal(signal) => write!(f, "killed by signal {signal}"),
            ExitCode::Unknown => f.write_str("ended"),
        }
    }
}

/// The cluster's stop, once asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    Graceful,
    Terminate,
}

/// One child process and its history.
#[derive(Debug)]
struct Slot {
    /// Its number, from 1.
    number: usize,
    label: String,
    child: Option<Child>,
    pid: Option<u32>,
    started: Instant,
    /// Restarts so far (deaths and recycles).
    restarts: u32,
    /// Deaths in a row, for the backoff.
    deaths: u32,
    restart_at: Option<Instant>,
    /// Asked to stop for its memory: restart it when it ends.
    recycling: bool,
}

impl Slot {
    fn new(number: usize, label: String) -> Slot {
        Slot {
            number,
            label,
            child: None,
            pid: None,
            started: Instant::now(),
            restarts: 0,
            deaths: 0,
            restart_at: None,
            recycling: false,
        }
    }

    /// How its child ended, if it did since the last look.
    fn exited(&mut self) -> Option<ExitCode> {
        let child = self.child.as_mut()?;
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return None,
            Err(_) => return None,
        };
        self.child = None;
        self.pid = None;
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(signal) = status.signal() {
                return Some(ExitCode::Signal(signal));
            }
        }
        Some(status.code().map_or(ExitCode::Unknown, ExitCode::Code))
    }

    fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill has no memory effects; a pid that already ended gets ESRCH.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    /// Asks the child to stop gracefully when its resident memory is above `limit` bytes.
    fn check_memory(&mut self, limit: u64, cluster: &str) {
        if self.recycling {
            return;
        }
        let Some(rss) = self.pid.and_then(resident_memory) else {
            return;
        };
        if rss > limit {
            tracing::warn!(cluster, worker = %self.label, rss, limit, "worker uses more memory than --max-memory: recycling it (graceful stop, then a new process)");
            self.recycling = true;
            self.signal(libc::SIGINT);
        }
    }
}

/// The resident memory of process `pid`, bytes (Linux's `/proc/PID/status`, `VmRSS`).
fn resident_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The supervisor's own SIGINT and SIGTERM.
enum Signal {
    Interrupt,
    Terminate,
}

struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_limit() {
        let backoff = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(4),
            healthy_after: Duration::from_secs(60),
        };
        let delays: Vec<Duration> = (1..=6).map(|n| backoff.delay(n)).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 4000, 4000].map(Duration::from_millis)
        );
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(4));
    }

    #[test]
    fn resident_memory_reads_this_process() {
        let rss = resident_memory(std::process::id()).expect("/proc is readable");
        assert!(rss > 1024 * 1024, "{rss}");
    }
}
