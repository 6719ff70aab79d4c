//! Testing your own tasks against a real database, under `cargo test`'s parallel threads.
//!
//! `queue()`, [`TaskExec::get`](crate::TaskExec::get) and a worker built without a store all
//! use the process-wide default store. Tests that each called [`init`](crate::init) on a
//! database of their own would take it from one another mid-test (and the second `init` is an
//! error). A [`TestStore`] instead makes a fresh database the default store for as long as it
//! lives, and tests holding one take turns: the others wait in `TestStore::new` until it is
//! dropped. Under `cargo nextest`, which runs each test in its own process, nobody waits.
//!
//! ```standalone_crate
//! use toosimple_core::testing::TestStore;
//! use toosimple_core::{State, task};
//!
//! #[task]
//! fn double(n: i64) -> i64 {
//!     n * 2
//! }
//!
//! # fn main() -> Result<(), toosimple_core::Error> {
//! let db = TestStore::new()?; // a new SQLite file, the default store until `db` is dropped
//! let handle = double::queue(21)?;
//! assert_eq!(handle.state()?, State::Queued);
//! assert_eq!(db.store().location(), handle.store()?.location());
//! # Ok(())
//! # }
//! ```

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::store::{Store, replace_default};

/// Held by the live [`TestStore`], if any: one default store at a time per process.
static TURN: Mutex<()> = Mutex::new(());

/// A database that is the default store while this value lives; see the [module
/// docs](self).
///
/// Dropping it restores the default store there was before (usually none) and deletes the
/// temporary SQLite file made by [`new`](Self::new).
#[must_use = "the database is the default store only while the TestStore lives"]
pub struct TestStore {
    store: Store,
    previous: Option<Store>,
    // Dropped after `previous` is restored (see Drop): fields drop in declaration order.
    _dir: Option<tempfile::TempDir>,
    _turn: MutexGuard<'static, ()>,
}

impl TestStore {
    /// A new, migrated SQLite file in a temporary folder, made the default store. Waits while
    /// another `TestStore` of this process lives.
    ///
    /// # Errors
    /// Fails when the temporary folder or the database cannot be created.
    pub fn new() -> Result<TestStore> {
        let turn = take_turn();
        let dir = tempfile::Builder::new()
            .prefix("toosimple-test-")
            .tempdir()
            .map_err(|e| Error::Runtime(format!("cannot create a temporary folder: {e}")))?;
        let url = format!("sqlite://{}", dir.path().join("test.sqlite3").display());
        TestStore::open(&url, Some(dir), turn)
    }

    /// Connects to `url` (migrating it) and makes it the default store: for a database the
    /// test prepared itself, such as a PostgreSQL schema of its own. Waits while another
    /// `TestStore` of this process lives.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite://{}", dir.path().join("mine.sqlite3").display());
    /// let db = toosimple_core::testing::TestStore::connect(&url)?;
    /// assert_eq!(toosimple_core::default_store()?.location(), db.store().location());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Fails as [`Store::connect`] does.
    pub fn connect(url: &str) -> Result<TestStore> {
        TestStore::open(url, None, take_turn())
    }

    fn open(
        url: &str,
        dir: Option<tempfile::TempDir>,
        turn: MutexGuard<'static, ()>,
    ) -> Result<TestStore> {
        let store = Store::connect(url)?;
        let previous = replace_default(Some(store.clone()));
        Ok(TestStore {
            store,
            previous,
            _dir: dir,
            _turn: turn,
        })
    }

    /// The store on this database (also the default store while `self` lives).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        replace_default(self.previous.take());
    }
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("location", &self.store.location())
            .finish()
    }
}

fn take_turn() -> MutexGuard<'static, ()> {
    // A test that panicked while holding its turn has dropped its TestStore on the way out:
    // the default store was restored, so the next test may go on.
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// What runs executions in the caller's thread in a test's inline mode: given the store and
/// the ids of the executions an enqueue just stored, due now.
#[doc(hidden)]
pub type InlineRunner = fn(&Store, &[i64]) -> Result<()>;

thread_local! {
    /// This thread's inline runner, while a test's inline mode is on here.
    static INLINE: Cell<Option<InlineRunner>> = const { Cell::new(None) };
}

/// Sets this thread's inline runner (`None` turns inline mode off) and returns the one it
/// replaces. Not API: `toosimple_worker::testing::inline` calls it, since running a task (its
/// time limit, its panics, an async task's runtime) is the worker's business.
#[doc(hidden)]
pub fn set_inline_runner(runner: Option<InlineRunner>) -> Option<InlineRunner> {
    INLINE.with(|cell| cell.replace(runner))
}

/// This thread's inline runner, if inline mode is on.
pub(crate) fn inline_runner() -> Option<InlineRunner> {
    INLINE.with(Cell::get)
}

/// Runs executions `ids` of `store` in this thread when inline mode is on here.
pub(crate) fn run_inline(store: &Store, ids: &[i64]) -> Result<()> {
    match inline_runner() {
        Some(run) if !ids.is_empty() => run(store, ids),
        _ => Ok(()),
    }
}
