//! Parsing of the `#[task(...)]` and `#[schedule(...)]` option lists.
//!
//! Both lists are `key = value` pairs separated by commas. Each attribute's options are one
//! [`options!`] table ([`TaskOptions`], [`ScheduleOptions`]): the fields, the reading of each
//! value, the "expected one of: …" list of an unknown key, duplicate detection and the hints for
//! misspelled keys all come from it. Every problem is recorded in an [`Errors`] and parsing goes
//! on, so one build reports all of them.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitBool, LitStr, Token, UnOp};

/// Gathers every error of one expansion, to report them all at once.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// One option key of a table: what `options!` knows about it besides how to read it.
pub(crate) struct OptionKey {
    pub(crate) key: &'static str,
    /// A value to show in "write `key = …`" messages.
    example: &'static str,
    /// Keys written by mistake for this one (other libraries' names, abbreviations).
    renamed: &'static [&'static str],
}

/// An option list: its keys in order, and how one `key = value` is stored.
trait Options {
    /// The attribute, as messages name it: "#[task]".
    const ATTR: &'static str;
    const KEYS: &'static [OptionKey];
    /// The other attribute and its keys, to say "`priority` is an option of `#[task(...)]`".
    const OTHER: (&'static str, &'static [OptionKey]);

    /// Reads `value` into `option` (one of `KEYS`).
    fn set(&mut self, option: &OptionKey, value: &Expr) -> syn::Result<()>;
}

