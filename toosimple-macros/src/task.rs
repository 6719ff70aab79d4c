//! Code generation for `#[task]`: the function unchanged, plus a same-named module holding the
//! enqueue API, the runner and the `inventory` registration.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, FnArg, Ident, Item, ItemFn, Pat, Path, PathSegment, Type, TypePath};

use crate::attr::{self, Errors, TaskOptions};
use crate::check::{self, Param, Returns};
use crate::schedule;

/// `#[task(attr)] item`: the function and its module, or on any error the function, a stub
/// module (so that calls to `f::queue` do not add errors of their own) and the errors.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut func = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => func,
        Ok(other) => {
            let error = syn::Error::new_spanned(
                item_head(&other),
                "#[task] can only be used on functions (`fn` or `async fn`)",
            );
            let error = error.to_compile_error();
            return quote!(#other #error);
        }
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    let schedule_attrs = take_schedule_attrs(&mut func.attrs);

    let mut errors = Errors::default();
    let options = attr::parse_task(attr, &mut errors);
    let mut signature_errors = Errors::default();
    let params = check::signature(&func.sig, &mut signature_errors);
    let returns = check::returns(&func.sig, &mut signature_errors);
    let signature_ok = signature_errors.is_empty();
    if let Err(e) = signature_errors.finish() {
        errors.push(e);
    }
    let fname = &func.sig.ident;
    let name = options.name.as_ref().map_or_else(
        || syn::ext::IdentExt::unraw(fname).to_string(),
        |n| n.value(),
    );

    let cfgs: Vec<&Attribute> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg"))
        .collect();

    let mut schedules = Vec::new();
    // The stripped attributes are never resolved by rustc: refer to each path, so that its
    // `use` is not reported unused (and a path that does not resolve is still an error).
    let schedule_paths: Vec<TokenStream> = schedule_attrs
        .iter()
        .map(|(_, attr)| {
            let path = attr.path();
            quote!(#(#cfgs)* const _: () = { use #path as _; };)
        })
        .collect();
    for (tokens, whole) in schedule_attrs {
        let tokens = match tokens {
            Ok(tokens) => tokens,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let parsed = attr::parse_schedule(tokens, whole.to_token_stream(), &mut errors);
        let datetime_index = check::schedule(&parsed, fname, &params, &mut errors);
        schedules.push((parsed, datetime_index));
    }
    let schedule_names: Vec<(String, TokenStream)> = schedules
        .iter()
        .map(|(s, _)| {
            let name = s
                .options
                .name
                .as_ref()
                .map_or_else(|| name.clone(), |n| n.value());
            let at = s
                .options
                .name
                .as_ref()
                .map_or_else(|| s.whole.clone(), ToTokens::to_token_stream);
            (name, at)
        })
        .collect();
    check::distinct_schedule_names(&schedule_names, fname, &mut errors);

    match errors.finish() {
        Ok(()) => {
            let Some(returns) = returns else {
                // `check::returns` records an error whenever it gives `None`.
                return quote!(#func);
            };
            let task = Task {
                func: &func,
                name: &name,
                options: &options,
                params: &params,
                returns: &returns,
            };
            let module = task.module();
            let schedules = schedules
                .iter()
                .map(|(s, dt)| schedule::registration(fname, &params, s, *dt, &cfgs));
            quote! {
                #func
                #module
                #(#schedules)*
                #(#schedule_paths)*
            }
        }
        Err(error) => {
            let error = error.to_compile_error();
            let stub = stub(&func, signature_ok, &params, returns.as_ref(), &name, &cfgs);
            quote! {
                #func
                #stub
                #(#schedule_paths)*
                #error
            }
        }
    }
}

/// Removes the `#[schedule(...)]` attributes stacked below `#[task]` (or moved there by an
/// outer `#[schedule]`), returning their option tokens and the attributes.
fn take_schedule_attrs(attrs: &mut Vec<Attribute>) -> Vec<(syn::Result<TokenStream>, Attribute)> {
    let mut taken = Vec::new();
    attrs.retain(|a| {
        let is_schedule = a
            .path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "schedule");
        if is_schedule {
            let tokens = match &a.meta {
                syn::Meta::List(list) => Ok(list.tokens.clone()),
                syn::Meta::Path(_) => Ok(TokenStream::new()),
                syn::Meta::NameValue(nv) => Err(syn::Error::new_spanned(
                    nv,
                    "write the options in parentheses: `#[schedule(cron = \"...\")]`",
                )),
            };
            taken.push((tokens, a.clone()));
        }
        !is_schedule
    });
    taken
}

/// The tokens an error about a non-function item points at: its keyword and name.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Struct(i) => {
            let (kw, name) = (&i.struct_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Enum(i) => {
            let (kw, name) = (&i.enum_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Union(i) => {
            let (kw, name) = (&i.union_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Trait(i) => {
            let (kw, name) = (&i.trait_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Mod(i) => {
            let (kw, name) = (&i.mod_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Const(i) => {
            let (kw, name) = (&i.const_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Static(i) => {
            let (kw, name) = (&i.static_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Type(i) => {
            let (kw, name) = (&i.type_token, &i.ident);
            quote!(#kw #name)
        }
        Item::Impl(i) => {
            let kw = &i.impl_token;
            quote!(#kw)
        }
        other => quote!(#other),
    }
}

/// The path of the hidden runtime API every generated item goes through.
pub(crate) fn private() -> TokenStream {
    quote!(::toosimple_core::__private)
}

/// `file:line` of `span`, for registry error messages.
pub(crate) fn location(span: Span) -> TokenStream {
    quote_spanned!(span=> ::core::concat!(::core::file!(), ":", ::core::line!()))
}

/// Rewrites a type written next to the function so that it means the same inside the generated
/// module: `self::X` → `super::X`, `super::X` → `super::super::X`, and a bare `Output` (which the
/// module defines) → `super::Output`.
struct IntoChildModule;

impl VisitMut for IntoChildModule {
    fn visit_path_mut(&mut self, path: &mut Path) {
        let relative = path.leading_colon.is_none();
        match path.segments.first_mut() {
            Some(first) if relative && first.ident == "self" => {
                first.ident = Ident::new("super", first.ident.span());
            }
            Some(first) if relative && first.ident == "super" => {
                let span = first.ident.span();
                path.segments
                    .insert(0, PathSegment::from(Ident::new("super", span)));
            }
            _ => {}
        }
        visit_mut::visit_path_mut(self, path);
    }

    fn visit_type_path_mut(&mut self, ty: &mut TypePath) {
        visit_mut::visit_type_path_mut(self, ty);
        let path = &mut ty.path;
        if ty.qself.is_none()
            && path.leading_colon.is_none()
            && path.segments.len() == 1
            && path.segments[0].ident == "Output"
        {
            let span = path.segments[0].ident.span();
            path.segments
                .insert(0, PathSegment::from(Ident::new("super", span)));
        }
    }
}

fn in_module(ty: &Type) -> Type {
    let mut ty = ty.clone();
    IntoChildModule.visit_type_mut(&mut ty);
    ty
}

/// A name for a generated parameter that no task parameter already uses.
fn fresh(wanted: &str, params: &[Param]) -> Ident {
    if params.iter().any(|p| p.key == wanted) {
        format_ident!("__{}", wanted)
    } else {
        format_ident!("{}", wanted)
    }
}

struct Task<'a> {
    func: &'a ItemFn,
    name: &'a str,
    options: &'a TaskOptions,
    params: &'a [Param],
    returns: &'a Returns,
}

impl Task<'_> {
    fn output_type(&self) -> TokenStream {
        let p = private();
        match self.returns {
            Returns::Value(ty) | Returns::Result { ok: Some(ty), .. } => {
                let ty = in_module(ty);
                quote!(#ty)
            }
            Returns::Result {
                whole, ok: None, ..
            } => {
                let whole = in_module(whole);
                quote!(<#whole as #p::TaskResult>::Ok)
            }
        }
    }

    /// The codec of each argument type, built at the type's span: every use of the type goes
    /// through it, so a missing `Serialize`/`Deserialize` is one error, at the argument.
    fn arg_codec(param: &Param) -> TokenStream {
        let p = private();
        let ty = in_module(&param.ty);
        quote_spanned!(param.ty.span()=> #p::task_arg::<#ty>())
    }

    /// The expression turning the function's return value `value` into the run's outcome, with
    /// the result and error types' requirements spanned at those types.
    fn outcome(&self, value: TokenStream) -> TokenStream {
        let p = private();
        let output = |ty: &Type| {
            let in_mod = in_module(ty);
            quote_spanned!(ty.span()=> #p::task_output::<#in_mod>())
        };
        match self.returns {
            Returns::Value(ty) => {
                let output = output(ty);
                quote!((#output)(#value))
            }
            Returns::Result {
                ok: Some(ok), err, ..
            } => {
                let output = output(ok);
                let error = match err {
                    Some(err) => {
                        let in_mod = in_module(err);
                        quote_spanned!(err.span()=> #p::task_error::<#in_mod>())
                    }
                    None => quote!(#p::error_text),
                };
                quote!(#p::result_outcome_with(#value, #output, #error))
            }
            Returns::Result { ok: None, .. } => quote!(#p::result_outcome(#value)),
        }
    }

    /// Compile-time checks of the argument, result and error types, each reported at the type
    /// (the same expressions as the runner's, so that rustc reports each problem once).
    fn assertions(&self) -> TokenStream {
        let p = private();
        let args = self.params.iter().map(Self::arg_codec);
        let (output, error) = match self.returns {
            Returns::Value(ty) => (Some(ty), None),
            Returns::Result { ok, err, .. } => (ok.as_ref(), err.as_ref()),
        };
        let output = output.into_iter().map(|ty| {
            let in_mod = in_module(ty);
            quote_spanned!(ty.span()=> #p::task_output::<#in_mod>())
        });
        let error = error.into_iter().map(|ty| {
            let in_mod = in_module(ty);
            quote_spanned!(ty.span()=> #p::task_error::<#in_mod>())
        });
        quote! {
            const _: () = {
                #(let _ = #args;)*
                #(let _ = #output;)*
                #(let _ = #error;)*
            };
        }
    }

    fn definition(&self) -> TokenStream {
        let p = private();
        let invoker = if self.func.sig.asyncness.is_some() {
            quote!(#p::Invoker::Async(self::run))
        } else {
            quote!(#p::Invoker::Sync(self::run))
        };
        let o = self.options;
        let mut setters = Vec::new();
        if let Some(queue) = &o.queue {
            setters.push(quote!(.with_queue(#queue)));
        }
        if let Some(priority) = o.priority {
            setters.push(quote!(.with_priority(#priority)));
        }
        if let Some(retries) = o.retries {
            setters.push(quote!(.with_retries(#retries)));
        }
        if let Some(delay) = o.retry_delay {
            setters.push(quote!(.with_retry_delay(#delay)));
        }
        if let Some(unique) = o.unique {
            setters.push(quote!(.with_unique(#unique)));
        }
        if let Some(timeout) = o.timeout {
            setters.push(quote!(.with_timeout(#timeout)));
        }
        let location = location(self.func.sig.ident.span());
        quote! {
            #[doc(hidden)]
            pub const DEF: #p::TaskDef =
                #p::TaskDef::new(self::NAME, #invoker, #location) #(#setters)*;

            #p::inventory::submit! { self::DEF }
        }
    }

    fn runner(&self) -> TokenStream {
        let p = private();
        let fname = &self.func.sig.ident;
        let names: Vec<&Ident> = self.params.iter().map(|p| &p.ident).collect();
        let takes = self.params.iter().map(|param| {
            let (ident, key, ty) = (&param.ident, &param.key, in_module(&param.ty));
            let codec = Self::arg_codec(param);
            quote!(let #ident: #ty = __reader.take_with(#key, #codec)?;)
        });
        let decode = quote! {
            let mut __reader = #p::ArgsReader::new(__json)?;
            #(#takes)*
            __reader.finish()?;
        };
        let call = if self.func.sig.asyncness.is_some() {
            quote!(super::#fname(#(#names),*).await)
        } else {
            quote!(super::#fname(#(#names),*))
        };
        let outcome = self.outcome(call);
        if self.func.sig.asyncness.is_some() {
            quote! {
                fn run(__json: #p::serde_json::Value) -> #p::BoxFuture<#p::RunResult> {
                    ::std::boxed::Box::pin(async move {
                        #decode
                        #outcome
                    })
                }
            }
        } else {
            quote! {
                fn run(__json: #p::serde_json::Value) -> #p::RunResult {
                    #decode
                    #outcome
                }
            }
        }
    }

    fn module(&self) -> TokenStream {
        let p = private();
        let func = self.func;
        let vis = &func.vis;
        let fname = &func.sig.ident;
        let name = self.name;
        let output = self.output_type();
        let names: Vec<&Ident> = self.params.iter().map(|p| &p.ident).collect();
        let keys: Vec<&String> = self.params.iter().map(|p| &p.key).collect();
        let codecs: Vec<TokenStream> = self.params.iter().map(Self::arg_codec).collect();
        let types: Vec<Type> = self.params.iter().map(|p| in_module(&p.ty)).collect();
        let cfgs = func.attrs.iter().filter(|a| a.path().is_ident("cfg"));
        let due = fresh("due", self.params);
        let conn = fresh("conn", self.params);
        let items = fresh("items", self.params);
        let item_tuple = match types.as_slice() {
            [] => quote!(()),
            [one] => quote!((#one,)),
            many => quote!((#(#many),*)),
        };
        let item_pattern = match names.as_slice() {
            [] => quote!(()),
            [one] => quote!((#one,)),
            many => quote!((#(#many),*)),
        };
        let result = quote!(::core::result::Result);
        let datetime = quote!(#p::chrono::DateTime<#p::chrono::Utc>);

        let module_doc = format!(
            " Enqueues the `{name}` task (`#[task]` on `fn {fname}`): `queue`, `queue_at`, \
             `queue_many`, `queue_in` and `queue_at_in`.\n\n Calling `{fname}(...)` directly \
             still runs the function in place.",
        );
        let name_doc = format!(
            " The task's name, `{name}`: stored in each execution row, and how workers find it."
        );
        let output_doc = match self.returns {
            Returns::Value(_) => " What the task returns: the value a handle's `wait` gives.",
            Returns::Result { .. } => {
                " What the task returns when it succeeds (the `Ok` type): the value a handle's \
                 `wait` gives."
            }
        };
        let errors_doc = "\n\n # Errors\n Fails when an argument cannot be encoded as JSON, or \
                          when the database cannot be reached.";
        let queue_doc = format!(
            " Enqueues `{name}` to run as soon as a worker is free: inserts a `Queued` row in \
             the default store and returns a handle on it.{errors_doc}"
        );
        let queue_at_doc = format!(
            " Enqueues `{name}` to run at `{due}`: the row stays `Sleeping` until then.\
             {errors_doc}"
        );
        let queue_many_doc = format!(
            " Enqueues `{name}` once per item (a tuple of its arguments), in one transaction.\
             {errors_doc}"
        );
        let queue_in_doc = format!(
            " Enqueues `{name}` through `{conn}`, inside the caller's own transaction: the row \
             exists only if that transaction commits.\n\n # Errors\n Fails when an argument \
             cannot be encoded as JSON, or when the insert fails."
        );
        let queue_at_in_doc = format!(
            " Like `queue_in`, but the execution waits (`Sleeping`) until `{due}`.\n\n # Errors\n \
             Fails when an argument cannot be encoded as JSON, or when the insert fails."
        );

        let assertions = self.assertions();
        let definition = self.definition();
        let runner = self.runner();
        quote! {
            #(#cfgs)*
            #[doc = #module_doc]
            #[allow(
                non_snake_case,
                unused_imports,
                dead_code,
                deprecated,
                clippy::too_many_arguments
            )]
            #vis mod #fname {
                use super::*;

                #[doc = #name_doc]
                pub const NAME: &str = #name;

                #[doc = #output_doc]
                pub type Output = #output;

                #assertions
                #definition

                #[doc(hidden)]
                pub fn __args(#(#names: #types),*)
                    -> #result<#p::serde_json::Value, #p::Error>
                {
                    #result::Ok(
                        #p::ArgsBuilder::new(self::NAME)
                            #(.arg_with(#keys, &#names, #codecs)?)*
                            .finish()
                    )
                }

                #[doc = #queue_doc]
                pub fn queue(#(#names: #types),*)
                    -> #result<#p::TaskHandle<self::Output>, #p::Error>
                {
                    #p::enqueue(
                        &self::DEF,
                        self::__args(#(#names),*),
                        ::core::option::Option::None,
                    )
                }

                #[doc = #queue_at_doc]
                pub fn queue_at(#due: #datetime, #(#names: #types),*)
                    -> #result<#p::TaskHandle<self::Output>, #p::Error>
                {
                    #p::enqueue(
                        &self::DEF,
                        self::__args(#(#names),*),
                        ::core::option::Option::Some(#due),
                    )
                }

                #[doc = #queue_many_doc]
                pub fn queue_many(
                    #items: impl ::core::iter::IntoIterator<Item = #item_tuple>,
                ) -> #result<::std::vec::Vec<#p::TaskHandle<self::Output>>, #p::Error> {
                    #p::enqueue_many(
                        &self::DEF,
                        ::core::iter::IntoIterator::into_iter(#items)
                            .map(|#item_pattern| self::__args(#(#names),*)),
                    )
                }

                #[doc = #queue_in_doc]
                pub fn queue_in(
                    #conn: &mut (impl #p::EnqueueConnection + ?::core::marker::Sized),
                    #(#names: #types),*
                ) -> #result<#p::TaskHandle<self::Output>, #p::Error> {
                    #p::enqueue_in(
                        #conn,
                        &self::DEF,
                        self::__args(#(#names),*),
                        ::core::option::Option::None,
                    )
                }

                #[doc = #queue_at_in_doc]
                pub fn queue_at_in(
                    #conn: &mut (impl #p::EnqueueConnection + ?::core::marker::Sized),
                    #due: #datetime,
                    #(#names: #types),*
                ) -> #result<#p::TaskHandle<self::Output>, #p::Error> {
                    #p::enqueue_in(
                        #conn,
                        &self::DEF,
                        self::__args(#(#names),*),
                        ::core::option::Option::Some(#due),
                    )
                }

                #runner
            }
        }
    }
}

/// The module emitted next to a function whose attribute has errors: the same enqueue API with
/// bodies that are never run, so that the user sees the attribute's error and not a cascade of
/// "cannot find `queue` in `send`". Only `queue` and `queue_at` when the signature itself is
/// wrong.
fn stub(
    func: &ItemFn,
    signature_ok: bool,
    params: &[Param],
    returns: Option<&Returns>,
    name: &str,
    cfgs: &[&Attribute],
) -> TokenStream {
    // A method's module would only add "module is not supported in impls".
    if func
        .sig
        .inputs
        .iter()
        .any(|i| matches!(i, FnArg::Receiver(_)))
    {
        return TokenStream::new();
    }
    let p = private();
    let vis = &func.vis;
    let fname = &func.sig.ident;
    let output = match returns {
        Some(Returns::Value(ty) | Returns::Result { ok: Some(ty), .. }) => {
            let ty = in_module(ty);
            quote!(#ty)
        }
        Some(Returns::Result {
            whole, ok: None, ..
        }) => {
            let whole = in_module(whole);
            quote!(<#whole as #p::TaskResult>::Ok)
        }
        None => quote!(()),
    };
    let (generics, where_clause, inputs): (_, _, Vec<TokenStream>) = if signature_ok {
        let inputs = params
            .iter()
            .map(|param| {
                let (ident, ty) = (&param.ident, in_module(&param.ty));
                quote!(#ident: #ty)
            })
            .collect();
        (None, None, inputs)
    } else {
        let inputs = func
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(typed) => {
                    let ty = in_module(&typed.ty);
                    Some(match &*typed.pat {
                        Pat::Ident(p) => {
                            let ident = &p.ident;
                            quote!(#ident: #ty)
                        }
                        _ => quote!(_: #ty),
                    })
                }
                FnArg::Receiver(_) => None,
            })
            .collect();
        let generics = &func.sig.generics;
        (Some(generics), generics.where_clause.as_ref(), inputs)
    };
    let result = quote!(::core::result::Result);
    let handle = quote!(#result<#p::TaskHandle<self::Output>, #p::Error>);
    let datetime = quote!(#p::chrono::DateTime<#p::chrono::Utc>);
    let due = fresh("due", params);
    let conn = fresh("conn", params);
    let items = fresh("items", params);
    let more = signature_ok.then(|| {
        let types = params.iter().map(|p| in_module(&p.ty));
        quote! {
            pub fn queue_many(
                #items: impl ::core::iter::IntoIterator<Item = (#(#types,)*)>,
            ) -> #result<::std::vec::Vec<#p::TaskHandle<self::Output>>, #p::Error> {
                ::core::unimplemented!()
            }
            pub fn queue_in(
                #conn: &mut (impl #p::EnqueueConnection + ?::core::marker::Sized),
                #(#inputs),*
            ) -> #handle {
                ::core::unimplemented!()
            }
            pub fn queue_at_in(
                #conn: &mut (impl #p::EnqueueConnection + ?::core::marker::Sized),
                #due: #datetime,
                #(#inputs),*
            ) -> #handle {
                ::core::unimplemented!()
            }
        }
    });
    quote! {
        #(#cfgs)*
        #[allow(
            non_snake_case,
            unused_imports,
            unused_variables,
            dead_code,
            clippy::too_many_arguments
        )]
        #vis mod #fname {
            use super::*;
            pub const NAME: &str = #name;
            pub type Output = #output;
            pub fn queue #generics (#(#inputs),*) -> #handle #where_clause {
                ::core::unimplemented!()
            }
            pub fn queue_at #generics (#due: #datetime, #(#inputs),*) -> #handle #where_clause {
                ::core::unimplemented!()
            }
            #more
        }
    }
}
