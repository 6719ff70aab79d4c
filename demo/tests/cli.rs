//! `demo`'s command line is its own: its name, version and description, its commands (the
//! site, `tour`) listed by clap beside toosimple's, and toosimple's notes on exit codes,
//! signals and `TOOSIMPLE_LOG`.

use std::process::{Command, Output};

fn demo(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .current_dir(dir.path())
        .args(args)
        .env("TOOSIMPLE_DATABASE_URL", "sqlite://demo.sqlite3")
        .output()
        .expect("run demo");
    assert!(
        !dir.path().join("demo.sqlite3").exists(),
        "demo {args:?} created a database"
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Finding: `demo --version` said "toosimple-worker 0.1.0", and `demo --help` was a
/// hand-written text printed in front of toosimple's help.
#[test]
fn help_and_version_are_the_demos() {
    let version = demo(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        stdout(&version),
        format!("demo {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = demo(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = stdout(&help);
    assert!(
        help.starts_with(env!("CARGO_PKG_DESCRIPTION")),
        "the about text is the demo's Cargo description:\n{help}"
    );
    assert!(!help.contains("manage-style"), "{help}");
    // One list of commands, the demo's and toosimple's, as clap prints them.
    let commands: Vec<&str> = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for command in ["worker", "status", "enqueue", "migrate", "tour"] {
        assert!(commands.contains(&command), "{command} in {commands:?}");
    }
    for text in [
        "--bind <ADDR>",
        "--no-worker",
        "TOOSIMPLE_SMTP_URL",
        "TOOSIMPLE_LOG",
        "SIGTERM or a second SIGINT",
        "  77  a worker terminated",
    ] {
        assert!(
            help.contains(text),
            "demo --help should say {text:?}:\n{help}"
        );
    }
    let tour = stdout(&demo(&["tour", "--help"]));
    assert!(tour.contains("scripted walk-through"), "{tour}");
}

#[test]
fn the_demos_own_command_lines_are_checked_by_clap() {
    for args in [
        &["tour", "extra"][..],
        &["--bind"],
        &["--what"],
        &["--no-worker", "status"],
    ] {
        let output = demo(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains("try '--help'"),
            "{args:?}: {stderr}"
        );
    }
}
