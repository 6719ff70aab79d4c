//! Bad cron strings never panic the parser: whatever is written in `#[schedule(cron = "...")]`
//! (checked by the macros at compile time) or stored in a schedule row, `parse` answers `Ok` or an
//! error with a message, and what it accepts can be described.

mod cronish;

use proptest::prelude::*;
use proptest::test_runner::Config;
use toosimple_cron::{CronError, FIELDS, parse};

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

fn check(expr: &str) -> Result<(), TestCaseError> {
    match parse(expr) {
        Ok(None) => prop_assert_eq!(expr.trim(), "manual"),
        Ok(Some(cron)) => {
            prop_assert!(!cron.describe().is_empty());
        }
        Err(error) => {
            prop_assert!(!error.to_string().is_empty(), "empty message for {expr:?}");
            match &error {
                CronError::FieldCount { found } => {
                    prop_assert_eq!(*found, expr.split_whitespace().count())
                }
                CronError::Invalid { field, .. } => {
                    if let Some(field) = field {
                        prop_assert!(FIELDS.contains(&field.name));
                        prop_assert!(expr.split_whitespace().any(|f| f == field.text));
                        prop_assert!(!field.reason.is_empty());
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_string_parses_or_says_why(expr in any::<String>()) {
        check(&expr)?;
    }

    #[test]
    fn cron_alphabet_parses_or_says_why(expr in cronish::expression()) {
        check(&expr)?;
    }
}

/// Finding: croner accepts an empty list item, and reads a field of commas alone as one that
/// matches nothing, so `#[schedule(cron = "0 0 * * ,")]` compiled and never ran ("At 00:00,
/// on ." was its description).
#[test]
fn a_field_with_an_empty_list_item_is_an_error_not_a_schedule_that_never_runs() {
    for (expr, name, text) in [
        ("0 0 * * ,", "day-of-week", ","),
        (", * * * *", "minute", ","),
        ("0 0 1,,2 * *", "day-of-month", "1,,2"),
        ("0 0 * * 1,", "day-of-week", "1,"),
        ("* * * * * ,5", "second", ",5"),
    ] {
        let error = parse(expr).unwrap_err();
        let field = error.field().unwrap_or_else(|| panic!("{expr}: {error}"));
        assert_eq!((field.name, field.text.as_str()), (name, text), "{expr}");
        assert!(error.to_string().contains("empty item"), "{expr}: {error}");
    }
    assert!(parse("0 0 1,2 * *").unwrap().is_some());
}

/// Finding: croner accepts days of the month that fall in none of the months, so
/// `#[schedule(cron = "0 0 30 2 *")]` compiled and never ran.
#[test]
fn days_that_fall_in_none_of_the_months_are_an_error_not_a_schedule_that_never_runs() {
    for expr in [
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 30-31 2 *",
        "* * 31 2 * 0",
    ] {
        let error = parse(expr).unwrap_err();
        assert_eq!(
            error.field().map(|f| f.name),
            Some("day-of-month"),
            "{expr}"
        );
        assert!(error.to_string().contains("never run"), "{expr}: {error}");
    }
    // February 29th comes every four years; a weekday, the last day or a month with the
    // 31st widens the days.
    for expr in [
        "0 0 29 2 *",
        "0 0 30 2 MON",
        "0 0 L 2 *",
        "0 0 31 2,3 *",
        "0 0 31 * *",
    ] {
        assert!(parse(expr).unwrap().is_some(), "{expr}");
    }
}
