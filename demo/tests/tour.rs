//! `demo tour` runs to the end on both databases.

use std::process::Command;

use toosimple_tests::{TestDb, backend_suite};

backend_suite!(tour_exits_0_and_shows_every_task);

fn tour_exits_0_and_shows_every_task(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("tour")
        .current_dir(dir.path())
        .env("TOOSIMPLE_DATABASE_URL", &db.url)
        .env("TOOSIMPLE_LOG", "warn")
        .env_remove("TOOSIMPLE_SMTP_URL")
        .env_remove("TOOSIMPLE_MAIL_DIR")
        .output()
        .expect("run demo tour");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "demo tour exits 0");
    for task in [
        "send_welcome",
        "flaky_import",
        "render_report",
        "nightly_digest",
        "cleanup_unconfirmed",
        "toosimple_mail.send",
    ] {
        assert!(stdout.contains(task), "the table shows {task}");
    }
    assert!(
        stdout.contains("is already subscribed"),
        "the duplicate sign-up is refused"
    );
    assert!(
        stdout.contains("duplicate: true"),
        "the unique task is folded"
    );
    assert!(
        stdout.contains("timed out after 2 s"),
        "the slow report times out"
    );
    assert!(!stdout.contains("still pending"), "everything finished");
    // The welcome email and the direct one were written into ./outbox.
    let emails = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(emails, 2);
}
