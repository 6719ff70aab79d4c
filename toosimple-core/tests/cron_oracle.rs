//! `CronSchedule` checked against an independent implementation, the `cron` crate, plus
//! DST and edge cases.
//!
//! # Property test (`agrees_with_cron_crate`)
//!
//! Random expressions in our syntax (six fields, **seconds last**) are parsed by
//! `CronSchedule` (croner underneath, after `rotate_seconds`) and, translated, by the `cron`
//! crate; from a random start time in UTC both must give the same next 5 occurrences.
//! `latest_at_or_before` is checked against the same sequence (each occurrence is its own
//! latest, one second earlier the previous one is).
//!
//! Translation to the `cron` crate: the seconds field moves to the front; days of the week go
//! from our 0-7 (0 and 7 = Sunday) to Quartz 1-7 (1 = Sunday): `n` -> `n + 1`, `7` -> `1`,
//! a range ending at 7 is split (`5-7` -> `6-7,1`), a stepped range ending at 7 is written
//! out as a list, `*/n` is unchanged (both start on Sunday).
//!
//! The compared subset, where the two libraries mean the same thing:
//! - each field is `*` or a list of 1-3 items among `n`, `a-b` (a <= b), `*/n`, `a-b/n`; no
//!   `*` inside a list, no `L`, `W`, `#`, `?`, names, `n/step`, or year field;
//! - steps are at most the field's maximum (59, 23, 31, 12, 7), the `cron` crate's limit;
//! - day of month and day of week: at most one of them is restricted (the other is exactly
//!   `*`), which both libraries read the same way. When both are restricted, croner ORs them
//!   (vixie cron) while the `cron` crate ANDs them: those cases (about 1 in 5) are compared
//!   with the union of two `cron` schedules, one with each field restricted;
//! - no impossible day/month combination (the 31st in 30-day months only, the 30th in
//!   February): at least one (day, month) pair exists, counting February 29;
//! - start times between 1990 and 2070 in UTC, so that 5 occurrences (even February 29 only)
//!   fall before 2100, where the `cron` crate stops searching.
//!
//! Not compared, because the libraries differ on purpose: DST gaps and overlaps (the `cron`
//! crate skips a nonexistent local time and runs a repeated one twice; croner runs at the end of
//! the gap and once), and the OR/AND choice above. The DST behaviour we rely on has its own
//! tests below.
//!
//! Reproduce a failure with `CRON_ORACLE_SEED=<seed>` (printed on failure and at the end);
//! `CRON_ORACLE_CASES=<n>` changes the number of cases (default 10,000).

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use toosimple_core::CronSchedule;

const DEFAULT_SEED: u64 = 0x7005_1A9E_C205;
const DEFAULT_CASES: usize = 10_000;
const OCCURRENCES: usize = 5;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Expression grammar

#[derive(Debug, Clone, Copy)]
enum Item {
    Num(u32),
    Range(u32, u32),
    StarStep(u32),
    RangeStep(u32, u32, u32),
}

#[derive(Debug, Clone)]
enum Field {
    Star,
    List(Vec<Item>),
}

impl Item {
    fn render(self) -> String {
        match self {
            Item::Num(n) => n.to_string(),
            Item::Range(a, b) => format!("{a}-{b}"),
            Item::StarStep(n) => format!("*/{n}"),
            Item::RangeStep(a, b, n) => format!("{a}-{b}/{n}"),
        }
    }

    /// The values it selects in `min..=max` (standard cron meaning).
    fn values(self, min: u32, max: u32) -> Vec<u32> {
        match self {
            Item::Num(n) => vec![n],
            Item::Range(a, b) => (a..=b).collect(),
            Item::StarStep(n) => (min..=max).step_by(n as usize).collect(),
            Item::RangeStep(a, b, n) => (a..=b).step_by(n as usize).collect(),
        }
    }
}

