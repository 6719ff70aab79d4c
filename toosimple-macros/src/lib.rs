//! Placeholder: replaced by the real macros.
use proc_macro::TokenStream;

/// Placeholder.
#[proc_macro_attribute]
pub fn task(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Placeholder.
#[proc_macro_attribute]
pub fn schedule(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