/// The one table of each attribute's options. Each line is
/// `key: Type = reader(args), example "…", renamed ["…"];`, which gives the `Option<Type>` field
/// of the same name (`None` when not written), the key in "valid ones are …" messages and in
/// duplicate detection, its example, and the hints for its misspellings. `reader(key, value,
/// args…)` turns the written expression into a `Type`.
macro_rules! options {
    (
        $(#[$meta:meta])*
        struct $name:ident for $attr:literal, other $other:ident $other_attr:literal {
            $(
                $(#[doc = $doc:literal])*
                $key:ident: $ty:ty = $read:ident $(($($arg:expr),* $(,)?))?,
                    example $example:literal
                    $(, renamed [$($old:literal),* $(,)?])?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Default)]
        pub(crate) struct $name {
            $(
                $(#[doc = $doc])*
                pub(crate) $key: Option<$ty>,
            )*
        }

        impl Options for $name {
            const ATTR: &'static str = $attr;
            const KEYS: &'static [OptionKey] = &[$(
                OptionKey {
                    key: stringify!($key),
                    example: $example,
                    renamed: &[$($($old),*)?],
                },
            )*];
            const OTHER: (&'static str, &'static [OptionKey]) = ($other_attr, $other::KEYS);

            fn set(&mut self, option: &OptionKey, value: &Expr) -> syn::Result<()> {
                $(
                    if option.key == stringify!($key) {
                        self.$key = Some($read(option, value $($(, $arg)*)?)?);
                    }
                )*
                Ok(())
            }
        }
    };
}

options! {
    /// The options of `#[task(...)]`.
    struct TaskOptions for "#[task]", other ScheduleOptions "#[schedule(...)]" {
        /// The task's name; the function's name by default.
        name: LitStr = non_empty_str, example "\"...\"",
            renamed ["task_name", "schedule_name", "label"];
        /// The queue; `"default"` by default.
        queue: LitStr = non_empty_str, example "\"...\"", renamed ["queue_name", "queues"];
        /// A higher number runs first.
        priority: i32 = int("i32", i32::MIN, i32::MAX, ""), example "5",
            renamed ["prio", "priority_level"];
        /// How many times a failure is retried; -1 forever.
        retries: i32 = int("i32", -1, i32::MAX, ": -1 retries forever, 0 never retries"),
            example "3", renamed ["retry", "max_retries", "retry_count", "attempts"];
        /// Seconds before the first retry, doubled after each failure.
        retry_delay: i64 = int("seconds", 0, i64::MAX, ""), example "60",
            renamed ["delay", "retry_delay_secs", "retry_delay_seconds", "backoff", "retry_after"];
        /// At most one pending execution per distinct arguments.
        unique: bool = boolean, example "true", renamed ["uniq", "singleton", "is_unique"];
        /// Seconds after which a run fails as timed out.
        timeout: u64 = int("seconds", 1, u64::MAX, ": leave `timeout` out for no timeout"),
            example "30", renamed ["timeout_secs", "timeout_seconds", "time_limit"];
        /// The `#[hook]` function each finished execution is handed to.
        hook: syn::Path = path, example "notify",
            renamed ["on_complete", "on_finish", "callback", "on_done"];
        /// Seconds a finished execution is kept; -1 keeps, 0 deletes it once recorded.
        ttl: i64 = int("seconds", -1, i64::MAX,
                       ": -1 keeps it until purged, 0 deletes it as soon as it is recorded"),
            example "500", renamed ["result_ttl", "keep", "expires", "expire_after"];
    }
}

options! {
    /// The options of one `#[schedule(...)]`.
    struct ScheduleOptions for "#[schedule]", other TaskOptions "#[task(...)]" {
        /// The cron expression (required), checked by `check::cron`.
        cron: LitStr = str, example "\"30 8 * * *\"",
            renamed ["schedule", "crontab", "cron_expr", "expr", "every"];
        /// The schedule's name; the task's by default.
        name: LitStr = non_empty_str, example "\"...\"",
            renamed ["task_name", "schedule_name", "label"];
        /// The task's arguments, leaving out the `datetime_arg` one.
        args: ScheduleArgs = tuple, example "(value,)", renamed ["arguments", "kwargs", "params"];
        /// Only workers of this queue materialize the schedule.
        queue: LitStr = non_empty_str, example "\"...\"", renamed ["queue_name", "queues"];
        /// Run the latest occurrence when the schedule is first seen.
        run_on_creation: bool = boolean, example "true",
            renamed ["run_on_start", "run_at_start", "on_creation"];
        /// Enqueue every missed occurrence, not only the latest.
        catch_up: bool = boolean, example "true", renamed ["catchup", "catch_up_missed"];
        /// The parameter that receives the occurrence's date.
        datetime_arg: LitStr = non_empty_str, example "\"when\"",
            renamed ["datetime_kwarg", "datetime_param", "date_arg"];
        /// The IANA time zone the cron expression is read in.
        tz: LitStr = non_empty_str, example "\"Europe/Paris\"", renamed ["timezone", "time_zone"];
        /// `true`: the `cron` expression's 6th field is seconds, as written, even in the shape
        /// a seconds-first reader takes otherwise (`toosimple_cron::seconds_first_reading`).
        seconds_last: LitBool = lit_bool, example "true",
            renamed ["seconds_at_end", "sixth_field_seconds"];
        /// The `#[hook]` function each finished execution it enqueued is handed to.
        hook: syn::Path = path, example "notify",
            renamed ["on_complete", "on_finish", "callback", "on_done"];
    }
}

options! {
    /// The options of `#[hook(...)]`.
    struct HookOptions for "#[hook]", other TaskOptions "#[task(...)]" {
        /// The hook's name; the function's name by default.
        name: LitStr = non_empty_str, example "\"...\"", renamed ["hook_name", "label"];
    }
}

/// One `#[schedule(...)]`: its options, and where it is written.
pub(crate) struct ScheduleAttr {
    /// Where the attribute starts, for its `file:line`.
    pub(crate) span: Span,
    /// The whole attribute, for errors about it as a whole (missing `cron`, duplicate name).
    pub(crate) whole: TokenStream,
    pub(crate) options: ScheduleOptions,
}

/// `args = (a, b, ...)`: the values, and the tuple for errors about their number.
pub(crate) struct ScheduleArgs {
    pub(crate) span: Span,
    pub(crate) values: Vec<Expr>,
}

/// Parses `#[task(...)]`'s tokens. Errors go to `errors`; the options that were read are kept.
pub(crate) fn parse_task(tokens: TokenStream, errors: &mut Errors) -> TaskOptions {
    parse_options(tokens, errors)
}

/// Parses `#[hook(...)]`'s tokens.
pub(crate) fn parse_hook(tokens: TokenStream, errors: &mut Errors) -> HookOptions {
    parse_options(tokens, errors)
}

/// Parses one `#[schedule(...)]`'s option tokens; `whole` is the whole attribute.
pub(crate) fn parse_schedule(
    tokens: TokenStream,
    whole: TokenStream,
    errors: &mut Errors,
) -> ScheduleAttr {
    let span = whole
        .clone()
        .into_iter()
        .next()
        .map_or_else(Span::call_site, |t| t.span());
    let options: ScheduleOptions = parse_options(tokens, errors);
    if options.cron.is_none() {
        errors.push(syn::Error::new_spanned(
            &whole,
            "#[schedule] needs a `cron` option: `#[schedule(cron = \"30 8 * * *\")]` \
             (5 fields, an optional 6th for seconds, or \"manual\")",
        ));
    }
    ScheduleAttr {
        span,
        whole,
        options,
    }
}

/// The `key = value, ...` loop of any option table.
fn parse_options<O: Options + Default>(tokens: TokenStream, errors: &mut Errors) -> O {
    let mut options = O::default();
    let parser = |input: ParseStream| {
        let mut seen: Vec<&'static str> = Vec::new();
        while !input.is_empty() {
            if let Err(e) = parse_entry(input, &mut options, errors, &mut seen) {
                errors.push(e);
                skip_value(input);
            }
            if input.is_empty() {
                break;
            }
            if let Err(e) = input.parse::<Token![,]>() {
                errors.push(e);
                skip_value(input);
                let _ = input.parse::<Token![,]>();
            }
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    options
}

/// `expected one of: `a`, `b``, as syn's `Lookahead1` would say it.
fn expected_one_of(keys: &[OptionKey]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("`{}`", k.key)).collect();
    format!("expected one of: {}", keys.join(", "))
}

/// What to write instead of the unknown key `key`, when we can guess.
fn hint<O: Options>(key: &str) -> Option<String> {
    if let Some(right) = O::KEYS.iter().find(|k| k.renamed.contains(&key)) {
        return Some(format!("did you mean `{}`?", right.key));
    }
    let (other_attr, other_keys) = O::OTHER;
    let own = O::KEYS.iter().any(|k| k.key == key);
    (!own && other_keys.iter().any(|k| k.key == key)).then(|| {
        format!(
            "`{key}` is an option of `{other_attr}`, not of `{}`",
            O::ATTR
        )
    })
}

/// Reads one `key = value` into `options`; the errors of a known key are recorded, and parsing
/// goes on after them.
fn parse_entry<O: Options>(
    input: ParseStream,
    options: &mut O,
    errors: &mut Errors,
    seen: &mut Vec<&'static str>,
) -> syn::Result<()> {
    if !input.peek(Ident::peek_any) {
        return Err(input.error(expected_one_of(O::KEYS)));
    }
    let ident = input.call(Ident::parse_any)?;
    let written = ident.to_string();
    let Some(option) = O::KEYS.iter().find(|k| k.key == written) else {
        let unknown = ident.unraw().to_string();
        let message = match hint::<O>(&unknown) {
            Some(hint) => format!("unknown `{}` option `{unknown}`: {hint}", O::ATTR),
            None => format!(
                "unknown `{}` option `{unknown}`; {}",
                O::ATTR,
                expected_one_of(O::KEYS)
            ),
        };
        errors.push(syn::Error::new(ident.span(), message));
        skip_value(input);
        return Ok(());
    };
    let key = option.key;
    let span = ident.span();
    if !input.peek(Token![=]) {
        errors.push(syn::Error::new(
            span,
            format!("`{key}` needs a value: `{key} = {}`", option.example),
        ));
        skip_value(input);
        return Ok(());
    }
    input.parse::<Token![=]>()?;
    let value: Expr = input.parse()?;
    if seen.contains(&key) {
        errors.push(syn::Error::new(span, format!("`{key}` set more than once")));
    } else {
        seen.push(key);
        if let Err(e) = options.set(option, &value) {
            errors.push(e);
        }
    }
    Ok(())
}

/// Skips tokens up to the next top-level comma (not consumed), to resume after an error.
fn skip_value(input: ParseStream) {
    while !input.is_empty() && !input.peek(Token![,]) {
        if input.parse::<proc_macro2::TokenTree>().is_err() {
            break;
        }
    }
}

/// Looks through the invisible groups that `macro_rules!` wraps around fragments.
fn unwrap_group(mut value: &Expr) -> &Expr {
    while let Expr::Group(group) = value {
        value = &group.expr;
    }
    value
}

/// What kind of value was written, for "expects X, found Y" messages.
fn describe(value: &Expr) -> &'static str {
    match unwrap_group(value) {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(_) => "a string",
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a float",
            Lit::Bool(_) => "a boolean",
            Lit::Char(_) => "a character",
            _ => "a literal of another type",
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) if matches!(unwrap_group(expr), Expr::Lit(_)) => "a negative number",
        Expr::Tuple(_) | Expr::Paren(_) => "a tuple",
        _ => "an expression",
    }
}

