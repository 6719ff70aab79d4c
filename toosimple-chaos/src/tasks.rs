//! The one task a chaos run enqueues, and the ledger it writes its side effect to.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toosimple_core::task;

/// The folder of the run's ledgers and markers, set for every worker process.
pub const DIR_ENV: &str = "TOOSIMPLE_CHAOS_DIR";
/// The label of the worker process, written beside each side effect.
pub const LABEL_ENV: &str = "TOOSIMPLE_CHAOS_LABEL";
/// The file, in the run's folder, where each run of a task appends its side effect.
pub const EFFECTS: &str = "effects.log";
/// The file, in the run's folder, where enqueuers append each key as it is acknowledged.
pub const ENQUEUED: &str = "enqueued.log";
/// [`step`]'s time limit, in seconds (a slow first run exceeds it).
pub const STEP_TIMEOUT_S: u64 = 2;

/// How a task behaves, chosen per key from the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Sleeps its milliseconds, then records its side effect.
    Quick,
    /// Fails its first run (before any side effect), then behaves as `Quick`: one retry.
    FailsOnce,
    /// Its first run outlasts the time limit (and is cancelled before its side effect), then
    /// behaves as `Quick`: one retry after a time-out.
    SlowOnce,
}

/// One chaos task: runs as its [`Kind`] says, then appends `key label` to the effects ledger
/// and fsyncs it, so that every side effect that happened is on disk before the queue hears of
/// it. Async, so that a time-out cancels it before its side effect.
#[task(queue = "chaos", retries = 3, retry_delay = 0, timeout = 2)]
pub async fn step(key: i64, kind: Kind, ms: u64) -> Result<(), String> {
    let dir = std::env::var_os(DIR_ENV)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{DIR_ENV} is not set"))?;
    let first_run = |what: &str| -> Result<bool, String> {
        let marker = dir.join(format!("{what}-{key}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(format!("cannot create {}: {e}", marker.display())),
        }
    };
    match kind {
        Kind::Quick => {}
        Kind::FailsOnce => {
            if first_run("failed")? {
                return Err("fails on its first run, as planned".to_string());
            }
        }
        Kind::SlowOnce => {
            if first_run("slow")? {
                tokio::time::sleep(Duration::from_secs(STEP_TIMEOUT_S + 2)).await;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let label = std::env::var(LABEL_ENV).unwrap_or_else(|_| "unlabelled".to_string());
    append_synced(&dir.join(EFFECTS), &format!("{key} {label}\n")).map_err(|e| e.to_string())
}

/// Appends `text` to `path` in one write (atomic among processes for a short line opened with
/// `O_APPEND`), then waits until it is on disk.
pub fn append_synced(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}
