//! Wake-ups on SQLite, which has no `LISTEN`: every commit in WAL mode writes the `-wal` file,
//! so the watch waits for that file to change (on Linux inotify tells at once; elsewhere a `stat`
//! every [`POLL`]); when it changed, a connection of its own reads
//! `PRAGMA data_version`, a counter SQLite moves whenever another connection (in this process
//! or another) commits to the file. When it moves, one look at the highest row id tells whether executions
//! were inserted (rather than claimed or completed, which the worker's own rounds do all the
//! time): only then is the worker woken. An idle worker so starts work enqueued by any process
//! within a millisecond or two instead of at its next tick; polling at each tick stays the
//! correctness path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use tokio::sync::Notify;

use crate::store::WakeupSource;

/// Where inotify is not available, how often the `-wal` file is looked at: a wake-up within
/// 3 ms, for 0.8% of one core on an idle worker (`toosimple-bench`: `idle_cpu_percent`; at 2 ms
/// it was 1.2%).
const POLL: Duration = Duration::from_millis(3);

/// The shortest time between two looks at the counter: while a worker drains, its own commits
/// change the `-wal` file thousands of times a second, and one look per millisecond is enough
/// to find the inserts among them.
const AT_MOST_EVERY: Duration = Duration::from_millis(1);

/// How long one wait for inotify lasts before the watch checks whether it should stop.
#[cfg(target_os = "linux")]
const STOP_CHECK_MS: i32 = 100;

/// After an error (the file was moved, the disk is gone), how long before reconnecting.
const RETRY: Duration = Duration::from_secs(1);

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

#[derive(QueryableByName)]
struct Highest {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    id: Option<i64>,
}

/// Watches the SQLite file at `path` on a thread of its own until the returned source is
/// dropped; each insert of executions by any connection wakes `wake`. `None` if the system
/// refuses a thread (the worker then finds new work at its tick).
pub(in crate::store) fn spawn(path: String, wake: Arc<Notify>) -> Option<WakeupSource> {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("toosimple-sqlite-watch".to_string())
        .spawn(move || {
            let mut warned = false;
            while !stopped.load(Ordering::Relaxed) {
                let watched = match SqliteConnection::establish(&path) {
                    Ok(conn) => watch(&path, conn, &wake, &stopped),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(reason) = watched
                    && !warned
                {
                    tracing::info!(
                        "no SQLite wake-ups for now ({reason}): new work starts at the next tick"
                    );
                    warned = true;
                }
                std::thread::sleep(RETRY);
            }
        });
    match spawned {
        Ok(_) => Some(WakeupSource::Thread(stop)),
        Err(e) => {
            tracing::info!("no SQLite wake-ups ({e}): new work starts at the next tick");
            None
        }
    }
}

fn watch(
    path: &str,
    mut conn: SqliteConnection,
    wake: &Notify,
    stopped: &AtomicBool,
) -> Result<(), String> {
    let version = |c: &mut SqliteConnection| -> Result<i64, String> {
        diesel::sql_query("PRAGMA data_version")
            .load::<DataVersion>(c)
            .map_err(|e| e.to_string())?
            .pop()
            .map(|v| v.data_version)
            .ok_or_else(|| "PRAGMA data_version returned nothing".to_string())
    };
    let highest = |c: &mut SqliteConnection| -> Result<i64, String> {
        Ok(diesel::sql_query("SELECT MAX(id) AS id FROM task_execs")
            .load::<Highest>(c)
            .map_err(|e| e.to_string())?
            .pop()
            .and_then(|h| h.id)
            .unwrap_or(0))
    };
    let mut changes = WalChanges::new(path);
    let mut seen_version = version(&mut conn)?;
    let mut seen_id = highest(&mut conn)?;
    while !stopped.load(Ordering::Relaxed) {
        if !changes.wait() {
            continue;
        }
        let now = version(&mut conn)?;
        if now != seen_version {
            seen_version = now;
            let id = highest(&mut conn)?;
            if id > seen_id {
                wake.notify_one();
            }
            seen_id = id;
        }
        std::thread::sleep(AT_MOST_EVERY);
    }
    Ok(())
}

/// Tells when the `-wal` file beside the database may have changed.
enum WalChanges {
    /// Linux: inotify on the database's folder, for the `-wal` file's name (the file itself
    /// comes and goes as connections open and close, the folder stays).
    #[cfg(target_os = "linux")]
    Notified {
        inotify: inotify::Inotify,
        wal_name: std::ffi::OsString,
        buffer: Vec<u8>,
    },
    /// Elsewhere, or when inotify is refused (no watches left): its size and modification time.
    Stat {
        wal: String,
        seen: Option<(Option<std::time::SystemTime>, u64)>,
    },
}

impl WalChanges {
    fn new(path: &str) -> Self {
        let wal = format!("{path}-wal");
        #[cfg(target_os = "linux")]
        match Self::notified(&wal) {
            Ok(notified) => return notified,
            Err(e) => tracing::debug!("no inotify on {wal} ({e}): looking every {POLL:?}"),
        }
        let seen = Self::stamp(&wal);
        WalChanges::Stat { wal, seen }
    }

    #[cfg(target_os = "linux")]
    fn notified(wal: &str) -> std::io::Result<Self> {
        use inotify::{Inotify, WatchMask};
        let wal = std::path::Path::new(wal);
        let folder = match wal.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        };
        let wal_name = wal
            .file_name()
            .ok_or_else(|| std::io::Error::other("the database path names no file"))?
            .to_os_string();
        let inotify = Inotify::init()?;
        inotify.watches().add(
            folder,
            WatchMask::MODIFY | WatchMask::CREATE | WatchMask::MOVED_TO,
        )?;
        Ok(WalChanges::Notified {
            inotify,
            wal_name,
            buffer: vec![0; 4096],
        })
    }

    fn stamp(wal: &str) -> Option<(Option<std::time::SystemTime>, u64)> {
        std::fs::metadata(wal)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    }

    /// Waits a while for a change: true when the file may have changed (a false alarm only
    /// costs a look at the counter), false when the wait ended without one.
    fn wait(&mut self) -> bool {
        match self {
            #[cfg(target_os = "linux")]
            WalChanges::Notified {
                inotify,
                wal_name,
                buffer,
            } => {
                use std::os::fd::AsRawFd;
                let mut poll = libc::pollfd {
                    fd: inotify.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
                let ready = unsafe { libc::poll(&mut poll, 1, STOP_CHECK_MS) };
                if ready <= 0 {
                    return false;
                }
                match inotify.read_events(buffer) {
                    Ok(events) => events
                        .into_iter()
                        // A full queue drops events: look rather than miss one.
                        .any(|e| {
                            e.name == Some(wal_name.as_os_str())
                                || e.mask.contains(inotify::EventMask::Q_OVERFLOW)
                        }),
                    Err(_) => true,
                }
            }
            WalChanges::Stat { wal, seen } => {
                std::thread::sleep(POLL);
                let now = Self::stamp(wal);
                if now.is_some() && now == *seen {
                    return false;
                }
                *seen = now;
                true
            }
        }
    }
}