// The readers: each turns the value written for `option` into the field's type, or says what
// to write instead.

fn str(option: &OptionKey, value: &Expr) -> syn::Result<LitStr> {
    match unwrap_group(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects a string literal, such as `{key} = {}`; found {}",
                option.example,
                describe(other),
                key = option.key,
            ),
        )),
    }
}

fn non_empty_str(option: &OptionKey, value: &Expr) -> syn::Result<LitStr> {
    let lit = str(option, value)?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{}` must not be empty", option.key),
        ));
    }
    Ok(lit)
}

fn boolean(option: &OptionKey, value: &Expr) -> syn::Result<bool> {
    match unwrap_group(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(LitBool { value, .. }),
            ..
        }) => Ok(*value),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{}` expects `true` or `false`, found {}",
                option.key,
                describe(other)
            ),
        )),
    }
}

/// `true` or `false`, kept as written for errors about the option itself.
fn lit_bool(option: &OptionKey, value: &Expr) -> syn::Result<LitBool> {
    match unwrap_group(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(lit),
            ..
        }) => Ok(lit.clone()),
        other => boolean(option, other).map(|value| LitBool::new(value, other.span())),
    }
}

/// An integer literal, possibly negated, within `min..=max`, as a `T` (`unit` names it).
fn int<T: TryFrom<i128>>(
    option: &OptionKey,
    value: &Expr,
    unit: &str,
    min: impl Into<i128>,
    max: impl Into<i128>,
    range_hint: &str,
) -> syn::Result<T> {
    let (min, max) = (min.into(), max.into());
    let key = option.key;
    let value = unwrap_group(value);
    let expects_int = || {
        syn::Error::new_spanned(
            value,
            format!(
                "`{key}` expects an integer ({unit}), such as `{key} = {}`; found {}",
                option.example,
                describe(value)
            ),
        )
    };
    let (negative, lit) = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => (false, lit),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match unwrap_group(expr) {
            Expr::Lit(ExprLit {
                lit: Lit::Int(lit), ..
            }) => (true, lit),
            _ => return Err(expects_int()),
        },
        _ => return Err(expects_int()),
    };
    let out_of_range = || {
        let bounds = if max >= i32::MAX.into() && min > i32::MIN.into() {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        syn::Error::new_spanned(value, format!("`{key}` must be {bounds}{range_hint}"))
    };
    let magnitude: u128 = lit.base10_parse().map_err(|_| out_of_range())?;
    let magnitude = i128::try_from(magnitude).map_err(|_| out_of_range())?;
    let number = if negative { -magnitude } else { magnitude };
    if number < min || number > max {
        return Err(out_of_range());
    }
    T::try_from(number).map_err(|_| out_of_range())
}

