//! Code generation for `#[hook]`: the function unchanged, plus a same-named module holding
//! its registered `Hook` (`HOOK`), which `#[task(hook = f)]`, `#[schedule(hook = f)]` and a
//! call's `.hook(f::HOOK)` name.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Item, ItemFn, ReturnType};

use crate::attr::{self, Errors};
use crate::check;
use crate::task::{location, private};

/// `#[hook(attr)] item`. On errors the function and a module of the same shape are still
/// emitted (its hook never registered), so that uses of `f::HOOK` add no errors of their own.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => func,
        Ok(other) => {
            let error = syn::Error::new_spanned(
                &other,
                "#[hook] can only be used on a function: `fn notify(exec: &TaskExec)`",
            )
            .to_compile_error();
            return quote!(#other #error);
        }
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    let mut errors = Errors::default();
    let options = attr::parse_hook(attr, &mut errors);
    check::hook_signature(&func.sig, &mut errors);
    let name = options
        .name
        .as_ref()
        .map_or_else(|| func.sig.ident.unraw().to_string(), syn::LitStr::value);
    match errors.finish() {
        Ok(()) => {
            let module = module(&func, &name, true);
            quote!(#func #module)
        }
        Err(error) => {
            let module = module(&func, &name, false);
            let error = error.to_compile_error();
            quote!(#func #module #error)
        }
    }
}

/// `mod f { NAME, HOOK }`; `registered` adds the call of the function and the registration.
fn module(func: &ItemFn, name: &str, registered: bool) -> TokenStream {
    let p = private();
    let vis = &func.vis;
    let fname = &func.sig.ident;
    let cfgs = func.attrs.iter().filter(|a| a.path().is_ident("cfg"));
    let location = location(fname.span());
    let module_doc = format!(
        " The `{name}` hook (`#[hook]` on `fn {fname}`): name it with `#[task(hook = \
         {fname})]`, `#[schedule(hook = {fname})]` or a call's `.hook({fname}::HOOK)`."
    );
    let call = if registered {
        // Spanned at the parameter and the return type: a wrong argument type or a return
        // type that is not a hook's is reported there.
        let arg_span = func
            .sig
            .inputs
            .first()
            .map_or_else(|| fname.span(), |a| a.span());
        let call = quote_spanned!(arg_span=> super::super::#fname(exec));
        let ret_span = match &func.sig.output {
            ReturnType::Default => fname.span(),
            ReturnType::Type(_, ty) => ty.span(),
        };
        quote_spanned!(ret_span=> #p::HookOutput::into_hook_result(#call))
    } else {
        quote!(::core::unimplemented!())
    };
    let submit = registered.then(|| quote!(#p::inventory::submit! { super::HOOK }));
    quote! {
        #(#cfgs)*
        #[doc = #module_doc]
        #[allow(non_snake_case, dead_code, unused_imports)]
        #vis mod #fname {
            use super::*;

            /// The hook's name: stored in the rows of the executions it is called with.
            pub const NAME: &str = #name;

            /// The registered hook.
            pub const HOOK: #p::Hook = #p::Hook::new(self::NAME, self::__toosimple::run, #location);

            /// What the worker reaches: not part of the API.
            #[doc(hidden)]
            pub mod __toosimple {
                use super::*;

                pub fn run(
                    exec: &#p::TaskExec,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    #call
                }

                #submit
            }
        }
    }
}
