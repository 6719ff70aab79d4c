//! Cron expressions as `#[schedule]` writes them: five fields, or six with **seconds last**
//! (django-toosimple-q's convention), or `"manual"` for a schedule that only runs on demand;
//! read in an IANA time zone. The syntax itself is `toosimple_cron`'s, which the macros also use
//! to check it at compile time.

use chrono::{DateTime, Offset, Utc};
use chrono_tz::Tz;

use crate::error::{Error, Result};

/// At most this many occurrences are materialized for one schedule in one pass; a longer
/// backlog (a long outage of a catch-up schedule) continues on the next pass.
pub const MAX_OCCURRENCES_PER_PASS: usize = 10_000;

/// A parsed schedule expression in its time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    cron: Option<toosimple_cron::Cron>,
    tz: Tz,
}

impl CronSchedule {
    /// Parses `expr` (see the module docs) in time zone `tz` (e.g. `"UTC"`, `"Europe/Paris"`).
    ///
    /// ```
    /// use toosimple_core::CronSchedule;
    /// let every_15_s = CronSchedule::parse("* * * * * */15", "UTC")?;
    /// let start = "2026-01-01T00:00:01Z".parse()?;
    /// assert_eq!(every_15_s.next_after(start).unwrap().to_rfc3339(), "2026-01-01T00:00:15+00:00");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(expr: &str, tz: &str) -> Result<CronSchedule> {
        let tz: Tz = tz.parse().map_err(|_| Error::InvalidSchedule {
            expr: expr.to_string(),
            reason: format!("unknown time zone {tz:?}: use an IANA name such as Europe/Paris"),
        })?;
        let cron = toosimple_cron::parse(expr).map_err(|e| Error::InvalidSchedule {
            expr: expr.to_string(),
            reason: e.to_string(),
        })?;
        Ok(CronSchedule {
            expr: expr.to_string(),
            cron,
            tz,
        })
    }

    /// The expression as written.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// Whether it is `"manual"`: never due by itself.
    pub fn is_manual(&self) -> bool {
        self.cron.is_none()
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.cron.as_ref()?;
        cron.find_next_occurrence(&self.local(after)?, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest occurrence at or before `at` (what `run_on_creation` runs).
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = self.cron.as_ref()?;
        cron.find_previous_occurrence(&self.local(at)?, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// `at` in the schedule's zone, or `None` when its wall-clock time is past the ends of
    /// chrono's range (within a day of them, in a zone ahead of or behind UTC): croner reads the
    /// wall-clock time and would panic, and it finds no occurrence there (it searches up to year
    /// 5000).
    fn local(&self, at: DateTime<Utc>) -> Option<DateTime<Tz>> {
        let local = at.with_timezone(&self.tz);
        at.naive_utc().checked_add_offset(local.offset().fix())?;
        Some(local)
    }

    /// The occurrences in `(after, until]`, oldest first, at most `limit` of them.
    pub fn occurrences(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut found = Vec::new();
        let mut cursor = after;
        while found.len() < limit {
            match self.next_after(cursor) {
                Some(next) if next <= until => {
                    found.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        found
    }

    /// A human description ("At 08:30", or "Manual: only when run on demand").
    pub fn describe(&self) -> String {
        match &self.cron {
            None => "Manual: only when run on demand".to_string(),
            Some(cron) => {
                let text = cron.describe();
                if self.tz == Tz::UTC {
                    text
                } else {
                    format!("{text} ({})", self.tz.name())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn sixth_field_is_seconds() {
        assert_eq!(
            toosimple_cron::rotate_seconds("* * * * * */15"),
            "*/15 * * * * *"
        );
        let s = CronSchedule::parse("* * * * * */15", "UTC").unwrap();
        assert_eq!(
            s.next_after(at("2026-01-01T00:00:01Z")),
            Some(at("2026-01-01T00:00:15Z"))
        );
    }

    #[test]
    fn manual_is_never_due() {
        let s = CronSchedule::parse("manual", "UTC").unwrap();
        assert!(s.is_manual());
        assert_eq!(s.next_after(at("2026-01-01T00:00:00Z")), None);
        assert!(
            s.occurrences(at("2020-01-01T00:00:00Z"), at("2030-01-01T00:00:00Z"), 10)
                .is_empty()
        );
    }

    #[test]
    fn occurrences_are_exclusive_of_start_and_inclusive_of_end() {
        let s = CronSchedule::parse("*/10 * * * *", "UTC").unwrap();
        let found = s.occurrences(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:30:00Z"), 100);
        assert_eq!(
            found,
            vec![
                at("2026-01-01T00:10:00Z"),
                at("2026-01-01T00:20:00Z"),
                at("2026-01-01T00:30:00Z")
            ]
        );
        assert_eq!(
            s.occurrences(at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z"), 5)
                .len(),
            5
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_why() {
        let e = CronSchedule::parse("61 * * * *", "UTC")
            .unwrap_err()
            .to_string();
        assert!(e.contains("61 * * * *"), "{e}");
        let e = CronSchedule::parse("* * *", "UTC").unwrap_err().to_string();
        assert!(e.contains("found 3"), "{e}");
        let e = CronSchedule::parse("* * * * *", "Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Mars/Olympus"), "{e}");
    }
}
