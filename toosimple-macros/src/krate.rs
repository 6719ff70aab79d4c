//! Which crate the generated code calls into: `toosimple_core`, or the `toosimple` facade that
//! re-exports it, under whatever name the caller's `Cargo.toml` gives either.
//!
//! A user who depends only on `toosimple` has no `toosimple_core` in scope, so a hard-coded
//! `::toosimple_core` path would not resolve; `proc-macro-crate` reads the caller's manifest.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

/// The crate that defines the runtime API (`__private`, `schedule`): `::toosimple_core` when
/// the caller depends on it (directly, renamed or not), else the `toosimple` facade.
pub(crate) fn root() -> TokenStream {
    // `Itself` is a test, example or doctest of that very package (neither library uses
    // `#[task]` on itself), where the package's own crate is reached by its name.
    let found = [
        ("toosimple-core", "toosimple_core"),
        ("toosimple", "toosimple"),
    ]
    .into_iter()
    .find_map(|(package, itself)| match crate_name(package) {
        Ok(FoundCrate::Itself) => Some(itself.to_string()),
        Ok(FoundCrate::Name(name)) => Some(name),
        Err(_) => None,
    });
    // Neither found (a build outside cargo, for instance): the path the macros always used,
    // whose "unresolved crate" error then names what to depend on.
    let name = found.unwrap_or_else(|| "toosimple_core".to_string());
    let ident = Ident::new(&name, Span::call_site());
    quote!(::#ident)
}
