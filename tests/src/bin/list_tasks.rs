//! Prints the tasks linked into this binary, one name per line: a test checks that the tasks
//! of the `toosimple_tests` library are visible from a binary that names the crate.

use toosimple_tests as _;

fn main() {
    for def in toosimple_core::tasks().expect("no duplicate task names") {
        println!("{}", def.name());
    }
}
