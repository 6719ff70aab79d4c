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