impl Field {
    fn render(&self) -> String {
        match self {
            Field::Star => "*".to_string(),
            Field::List(items) => items
                .iter()
                .map(|i| i.render())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    fn values(&self, min: u32, max: u32) -> BTreeSet<u32> {
        match self {
            Field::Star => (min..=max).collect(),
            Field::List(items) => items.iter().flat_map(|i| i.values(min, max)).collect(),
        }
    }

    /// Our day-of-week field (0-7, Sunday = 0 or 7) in Quartz numbering (1-7, Sunday = 1).
    fn dow_to_quartz(&self) -> String {
        let q = |n: u32| if n == 7 { 1 } else { n + 1 };
        match self {
            Field::Star => "*".to_string(),
            Field::List(items) => items
                .iter()
                .map(|&item| match item {
                    Item::Num(n) => q(n).to_string(),
                    Item::Range(a, b) if b < 7 => format!("{}-{}", q(a), q(b)),
                    Item::Range(7, 7) => "1".to_string(),
                    Item::Range(a, _) => format!("{}-7,1", q(a)),
                    // From Sunday (0) in ours, from Sunday (1) in Quartz: the same days.
                    Item::StarStep(n) => format!("*/{n}"),
                    Item::RangeStep(a, b, n) if b < 7 => format!("{}-{}/{n}", q(a), q(b)),
                    Item::RangeStep(..) => item
                        .values(0, 7)
                        .into_iter()
                        .map(|v| q(v).to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                })
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

fn gen_item(rng: &mut StdRng, min: u32, max: u32) -> Item {
    let pair = |rng: &mut StdRng| {
        let a = rng.random_range(min..=max);
        let b = rng.random_range(a..=max);
        (a, b)
    };
    match rng.random_range(0..4) {
        0 => Item::Num(rng.random_range(min..=max)),
        1 => {
            let (a, b) = pair(rng);
            Item::Range(a, b)
        }
        // Small steps more often than large ones, but up to the field's maximum.
        2 => Item::StarStep(if rng.random_bool(0.7) {
            rng.random_range(1..=max.min(15))
        } else {
            rng.random_range(1..=max)
        }),
        _ => {
            let (a, b) = pair(rng);
            Item::RangeStep(a, b, rng.random_range(1..=max.min(15)))
        }
    }
}

fn gen_restricted(rng: &mut StdRng, min: u32, max: u32) -> Field {
    let len = rng.random_range(1..=3);
    Field::List((0..len).map(|_| gen_item(rng, min, max)).collect())
}

fn gen_field(rng: &mut StdRng, min: u32, max: u32, star_probability: f64) -> Field {
    if rng.random_bool(star_probability) {
        Field::Star
    } else {
        gen_restricted(rng, min, max)
    }
}

fn days_in_month_max(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whether some (day, month) pair exists (in a leap year at worst).
fn possible(dom: &Field, month: &Field) -> bool {
    let days = dom.values(1, 31);
    month
        .values(1, 12)
        .iter()
        .any(|&m| days.iter().any(|&d| d <= days_in_month_max(m)))
}

#[derive(Debug)]
struct Case {
    sec: Field,
    min: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

impl Case {
    fn generate(rng: &mut StdRng) -> Case {
        let sec = gen_field(rng, 0, 59, 0.3);
        let min = gen_field(rng, 0, 59, 0.3);
        let hour = gen_field(rng, 0, 23, 0.35);
        let month = gen_field(rng, 1, 12, 0.5);
        let (mut dom, dow) = match rng.random_range(0..10) {
            0..=2 => (Field::Star, Field::Star),
            3..=5 => (gen_restricted(rng, 1, 31), Field::Star),
            6 | 7 => (Field::Star, gen_restricted(rng, 0, 7)),
            _ => (gen_restricted(rng, 1, 31), gen_restricted(rng, 0, 7)),
        };
        // Only when it is alone: with a restricted day of week, days come from either field.
        if matches!(dow, Field::Star) {
            while !possible(&dom, &month) {
                dom = gen_restricted(rng, 1, 31);
            }
        }
        Case {
            sec,
            min,
            hour,
            dom,
            month,
            dow,
        }
    }

    /// Our syntax: seconds last.
    fn ours(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.min.render(),
            self.hour.render(),
            self.dom.render(),
            self.month.render(),
            self.dow.render(),
            self.sec.render()
        )
    }

    /// `cron` crate syntax: seconds first, Quartz days of the week.
    fn quartz(&self, dom: &Field, dow: &Field) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.sec.render(),
            self.min.render(),
            self.hour.render(),
            dom.render(),
            self.month.render(),
            dow.dow_to_quartz()
        )
    }

    /// The `cron` crate expressions whose union is the same schedule.
    fn oracle_exprs(&self) -> Vec<String> {
        match (&self.dom, &self.dow) {
            (Field::List(_), Field::List(_)) => vec![
                self.quartz(&self.dom, &Field::Star),
                self.quartz(&Field::Star, &self.dow),
            ],
            (dom, dow) => vec![self.quartz(dom, dow)],
        }
    }
}

fn oracle_next(exprs: &[String], start: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut all = BTreeSet::new();
    for expr in exprs {
        let schedule = cron::Schedule::from_str(expr)
            .unwrap_or_else(|e| panic!("cron crate rejects {expr:?}: {e}"));
        all.extend(schedule.after(&start).take(OCCURRENCES));
    }
    all.into_iter().take(OCCURRENCES).collect()
}

fn env_or<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn agrees_with_cron_crate() {
    let seed: u64 = env_or("CRON_ORACLE_SEED", DEFAULT_SEED);
    let cases: usize = env_or("CRON_ORACLE_CASES", DEFAULT_CASES);
    let mut rng = StdRng::seed_from_u64(seed);
    let lo = at("1990-01-01T00:00:00Z").timestamp();
    let hi = at("2070-01-01T00:00:00Z").timestamp();
    let until = at("2200-01-01T00:00:00Z");
    let started = std::time::Instant::now();
    let (mut skipped, mut or_cases) = (0, 0);

    for i in 0..cases {
        let case = Case::generate(&mut rng);
        let start = Utc.timestamp_opt(rng.random_range(lo..hi), 0).unwrap();
        let ours = case.ours();
        let exprs = case.oracle_exprs();
        or_cases += usize::from(exprs.len() == 2);
        let context = || {
            format!(
                "case {i}, seed {seed} (CRON_ORACLE_SEED={seed}): {ours:?} after {start}, \
                 cron crate: {exprs:?}"
            )
        };

        let schedule = CronSchedule::parse(&ours, "UTC")
            .unwrap_or_else(|e| panic!("{}: CronSchedule rejects it: {e}", context()));
        let expected = oracle_next(&exprs, start);
        if expected.len() < OCCURRENCES {
            skipped += 1;
            continue;
        }
        let got = schedule.occurrences(start, until, OCCURRENCES);
        assert_eq!(got, expected, "{}", context());

        assert_eq!(
            schedule.next_after(start),
            Some(expected[0]),
            "{}",
            context()
        );
        for (k, &occurrence) in expected.iter().enumerate() {
            assert_eq!(
                schedule.latest_at_or_before(occurrence),
                Some(occurrence),
                "{}: latest_at_or_before({occurrence})",
                context()
            );
            let just_before = occurrence - Duration::seconds(1);
            let latest = schedule.latest_at_or_before(just_before);
            if k > 0 {
                assert_eq!(
                    latest,
                    Some(expected[k - 1]),
                    "{}: latest_at_or_before({just_before})",
                    context()
                );
            } else if let Some(latest) = latest {
                assert!(
                    latest <= start,
                    "{}: latest_at_or_before({just_before}) = {latest}, after the start",
                    context()
                );
            }
        }
    }

    println!(
        "seed {seed}: {cases} cases ({or_cases} with day of month OR day of week), \
         {skipped} skipped, {:?}",
        started.elapsed()
    );
    // The generator avoids impossible and too sparse expressions: skips mean it is wrong.
    assert_eq!(
        skipped, 0,
        "seed {seed}: cases without 5 occurrences before 2100"
    );
}

#[test]
fn day_of_week_translation() {
    let case = |dow: Field| Case {
        sec: Field::Star,
        min: Field::Star,
        hour: Field::Star,
        dom: Field::Star,
        month: Field::Star,
        dow,
    };
    let quartz_dow = |dow: Field| {
        case(dow).oracle_exprs()[0]
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(quartz_dow(Field::List(vec![Item::Num(0)])), "1");
    assert_eq!(quartz_dow(Field::List(vec![Item::Num(7)])), "1");
    assert_eq!(quartz_dow(Field::List(vec![Item::Num(6)])), "7");
    assert_eq!(quartz_dow(Field::List(vec![Item::Range(1, 5)])), "2-6");
    assert_eq!(quartz_dow(Field::List(vec![Item::Range(5, 7)])), "6-7,1");
    assert_eq!(
        quartz_dow(Field::List(vec![Item::RangeStep(3, 7, 2)])),
        "4,6,1"
    );
    assert_eq!(quartz_dow(Field::List(vec![Item::StarStep(2)])), "*/2");
}

// ---------------------------------------------------------------------------------------------
// DST in Europe/Paris (2026: spring forward on March 29 at 02:00, fall back on October 25 at 03:00)

fn local(occurrences: &[DateTime<Utc>]) -> Vec<String> {
    occurrences
        .iter()
        .map(|t| t.with_timezone(&Paris).to_rfc3339())
        .collect()
}

#[test]
fn dst_spring_forward_nonexistent_time_runs_once_at_the_end_of_the_gap() {
    let s = CronSchedule::parse("30 2 * * *", "Europe/Paris").unwrap();
    let found = s.occurrences(at("2026-03-27T00:00:00Z"), at("2026-03-31T00:00:00Z"), 100);
    // 02:30 does not exist on March 29 (02:00 CET -> 03:00 CEST): croner runs at 03:00.
    assert_eq!(
        local(&found),
        [
            "2026-03-27T02:30:00+01:00",
            "2026-03-28T02:30:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
        ]
    );
}

#[test]
fn dst_fall_back_repeated_time_runs_once() {
    let s = CronSchedule::parse("30 2 * * *", "Europe/Paris").unwrap();
    let found = s.occurrences(at("2026-10-23T00:00:00Z"), at("2026-10-27T00:00:00Z"), 100);
    // 02:30 happens twice on October 25 (03:00 CEST -> 02:00 CET): one run, the first.
    assert_eq!(
        local(&found),
        [
            "2026-10-23T02:30:00+02:00",
            "2026-10-24T02:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T02:30:00+01:00",
        ]
    );
}

fn one_per_local_day_at_eight(found: &[DateTime<Utc>], first: NaiveDate, days: usize) {
    let dates: Vec<NaiveDate> = found
        .iter()
        .map(|t| t.with_timezone(&Paris).date_naive())
        .collect();
    let expected: Vec<NaiveDate> = first.iter_days().take(days).collect();
    assert_eq!(dates, expected, "{:?}", local(found));
    for t in found {
        assert_eq!(
            t.with_timezone(&Paris).format("%H:%M:%S").to_string(),
            "08:00:00",
            "{t}"
        );
    }
}

#[test]
fn dst_daily_at_eight_local() {
    let s = CronSchedule::parse("0 8 * * *", "Europe/Paris").unwrap();

    let spring = s.occurrences(at("2026-03-27T12:00:00Z"), at("2026-03-31T12:00:00Z"), 100);
    one_per_local_day_at_eight(&spring, NaiveDate::from_ymd_opt(2026, 3, 28).unwrap(), 4);
    assert_eq!(spring[0], at("2026-03-28T07:00:00Z"));
    assert_eq!(spring[1], at("2026-03-29T06:00:00Z"));

    let autumn = s.occurrences(at("2026-10-23T12:00:00Z"), at("2026-10-27T12:00:00Z"), 100);
    one_per_local_day_at_eight(&autumn, NaiveDate::from_ymd_opt(2026, 10, 24).unwrap(), 4);
    assert_eq!(autumn[0], at("2026-10-24T06:00:00Z"));
    assert_eq!(autumn[1], at("2026-10-25T07:00:00Z"));
}

#[test]
fn utc_daily_at_eight() {
    let s = CronSchedule::parse("0 8 * * *", "UTC").unwrap();
    let found = s.occurrences(at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"), 100);
    assert_eq!(
        found,
        [
            at("2026-03-28T08:00:00Z"),
            at("2026-03-29T08:00:00Z"),
            at("2026-03-30T08:00:00Z"),
        ]
    );
    assert_eq!(
        s.latest_at_or_before(at("2026-03-29T07:59:59Z")),
        Some(at("2026-03-28T08:00:00Z"))
    );
}

// ---------------------------------------------------------------------------------------------
// Edge cases

#[test]
fn every_second() {
    let s = CronSchedule::parse("* * * * * *", "UTC").unwrap();
    let start = at("2026-12-31T23:59:55Z");
    let found = s.occurrences(start, start + Duration::seconds(10), 100);
    let expected: Vec<_> = (1..=10).map(|k| start + Duration::seconds(k)).collect();
    assert_eq!(found, expected);
}

#[test]
fn nicknames() {
    let start = at("2026-03-27T23:59:50Z");
    for (nickname, ours) in [
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
    ] {
        let by_name = CronSchedule::parse(nickname, "UTC").unwrap();
        let spelled = CronSchedule::parse(ours, "UTC").unwrap();
        let until = at("2100-01-01T00:00:00Z");
        let found = by_name.occurrences(start, until, 3);
        assert_eq!(found, spelled.occurrences(start, until, 3), "{nickname}");
        assert_eq!(found.len(), 3, "{nickname}");
    }
    let daily = CronSchedule::parse("@daily", "Europe/Paris").unwrap();
    assert_eq!(
        local(&daily.occurrences(start, at("2026-03-30T00:00:00Z"), 100)),
        ["2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"]
    );
}

#[test]
fn manual_has_no_occurrences() {
    let s = CronSchedule::parse("manual", "Europe/Paris").unwrap();
    assert!(s.is_manual());
    assert_eq!(s.next_after(at("2026-01-01T00:00:00Z")), None);
    assert_eq!(s.latest_at_or_before(at("2026-01-01T00:00:00Z")), None);
    assert!(
        s.occurrences(at("2000-01-01T00:00:00Z"), at("2100-01-01T00:00:00Z"), 1000)
            .is_empty()
    );
}
