//! Compile-time checks: the function's signature, its return type, schedules' cron strings and
//! arguments. Each check records spanned errors that say what to write instead.

use syn::ext::IdentExt;
use syn::visit_mut::{self, VisitMut};
use syn::{
    FnArg, GenericArgument, Ident, LitBool, LitStr, Pat, PathArguments, ReturnType, Signature, Type,
};

use toosimple_cron::CronError;

use crate::attr::{Errors, ScheduleAttr};

/// One task parameter: `ident: ty`.
pub(crate) struct Param {
    /// As written (a raw identifier keeps its `r#`), without `mut`.
    pub(crate) ident: Ident,
    /// The JSON key: the identifier without `r#`.
    pub(crate) key: String,
    pub(crate) ty: Type,
}

/// How the function's return value becomes the execution's result.
#[allow(clippy::large_enum_variant)] // one short-lived value per expansion
pub(crate) enum Returns {
    /// `-> T` or nothing (`()`): the value is the result.
    Value(Type),
    /// `-> ...Result<T, E>`: `Ok` is the result, `Err` fails the execution. `ok`/`err` are the
    /// generic arguments when written.
    Result {
        whole: Type,
        ok: Option<Type>,
        err: Option<Type>,
    },
}

/// Checks that `sig` is a function the worker can call with stored arguments, and returns its
/// parameters. Parameters that cannot be used are left out (their error is recorded).
pub(crate) fn signature(sig: &Signature, errors: &mut Errors) -> Vec<Param> {
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "#[task] functions cannot be `unsafe`: the worker calls them with stored arguments \
             and cannot uphold their safety contract; write a safe function that calls this one",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "#[task] functions cannot have an `extern` ABI; write a Rust function that calls \
             this one",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "#[task] functions cannot be generic: the worker must know the concrete argument \
             types to deserialize them; write one task per concrete type",
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            "#[task] functions cannot have a `where` clause: the worker must know the concrete \
             argument types to deserialize them",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "#[task] functions cannot be variadic: each argument is stored by name",
        ));
    }

    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "#[task] cannot be used on methods (`self` receiver); write a free function \
                 that calls the method",
            )),
            // Given by the worker at run time, never stored: not a parameter of `queue`.
            FnArg::Typed(typed) if is_context(&typed.ty) => {}
            FnArg::Typed(typed) => {
                let ident = match &*typed.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                        Some(p.ident.clone())
                    }
                    other => {
                        errors.push(syn::Error::new_spanned(
                            other,
                            "#[task] arguments must be plain identifiers (`name: Type`), as \
                             they are stored by name; destructure inside the function",
                        ));
                        None
                    }
                };
                let type_ok = argument_type(&typed.ty, errors);
                if let (Some(ident), true) = (ident, type_ok) {
                    params.push(Param {
                        key: ident.unraw().to_string(),
                        ident,
                        ty: (*typed.ty).clone(),
                    });
                }
            }
        }
    }
    params
}

/// Whether `ty` is `TaskContext` (any path ending so, without generic arguments): the
/// argument the worker gives each execution, to report progress and see a cancel. Recognised
/// by name, as a macro sees no types.
pub(crate) fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().is_some_and(|s| {
            s.ident == "TaskContext" && matches!(s.arguments, syn::PathArguments::None)
        }),
        Type::Paren(inner) => is_context(&inner.elem),
        Type::Group(inner) => is_context(&inner.elem),
        _ => false,
    }
}

/// Finds references and `impl Trait` anywhere in an argument type; `true` when there are none.
fn argument_type(ty: &Type, errors: &mut Errors) -> bool {
    struct Find<'a> {
        errors: &'a mut Errors,
        ok: bool,
    }
    impl VisitMut for Find<'_> {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            match ty {
                Type::Reference(r) => {
                    self.ok = false;
                    self.errors.push(syn::Error::new_spanned(
                        &*r,
                        format!(
                            "#[task] arguments are stored as JSON and must be owned values: {}",
                            owned_hint(&r.elem)
                        ),
                    ));
                }
                Type::ImplTrait(i) => {
                    self.ok = false;
                    self.errors.push(syn::Error::new_spanned(
                        &*i,
                        "#[task] arguments cannot be `impl Trait`: the worker must know the \
                         concrete type to deserialize it; use a concrete type",
                    ));
                }
                _ => visit_mut::visit_type_mut(self, ty),
            }
        }
    }
    let mut find = Find { errors, ok: true };
    find.visit_type_mut(&mut ty.clone());
    find.ok
}

