//! The cron syntax of toosimple's `#[schedule(cron = "...")]`, in one place: the macros check it
//! at compile time and the runtime reads it with the same rules.
//!
//! An expression is one of:
//! - `"manual"`: never due by itself (the schedule only runs when triggered);
//! - a nickname such as `"@daily"` or `"@hourly"`;
//! - 5 fields (minute hour day-of-month month day-of-week);
//! - 6 fields, the 6th being **seconds** (django-toosimple-q's convention, seconds last):
//!   `"* * * * * */15"` is every 15 seconds.
//!
//! [croner](https://docs.rs/croner) is the engine; [`rotate_seconds`] moves our seconds field to
//! the front, where croner reads it.
//!
//! # Seconds last, and the one shape that reads both ways
//!
//! Quartz, Spring and croner put seconds *first*. Most six-field expressions written that way
//! are invalid or absurd in ours, but one shape is valid and plausible in both:
//! [`seconds_first_reading`] finds it (six fields, the sixth `*` or `?`, not every field `*`,
//! and valid read seconds first). `"*/15 * * * * *"` is, for us, every second during minutes
//! 0, 15, 30 and 45, and seconds first every 15 seconds. The macros refuse it unless told which
//! is meant.
//!
//! ```
//! assert!(toosimple_cron::parse("manual").unwrap().is_none());
//! assert!(toosimple_cron::parse("30 8 * * *").unwrap().is_some());
//! let error = toosimple_cron::parse("61 * * * *").unwrap_err();
//! assert_eq!(error.field().map(|f| (f.name, f.text.as_str())), Some(("minute", "61")));
//! ```

#![warn(missing_docs)]

use std::fmt;

/// A parsed cron expression (croner's), to find its occurrences.
pub use croner::Cron;

/// The names of our fields, in the order they are written (seconds last).
pub const FIELDS: [&str; 6] = [
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "second",
];

/// The expression of a schedule that is never due by itself.
pub const MANUAL: &str = "manual";

/// Moves a sixth field (seconds, written last) to the front, where croner reads seconds:
/// `"* * * * * */15"` → `"*/15 * * * * *"`. Unrotated, croner would silently read it as a day of
/// the week. Other lengths are only re-spaced.
pub fn rotate_seconds(expr: &str) -> String {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() == 6 {
        format!("{} {}", fields[5], fields[..5].join(" "))
    } else {
        fields.join(" ")
    }
}

/// The two meanings of an expression that reads differently seconds last (ours) and seconds
/// first (Quartz, Spring, croner), from [`seconds_first_reading`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondsFirst {
    /// Our reading, every second (the sixth field) while the restricted fields match: their
    /// names and values as written, such as `[("minute", "*/15")]`.
    pub as_written: Vec<(&'static str, String)>,
    /// The seconds-first reading's restricted fields, named seconds first:
    /// `[("second", "*/15")]`.
    pub seconds_first: Vec<(&'static str, String)>,
    /// The seconds-first meaning in our syntax (the first field moved to the end):
    /// `"* * * * * */15"`.
    pub seconds_first_rewrite: String,
    /// Our meaning with every second spelled out (`0-59` for the sixth field), which no
    /// seconds-first reader takes for a day of the week: `"*/15 * * * * 0-59"`.
    pub seconds_last_rewrite: String,
}

/// The field names of a seconds-first expression, in the order they are written.
const SECONDS_FIRST_FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

/// Whether `expr` is the shape that means one thing seconds last and another seconds first:
/// six fields whose sixth is `*` (or `?`), with some other field restricted, that croner also
/// accepts read seconds first. `None` for every other expression (valid or not).
///
/// Why exactly this shape: read our way, a sixth field `*` runs the task every second for whole
/// minutes, which one rarely means (a sixth field is written to pick seconds); read seconds
/// first, the same `*` is the day of the week, which nearly every expression leaves `*`. Other
/// sixth fields are read as seconds without question: a number, range or list beyond 7 cannot
/// be a day of the week, names (`MON`) cannot be seconds, and `0 9 * * * 5` is an ordinary
/// "09:00:05" that refusing would punish. `* * * * * *` means every second both ways.
///
/// ```
/// let both = toosimple_cron::seconds_first_reading("*/15 * * * * *").unwrap();
/// assert_eq!(both.seconds_first_rewrite, "* * * * * */15");
/// assert_eq!(both.seconds_last_rewrite, "*/15 * * * * 0-59");
/// assert!(toosimple_cron::seconds_first_reading("* * * * * */15").is_none());
/// assert!(toosimple_cron::seconds_first_reading("* * * * * *").is_none());
/// ```
pub fn seconds_first_reading(expr: &str) -> Option<SecondsFirst> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != 6 || !matches!(fields[5], "*" | "?") || fields.iter().all(|f| *f == "*") {
        return None;
    }
    // Valid our way, and valid when croner reads the fields as written (seconds first).
    parse(expr).ok()??;
    croner::parser::CronParser::new()
        .parse(&fields.join(" "))
        .ok()?;
    let restricted = |names: &[&'static str; 6]| {
        names
            .iter()
            .zip(&fields)
            .filter(|(_, f)| !matches!(**f, "*" | "?"))
            .map(|(n, f)| (*n, f.to_string()))
            .collect::<Vec<_>>()
    };
    let mut seconds_first_rewrite = fields[1..].to_vec();
    // Every second, moved last, would be this same shape again.
    seconds_first_rewrite.push(if fields[0] == "*" { "0-59" } else { fields[0] });
    let mut seconds_last_rewrite = fields[..5].to_vec();
    seconds_last_rewrite.push("0-59");
    Some(SecondsFirst {
        as_written: restricted(&FIELDS),
        seconds_first: restricted(&SECONDS_FIRST_FIELDS),
        seconds_first_rewrite: seconds_first_rewrite.join(" "),
        seconds_last_rewrite: seconds_last_rewrite.join(" "),
    })
}

