//! The overview's chart: executions that succeeded or failed in each minute of the last hour,
//! counted by the database and drawn as SVG on the server.
//!
//! Truncating a time to its minute is spelled differently by each backend: core's store counts.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use maud::{Markup, html};
use toosimple_core::Store;

/// How many minutes the chart covers.
pub(crate) const MINUTES: usize = 60;

/// Executions that succeeded and failed in each minute of the last hour, oldest minute first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastHour {
    /// The first minute shown.
    pub start: DateTime<Utc>,
    /// How many succeeded in each minute.
    pub succeeded: [i64; MINUTES],
    /// How many failed in each minute.
    pub failed: [i64; MINUTES],
}

/// Counts the executions of `store` that finished in each of the `MINUTES` minutes up to `now`.
pub(crate) fn last_hour(store: &Store, now: DateTime<Utc>) -> toosimple_core::Result<LastHour> {
    let end = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
    let start = end - TimeDelta::minutes(MINUTES as i64 - 1);
    let rows = store.finished_per_minute(start)?;
    let mut hour = LastHour {
        start,
        succeeded: [0; MINUTES],
        failed: [0; MINUTES],
    };
    for row in rows {
        let index = (row.minute - start.timestamp()).div_euclid(60);
        let Ok(index) = usize::try_from(index) else {
            continue;
        };
        if index >= MINUTES {
            continue;
        }
        match row.state.as_str() {
            "succeeded" => hour.succeeded[index] += row.n,
            "failed" => hour.failed[index] += row.n,
            _ => {}
        }
    }
    Ok(hour)
}

/// The chart as inline SVG: one stacked bar per minute (succeeded below, failed above).
pub(crate) fn svg(hour: &LastHour) -> Markup {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    const TOP: f64 = 14.0;
    let slot = W / MINUTES as f64;
    let max = (0..MINUTES)
        .map(|i| hour.succeeded[i] + hour.failed[i])
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = (H - TOP) / max as f64;
    let total_ok: i64 = hour.succeeded.iter().sum();
    let total_failed: i64 = hour.failed.iter().sum();
    let summary = format!("last hour: {total_ok} succeeded, {total_failed} failed");
    html! {
        figure class="chart" {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H + 20.0) } role="img" aria-label=(summary) {
                title { (summary) }
                line x1="0" y1=(H) x2=(W) y2=(H) class="axis" {}
                text x="0" y="10" class="label" { "max " (max) "/min" }
                @for i in 0..MINUTES {
                    @let ok = hour.succeeded[i] as f64 * scale;
                    @let failed = hour.failed[i] as f64 * scale;
                    @let x = i as f64 * slot + 1.0;
                    @let minute = hour.start + TimeDelta::minutes(i as i64);
                    g {
                        title { (minute.format("%H:%M")) " UTC: " (hour.succeeded[i]) " succeeded, " (hour.failed[i]) " failed" }
                        @if hour.succeeded[i] > 0 {
                            rect class="ok" x=(x) y=(H - ok) width=(slot - 2.0) height=(ok) {}
                        }
                        @if hour.failed[i] > 0 {
                            rect class="failed" x=(x) y=(H - ok - failed) width=(slot - 2.0) height=(failed) {}
                        }
                    }
                }
                text x="0" y=(H + 16.0) class="label" { "−60 min" }
                text x=(W / 2.0) y=(H + 16.0) class="label" text-anchor="middle" { "−30 min" }
                text x=(W) y=(H + 16.0) class="label" text-anchor="end" { "now" }
            }
            figcaption {
                span class="key ok" {} " succeeded (" (total_ok) ") "
                span class="key failed" {} " failed (" (total_failed) ")"
            }
        }
    }
}
