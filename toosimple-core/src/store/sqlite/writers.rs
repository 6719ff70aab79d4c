//! Waiting for SQLite's write lock: in turn, and woken as soon as it is free.
//!
//! SQLite lets one connection write at a time. Its own busy handler (`PRAGMA busy_timeout`)
//! sleeps in growing steps up to 100 ms and retries: a writer can sleep long after the lock
//! came free, and newcomers take it ahead of those who waited. Under 32 concurrent web
//! requests that each insert a row and queue a task, with a worker recording and claiming
//! beside them, that made a p99 of 440-720 ms for a request whose own work takes a millisecond.
//!
//! Here every connection of a store gets a busy handler of ours instead:
//! - writers of this process that find the lock taken wait in a queue per database file, first
//!   come first served;
//! - the connection that ends a write transaction (its commit, seen by SQLite's WAL hook, or its
//!   rollback) wakes the queue at once, instead of the waiters' next sleep step;
//! - a writer of another process says nothing to us, so the first in the queue also retries
//!   every [`POLL`] on its own;
//! - a writer gives up after [`BUSY_TIMEOUT`], as `busy_timeout` did.
//!
//! diesel does not hand out its `sqlite3` handle, so the handle is caught as the connection
//! opens: an auto extension (SQLite calls it with each new handle, on the opening thread)
//! leaves it in a thread-local that `establish` reads right after. The hooks' state lives in
//! the handle's client data, freed by SQLite when the connection closes.

use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, Weak};
use std::time::{Duration, Instant};

use libsqlite3_sys as ffi;

/// How long a writer waits for the lock before SQLite reports `SQLITE_BUSY` (the former
/// `busy_timeout`).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the first waiter retries on its own, for writers in other processes, which do not
/// wake it.
const POLL: Duration = Duration::from_millis(1);

/// How long a waiter that is not first waits before retrying anyway: a safety net, should a
/// connection ahead of it hold its place without ever ending a write (a read that once found
/// the database busy).
const OUT_OF_TURN: Duration = Duration::from_millis(100);

/// The WAL size, in frames, from which a commit checkpoints, as SQLite's default WAL hook (which
/// ours replaces) does.
const AUTO_CHECKPOINT_FRAMES: c_int = 1000;

const CLIENT_DATA: &CStr = c"toosimple.writers";

/// The writers of one database file in this process.
#[derive(Default)]
struct Gate {
    queue: Mutex<Queue>,
    changed: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Tickets of the writers waiting, first come first.
    waiting: VecDeque<u64>,
    next_ticket: u64,
    /// Write transactions ended so far: a waiter retries when this moves.
    ended: u64,
}

/// What the hooks of one connection know.
struct Connection {
    gate: Arc<Gate>,
    wait: Mutex<Wait>,
    /// The handle, to take the hooks off as it closes (as an address: it is only used there).
    db: usize,
}

