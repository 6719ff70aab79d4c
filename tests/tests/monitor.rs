//! `app monitor` in a real terminal: tmux runs it in an 80×24 window, as over SSH, and its
//! screen is captured (`tmux capture-pane`) into `test-artifacts/monitor-<backend>.txt` (and the
//! screen with a running task's progress into `monitor-progress-<backend>.txt`).

use std::process::{Command, Output};
use std::time::Duration;

use toosimple_core::State;
use toosimple_tests::tasks::{add, fail_with, gate, halfway};
use toosimple_tests::{TestDb, backend_suite, wait_until};
use toosimple_worker::Worker;

const APP: &str = env!("CARGO_BIN_EXE_testapp");
const DEADLINE: Duration = Duration::from_secs(30);

backend_suite!(monitor_shows_workers_queues_and_throughput_in_80_by_24_and_q_quits);

/// A tmux server of the test's own (its own socket), killed with the test.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("toosimple-monitor-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux (apt-get install tmux)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "monitor"]).stdout)
            .into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn backend(db: &TestDb) -> &'static str {
    match db.store.backend() {
        toosimple_core::Backend::Sqlite => "sqlite",
        toosimple_core::Backend::Postgres => "postgres",
        toosimple_core::Backend::Mysql => "mysql",
    }
}

fn monitor_shows_workers_queues_and_throughput_in_80_by_24_and_q_quits(db: &TestDb) {
    // A minute's history: successes and a failure, then work left waiting.
    for i in 0..12 {
        add::queue(i, 1).unwrap();
    }
    let failed = fail_with::queue("boom".into()).unwrap();
    assert_eq!(
        Worker::new()
            .store(db.store.clone())
            .label("earlier")
            .until_done()
            .run(),
        toosimple_worker::Exit::Stopped
    );
    assert_eq!(failed.state().unwrap(), State::Failed);
    for i in 0..5 {
        add::with().on_queue("reports").queue(i, 2).unwrap();
    }

    let tmux = Tmux::new();
    let command = format!(
        "env TOOSIMPLE_DATABASE_URL='{}' NO_COLOR=1 {APP} monitor",
        db.url
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "monitor",
        "-x",
        "80",
        "-y",
        "24",
        &command,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let mut screen = String::new();
    wait_until("the monitor's first screen", DEADLINE, || {
        screen = tmux.screen();
        screen.contains("Finished per second") && screen.contains("reports")
    });
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(
        artifacts.join(format!("monitor-{}.txt", backend(db))),
        &screen,
    )
    .unwrap();

    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() <= 24, "{screen}");
    assert!(
        lines.iter().all(|l| l.chars().count() <= 80),
        "fits 80 columns:\n{screen}"
    );
    assert!(lines[0].starts_with("toosimple monitor · "), "{screen}");
    let earlier = lines
        .iter()
        .find(|l| l.contains("earlier"))
        .unwrap_or_else(|| panic!("the worker listed:\n{screen}"));
    assert!(
        earlier.contains("stopped") && earlier.contains("13"),
        "{earlier}"
    );
    let default = lines
        .iter()
        .find(|l| l.contains("│default"))
        .unwrap_or_else(|| panic!("{screen}"));
    let numbers: Vec<&str> = default
        .trim_matches('│')
        .split_whitespace()
        .skip(1)
        .collect();
    assert_eq!(
        numbers,
        ["0", "0", "0", "1"],
        "queued, sleeping, running, failed: {default}"
    );
    let reports = lines.iter().find(|l| l.contains("│reports")).unwrap();
    assert!(reports.contains("  5 "), "{reports}");
    assert!(
        screen.contains("13 in the last minute"),
        "13 finished in the last minute:\n{screen}"
    );

    // It refreshes: a new worker appears, with the task it runs and that task's progress.
    let key = gate::unique("monitor");
    halfway::with()
        .on_queue("slow")
        .queue(key.clone(), 1)
        .unwrap();
    let store = db.store.clone();
    let live = std::thread::spawn(move || {
        Worker::new()
            .store(store)
            .label("live")
            .queues(["slow"])
            .until_done()
            .tick(Duration::from_millis(50))
            .run()
    });
    wait_until(
        "the refresh showing the new worker's task",
        DEADLINE,
        || {
            screen = tmux.screen();
            screen
                .lines()
                .any(|l| l.contains("live") && l.contains("halfway 50% halfway"))
        },
    );
    std::fs::write(
        artifacts.join(format!("monitor-progress-{}.txt", backend(db))),
        &screen,
    )
    .unwrap();
    gate::open(&key);
    assert_eq!(live.join().unwrap(), toosimple_worker::Exit::Stopped);

    let quit = tmux.run(&["send-keys", "-t", "monitor", "q"]);
    assert!(quit.status.success());
    wait_until("the monitor to quit on q", DEADLINE, || {
        !tmux.run(&["has-session", "-t", "monitor"]).status.success()
    });
}
