//! Bad or extreme schedules never panic the runtime: any expression and time zone parses or
//! says why, and an accepted schedule's occurrences are found (or not) without a panic from any
//! instant chrono can hold, in zones with DST, up to the ends of chrono's range.
//!
//! Correctness of the occurrences is `cron_oracle.rs`'s job; here the property is only that
//! the answers are consistent (`next_after(t) > t`, `latest_at_or_before(t) <= t`).

#[path = "../../toosimple-cron/tests/cronish/mod.rs"]
mod cronish;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;
use toosimple_core::{CronSchedule, Error};

/// Few enough cases for the debug suite (`PROPTEST_CASES` runs a longer hunt); no regression
/// files: a finding becomes a named test.
fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Zones with and without DST, a half-hour and a 45-minute offset, the date line, and names
/// that are not zones.
fn zone() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "UTC",
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Pacific/Apia",
            "America/Santiago",
            "Etc/GMT+12",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
        1 => Just(String::new()),
    ]
}

/// An instant anywhere in chrono's range, with weight on the ends of it, on the years where
/// searches give up (croner stops at year 5000), and on today.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let (min, max) = (
        DateTime::<Utc>::MIN_UTC.timestamp(),
        DateTime::<Utc>::MAX_UTC.timestamp(),
    );
    let year_5000: i64 = 95_617_584_000; // 5000-01-01T00:00:00Z
    const DAYS_400: i64 = 86_400 * 400;
    prop_oneof![
        2 => min..=max,
        1 => max - DAYS_400..=max,
        1 => min..=min + DAYS_400,
        1 => year_5000 - DAYS_400..=year_5000 + DAYS_400,
        1 => -DAYS_400..=DAYS_400,
        3 => 1_600_000_000..=2_000_000_000i64,
    ]
    .prop_map(|s| DateTime::from_timestamp(s, 0).expect("in chrono's range"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_schedule_parses_or_says_why_and_finds_occurrences_without_panicking(
        expr in prop_oneof![8 => cronish::expression(), 1 => any::<String>()],
        tz in zone(),
        at in instant(),
    ) {
        let schedule = match CronSchedule::parse(&expr, &tz) {
            Ok(schedule) => schedule,
            Err(Error::InvalidSchedule { expr: quoted, reason }) => {
                prop_assert_eq!(quoted, expr);
                prop_assert!(!reason.is_empty());
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(format!("not InvalidSchedule: {other}"))),
        };
        prop_assert!(!schedule.describe().is_empty());
        if let Some(next) = schedule.next_after(at) {
            prop_assert!(next > at, "{expr:?} in {tz}: next after {at} is {next}");
        }
        if let Some(latest) = schedule.latest_at_or_before(at) {
            prop_assert!(latest <= at, "{expr:?} in {tz}: latest at {at} is {latest}");
        }
        // Without names, `L`, `W` or `#`, an accepted schedule runs some day: the macros must
        // not let through one that never does. (In UTC only: a time in a DST gap every year
        // is skipped on purpose.)
        let plain = !expr.contains(|c: char| c.is_ascii_alphabetic() || c == '#');
        if plain && tz == "UTC" && !schedule.is_manual() {
            let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
            prop_assert!(schedule.next_after(start).is_some(), "{expr:?} never runs");
        }
        let until = at.checked_add_signed(TimeDelta::days(2)).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let found = schedule.occurrences(at, until, 5);
        prop_assert!(found.len() <= 5);
        prop_assert!(found.windows(2).all(|w| w[0] < w[1]));
        prop_assert!(found.iter().all(|t| *t > at && *t <= until));
    }
}

/// A day-of-month or month field: a value, a range or a list. (Empty list items are refused
/// although croner runs `1,,2` as `1,2`: `a_field_with_an_empty_list_item_is_an_error_...`.)
fn calendar_field(max: u32) -> impl Strategy<Value = String> {
    let item = prop_oneof![
        (1..=max).prop_map(|n| n.to_string()),
        (1..=max, 1..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
    ];
    prop_oneof![
        4 => (1..=max).prop_map(|n| n.to_string()),
        2 => prop::collection::vec(item, 1..4).prop_map(|items| items.join(",")),
        1 => Just("*".to_string()),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// The schedules the macros accept are those that run: a day-of-month and month pair is
    /// accepted exactly when searching finds an occurrence (the search is croner's, the check
    /// at parse time is ours).
    #[test]
    fn a_schedule_is_accepted_exactly_when_it_runs(
        dom in calendar_field(31),
        month in calendar_field(12),
    ) {
        let expr = format!("0 0 {dom} {month} *");
        let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let accepted = CronSchedule::parse(&expr, "UTC");
        let runs = croner_runs(&expr, start);
        prop_assert_eq!(accepted.is_ok(), runs, "{:?}: {:?}", expr, accepted.err());
    }
}

/// Whether croner alone, without our checks, finds an occurrence of `expr` after `start`
/// (`None` when croner refuses it).
fn croner_runs(expr: &str, start: DateTime<Utc>) -> bool {
    let Ok(cron) = expr.parse::<toosimple_cron::Cron>() else {
        return false;
    };
    cron.find_next_occurrence(&start, false).is_ok()
}

/// Finding: an instant within a day of the end of chrono's range, in a zone ahead of UTC, has
/// a wall-clock time chrono cannot hold, and croner panicked reading it ("Local time out of
/// range for `NaiveDateTime`"). Behind UTC, the same at the start of the range.
#[test]
fn instants_whose_local_time_is_out_of_chronos_range_have_no_occurrence_instead_of_a_panic() {
    let ahead = CronSchedule::parse("* * * * *", "Pacific/Apia").unwrap();
    let end: DateTime<Utc> = "+262142-12-31T11:00:00Z".parse().unwrap();
    assert_eq!(ahead.next_after(end), None);
    assert_eq!(ahead.latest_at_or_before(end), None);
    assert!(
        ahead
            .occurrences(end, DateTime::<Utc>::MAX_UTC, 5)
            .is_empty()
    );
    let behind = CronSchedule::parse("* * * * *", "Etc/GMT+12").unwrap();
    let start = DateTime::<Utc>::MIN_UTC;
    assert_eq!(behind.next_after(start), None);
    assert_eq!(behind.latest_at_or_before(start), None);
}