/// The connection's current wait for the lock.
#[derive(Default)]
struct Wait {
    ticket: Option<u64>,
    since: Option<Instant>,
    /// `Queue::ended` when it last tried.
    seen: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gate {
    /// The gate of the database file `path`, shared by every connection of this process.
    fn of(path: &str) -> Arc<Gate> {
        static GATES: Mutex<Option<HashMap<String, Weak<Gate>>>> = Mutex::new(None);
        let mut gates = lock(&GATES);
        let gates = gates.get_or_insert_with(HashMap::new);
        if let Some(gate) = gates.get(path).and_then(Weak::upgrade) {
            return gate;
        }
        gates.retain(|_, gate| gate.strong_count() > 0);
        let gate = Arc::new(Gate::default());
        gates.insert(path.to_string(), Arc::downgrade(&gate));
        gate
    }

    /// A write transaction ended (`ticket`: the one its connection waited with): the first
    /// waiter may take the lock now.
    fn ended(&self, ticket: Option<u64>) {
        let mut queue = lock(&self.queue);
        if let Some(ticket) = ticket {
            queue.waiting.retain(|t| *t != ticket);
        }
        queue.ended = queue.ended.wrapping_add(1);
        drop(queue);
        self.changed.notify_all();
    }
}

impl Connection {
    /// SQLite found the lock taken for the `count`th time in this attempt: waits for this
    /// connection's turn; 1 retries, 0 gives up with `SQLITE_BUSY`.
    fn busy(&self, count: c_int) -> c_int {
        let mut wait = lock(&self.wait);
        let mut queue = lock(&self.gate.queue);
        if count == 0 || wait.ticket.is_none() {
            // A new attempt. A ticket still held is from an attempt that ended without a write
            // transaction to end (a read): its place is given up.
            if let Some(old) = wait.ticket.take() {
                queue.waiting.retain(|t| *t != old);
            }
            let ticket = queue.next_ticket;
            queue.next_ticket = queue.next_ticket.wrapping_add(1);
            queue.waiting.push_back(ticket);
            wait.ticket = Some(ticket);
            wait.since = Some(Instant::now());
            wait.seen = queue.ended;
        }
        let since = wait.since.unwrap_or_else(Instant::now);
        if since.elapsed() >= BUSY_TIMEOUT {
            if let Some(ticket) = wait.ticket.take() {
                queue.waiting.retain(|t| *t != ticket);
            }
            return 0;
        }
        let ticket = wait.ticket;
        let start = Instant::now();
        loop {
            let first = queue.waiting.front().copied() == ticket;
            if first && queue.ended != wait.seen {
                break;
            }
            let patience = if first { POLL } else { OUT_OF_TURN };
            let waited = start.elapsed();
            if waited >= patience {
                break;
            }
            queue = self
                .gate
                .changed
                .wait_timeout(queue, patience - waited)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        wait.seen = queue.ended;
        1
    }

    /// This connection's write transaction ended (committed or rolled back): it leaves the
    /// queue, and the next waiter is woken.
    fn ended(&self) {
        let ticket = lock(&self.wait).ticket.take();
        self.gate.ended(ticket);
    }
}

unsafe extern "C" fn on_busy(data: *mut c_void, count: c_int) -> c_int {
    // SAFETY: `data` is the `Connection` installed with this hook, alive until the handle
    // closes (it is the handle's client data).
    let connection = unsafe { &*(data as *const Connection) };
    connection.busy(count)
}

unsafe extern "C" fn on_commit(data: *mut c_void) -> c_int {
    // SAFETY: as in `on_busy`.
    let connection = unsafe { &*(data as *const Connection) };
    // Called just before the commit completes: the waiter it wakes may find the lock still
    // held for a moment, and is woken again by the WAL hook when it is free.
    connection.ended();
    0 // go on with the commit
}

unsafe extern "C" fn on_rollback(data: *mut c_void) {
    // SAFETY: as in `on_busy`.
    let connection = unsafe { &*(data as *const Connection) };
    connection.ended();
}

unsafe extern "C" fn on_wal_commit(
    data: *mut c_void,
    db: *mut ffi::sqlite3,
    schema: *const c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: as in `on_busy`.
    let connection = unsafe { &*(data as *const Connection) };
    // The commit is done and the lock free: wake the next writer before checkpointing.
    connection.gate.ended(None);
    if frames >= AUTO_CHECKPOINT_FRAMES {
        // SAFETY: `db` and `schema` are SQLite's own arguments to this hook; a passive
        // checkpoint is what SQLite's default hook runs here.
        unsafe {
            ffi::sqlite3_wal_checkpoint_v2(
                db,
                schema,
                ffi::SQLITE_CHECKPOINT_PASSIVE,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn free_connection(data: *mut c_void) {
    // SAFETY: `data` came from `Box::into_raw` in `install`, and SQLite calls this once, as it
    // closes the handle.
    let connection = unsafe { Box::from_raw(data as *mut Connection) };
    let db = connection.db as *mut ffi::sqlite3;
    // SQLite frees client data before it rolls back what the closing connection left open,
    // which calls the rollback hook: no hook may see the state once it is freed. (The handle's
    // mutex, which SQLite holds here, is recursive.)
    // SAFETY: `db` is the handle being closed, still valid during its client data's destructor.
    unsafe {
        ffi::sqlite3_busy_handler(db, None, std::ptr::null_mut());
        ffi::sqlite3_commit_hook(db, None, std::ptr::null_mut());
        ffi::sqlite3_rollback_hook(db, None, std::ptr::null_mut());
        ffi::sqlite3_wal_hook(db, None, std::ptr::null_mut());
    }
    drop(connection);
}

thread_local! {
    /// The handle SQLite opened last on this thread.
    static OPENED: std::cell::Cell<*mut ffi::sqlite3> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

unsafe extern "C" fn remember_opened(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    OPENED.with(|opened| opened.set(db));
    ffi::SQLITE_OK
}

/// Opens a connection with `open` and gives it our busy handler and hooks.
pub(super) fn open<C, E>(open: impl FnOnce() -> Result<C, E>) -> Result<C, E> {
    static REMEMBER: Once = Once::new();
    REMEMBER.call_once(|| {
        // SAFETY: registers a function of the signature SQLite expects; it only stores the
        // handle in a thread-local.
        unsafe {
            ffi::sqlite3_auto_extension(Some(remember_opened));
        }
    });
    OPENED.with(|opened| opened.set(std::ptr::null_mut()));
    let connection = open()?;
    let db = OPENED.with(|opened| opened.replace(std::ptr::null_mut()));
    if !db.is_null() {
        // SAFETY: `db` is the handle `open` just opened on this thread, owned by `connection`,
        // which is alive.
        unsafe { install(db) };
    }
    Ok(connection)
}

/// Installs the busy handler and the hooks on `db`, with their state as its client data; a
/// handle with nobody to wait for in turn (an in-memory database) keeps SQLite's own waits.
///
/// # Safety
/// `db` must be an open handle not used by another thread meanwhile.
unsafe fn install(db: *mut ffi::sqlite3) {
    // SAFETY: `db` is open (the caller's promise); "main" is its main database, whose name
    // SQLite returns NUL-terminated, living as long as the handle.
    let path = unsafe {
        let path = ffi::sqlite3_db_filename(db, c"main".as_ptr());
        (!path.is_null()).then(|| CStr::from_ptr(path).to_string_lossy().into_owned())
    };
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        // SAFETY: `db` is open.
        unsafe { ffi::sqlite3_busy_timeout(db, BUSY_TIMEOUT.as_millis() as c_int) };
        return;
    };
    let data = Box::into_raw(Box::new(Connection {
        gate: Gate::of(&path),
        wait: Mutex::new(Wait::default()),
        db: db as usize,
    })) as *mut c_void;
    // SAFETY: `data` stays valid until SQLite frees it through `free_connection` at close,
    // which first takes the hooks off; on failure SQLite has already freed it that way.
    unsafe {
        if ffi::sqlite3_set_clientdata(db, CLIENT_DATA.as_ptr(), data, Some(free_connection))
            != ffi::SQLITE_OK
        {
            // Out of memory: SQLite's own sleeping waits, as before.
            ffi::sqlite3_busy_timeout(db, BUSY_TIMEOUT.as_millis() as c_int);
            return;
        }
        ffi::sqlite3_busy_handler(db, Some(on_busy), data);
        ffi::sqlite3_commit_hook(db, Some(on_commit), data);
        ffi::sqlite3_rollback_hook(db, Some(on_rollback), data);
        ffi::sqlite3_wal_hook(db, Some(on_wal_commit), data);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    use super::{Gate, lock};
    use crate::Store;

    /// How many writers of this process wait for the lock of the file at `path`.
    fn waiting(path: &str) -> usize {
        lock(&Gate::of(path).queue).waiting.len()
    }

    #[derive(QueryableByName)]
    struct Arrival {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    /// Writers that find the lock taken get it in the order they came, each as soon as the one
    /// before it is done, not at a sleep step of their own.
    #[test]
    fn writers_get_the_lock_in_the_order_they_asked() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("writers.sqlite3");
        let store = Store::connect(&format!("sqlite://{}", path.display())).expect("open");
        let path = std::fs::canonicalize(&path).expect("the file exists");
        let path = path.to_str().expect("a UTF-8 path");
        let mut holder = store.connection().expect("a connection");
        holder
            .batch_execute("CREATE TABLE arrivals (n BIGINT NOT NULL); BEGIN IMMEDIATE")
            .expect("take the write lock");
        let writers: Vec<_> = (0..6)
            .map(|n| {
                let store = store.clone();
                let writer = std::thread::spawn(move || {
                    let mut conn = store.connection().expect("a connection");
                    conn.batch_execute(&format!(
                        "BEGIN IMMEDIATE; INSERT INTO arrivals VALUES ({n}); COMMIT"
                    ))
                });
                let deadline = Instant::now() + Duration::from_secs(10);
                while waiting(path) < n + 1 {
                    assert!(Instant::now() < deadline, "writer {n} never waited");
                    std::thread::sleep(Duration::from_millis(1));
                }
                writer
            })
            .collect();
        holder.batch_execute("COMMIT").expect("let go of the lock");
        for writer in writers {
            writer.join().expect("no panic").expect("the write");
        }
        let arrivals: Vec<i64> = diesel::sql_query("SELECT n FROM arrivals ORDER BY rowid")
            .load::<Arrival>(&mut holder)
            .expect("read")
            .into_iter()
            .map(|a| a.n)
            .collect();
        assert_eq!(arrivals, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(waiting(path), 0, "every writer left the queue");
    }
}
