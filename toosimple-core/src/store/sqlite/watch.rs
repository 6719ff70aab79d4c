//! Wake-ups on SQLite, which has no `LISTEN`: every [`POLL`] a `stat` of the `-wal` file tells
//! whether anything was committed; when it changed, a connection of its own reads
//! `PRAGMA data_version`, a counter SQLite moves whenever another connection (in this process
//! or another) commits to the file. When it moves, one look at the highest row id tells whether executions
//! were inserted (rather than claimed or completed, which the worker's own rounds do all the
//! time): only then is the worker woken. An idle worker so starts work enqueued by any process
//! within a few milliseconds instead of at its next tick; polling at each tick stays the
//! correctness path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use tokio::sync::Notify;

use crate::store::WakeupSource;

/// How often the `-wal` file is looked at: a wake-up within 3 ms, for 0.8% of one core on an
/// idle worker (`toosimple-bench`: `idle_cpu_percent`; at 2 ms it was 1.2%).
const POLL: Duration = Duration::from_millis(3);

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
    // Every commit in WAL mode writes the `-wal` file: while its size and modification time
    // stay put, nothing was committed, and a `stat` is cheaper still than the counter.
    let wal = format!("{path}-wal");
    let stamp = || {
        std::fs::metadata(&wal)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen_stamp = stamp();
    let mut seen_version = version(&mut conn)?;
    let mut seen_id = highest(&mut conn)?;
    while !stopped.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        let now_stamp = stamp();
        if now_stamp.is_some() && now_stamp == seen_stamp {
            continue;
        }
        seen_stamp = now_stamp;
        let now = version(&mut conn)?;
        if now == seen_version {
            continue;
        }
        seen_version = now;
        let id = highest(&mut conn)?;
        if id > seen_id {
            wake.notify_one();
        }
        seen_id = id;
    }
    Ok(())
}