/// A path to an item, such as a `#[hook]` function: `notify`, `crate::hooks::notify`.
fn path(option: &OptionKey, value: &Expr) -> syn::Result<syn::Path> {
    match unwrap_group(value) {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects the path of a `#[hook]` function, such as `{key} = {}` (not \
                 in quotes); found {}",
                option.example,
                describe(other),
                key = option.key,
            ),
        )),
    }
}

fn tuple(option: &OptionKey, value: &Expr) -> syn::Result<ScheduleArgs> {
    match unwrap_group(value) {
        Expr::Tuple(t) => Ok(ScheduleArgs {
            span: t.span(),
            values: t.elems.iter().cloned().collect(),
        }),
        Expr::Paren(p) => Ok(ScheduleArgs {
            span: p.span(),
            values: vec![(*p.expr).clone()],
        }),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects a tuple of the task's arguments, found {}: \
                 `{key} = (1, \"x\".to_string())`, or `{key} = (value,)` for one argument",
                describe(other),
                key = option.key,
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn task(tokens: TokenStream) -> (TaskOptions, Vec<String>) {
        let mut errors = Errors::default();
        let attr = parse_task(tokens, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (attr, messages)
    }

    #[test]
    fn reads_every_task_option() {
        let (attr, errors) = task(quote!(
            name = "mail.send",
            queue = "emails",
            priority = -5,
            retries = -1,
            retry_delay = 2,
            unique = true,
            timeout = 30
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(attr.name.unwrap().value(), "mail.send");
        assert_eq!(attr.queue.unwrap().value(), "emails");
        assert_eq!(attr.priority, Some(-5));
        assert_eq!(attr.retries, Some(-1));
        assert_eq!(attr.retry_delay, Some(2));
        assert_eq!(attr.unique, Some(true));
        assert_eq!(attr.timeout, Some(30));
    }

    #[test]
    fn reports_every_problem() {
        let (_, errors) = task(quote!(
            prio = 1,
            priority = "high",
            priority = 2,
            retries = -2,
            bogus = 3,
            timeout = 0,
            unique
        ));
        assert_eq!(
            errors,
            [
                "unknown `#[task]` option `prio`: did you mean `priority`?",
                "`priority` expects an integer (i32), such as `priority = 5`; found a string",
                "`priority` set more than once",
                "`retries` must be at least -1: -1 retries forever, 0 never retries",
                "unknown `#[task]` option `bogus`; expected one of: `name`, `queue`, `priority`, \
                 `retries`, `retry_delay`, `unique`, `timeout`, `hook`, `ttl`",
                "`timeout` must be at least 1: leave `timeout` out for no timeout",
                "`unique` needs a value: `unique = true`",
            ]
        );
    }

    #[test]
    fn schedule_needs_cron_and_hints_task_options() {
        let mut errors = Errors::default();
        parse_schedule(quote!(priority = 1), TokenStream::new(), &mut errors);
        let messages: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[0],
            "unknown `#[schedule]` option `priority`: `priority` is an option of `#[task(...)]`, \
             not of `#[schedule]`"
        );
        assert!(messages[1].starts_with("#[schedule] needs a `cron` option"));
    }

    #[test]
    fn hints_are_not_keys() {
        for keys in [TaskOptions::KEYS, ScheduleOptions::KEYS, HookOptions::KEYS] {
            for option in keys {
                for old in option.renamed {
                    assert!(keys.iter().all(|k| k.key != *old), "{old}");
                }
            }
        }
    }

    #[test]
    fn schedule_errors_list_schedule_keys() {
        let mut errors = Errors::default();
        parse_schedule(
            quote!(cron = "* * * * *", 5),
            TokenStream::new(),
            &mut errors,
        );
        let message = errors.finish().unwrap_err().to_string();
        assert_eq!(
            message,
            "expected one of: `cron`, `name`, `args`, `queue`, `run_on_creation`, `catch_up`, \
             `datetime_arg`, `tz`, `seconds_last`, `hook`"
        );
    }
}
