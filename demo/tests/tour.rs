//! `demo tour` runs to the end on both databases.

use std::process::Command;

use toosimple_tests::{TestDb, backend_suite};

backend_suite!(tour_exits_0_and_shows_every_task);

/// `demo tour` in a fresh folder; `by_cargo`: with the environment `cargo run -p demo` gives
/// the binary (a newcomer's way), else as an installed binary runs.
fn tour(db: &TestDb, dir: &std::path::Path, by_cargo: bool) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_demo"));
    command
        .arg("tour")
        .current_dir(dir)
        .env("TOOSIMPLE_DATABASE_URL", &db.url)
        .env("TOOSIMPLE_LOG", "warn")
        .env_remove("TOOSIMPLE_SMTP_URL")
        .env_remove("TOOSIMPLE_MAIL_DIR");
    if by_cargo {
        command.env("CARGO_PKG_NAME", "demo");
    } else {
        command.env_remove("CARGO_PKG_NAME");
    }
    let output = command.output().expect("run demo tour");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "demo tour exits 0");
    stdout
}

/// The closing hints, from the `== Next` heading on.
fn hints(stdout: &str) -> &str {
    &stdout[stdout.find("== Next").expect("the tour ends with hints")..]
}

fn tour_exits_0_and_shows_every_task(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let stdout = tour(db, dir.path(), true);
    // Finding: the hints said `demo status`, which a newcomer's shell does not know.
    let next = hints(&stdout);
    for command in [
        "cargo run -p demo -- status ",
        "cargo run -p demo --           the sign-up site",
        "cargo run -p demo -- worker --queue emails --until-done",
    ] {
        assert!(next.contains(command), "{command:?} in {next}");
    }
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

/// Run as an installed binary (the container's `demo`), the hints name the binary itself.
#[test]
fn tour_run_directly_names_the_binary_in_its_hints() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let stdout = tour(&db, dir.path(), false);
    assert!(!stdout.contains("cargo run"), "{stdout}");
    assert!(hints(&stdout).contains("\ndemo status "), "{stdout}");
}