/// Parses `expr` in our syntax (see the crate docs): `Ok(None)` for `"manual"`, `Ok(Some(cron))`
/// for a valid expression. Surrounding whitespace is ignored.
pub fn parse(expr: &str) -> Result<Option<Cron>, CronError> {
    let trimmed = expr.trim();
    if trimmed == MANUAL {
        return Ok(None);
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    let nickname = fields.len() == 1 && trimmed.starts_with('@');
    if !nickname && !(5..=6).contains(&fields.len()) {
        return Err(CronError::FieldCount {
            found: fields.len(),
        });
    }
    // croner takes an empty list item (`"1,,2"`, `"1,"`), and a field of commas alone
    // (`","`) as one that matches no time: a schedule that compiles and never runs.
    if let Some((i, text)) = fields
        .iter()
        .enumerate()
        .find(|(_, f)| !nickname && f.split(',').any(str::is_empty))
    {
        let reason =
            "a list has an empty item: write values between commas, as in 1,15".to_string();
        return Err(CronError::Invalid {
            reason: reason.clone(),
            field: Some(Field {
                name: FIELDS[i],
                text: text.to_string(),
                reason,
            }),
        });
    }
    let parser = croner::parser::CronParser::new();
    let error = match parser.parse(&rotate_seconds(trimmed)) {
        Ok(cron) if nickname => return Ok(Some(cron)),
        Ok(cron) => return never_due(&cron, &fields).map(|()| Some(cron)),
        Err(error) => error,
    };
    // Name the field at fault: the first that fails with every other field set to `*`.
    let field = (0..fields.len()).filter(|_| !nickname).find_map(|i| {
        let alone: Vec<&str> = (0..fields.len())
            .map(|j| if j == i { fields[j] } else { "*" })
            .collect();
        parser
            .parse(&rotate_seconds(&alone.join(" ")))
            .err()
            .map(|e| Field {
                name: FIELDS[i],
                text: fields[i].to_string(),
                reason: e.to_string(),
            })
    });
    Err(CronError::Invalid {
        reason: error.to_string(),
        field,
    })
}

/// The longest month `month` (1-12) has, leap years counted.
fn days_in(month: u16) -> u16 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Refuses an expression croner accepts whose days of the month fall in none of its months
/// (`"0 0 30 2 *"`): it would compile and never run. Only when the day of the week is
/// unrestricted, since a restricted one also selects days (vixie cron ORs the two), and only
/// for plain days (`L`, `W` move them).
fn never_due(cron: &Cron, fields: &[&str]) -> Result<(), CronError> {
    let pattern = &cron.pattern;
    let any_weekday = pattern.days_of_week.values().len() >= 7;
    if !any_weekday || pattern.days.has_modifiers() {
        return Ok(());
    }
    let days = pattern.days.values();
    let possible = pattern
        .months
        .values()
        .into_iter()
        .any(|month| days.iter().any(|&day| day <= days_in(month)));
    if possible {
        return Ok(());
    }
    let reason = format!(
        "day {} never falls in month {}: the schedule would never run",
        fields[2], fields[3]
    );
    Err(CronError::Invalid {
        reason: reason.clone(),
        field: Some(Field {
            name: FIELDS[2],
            text: fields[2].to_string(),
            reason,
        }),
    })
}

/// Why an expression is not in our syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronError {
    /// Neither `"manual"`, a nickname, 5 fields nor 6.
    FieldCount {
        /// How many whitespace-separated fields were written.
        found: usize,
    },
    /// The engine rejects the expression.
    Invalid {
        /// The engine's message about the whole expression.
        reason: String,
        /// The field at fault, when one alone is wrong.
        field: Option<Field>,
    },
}

