//! Code generation for `#[schedule]`.
//!
//! `#[schedule]` always works together with `#[task]` on the same function, in either order.
//! Attribute macros expand outermost first, so:
//! - `#[task]` above `#[schedule]`: `#[task]` finds the `#[schedule(...)]` attributes on its item,
//!   removes them, checks them against the function and emits their registrations;
//! - `#[schedule]` above `#[task]`: `#[schedule]` moves itself below `#[task]` (appended after the
//!   item's other attributes, keeping the written order of several schedules, by its full path
//!   `::toosimple_core::schedule`, or the facade's `::toosimple::schedule`, since it may not be
//!   imported), so that the case above applies.
//!
//! Either way, one code path checks and emits schedules: [`registration`].

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::{Attribute, Ident, ItemFn};

use crate::attr::{self, Errors, ScheduleAttr};
use crate::check::Param;
use crate::task::{location, private};

/// `#[schedule(attr)] item`.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "#[schedule] can only be used on a function that also has #[task]",
            )
            .to_compile_error();
            return quote!(#item #error);
        }
    };
    let has_task = func
        .attrs
        .iter()
        .any(|a| a.path().segments.last().is_some_and(|s| s.ident == "task"));
    if has_task {
        // By its full path: `schedule` may not be imported (`#[toosimple_core::schedule]`).
        let root = crate::krate::root();
        let moved: Attribute = syn::parse_quote!(#[#root::schedule(#attr)]);
        func.attrs.push(moved);
        return func.into_token_stream();
    }
    // Report the options' own problems too, so that adding #[task] is the only fix left.
    let mut errors = Errors::default();
    attr::parse_schedule(attr, TokenStream::new(), &mut errors);
    let fname = &func.sig.ident;
    errors.push(syn::Error::new(
        Span::call_site(),
        format!(
            "#[schedule] must be combined with #[task] on the same function: add `#[task]` to \
             `fn {fname}` (the schedule enqueues that task)"
        ),
    ));
    let error = errors
        .finish()
        .err()
        .map(|e| e.to_compile_error())
        .unwrap_or_default();
    quote!(#func #error)
}

/// The registration of one checked schedule of task `fname` (whose module is `fname`): an
/// arguments function that calls the module's hidden `__toosimple::args`, so the arguments are
/// type-checked against the function, and an `inventory::submit!` of its `ScheduleDef`.
pub(crate) fn registration(
    fname: &Ident,
    params: &[Param],
    schedule: &ScheduleAttr,
    datetime_index: Option<usize>,
    cfgs: &[&Attribute],
) -> TokenStream {
    let p = private();
    let options = &schedule.options;
    let Some(cron) = &options.cron else {
        // `attr::parse_schedule` reports a missing `cron`; nothing is emitted after errors.
        return TokenStream::new();
    };
    let mut given = options
        .args
        .as_ref()
        .map(|a| {
            a.values
                .iter()
                .map(ToTokens::to_token_stream)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter();
    let values: Vec<TokenStream> = (0..params.len())
        .map(|i| {
            if Some(i) == datetime_index {
                quote!(::core::option::Option::None)
            } else {
                given.next().unwrap_or_default()
            }
        })
        .collect();
    let args_span = options.args.as_ref().map_or(schedule.span, |a| a.span);
    // The whole call at the tuple's span: a type mismatch points at the value and labels `args`.
    let mut module = fname.clone();
    module.set_span(args_span);
    let call = quote_spanned!(args_span=> #module::__toosimple::args(#(#values),*));
    let name = match &options.name {
        Some(name) => quote!(#name),
        None => quote!(#fname::NAME),
    };
    let mut setters = Vec::new();
    if let Some(queue) = &options.queue {
        setters.push(quote!(.with_queue(#queue)));
    }
    if let Some(yes) = options.run_on_creation {
        setters.push(quote!(.with_run_on_creation(#yes)));
    }
    if let Some(yes) = options.catch_up {
        setters.push(quote!(.with_catch_up(#yes)));
    }
    if let Some(param) = &options.datetime_arg {
        setters.push(quote!(.with_datetime_arg(#param)));
    }
    if let Some(tz) = &options.tz {
        setters.push(quote!(.with_tz(#tz)));
    }
    if let Some(hook) = &options.hook {
        setters.push(quote!(.with_hook(#hook::HOOK)));
    }
    let location = location(schedule.span);
    quote! {
        #(#cfgs)*
        const _: () = {
            fn __toosimple_schedule_args()
                -> ::core::result::Result<#p::serde_json::Value, #p::Error>
            {
                #call
            }
            #p::inventory::submit! {
                #p::ScheduleDef::new(
                    #name,
                    #fname::NAME,
                    #cron,
                    __toosimple_schedule_args,
                    #location,
                ) #(#setters)*
            }
        };
    }
}
