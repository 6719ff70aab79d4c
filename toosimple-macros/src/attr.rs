//! Parsing of the `#[task(...)]` and `#[schedule(...)]` option lists.
//!
//! Both lists are `key = value` pairs separated by commas. Keys are custom keywords read through
//! `lookahead1`, so that an unknown key lists the valid ones; every problem is recorded in an
//! [`Errors`] and parsing goes on, so one build reports all of them.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitBool, LitStr, Token, UnOp};

mod kw {
    syn::custom_keyword!(name);
    syn::custom_keyword!(queue);
    syn::custom_keyword!(priority);
    syn::custom_keyword!(retries);
    syn::custom_keyword!(retry_delay);
    syn::custom_keyword!(unique);
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(cron);
    syn::custom_keyword!(args);
    syn::custom_keyword!(run_on_creation);
    syn::custom_keyword!(catch_up);
    syn::custom_keyword!(datetime_arg);
    syn::custom_keyword!(tz);
}

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

/// The options of `#[task(...)]`; `None` means "not written" (the runtime default applies).
#[derive(Default)]
pub(crate) struct TaskAttr {
    pub(crate) name: Option<LitStr>,
    pub(crate) queue: Option<LitStr>,
    pub(crate) priority: Option<i32>,
    pub(crate) retries: Option<i32>,
    pub(crate) retry_delay: Option<i64>,
    pub(crate) unique: Option<bool>,
    pub(crate) timeout: Option<u64>,
}

/// The options of one `#[schedule(...)]`.
pub(crate) struct ScheduleAttr {
    /// Where the attribute starts, for its `file:line`.
    pub(crate) span: Span,
    /// The whole attribute, for errors about it as a whole (missing `cron`, duplicate name).
    pub(crate) whole: TokenStream,
    pub(crate) cron: Option<LitStr>,
    pub(crate) name: Option<LitStr>,
    pub(crate) args: Option<ScheduleArgs>,
    pub(crate) queue: Option<LitStr>,
    pub(crate) run_on_creation: Option<bool>,
    pub(crate) catch_up: Option<bool>,
    pub(crate) datetime_arg: Option<LitStr>,
    pub(crate) tz: Option<LitStr>,
}

/// `args = (a, b, ...)`: the values, and the tuple for errors about their number.
pub(crate) struct ScheduleArgs {
    pub(crate) span: Span,
    pub(crate) values: Vec<Expr>,
}

const TASK_KEYS: &[&str] = &[
    "name",
    "queue",
    "priority",
    "retries",
    "retry_delay",
    "unique",
    "timeout",
];
const SCHEDULE_KEYS: &[&str] = &[
    "cron",
    "name",
    "args",
    "queue",
    "run_on_creation",
    "catch_up",
    "datetime_arg",
    "tz",
];

/// Which macro a list belongs to: its valid keys, and hints for keys written by mistake.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Task,
    Schedule,
}

impl Which {
    fn attr(self) -> &'static str {
        match self {
            Which::Task => "#[task]",
            Which::Schedule => "#[schedule]",
        }
    }

    /// What to write instead of an unknown key, when we can guess.
    fn hint(self, key: &str) -> Option<String> {
        let (own, other, other_attr) = match self {
            Which::Task => (TASK_KEYS, SCHEDULE_KEYS, "#[schedule(...)]"),
            Which::Schedule => (SCHEDULE_KEYS, TASK_KEYS, "#[task(...)]"),
        };
        let renamed = match (self, key) {
            (Which::Task, "retry" | "max_retries" | "retry_count" | "attempts") => "retries",
            (
                Which::Task,
                "delay" | "retry_delay_secs" | "retry_delay_seconds" | "backoff" | "retry_after",
            ) => "retry_delay",
            (Which::Task, "timeout_secs" | "timeout_seconds" | "time_limit") => "timeout",
            (Which::Task, "prio" | "priority_level") => "priority",
            (Which::Task, "uniq" | "singleton" | "is_unique") => "unique",
            (_, "queue_name" | "queues") => "queue",
            (_, "task_name" | "schedule_name" | "label") => "name",
            (Which::Schedule, "schedule" | "crontab" | "cron_expr" | "expr" | "every") => "cron",
            (Which::Schedule, "arguments" | "kwargs" | "params") => "args",
            (Which::Schedule, "timezone" | "time_zone") => "tz",
            (Which::Schedule, "datetime_kwarg" | "datetime_param" | "date_arg") => "datetime_arg",
            (Which::Schedule, "catchup" | "catch_up_missed") => "catch_up",
            (Which::Schedule, "run_on_start" | "run_at_start" | "on_creation") => "run_on_creation",
            _ => {
                if !own.contains(&key) && other.contains(&key) {
                    return Some(format!(
                        "`{key}` is an option of `{other_attr}`, not of `{}`",
                        self.attr()
                    ));
                }
                return None;
            }
        };
        Some(format!("did you mean `{renamed}`?"))
    }
}

