//! How long a finished execution is kept: django-pq's `result_ttl`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a finished execution is kept before a worker deletes it (django-pq's
/// `result_ttl`: `0` deletes at once, `-1` keeps).
///
/// A call sets it ([`CallOptions::ttl`](crate::CallOptions::ttl), the CLI's `enqueue --ttl`),
/// else its task (`#[task(ttl = 500)]`, seconds, `-1` to keep), else the workers' default
/// (`worker --result-ttl`), else it is kept until purged. A retry chain goes from its last
/// execution back, once that one has expired.
///
/// ```
/// use std::time::Duration;
/// use toosimple_core::Ttl;
///
/// assert_eq!(Ttl::from(Duration::from_secs(500)), Ttl::After(Duration::from_secs(500)));
/// assert_eq!(Ttl::from_seconds(-1), Ttl::Keep);
/// assert_eq!(Ttl::After(Duration::ZERO).as_seconds(), 0); // deleted as soon as recorded
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ttl {
    /// Deleted this long after it finished, in whole seconds (rounded up); `Duration::ZERO`
    /// deletes it as soon as its outcome is recorded (and its hook has run).
    After(Duration),
    /// Kept until purged, whatever the defaults.
    Keep,
}

impl Ttl {
    /// The TTL a row stores as `seconds`: negative keeps, else seconds after finishing.
    pub fn from_seconds(seconds: i64) -> Ttl {
        match u64::try_from(seconds) {
            Ok(seconds) => Ttl::After(Duration::from_secs(seconds)),
            Err(_) => Ttl::Keep,
        }
    }

    /// As a row stores it: whole seconds (rounded up), `-1` for [`Ttl::Keep`].
    pub fn as_seconds(self) -> i64 {
        match self {
            Ttl::Keep => -1,
            Ttl::After(d) => {
                let seconds = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
                i64::try_from(seconds).unwrap_or(i64::MAX)
            }
        }
    }

    /// Whether it deletes the execution as soon as its outcome is recorded.
    pub fn is_zero(self) -> bool {
        self == Ttl::After(Duration::ZERO)
    }
}

impl From<Duration> for Ttl {
    fn from(ttl: Duration) -> Ttl {
        Ttl::After(ttl)
    }
}
