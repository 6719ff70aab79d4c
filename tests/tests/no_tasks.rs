//! A program that links no task is told how to link a library's tasks.
//!
//! This test binary names neither the `toosimple_tests` task library nor any task.

#[test]
fn a_program_without_tasks_gets_an_error_saying_how_to_link_them() {
    assert!(toosimple_core::tasks().unwrap().is_empty());
    let err = toosimple_core::runtime::require_tasks().unwrap_err();
    assert!(matches!(err, toosimple_core::Error::NoTasks));
    assert!(err.to_string().contains("use my_tasks as _;"), "{err}");
}
