//! Strategies for cron expressions, shared by the parser's tests here and the runtime's
//! (`toosimple-core/tests/cron_fuzz.rs`, through `#[path]`): most expressions are valid, so that
//! occurrences get searched, and the rest are broken in the places parsers get wrong.

use proptest::prelude::*;

/// The bounds of each field in the order they are written (seconds last), and the words a
/// field takes.
const BOUNDS: [(u32, u32); 6] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7), (0, 59)];

/// A number in `lo..=hi`, or just outside it.
fn number(lo: u32, hi: u32) -> impl Strategy<Value = u32> {
    prop_oneof![40 => lo..=hi, 1 => Just(hi + 1), 1 => Just(lo.saturating_sub(1))]
}

/// One term of field `i`: a value, a range, a step, or one of the field's special forms.
fn term(i: usize) -> BoxedStrategy<String> {
    let (lo, hi) = BOUNDS[i];
    // Mostly in order and with a step of at least 1: reversed ranges and zero steps are
    // errors, and most expressions should get as far as searching occurrences.
    let range = (number(lo, hi), number(lo, hi), prop::bool::weighted(0.03))
        .prop_map(|(a, b, reversed)| {
            if (a <= b) != reversed {
                format!("{a}-{b}")
            } else {
                format!("{b}-{a}")
            }
        })
        .boxed();
    let step = prop_oneof![40 => 1..=hi, 1 => Just(0), 1 => Just(hi + 1)].boxed();
    let mut forms: Vec<BoxedStrategy<String>> = vec![
        Just("*".to_string()).boxed(),
        number(lo, hi).prop_map(|n| n.to_string()).boxed(),
        range.clone().boxed(),
        (number(lo, hi), step.clone())
            .prop_map(|(a, s)| format!("{a}/{s}"))
            .boxed(),
        step.clone().prop_map(|s| format!("*/{s}")).boxed(),
        (range, step).prop_map(|(r, s)| format!("{r}/{s}")).boxed(),
    ];
    match i {
        2 => forms.push(
            prop_oneof![
                Just("L".to_string()),
                Just("LW".to_string()),
                Just("?".to_string()),
                number(lo, hi).prop_map(|n| format!("{n}W")),
                (0..32u32).prop_map(|n| format!("L-{n}")),
            ]
            .boxed(),
        ),
        3 => forms.push(
            prop::sample::select(vec!["JAN", "feb", "Mar", "JUN-AUG", "DEC", "NOV-FEB"])
                .prop_map(str::to_string)
                .boxed(),
        ),
        4 => forms.push(
            prop_oneof![
                Just("?".to_string()),
                prop::sample::select(vec!["MON", "tue", "SUN", "MON-FRI", "SAT-SUN", "FRI-MON"])
                    .prop_map(str::to_string),
                number(lo, hi).prop_map(|n| format!("{n}L")),
                (number(lo, hi), 0..7u32).prop_map(|(d, k)| format!("{d}#{k}")),
            ]
            .boxed(),
        ),
        _ => {}
    }
    prop::strategy::Union::new(forms).boxed()
}

/// Field `i`: usually one term, sometimes a list.
fn field(i: usize) -> BoxedStrategy<String> {
    prop_oneof![
        4 => term(i),
        // croner takes no `*` inside a list.
        1 => prop::collection::vec(term(i).prop_filter("no * in a list", |t| t != "*"), 2..4)
            .prop_map(|t| t.join(",")),
    ]
    .boxed()
}

/// A field from cron's alphabet with no regard for meaning: numbers past `u64`, empty steps,
/// stray `#`, `L`, `W`, `-`, names that are not names.
pub fn wild_field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9*/,\\-?LW#]{1,10}",
        "(MON|tue|jan|XYZ|L|W|#|\\?)[0-9#/,\\-]{0,4}",
        "(-1|0|00|000000|4294967296|18446744073709551616|99999999999999999999999)(/[0-9]{0,22})?",
    ]
}

/// A whole expression: 5 or 6 plausible fields, maybe one replaced by a wild one; other field
/// counts; nicknames; `manual`; odd whitespace.
pub fn expression() -> impl Strategy<Value = String> {
    let fields = (5usize..=6).prop_flat_map(|n| {
        let fields: Vec<BoxedStrategy<String>> = (0..n).map(field).collect();
        (fields, prop::option::weighted(0.1, (0..n, wild_field())))
    });
    prop_oneof![
        8 => (fields, "[ \t]{1,2}").prop_map(|((mut fields, wild), sep)| {
            if let Some((i, text)) = wild {
                fields[i] = text;
            }
            fields.join(&sep)
        }),
        1 => (prop::collection::vec(wild_field(), 0..9), "[ \t\n]{1,3}")
            .prop_map(|(fields, sep)| fields.join(&sep)),
        1 => "[ \t]{0,2}(manual|@daily|@hourly|@weekly|@monthly|@yearly|@annually|@midnight|@reboot|@[a-zA-Z]{0,8})[ \t]{0,2}",
    ]
}
