//! Compile-time behaviour of `#[task]` and `#[schedule]`: every misuse in `ui/*/fail` must give
//! the error in its `.stderr` (regenerate with `TRYBUILD=overwrite`, then read the diff), and
//! every case in `ui/*/pass` must compile and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/fail/*.rs");
    t.pass("tests/ui/*/pass/*.rs");
}
