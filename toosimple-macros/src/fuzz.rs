//! Bad cron strings never panic the macros: the string of `#[schedule(cron = "...")]`, any
//! string at all, goes through `#[task]`'s expansion (which checks its schedules with the
//! runtime's parser) and comes out as code or as a `compile_error!` quoting it, never as a
//! panic (which rustc would report as "proc macro panicked", with no span and no reason).
//!
//! A proc-macro crate's functions can only be called from its own unit tests, hence a module
//! here rather than a file in `tests/`.

#[path = "../../toosimple-cron/tests/cronish/mod.rs"]
mod cronish;

use proc_macro2::{Span, TokenStream};
use proptest::prelude::*;
use proptest::test_runner::Config;
use quote::quote;
use syn::LitStr;

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

/// `#[task] #[schedule(cron = expr)] fn tick() {}`, expanded as rustc would.
fn expand(expr: &str) -> String {
    let lit = LitStr::new(expr, Span::call_site());
    let item = quote! {
        #[schedule(cron = #lit)]
        fn tick() {}
    };
    crate::task::expand(TokenStream::new(), item).to_string()
}

fn check(expr: &str) -> Result<(), TestCaseError> {
    let expanded = expand(expr);
    let checked = crate::check::cron(&LitStr::new(expr, Span::call_site()), None);
    // The macro also refuses the shape that reads both ways, which the runtime accepts.
    let ambiguous = toosimple_cron::seconds_first_reading(expr).is_some();
    prop_assert_eq!(
        checked.is_ok(),
        toosimple_cron::parse(expr).is_ok() && !ambiguous,
        "the macro and the runtime disagree on {:?}",
        expr
    );
    match checked {
        Ok(()) => prop_assert!(
            !expanded.contains("compile_error"),
            "{expr:?} is valid but the expansion has an error: {expanded}"
        ),
        Err(error) => {
            let message = error.to_string();
            let quoted = format!(
                "{} cron expression {expr:?}: ",
                if ambiguous { "ambiguous" } else { "invalid" }
            );
            prop_assert!(message.starts_with(&quoted), "{message}");
            prop_assert!(
                expanded.contains("compile_error"),
                "{expr:?} is invalid but expands without an error"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_cron_string_expands_or_is_a_compile_error(expr in any::<String>()) {
        check(&expr)?;
    }

    #[test]
    fn cron_alphabet_expands_or_is_a_compile_error(expr in cronish::expression()) {
        check(&expr)?;
    }
}
