//! Less common but valid functions: `mut` parameters, a `#[cfg]`-gated task, a deprecated one,
//! a `const fn`.
#![deny(warnings)]

use toosimple_core::{find_task, task};

#[task]
pub fn bump(mut n: i64) -> i64 {
    n += 1;
    n
}

#[cfg(any())]
#[task]
pub fn compiled_out(n: NotEvenAType) {}

#[task]
#[deprecated = "use bump"]
pub fn old(n: i64) -> i64 {
    n
}

#[task]
pub const fn constant() -> u8 {
    7
}

fn main() {
    assert_eq!(bump(1), 2);
    for name in ["bump", "old", "constant"] {
        assert!(find_task(name).is_ok(), "{name}");
    }
    assert!(find_task("compiled_out").is_err());
}
