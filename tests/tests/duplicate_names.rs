//! Two tasks with one name are an error at first use that names both places.
//!
//! This test binary does not link the `toosimple_tests` task library: it defines its own.

use toosimple_core::{Error, task};

mod billing {
    use super::task;

    #[task(name = "invoice")]
    pub fn send_invoice(id: i64) -> i64 {
        id
    }
}

mod legacy {
    use super::task;

    #[task(name = "invoice")]
    pub fn old_invoice(id: i64) -> i64 {
        id
    }
}

#[test]
fn duplicate_task_names_are_reported_with_both_locations() {
    let err = toosimple_core::tasks().unwrap_err();
    let Error::DuplicateTask {
        name,
        first,
        second,
    } = &err
    else {
        panic!("expected a duplicate-name error, got {err}");
    };
    assert_eq!(name, "invoice");
    assert_ne!(first, second);
    for location in [first, second] {
        assert!(location.contains("duplicate_names.rs:"), "{location}");
    }
    let message = err.to_string();
    assert!(message.contains("#[task(name = "), "{message}");
    // Enqueueing either task fails the same way, before anything is written.
    let dir = tempfile::tempdir().unwrap();
    toosimple_core::init(&format!(
        "sqlite://{}",
        dir.path().join("db.sqlite3").display()
    ))
    .unwrap();
    assert!(matches!(
        billing::send_invoice::queue(1),
        Err(Error::DuplicateTask { .. })
    ));
    assert!(matches!(
        legacy::old_invoice::queue(1),
        Err(Error::DuplicateTask { .. })
    ));
    assert_eq!(billing::send_invoice(7), 7);
}
