//! Where a worker's time comes from.
//!
//! Workers compare each other's heartbeats and due times, so in production they all read one
//! clock, the database's: [`DatabaseClock`] measures the offset between this machine's clock
//! and the database's at each heartbeat and adds it to the local time. A worker whose machine
//! runs a minute fast then neither takes its neighbours for dead nor runs retries early.
//!
//! Tests give a worker a [`TestClock`] instead and move it by hand
//! ([`Worker::clock`](crate::Worker::clock)), so that a retry delay or a heartbeat timeout
//! passes at once instead of in real seconds. Timers (the tick, a task's own time-out) stay in
//! real time: the clock only dates what is written to and compared in the database.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use toosimple_core::{Error, Store};

/// A source of the current time for a worker's database work.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Re-measures this clock against `store`'s; the heartbeat calls it before each beat.
    /// Returns how far the database's clock is ahead of this machine's (negative: behind).
    fn sync(&self, store: &Store) -> Result<TimeDelta, Error> {
        let _ = store;
        Ok(TimeDelta::zero())
    }
}

/// The database's clock, read as this machine's clock plus the offset measured at the last
/// [`sync`](Clock::sync): one round trip per heartbeat instead of one per timestamp.
#[derive(Debug, Default)]
pub struct DatabaseClock {
    /// Database minus local time, in microseconds.
    offset_micros: AtomicI64,
}

impl DatabaseClock {
    /// A clock with no offset until its first [`sync`](Clock::sync).
    pub fn new() -> Self {
        DatabaseClock::default()
    }

    /// The last measured offset: how far the database's clock is ahead of this machine's.
    pub fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_micros.load(Ordering::Relaxed))
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }

    fn sync(&self, store: &Store) -> Result<TimeDelta, Error> {
        let before = Utc::now();
        let database = store.database_now()?;
        let after = Utc::now();
        // The database read its clock somewhere in the round trip: assume half way.
        let local = before + (after - before) / 2;
        let micros = (database - local).num_microseconds().unwrap_or(0);
        self.offset_micros.store(micros, Ordering::Relaxed);
        Ok(TimeDelta::microseconds(micros))
    }
}

/// A clock that moves only when told: for tests. Clones share one time.
///
/// ```
/// use std::time::Duration;
/// use toosimple_worker::clock::{Clock, TestClock};
///
/// let clock = TestClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(4));
/// assert_eq!((clock.now() - start).num_seconds(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct TestClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl Default for TestClock {
    fn default() -> Self {
        TestClock::new()
    }
}

impl TestClock {
    /// A clock stopped at the current time.
    pub fn new() -> Self {
        TestClock::at(Utc::now())
    }

    /// A clock stopped at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        TestClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    /// Sets the clock to `now` (backwards too).
    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