/// One field that is wrong on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name, one of [`FIELDS`] (`"minute"`, …, `"second"`).
    pub name: &'static str,
    /// The field as written.
    pub text: String,
    /// The engine's message about it.
    pub reason: String,
}

impl CronError {
    /// The field at fault, when one alone is wrong.
    pub fn field(&self) -> Option<&Field> {
        match self {
            CronError::Invalid { field, .. } => field.as_ref(),
            CronError::FieldCount { .. } => None,
        }
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronError::FieldCount { found } => write!(
                f,
                "expected 5 fields, or 6 with seconds last, found {found}"
            ),
            CronError::Invalid { reason, .. } => f.write_str(reason),
        }
    }
}

impl std::error::Error for CronError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_seconds_to_the_front() {
        assert_eq!(rotate_seconds("* * * * * */15"), "*/15 * * * * *");
        assert_eq!(rotate_seconds("30 8 * * *"), "30 8 * * *");
        assert_eq!(rotate_seconds("  30  8 * * 1-5   0 "), "0 30 8 * * 1-5");
        assert_eq!(rotate_seconds("@daily"), "@daily");
    }

    #[test]
    fn accepts_our_syntax() {
        for ok in [
            "30 8 * * *",
            "* * * * * */15",
            "0 0 13 * 5",
            "0 9 * * MON-FRI 30",
            " manual ",
            "@daily",
        ] {
            assert_eq!(parse(ok).err(), None, "{ok}");
        }
        assert!(parse("manual").unwrap().is_none());
    }

    #[test]
    fn finds_the_shape_that_reads_seconds_first() {
        let both = seconds_first_reading(" */15 * * * *  * ").unwrap();
        assert_eq!(both.as_written, [("minute", "*/15".to_string())]);
        assert_eq!(both.seconds_first, [("second", "*/15".to_string())]);
        assert_eq!(both.seconds_first_rewrite, "* * * * * */15");
        assert_eq!(both.seconds_last_rewrite, "*/15 * * * * 0-59");
        for expr in [
            "0 * * * * *",
            "30 8 * * * *",
            "* 8 * * 1-5 *",
            "0,30 * * * * ?",
        ] {
            let Some(both) = seconds_first_reading(expr) else {
                // `?` is not a second: already an error.
                assert!(parse(expr).is_err(), "{expr}");
                continue;
            };
            // Each rewrite is valid and reads one way only.
            for rewrite in [&both.seconds_first_rewrite, &both.seconds_last_rewrite] {
                assert!(parse(rewrite).is_ok(), "{rewrite}");
                assert_eq!(seconds_first_reading(rewrite), None, "{rewrite}");
            }
        }
        for one_way in [
            "* * * * * *",    // every second both ways
            "* * * * * */15", // a day of the week `*/15` is nobody's meaning
            "0 9 * * * 30",   // 30 cannot be a day of the week
            "0 9 * * * 5",    // seconds, though 5 could be Friday
            "0 12 L * * *",   // seconds first, `L` would be an hour
            "30 8 * * *",     // five fields
            "61 * * * * *",   // invalid our way
            "@daily",
        ] {
            assert_eq!(seconds_first_reading(one_way), None, "{one_way}");
        }
    }

    #[test]
    fn names_the_bad_field() {
        let field = |expr| parse(expr).unwrap_err().field().cloned().unwrap();
        let minute = field("61 * * * *");
        assert_eq!((minute.name, minute.text.as_str()), ("minute", "61"));
        assert_eq!(minute.reason, "Component error: Number out of bounds.");
        assert_eq!(field("* * * * * 61").name, "second");
        assert_eq!(
            parse("* * * *").unwrap_err(),
            CronError::FieldCount { found: 4 }
        );
        assert_eq!(
            parse("* * * * * * *").unwrap_err(),
            CronError::FieldCount { found: 7 }
        );
        assert_eq!(parse("").unwrap_err(), CronError::FieldCount { found: 0 });
        assert_eq!(parse("@sometimes").unwrap_err().field(), None);
    }
}
