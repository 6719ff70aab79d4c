//! Code generation for `#[task]`: the function unchanged, plus a same-named module holding the
//! enqueue API, the runner and the `inventory` registration.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, FnArg, Ident, Item, ItemFn, LitStr, Pat, Path, PathSegment, Type, TypePath};

use crate::attr::{self, Errors, TaskOptions};
use crate::check::{self, Param, Returns};
use crate::schedule;

/// `#[task(attr)] item`: the function, its module and its schedules' registrations.
///
/// On errors (as tokio-macros' `token_stream_with_error` does with `DEFAULT_ERROR_CONFIG`) the
/// same generator runs with the default options and without the schedules, and the errors are
/// appended: `f::queue` still exists with its types, so the attribute's errors are the only ones.
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
    let name = task_name(&options, fname);

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
        .map(|(s, _)| match &s.options.name {
            Some(own) => (own.value(), own.to_token_stream()),
            None => (name.clone(), s.whole.clone()),
        })
        .collect();
    check::distinct_schedule_names(&schedule_names, fname, &mut errors);

    let error = errors.finish().err();
    let default_options = TaskOptions::default();
    let task = Task {
        func: &func,
        options: if error.is_none() {
            &options
        } else {
            &default_options
        },
        params: &params,
        returns: returns.as_ref(),
        signature_ok,
    };
    let module = task.module();
    match error {
        None => {
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
        Some(error) => {
            let error = error.to_compile_error();
            quote! {
                #func
                #module
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
    let root = crate::krate::root();
    quote!(#root::__private)
}

/// `file:line` of `span`, for registry error messages.
pub(crate) fn location(span: Span) -> TokenStream {
    quote_spanned!(span=> ::core::concat!(::core::file!(), ":", ::core::line!()))
}

/// Rewrites a type written next to the function so that it means the same one module further
/// down: `self::X` → `super::X`, `super::X` → `super::super::X`, and a bare `Output` (which the
/// generated module defines) → `super::Output`.
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

/// Where generated code is written, relative to the function.
#[derive(Clone, Copy)]
enum Depth {
    /// In the generated module `mod f`: the public API.
    Module,
    /// In `mod f::__toosimple`: the hidden items (definition, arguments encoder, runner).
    Hidden,
}

/// `ty`, written next to the function, as it must be written at `depth`.
fn at(depth: Depth, ty: &Type) -> Type {
    let levels = match depth {
        Depth::Module => 1,
        Depth::Hidden => 2,
    };
    let mut ty = ty.clone();
    for _ in 0..levels {
        IntoChildModule.visit_type_mut(&mut ty);
    }
    ty
}

/// A name for a generated parameter that no parameter of `func` already uses.
fn fresh(wanted: &str, func: &ItemFn) -> Ident {
    let taken = func.sig.inputs.iter().any(|input| match input {
        FnArg::Typed(typed) => matches!(&*typed.pat, Pat::Ident(p) if p.ident.unraw() == wanted),
        FnArg::Receiver(_) => false,
    });
    if taken {
        format_ident!("__{}", wanted)
    } else {
        format_ident!("{}", wanted)
    }
}

/// The task's name: its `name` option, or the function's name.
fn task_name(options: &TaskOptions, fname: &Ident) -> String {
    options
        .name
        .as_ref()
        .map_or_else(|| fname.unraw().to_string(), LitStr::value)
}

/// The one generator of a task's module.
struct Task<'a> {
    func: &'a ItemFn,
    /// The options written, or the defaults when the attribute has errors.
    options: &'a TaskOptions,
    /// The usable parameters (all of them when `signature_ok`).
    params: &'a [Param],
    /// `None` when the return type has an error.
    returns: Option<&'a Returns>,
    /// Whether the signature has no error. When it has, the module holds only `NAME`, `Output`,
    /// `queue` and `queue_at`, with the parameters as written and bodies that never run: calls
    /// then type-check without errors of their own, and the signature's error is the only one.
    signature_ok: bool,
}

impl Task<'_> {
    /// The return type when the signature has no error: the module is then complete.
    fn checked(&self) -> Option<&Returns> {
        self.returns.filter(|_| self.signature_ok)
    }

    /// `Output`'s definition: what the task returns (for `Result<T, E>`, `T`).
    fn output_type(&self) -> TokenStream {
        let p = private();
        match self.returns {
            Some(Returns::Value(ty) | Returns::Result { ok: Some(ty), .. }) => {
                let ty = at(Depth::Module, ty);
                quote!(#ty)
            }
            Some(Returns::Result {
                whole, ok: None, ..
            }) => {
                let whole = at(Depth::Module, whole);
                quote!(<#whole as #p::TaskResult>::Ok)
            }
            None => quote!(()),
        }
    }

    /// The parameters of the enqueue functions, `ident: Type` as the function writes them
    /// (a pattern that is not an identifier becomes `_`).
    fn inputs(&self) -> Vec<TokenStream> {
        self.func
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(typed) if check::is_context(&typed.ty) => None,
                FnArg::Typed(typed) => {
                    let ty = at(Depth::Module, &typed.ty);
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
            .collect()
    }

    /// The codec of each argument type, built at the type's span: every use of the type goes
    /// through it, so a missing `Serialize`/`Deserialize` is one error, at the argument.
    fn arg_codec(param: &Param) -> TokenStream {
        let p = private();
        let ty = at(Depth::Hidden, &param.ty);
        quote_spanned!(param.ty.span()=> #p::task_arg::<#ty>())
    }

    /// The expression turning the function's return value `value` into the run's outcome, with
    /// the result and error types' requirements spanned at those types.
    fn outcome(returns: &Returns, value: TokenStream) -> TokenStream {
        let p = private();
        let output = |ty: &Type| {
            let ty_at = at(Depth::Hidden, ty);
            quote_spanned!(ty.span()=> #p::task_output::<#ty_at>())
        };
        match returns {
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
                        let err_at = at(Depth::Hidden, err);
                        quote_spanned!(err.span()=> #p::task_error::<#err_at>())
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
    fn assertions(&self, returns: &Returns) -> TokenStream {
        let p = private();
        let args = self.params.iter().map(Self::arg_codec);
        let (output, error) = match returns {
            Returns::Value(ty) => (Some(ty), None),
            Returns::Result { ok, err, .. } => (ok.as_ref(), err.as_ref()),
        };
        let output = output.into_iter().map(|ty| {
            let ty_at = at(Depth::Hidden, ty);
            quote_spanned!(ty.span()=> #p::task_output::<#ty_at>())
        });
        let error = error.into_iter().map(|ty| {
            let ty_at = at(Depth::Hidden, ty);
            quote_spanned!(ty.span()=> #p::task_error::<#ty_at>())
        });
        quote! {
            const _: () = {
                #(let _ = #args;)*
                #(let _ = #output;)*
                #(let _ = #error;)*
            };
        }
    }

    /// The `TaskDef` with its options, and its `inventory` registration.
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
        if let Some(hook) = &o.hook {
            // Written beside the function, read two modules down.
            let hook = at(
                Depth::Hidden,
                &Type::Path(TypePath {
                    qself: None,
                    path: hook.clone(),
                }),
            );
            setters.push(quote!(.with_hook(#hook::HOOK)));
        }
        if let Some(ttl) = o.ttl {
            setters.push(quote!(.with_ttl(#ttl)));
        }
        setters.push(quote!(.with_check(self::check)));
        let location = location(self.func.sig.ident.span());
        quote! {
            pub const DEF: #p::TaskDef =
                #p::TaskDef::new(super::NAME, #invoker, #location) #(#setters)*;

            #p::inventory::submit! { self::DEF }
        }
    }

    /// `args(a, b)`: the stored JSON object of one call's arguments.
    fn args_encoder(&self) -> TokenStream {
        let p = private();
        let names: Vec<&Ident> = self.params.iter().map(|p| &p.ident).collect();
        let types = self.params.iter().map(|p| at(Depth::Hidden, &p.ty));
        let keys = self.params.iter().map(|p| &p.key);
        let codecs = self.params.iter().map(Self::arg_codec);
        quote! {
            pub fn args(#(#names: #types),*)
                -> ::core::result::Result<#p::serde_json::Value, #p::Error>
            {
                ::core::result::Result::Ok(
                    #p::ArgsBuilder::new(super::NAME)
                        #(.arg_with(#keys, &#names, #codecs)?)*
                        .finish()
                )
            }
        }
    }

    /// `run(json)`: decodes the arguments, calls the function and turns its return value into
    /// the run's outcome.
    fn runner(&self, returns: &Returns) -> TokenStream {
        let p = private();
        let fname = &self.func.sig.ident;
        let names: Vec<&Ident> = self.params.iter().map(|p| &p.ident).collect();
        let takes = self.params.iter().map(|param| {
            let (ident, key, ty) = (&param.ident, &param.key, at(Depth::Hidden, &param.ty));
            let codec = Self::arg_codec(param);
            quote!(let #ident: #ty = __reader.take_with(#key, #codec)?;)
        });
        let decode = quote! {
            let mut __reader = #p::ArgsReader::new(__json)?;
            #(#takes)*
            __reader.finish()?;
        };
        // The same decoding without the call: `enqueue TASK JSON` refuses what cannot run.
        let check = quote! {
            #[allow(unused_variables)]
            fn check(__json: #p::serde_json::Value)
                -> ::core::result::Result<(), #p::RunError>
            {
                #decode
                ::core::result::Result::Ok(())
            }
        };
        // The function's arguments in order: the stored ones, and the worker's context where
        // the function takes one.
        let mut stored = names.iter();
        let call_args: Vec<TokenStream> = self
            .func
            .sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(typed) if check::is_context(&typed.ty) => {
                    Some(quote!(#p::TaskContext::current()))
                }
                FnArg::Typed(_) => stored.next().map(|name| quote!(#name)),
                FnArg::Receiver(_) => None,
            })
            .collect();
        let names = call_args;
        if self.func.sig.asyncness.is_some() {
            let outcome = Self::outcome(returns, quote!(super::super::#fname(#(#names),*).await));
            quote! {
                #check
                fn run(__json: #p::serde_json::Value) -> #p::BoxFuture<#p::RunResult> {
                    ::std::boxed::Box::pin(async move {
                        #decode
                        #outcome
                    })
                }
            }
        } else {
            let outcome = Self::outcome(returns, quote!(super::super::#fname(#(#names),*)));
            quote! {
                #check
                fn run(__json: #p::serde_json::Value) -> #p::RunResult {
                    #decode
                    #outcome
                }
            }
        }
    }

    /// `mod f`: the enqueue API, and the hidden items the worker and schedules reach through
    /// `f::__toosimple`. Nothing for a method (a module would only add "module is not supported
    /// in impls" to the receiver's error).
    fn module(&self) -> TokenStream {
        let func = self.func;
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
        let name = task_name(self.options, fname);
        let output = self.output_type();
        let inputs = self.inputs();
        // Empty unless the signature has errors (a generic task is one).
        let generics = &func.sig.generics;
        let where_clause = &generics.where_clause;
        let names: Vec<&Ident> = self.params.iter().map(|p| &p.ident).collect();
        let cfgs = func.attrs.iter().filter(|a| a.path().is_ident("cfg"));
        let due = fresh("due", func);
        let conn = fresh("conn", func);
        let items = fresh("items", func);
        let result = quote!(::core::result::Result);
        let handle = quote!(#result<#p::TaskHandle<self::Output>, #p::Error>);
        let datetime = quote!(#p::chrono::DateTime<#p::chrono::Utc>);
        let conn_type = quote!(&mut (impl #p::EnqueueConnection + ?::core::marker::Sized));
        let def = quote!(&self::__toosimple::DEF);
        let args = quote!(self::__toosimple::args(#(#names),*));
        let none = quote!(::core::option::Option::None);
        let some_due = quote!(::core::option::Option::Some(#due));

        let module_doc = format!(
            " Enqueues the `{name}` task (`#[task]` on `fn {fname}`): `queue`, `queue_at`, \
             `queue_many`, `queue_in` and `queue_at_in`; `call` describes a call for a `Flow`.\n\n Calling `{fname}(...)` directly \
             still runs the function in place.",
        );
        let name_doc = format!(
            " The task's name, `{name}`: stored in each execution row, and how workers find it."
        );
        let output_doc = match self.returns {
            Some(Returns::Result { .. }) => {
                " What the task returns when it succeeds (the `Ok` type): the value a handle's \
                 `wait` gives."
            }
            _ => " What the task returns: the value a handle's `wait` gives.",
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

        let call_doc = format!(
            " A call of `{name}` with these arguments, not enqueued: a step of a \
             `Flow` (`Flow::new().then({fname}::call(...))`), enqueued in its turn."
        );
        let with_doc = format!(
            " Options for one call of `{name}` over the task's own (queue, priority, due time, \
             retries, retry delay, time limit, TTL), then `queue`, `queue_many` or `queue_in`: \
             `{fname}::with().on_queue(\"bulk\").priority(-1).queue(...)`."
        );
        let with_struct_doc = format!(
            " What a `Call` of `{name}` enqueues with: `{fname}::with()` sets the options, \
             then one of these enqueues."
        );
        // `queue` and `queue_at` always exist; their bodies never run when the signature has
        // errors (nothing is registered then).
        let checked = self.checked();
        let body = |real: TokenStream| match checked {
            Some(_) => real,
            None => quote!(::core::unimplemented!()),
        };
        let queue_body = body(quote!(#p::enqueue(#def, #args, #none)));
        let queue_at_body = body(quote!(#p::enqueue(#def, #args, #some_due)));
        let call_body = body(quote!(#p::TaskCall::new(#def, #args, #p::CallOptions::new())));
        let call_type = quote!(#p::TaskCall<self::Output>);
        let rest = checked.map(|returns| {
            let types = self.params.iter().map(|p| at(Depth::Module, &p.ty));
            let types_again = self.params.iter().map(|p| at(Depth::Module, &p.ty));
            let item_pattern = match names.as_slice() {
                [] => quote!(()),
                [one] => quote!((#one,)),
                many => quote!((#(#many),*)),
            };
            let assertions = self.assertions(returns);
            let definition = self.definition();
            let args_encoder = self.args_encoder();
            let runner = self.runner(returns);
            quote! {
                #[doc = #queue_many_doc]
                pub fn queue_many(
                    #items: impl ::core::iter::IntoIterator<Item = (#(#types,)*)>,
                ) -> #result<::std::vec::Vec<#p::TaskHandle<self::Output>>, #p::Error> {
                    #p::enqueue_many(
                        #def,
                        ::core::iter::IntoIterator::into_iter(#items)
                            .map(|#item_pattern| #args),
                    )
                }

                #[doc = #with_doc]
                pub fn with() -> #p::Call<self::With> {
                    #p::Call::new(self::With(#p::CallOptions::new()))
                }

                #[doc = #with_struct_doc]
                #[derive(Debug, Clone, Default, PartialEq, Eq)]
                pub struct With(#p::CallOptions);

                impl #p::CallTarget for self::With {
                    fn call_options(&mut self) -> &mut #p::CallOptions {
                        &mut self.0
                    }
                }

                impl self::With {
                    #[doc = #queue_doc]
                    pub fn queue(&self, #(#inputs),*) -> #handle {
                        #p::enqueue_with(#def, #args, &self.0)
                    }
                    #[doc = #queue_many_doc]
                    pub fn queue_many(
                        &self,
                        #items: impl ::core::iter::IntoIterator<Item = (#(#types_again,)*)>,
                    ) -> #result<::std::vec::Vec<#p::TaskHandle<self::Output>>, #p::Error> {
                        #p::enqueue_many_with(
                            #def,
                            ::core::iter::IntoIterator::into_iter(#items)
                                .map(|#item_pattern| #args),
                            &self.0,
                        )
                    }
                    #[doc = #queue_in_doc]
                    pub fn queue_in(&self, #conn: #conn_type, #(#inputs),*) -> #handle {
                        #p::enqueue_in_with(#conn, #def, #args, &self.0)
                    }
                    #[doc = #call_doc]
                    pub fn call(&self, #(#inputs),*) -> #call_type {
                        #p::TaskCall::new(#def, #args, ::core::clone::Clone::clone(&self.0))
                    }
                }

                #[doc = #queue_in_doc]
                pub fn queue_in(#conn: #conn_type, #(#inputs),*) -> #handle {
                    #p::enqueue_in(#conn, #def, #args, #none)
                }

                #[doc = #queue_at_in_doc]
                pub fn queue_at_in(#conn: #conn_type, #due: #datetime, #(#inputs),*) -> #handle {
                    #p::enqueue_in(#conn, #def, #args, #some_due)
                }

                /// What the worker and the schedules reach: not part of the API.
                #[doc(hidden)]
                pub mod __toosimple {
                    use super::*;

                    #assertions
                    #definition
                    #args_encoder
                    #runner
                }
            }
        });

        quote! {
            #(#cfgs)*
            #[doc = #module_doc]
            #[allow(
                non_snake_case,
                unused_imports,
                unused_variables,
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

                #[doc = #queue_doc]
                pub fn queue #generics (#(#inputs),*) -> #handle #where_clause {
                    #queue_body
                }

                #[doc = #queue_at_doc]
                pub fn queue_at #generics (#due: #datetime, #(#inputs),*) -> #handle
                    #where_clause
                {
                    #queue_at_body
                }

                #[doc = #call_doc]
                pub fn call #generics (#(#inputs),*) -> #call_type #where_clause {
                    #call_body
                }

                #rest
            }
        }
    }
}