/// What to write instead of `&elem`.
fn owned_hint(elem: &Type) -> String {
    match elem {
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
            "use `String` instead of `&str`".to_string()
        }
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("Path") => {
            "use `PathBuf` instead of `&Path`".to_string()
        }
        Type::Slice(s) => {
            let inner = type_to_string(&s.elem);
            format!("use `Vec<{inner}>` instead of `&[{inner}]`")
        }
        other => {
            let inner = type_to_string(other);
            format!("use an owned type, such as `{inner}` instead of `&{inner}`")
        }
    }
}

/// A type as a user would write it (token spacing removed).
pub(crate) fn type_to_string(ty: &Type) -> String {
    let text = quote::quote!(#ty).to_string();
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = if i > 0 { chars[i - 1] } else { ' ' };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let tight = matches!(prev, '<' | '&' | ':' | '(' | '[')
                || matches!(next, '<' | '>' | ',' | ':' | ')' | ']' | ';');
            if tight {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Analyses the return type; `None` (with an error recorded) when it cannot be a task's.
pub(crate) fn returns(sig: &Signature, errors: &mut Errors) -> Option<Returns> {
    let ty = match &sig.output {
        ReturnType::Default => return Some(Returns::Value(syn::parse_quote!(()))),
        ReturnType::Type(_, ty) => &**ty,
    };
    let mut bare = ty;
    while let Type::Paren(p) = bare {
        bare = &p.elem;
    }
    match bare {
        Type::Reference(r) => {
            errors.push(syn::Error::new_spanned(
                r,
                format!(
                    "#[task] results are stored as JSON: return an owned value ({})",
                    owned_hint(&r.elem).replacen("use", "", 1).trim()
                ),
            ));
            None
        }
        Type::ImplTrait(i) => {
            errors.push(syn::Error::new_spanned(
                i,
                "#[task] functions cannot return `impl Trait`: name the type, so that handles \
                 know what the result decodes into",
            ));
            None
        }
        Type::Path(p) if p.qself.is_none() => {
            let Some(last) = p.path.segments.last() else {
                return Some(Returns::Value(ty.clone()));
            };
            if last.ident != "Result" {
                return Some(Returns::Value(ty.clone()));
            }
            let mut generic_types = match &last.arguments {
                PathArguments::AngleBracketed(args) => args
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        GenericArgument::Type(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .into_iter(),
                _ => Vec::new().into_iter(),
            };
            Some(Returns::Result {
                whole: ty.clone(),
                ok: generic_types.next(),
                err: generic_types.next(),
            })
        }
        _ => Some(Returns::Value(ty.clone())),
    }
}

/// Validates a `cron = "..."` string as the runtime will read it (`toosimple_cron`'s syntax:
/// `"manual"`, a `@nickname`, 5 fields, or 6 with seconds last). The error quotes the
/// expression and, when one field alone is wrong, names it. The one shape that also reads as
/// seconds first (`toosimple_cron::seconds_first_reading`) is refused with both readings unless
/// `seconds_last = true` says which is meant.
pub(crate) fn cron(lit: &LitStr, seconds_last: Option<&LitBool>) -> syn::Result<()> {
    let expr = lit.value();
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let message = match toosimple_cron::parse(&expr) {
        Ok(_) => return seconds(lit, &expr, &fields, seconds_last),
        Err(CronError::FieldCount { found }) => format!(
            "invalid cron expression {expr:?}: expected 5 fields (minute hour day-of-month \
             month day-of-week) and an optional 6th for seconds, found {found}; or write \
             \"manual\" for a schedule that only runs when triggered"
        ),
        Err(CronError::Invalid {
            field: Some(field), ..
        }) => format!(
            "invalid cron expression {expr:?}: {} field `{}`: {}{}",
            field.name,
            field.text,
            field.reason,
            seconds_first_hint(&fields)
        ),
        Err(CronError::Invalid {
            reason,
            field: None,
        }) => format!(
            "invalid cron expression {expr:?}: {reason}{}",
            seconds_first_hint(&fields)
        ),
    };
    Err(syn::Error::new(lit.span(), message))
}

/// `fields` moved seconds last: the first one to the end.
fn first_to_last(fields: &[&str]) -> String {
    let mut moved = fields[1..].to_vec();
    moved.push(fields[0]);
    moved.join(" ")
}

/// For six fields that are wrong our way and right seconds first (`"0 30 9 * * MON-FRI"`): what
/// to write seconds last.
fn seconds_first_hint(fields: &[&str]) -> String {
    if fields.len() != 6 || toosimple_cron::parse(&first_to_last(fields)).is_err() {
        return String::new();
    }
    format!(
        "; toosimple reads a 6th field as seconds (seconds last): if the first field is seconds \
         (Quartz, Spring), write {:?}",
        first_to_last(fields)
    )
}

/// The checks of a valid expression about its seconds: the shape that reads both ways, and
/// `seconds_last` where it means nothing.
fn seconds(
    lit: &LitStr,
    expr: &str,
    fields: &[&str],
    seconds_last: Option<&LitBool>,
) -> syn::Result<()> {
    match seconds_last {
        Some(flag) if !flag.value => {
            let rewrite = if fields.len() == 6 {
                format!(
                    ": move the first field to the end, {:?}",
                    first_to_last(fields)
                )
            } else {
                String::new()
            };
            return Err(syn::Error::new_spanned(
                flag,
                format!(
                    "toosimple always reads a 6th cron field as seconds, so `seconds_last = \
                     false` cannot be honoured; remove it and write the seconds last{rewrite}"
                ),
            ));
        }
        Some(flag) if fields.len() != 6 => {
            return Err(syn::Error::new_spanned(
                flag,
                format!(
                    "`seconds_last` is about a 6th (seconds) cron field, and {expr:?} has none: \
                     remove it"
                ),
            ));
        }
        Some(_) => return Ok(()),
        None => {}
    }
    let Some(both) = toosimple_cron::seconds_first_reading(expr) else {
        return Ok(());
    };
    let list = |fields: &[(&str, String)]| {
        fields
            .iter()
            .map(|(name, text)| format!("{name} `{text}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let seconds_first = match both.seconds_first.split_first() {
        Some(((name, text), rest)) if *name == "second" => {
            let rest = list(rest);
            format!(
                "at second `{text}`{}{rest}",
                if rest.is_empty() { "" } else { " of " }
            )
        }
        _ => format!("every second of {}", list(&both.seconds_first)),
    };
    Err(syn::Error::new(
        lit.span(),
        format!(
            "ambiguous cron expression {expr:?}: toosimple reads a 6th field as seconds, \
             Quartz and Spring read the 1st; it has two meanings:\n\
             - seconds last (as toosimple reads it): every second of {}, 60 runs a minute; to \
             mean that, write {:?} or add `seconds_last = true`\n\
             - seconds first: {seconds_first}; to mean that, write {:?}",
            list(&both.as_written),
            both.seconds_last_rewrite,
            both.seconds_first_rewrite,
        ),
    ))
}

/// Whether `ty` is written `Option<DateTime<Utc>>` (any path prefix on each).
fn is_option_datetime_utc(ty: &Type) -> bool {
    fn single_generic<'a>(ty: &'a Type, name: &str) -> Option<Option<&'a Type>> {
        let Type::Path(p) = ty else { return None };
        if p.qself.is_some() {
            return None;
        }
        let last = p.path.segments.last()?;
        if last.ident != name {
            return None;
        }
        match &last.arguments {
            PathArguments::None => Some(None),
            PathArguments::AngleBracketed(a) if a.args.len() == 1 => match a.args.first() {
                Some(GenericArgument::Type(t)) => Some(Some(t)),
                _ => None,
            },
            _ => None,
        }
    }
    let Some(Some(datetime)) = single_generic(ty, "Option") else {
        return false;
    };
    let Some(Some(utc)) = single_generic(datetime, "DateTime") else {
        return false;
    };
    matches!(single_generic(utc, "Utc"), Some(None))
}

/// Checks one schedule against the task's parameters: its cron string, its `datetime_arg` and
/// the number of its `args`. Returns the index of the datetime parameter, if any.
pub(crate) fn schedule(
    schedule: &ScheduleAttr,
    task_fn: &Ident,
    params: &[Param],
    errors: &mut Errors,
) -> Option<usize> {
    let options = &schedule.options;
    if let Some(Err(e)) = options
        .cron
        .as_ref()
        .map(|lit| cron(lit, options.seconds_last.as_ref()))
    {
        errors.push(e);
    }
    let mut datetime_index = None;
    if let Some(lit) = &options.datetime_arg {
        let wanted = lit.value();
        match params.iter().position(|p| p.key == wanted) {
            None => {
                let names: Vec<String> = params.iter().map(|p| format!("`{}`", p.key)).collect();
                errors.push(syn::Error::new(
                    lit.span(),
                    format!(
                        "`datetime_arg = {wanted:?}` does not name a parameter of `{task_fn}` \
                         ({}); add a parameter `{wanted}: Option<DateTime<Utc>>`",
                        if names.is_empty() {
                            "it has none".to_string()
                        } else {
                            format!("its parameters are {}", names.join(", "))
                        }
                    ),
                ));
            }
            Some(i) if !is_option_datetime_utc(&params[i].ty) => {
                errors.push(syn::Error::new_spanned(
                    &params[i].ty,
                    format!(
                        "the `datetime_arg` parameter `{wanted}` must have type \
                         `Option<DateTime<Utc>>` (it receives the occurrence's date, and \
                         `None` when the task is queued directly), found `{}`",
                        type_to_string(&params[i].ty)
                    ),
                ));
            }
            Some(i) => datetime_index = Some(i),
        }
    }
    let expected = params.len() - usize::from(datetime_index.is_some());
    let given = options.args.as_ref().map_or(0, |a| a.values.len());
    if given != expected && (options.datetime_arg.is_none() || datetime_index.is_some()) {
        let names: Vec<String> = params
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != datetime_index)
            .map(|(_, p)| format!("`{}`", p.key))
            .collect();
        let takes = match expected {
            0 => "takes no arguments".to_string(),
            1 => format!("takes 1 argument ({})", names.join(", ")),
            n => format!("takes {n} arguments ({})", names.join(", ")),
        };
        let besides = match datetime_index {
            Some(i) => format!(" besides the `datetime_arg` `{}`", params[i].key),
            None => String::new(),
        };
        let write = if expected == 0 {
            "leave `args` out".to_string()
        } else {
            "write `args = (...)` with one value per argument, in order".to_string()
        };
        let message = format!(
            "this schedule gives {given} argument{} but `{task_fn}` {takes}{besides}; {write}",
            if given == 1 { "" } else { "s" }
        );
        errors.push(match &options.args {
            Some(args) => syn::Error::new(args.span, message),
            None => syn::Error::new_spanned(&schedule.whole, message),
        });
    }
    datetime_index
}

/// Two schedules of one task with the same name: an error on each, naming the name.
pub(crate) fn distinct_schedule_names(
    names: &[(String, proc_macro2::TokenStream)],
    task_fn: &Ident,
    errors: &mut Errors,
) {
    for (i, (name, span)) in names.iter().enumerate() {
        if let Some((_, first)) = names[..i].iter().find(|(n, _)| n == name) {
            errors.push(syn::Error::new_spanned(
                span,
                format!(
                    "two schedules of `{task_fn}` are named `{name}`; schedule names must be \
                     distinct: give one of them `name = \"...\"`"
                ),
            ));
            errors.push(syn::Error::new_spanned(
                first,
                format!("the other schedule named `{name}` is here"),
            ));
        }
    }
}

/// Checks that `sig` is a hook's: a plain, safe, non-generic `fn` of one argument (the
/// finished execution, `&TaskExec`). Its types are checked by the compiler where the
/// generated code calls it.
pub(crate) fn hook_signature(sig: &Signature, errors: &mut Errors) {
    if let Some(asyncness) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            asyncness,
            "a #[hook] is a plain `fn`: the worker calls it on a blocking thread once the \
             outcome is recorded; remove `async` (block on a future inside if you must)",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a #[hook] cannot be `unsafe`: write a safe function that calls this one",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a #[hook] cannot be generic: it takes the finished execution, `&TaskExec`",
        ));
    }
    if let Some(receiver) = sig.inputs.iter().find_map(|i| match i {
        FnArg::Receiver(r) => Some(r),
        FnArg::Typed(_) => None,
    }) {
        errors.push(syn::Error::new_spanned(
            receiver,
            "#[hook] cannot be used on methods (`self` receiver); write a free function \
             `fn notify(exec: &TaskExec)` that calls the method",
        ));
    } else if sig.inputs.len() != 1 {
        let message = "a #[hook] takes one argument, the finished execution: \
                       `fn notify(exec: &TaskExec)`";
        if sig.inputs.is_empty() {
            errors.push(syn::Error::new_spanned(&sig.ident, message));
        } else {
            errors.push(syn::Error::new_spanned(&sig.inputs, message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron_error(expr: &str) -> Option<String> {
        cron(&LitStr::new(expr, proc_macro2::Span::call_site()), None)
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn accepts_our_cron_syntax() {
        for ok in [
            "30 8 * * *",
            "* * * * * */15",
            "0 0 13 * 5",
            "0 9 * * MON-FRI 30",
            "manual",
            "@daily",
        ] {
            assert_eq!(cron_error(ok), None, "{ok}");
        }
    }

    #[test]
    fn names_the_bad_field() {
        let e = cron_error("61 * * * *").unwrap();
        assert!(
            e.starts_with("invalid cron expression \"61 * * * *\": minute field `61`:"),
            "{e}"
        );
        let e = cron_error("* * * * * 61").unwrap();
        assert!(e.contains("second field `61`"), "{e}");
        let e = cron_error("* * * *").unwrap();
        assert!(e.contains("found 4"), "{e}");
        let e = cron_error("* * * * * * *").unwrap();
        assert!(e.contains("found 7"), "{e}");
    }

    /// Finding: `*/15 * * * * *`, a seconds-first "every 15 seconds", compiled as every second
    /// of minutes 0, 15, 30 and 45.
    #[test]
    fn the_shape_that_reads_seconds_first_is_refused_with_both_readings() {
        let e = cron_error("*/15 * * * * *").unwrap();
        assert_eq!(
            e,
            "ambiguous cron expression \"*/15 * * * * *\": toosimple reads a 6th field as \
             seconds, Quartz and Spring read the 1st; it has two meanings:\n\
             - seconds last (as toosimple reads it): every second of minute `*/15`, 60 runs a \
             minute; to mean that, write \"*/15 * * * * 0-59\" or add `seconds_last = true`\n\
             - seconds first: at second `*/15`; to mean that, write \"* * * * * */15\""
        );
        let e = cron_error("30 8 * * * *").unwrap();
        assert!(
            e.contains("every second of minute `30`, hour `8`, 60 runs a minute"),
            "{e}"
        );
        assert!(
            e.contains(
                "seconds first: at second `30` of minute `8`; to mean that, write \"8 * * * * 30\""
            ),
            "{e}"
        );
        let e = cron_error("* 8 * * * *").unwrap();
        assert!(
            e.contains(
                "seconds first: every second of minute `8`; to mean that, write \"8 * * * * 0-59\""
            ),
            "{e}"
        );
        // Both ways every second, and seconds that cannot be a day of the week.
        for ok in [
            "* * * * * *",
            "* * * * * */15",
            "0 9 * * * 30",
            "0 12 L * * *",
        ] {
            assert_eq!(cron_error(ok), None, "{ok}");
        }
    }

    #[test]
    fn seconds_last_true_accepts_the_shape_and_false_is_refused() {
        let lit = |expr| LitStr::new(expr, proc_macro2::Span::call_site());
        let flag = |value| LitBool::new(value, proc_macro2::Span::call_site());
        assert!(cron(&lit("*/15 * * * * *"), Some(&flag(true))).is_ok());
        assert!(cron(&lit("0 * * * * 30"), Some(&flag(true))).is_ok());
        let e = cron(&lit("*/15 * * * * *"), Some(&flag(false)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("move the first field to the end, \"* * * * * */15\""),
            "{e}"
        );
        let e = cron(&lit("30 8 * * *"), Some(&flag(true)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"30 8 * * *\" has none: remove it"), "{e}");
    }

    #[test]
    fn a_seconds_first_expression_invalid_our_way_says_how_to_write_it() {
        let e = cron_error("0 30 9 * * MON-FRI").unwrap();
        assert!(
            e.ends_with(
                "if the first field is seconds (Quartz, Spring), write \"30 9 * * MON-FRI 0\""
            ),
            "{e}"
        );
        let e = cron_error("61 * * * * 0").unwrap();
        assert!(!e.contains("Quartz"), "{e}");
    }

    #[test]
    fn recognises_option_datetime_utc() {
        for ok in [
            "Option<DateTime<Utc>>",
            "std::option::Option<chrono::DateTime<chrono::Utc>>",
        ] {
            assert!(is_option_datetime_utc(&syn::parse_str(ok).unwrap()), "{ok}");
        }
        for bad in ["DateTime<Utc>", "Option<DateTime<Local>>", "Option<String>"] {
            assert!(
                !is_option_datetime_utc(&syn::parse_str(bad).unwrap()),
                "{bad}"
            );
        }
    }

    #[test]
    fn prints_types_as_written() {
        let ty: Type = syn::parse_str("Vec<std::collections::HashMap<String, u8>>").unwrap();
        assert_eq!(
            type_to_string(&ty),
            "Vec<std::collections::HashMap<String, u8>>"
        );
    }
}