/// Parses `#[task(...)]`'s tokens. Errors go to `errors`; the options that were read are kept.
pub(crate) fn parse_task(tokens: TokenStream, errors: &mut Errors) -> TaskAttr {
    let mut attr = TaskAttr::default();
    let parser = |input: ParseStream| {
        parse_list(input, Which::Task, errors, |key, span, value, errors| {
            let result = match key {
                "name" => non_empty_str(key, value).map(|v| attr.name = Some(v)),
                "queue" => non_empty_str(key, value).map(|v| attr.queue = Some(v)),
                "priority" => int(key, "i32", value, i32::MIN.into(), i32::MAX.into(), "")
                    .map(|v| attr.priority = Some(v as i32)),
                "retries" => int(
                    key,
                    "i32",
                    value,
                    -1,
                    i32::MAX.into(),
                    ": -1 retries forever, 0 never retries",
                )
                .map(|v| attr.retries = Some(v as i32)),
                "retry_delay" => int(key, "seconds", value, 0, i64::MAX.into(), "")
                    .map(|v| attr.retry_delay = Some(v as i64)),
                "unique" => boolean(key, value).map(|v| attr.unique = Some(v)),
                "timeout" => int(
                    key,
                    "seconds",
                    value,
                    1,
                    u64::MAX.into(),
                    ": leave `timeout` out for no timeout",
                )
                .map(|v| attr.timeout = Some(v as u64)),
                _ => Err(syn::Error::new(span, format!("unhandled option `{key}`"))),
            };
            if let Err(e) = result {
                errors.push(e);
            }
        });
        Ok(())
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    attr
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
    let mut attr = ScheduleAttr {
        span,
        whole,
        cron: None,
        name: None,
        args: None,
        queue: None,
        run_on_creation: None,
        catch_up: None,
        datetime_arg: None,
        tz: None,
    };
    let parser = |input: ParseStream| {
        parse_list(
            input,
            Which::Schedule,
            errors,
            |key, span, value, errors| {
                let result = match key {
                    "cron" => str(key, value).map(|v| attr.cron = Some(v)),
                    "name" => non_empty_str(key, value).map(|v| attr.name = Some(v)),
                    "args" => tuple(value).map(|v| attr.args = Some(v)),
                    "queue" => non_empty_str(key, value).map(|v| attr.queue = Some(v)),
                    "run_on_creation" => {
                        boolean(key, value).map(|v| attr.run_on_creation = Some(v))
                    }
                    "catch_up" => boolean(key, value).map(|v| attr.catch_up = Some(v)),
                    "datetime_arg" => {
                        non_empty_str(key, value).map(|v| attr.datetime_arg = Some(v))
                    }
                    "tz" => non_empty_str(key, value).map(|v| attr.tz = Some(v)),
                    _ => Err(syn::Error::new(span, format!("unhandled option `{key}`"))),
                };
                if let Err(e) = result {
                    errors.push(e);
                }
            },
        );
        Ok(())
    };
    if let Err(e) = parser.parse2(tokens) {
        errors.push(e);
    }
    if attr.cron.is_none() {
        errors.push(syn::Error::new_spanned(
            &attr.whole,
            "#[schedule] needs a `cron` option: `#[schedule(cron = \"30 8 * * *\")]` \
             (5 fields, an optional 6th for seconds, or \"manual\")",
        ));
    }
    attr
}

/// Reads the key at the cursor, if it is one of `which`'s, recording the comparison so that
/// `lookahead.error()` lists the valid keys.
fn peek_key(
    input: ParseStream,
    which: Which,
    lookahead: &syn::parse::Lookahead1,
) -> syn::Result<Option<(&'static str, Span)>> {
    macro_rules! try_keys {
        ($($kw:ident),*) => {
            $(
                if lookahead.peek(kw::$kw) {
                    let key: kw::$kw = input.parse()?;
                    return Ok(Some((stringify!($kw), key.span)));
                }
            )*
        };
    }
    match which {
        Which::Task => {
            try_keys!(name, queue, priority, retries, retry_delay, unique, timeout);
        }
        Which::Schedule => {
            try_keys!(
                cron,
                name,
                args,
                queue,
                run_on_creation,
                catch_up,
                datetime_arg,
                tz
            );
        }
    }
    Ok(None)
}

/// The generic `key = value, ...` loop. `set` receives each known key once, with its value.
fn parse_list(
    input: ParseStream,
    which: Which,
    errors: &mut Errors,
    mut set: impl FnMut(&'static str, Span, &Expr, &mut Errors),
) {
    let mut seen: Vec<&'static str> = Vec::new();
    while !input.is_empty() {
        if let Err(e) = parse_entry(input, which, errors, &mut seen, &mut set) {
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
}

fn parse_entry(
    input: ParseStream,
    which: Which,
    errors: &mut Errors,
    seen: &mut Vec<&'static str>,
    set: &mut impl FnMut(&'static str, Span, &Expr, &mut Errors),
) -> syn::Result<()> {
    let lookahead = input.lookahead1();
    let Some((key, span)) = peek_key(input, which, &lookahead)? else {
        let expected = lookahead.error();
        if !input.peek(Ident::peek_any) {
            return Err(expected);
        }
        let ident = input.call(Ident::parse_any)?;
        let unknown = ident.unraw().to_string();
        let message = match which.hint(&unknown) {
            Some(hint) => format!("unknown `{}` option `{unknown}`: {hint}", which.attr()),
            None => format!("unknown `{}` option `{unknown}`; {expected}", which.attr()),
        };
        errors.push(syn::Error::new(ident.span(), message));
        skip_value(input);
        return Ok(());
    };
    if !input.peek(Token![=]) {
        errors.push(syn::Error::new(
            span,
            format!("`{key}` needs a value: `{key} = {}`", example(key)),
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
        set(key, span, &value, errors);
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

fn example(key: &str) -> &'static str {
    match key {
        "priority" => "5",
        "retries" => "3",
        "retry_delay" => "60",
        "timeout" => "30",
        "unique" | "run_on_creation" | "catch_up" => "true",
        "cron" => "\"30 8 * * *\"",
        "args" => "(value,)",
        "datetime_arg" => "\"when\"",
        "tz" => "\"Europe/Paris\"",
        _ => "\"...\"",
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

fn str(key: &str, value: &Expr) -> syn::Result<LitStr> {
    match unwrap_group(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects a string literal, such as `{key} = {}`; found {}",
                example(key),
                describe(other)
            ),
        )),
    }
}

fn non_empty_str(key: &str, value: &Expr) -> syn::Result<LitStr> {
    let lit = str(key, value)?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must not be empty"),
        ));
    }
    Ok(lit)
}

fn boolean(key: &str, value: &Expr) -> syn::Result<bool> {
    match unwrap_group(value) {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(LitBool { value, .. }),
            ..
        }) => Ok(*value),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "`{key}` expects `true` or `false`, found {}",
                describe(other)
            ),
        )),
    }
}

/// An integer literal, possibly negated, within `min..=max`.
fn int(
    key: &str,
    unit: &str,
    value: &Expr,
    min: i128,
    max: i128,
    range_hint: &str,
) -> syn::Result<i128> {
    let value = unwrap_group(value);
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
            _ => return Err(expects_int(key, unit, value)),
        },
        _ => return Err(expects_int(key, unit, value)),
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
    Ok(number)
}

fn expects_int(key: &str, unit: &str, value: &Expr) -> syn::Error {
    syn::Error::new_spanned(
        value,
        format!(
            "`{key}` expects an integer ({unit}), such as `{key} = {}`; found {}",
            example(key),
            describe(value)
        ),
    )
}

fn tuple(value: &Expr) -> syn::Result<ScheduleArgs> {
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
                "`args` expects a tuple of the task's arguments, found {}: \
                 `args = (1, \"x\".to_string())`, or `args = (value,)` for one argument",
                describe(other)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn task(tokens: TokenStream) -> (TaskAttr, Vec<String>) {
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
                 `retries`, `retry_delay`, `unique`, `timeout`",
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
}
