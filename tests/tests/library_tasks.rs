//! Tasks defined in a library crate are visible to the programs that link it.

use toosimple_tests as _;

const EXPECTED: [&str; 30] = [
    "add",
    "always_fails",
    "announced_sleep",
    "append_line",
    "async_sleepy_with_timeout",
    "at_time",
    "awaits_forever",
    "blocks_its_thread",
    "checks_for_cancel",
    "echo",
    "fail_with",
    "fails_noting_db_time",
    "fails_once",
    "halfway",
    "hooked",
    "mail.send",
    "many_args",
    "many_reports",
    "morning",
    "nothing",
    "panics",
    "record",
    "record_high",
    "record_q1",
    "record_q2",
    "records_its_span",
    "refresh",
    "shout",
    "sleepy",
    "sleepy_with_timeout",
];

#[test]
fn an_integration_test_that_names_the_library_sees_its_tasks() {
    let names: Vec<&str> = toosimple_core::tasks()
        .unwrap()
        .iter()
        .map(|t| t.name())
        .collect();
    assert_eq!(names, EXPECTED);
    let send = toosimple_core::find_task("mail.send").unwrap();
    assert_eq!(
        (
            send.queue(),
            send.priority(),
            send.retries(),
            send.retry_delay()
        ),
        ("emails", 5, 3, 2)
    );
    assert!(send.is_unique());
    assert_eq!(send.timeout(), Some(30));
    assert!(send.location().contains("tasks.rs"), "{}", send.location());
}

#[test]
fn a_binary_that_names_the_library_sees_its_tasks() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_list_tasks"))
        .output()
        .expect("run list_tasks");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), EXPECTED);
}

#[test]
fn schedules_are_registered_with_their_task() {
    let schedules = toosimple_core::schedules();
    assert_eq!(schedules.len(), 1);
    let morning = schedules[0];
    assert_eq!(
        (morning.name(), morning.task(), morning.cron()),
        ("morning", "morning", "manual")
    );
    assert_eq!(morning.args().unwrap(), serde_json::json!({"name": "John"}));
}
