//! Argument and result types written with `self::` / `super::` paths, a user type named
//! `Output` (which the generated module also defines), and parameters named like the
//! generated functions' own (`due`, `conn`, `items`).
use serde::{Deserialize, Serialize};
use toosimple_core::task;

#[derive(Serialize, Deserialize)]
pub struct Output {
    pub n: i32,
}

pub type Alias = Vec<u8>;

pub mod inner {
    use serde::{Deserialize, Serialize};
    use toosimple_core::task;

    #[derive(Serialize, Deserialize)]
    pub struct Local(pub i32);

    #[task]
    pub fn paths(a: self::Local, b: super::Alias, c: Vec<Option<super::Alias>>) -> self::Local {
        let _ = (b, c);
        a
    }
}

#[task]
pub fn named_output(o: Output, due: String, conn: u8, items: Vec<Output>) -> Output {
    let _ = (due, conn, items);
    o
}

#[task]
pub fn raw(r#type: String) -> String {
    r#type
}

#[allow(dead_code)]
fn never_called() -> Result<(), toosimple_core::Error> {
    let h = inner::paths::queue(inner::Local(1), vec![], vec![None])?;
    let _: toosimple_core::TaskHandle<inner::Local> = h;
    let _ = named_output::queue_at(chrono::Utc::now(), Output { n: 1 }, "d".into(), 1, vec![])?;
    let _: Vec<toosimple_core::TaskHandle<Output>> =
        named_output::queue_many([(Output { n: 1 }, String::new(), 2, vec![])])?;
    Ok(())
}

fn main() {
    assert_eq!(
        raw::__toosimple::args("x".into()).unwrap(),
        serde_json::json!({"type": "x"})
    );
}
