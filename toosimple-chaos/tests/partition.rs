//! A worker cut off from PostgreSQL while a query of its round waits on a lock, and while the
//! server restarts behind the partition, carries on once the link is back.
//!
//! The long chaos run on PostgreSQL saw the partitioned worker's loop stall for minutes after
//! such a sequence (its heartbeat thread went on). This exact sequence recovers within
//! seconds, with or without the TCP keepalives now added to every PostgreSQL URL that does
//! not choose its own, so it is a scenario test, not that stall's reproduction: the
//! keepalives (and `tcp_user_timeout`) bound any wait on a dead connection to about 20 s.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use toosimple_chaos::harness::{QUEUE, ROLE_ENV};
use toosimple_chaos::netns::Partitionable;
use toosimple_chaos::postgres::{PrivatePostgres, is_root};
use toosimple_chaos::tasks::{DIR_ENV, EFFECTS, Kind, LABEL_ENV, step};

const CHAOS: &str = env!("CARGO_BIN_EXE_toosimple-chaos");

fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_cut_off_while_its_server_restarts_carries_on_once_the_link_is_back() {
    if !is_root() {
        let reason = "the partition test needs root (network namespace, PostgreSQL as postgres)";
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{reason} (CI=true: it must run)");
        }
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let net = Partitionable::create().expect("a network namespace");
    let server = PrivatePostgres::start(&[net.host_address().to_string()], &[])
        .expect("a private PostgreSQL server");
    let url = server.create_database("chaos").unwrap();
    toosimple_core::init(&url).expect("migrate the database");
    let dir = tempfile::tempdir().unwrap();
    let effects = dir.path().join(EFFECTS);
    let ran = |key: i64| {
        std::fs::read_to_string(&effects)
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').next() == Some(&key.to_string()))
    };
    let log = dir.path().join("worker.log");
    let mut worker = net
        .command(CHAOS.as_ref())
        .args([
            "worker",
            "--queue",
            QUEUE,
            "--tick",
            "0.2",
            "--timeout",
            "120",
        ])
        .env(ROLE_ENV, "app")
        .env(
            "TOOSIMPLE_DATABASE_URL",
            server.url_via(net.host_address(), "chaos"),
        )
        .env(DIR_ENV, dir.path())
        .env(LABEL_ENV, "cut-off")
        .env("TOOSIMPLE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the worker in the namespace");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    step::queue(1, Kind::Quick, 1).unwrap();
    wait_until("a first task to run", Duration::from_secs(30), || ran(1));

    // Another client locks the table, so that the worker's next round waits on the server.
    let mut locker = PgConnection::establish(&url).unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE task_execs IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    // Its rounds come every tick (0.2 s): by now one waits for the lock.
    std::thread::sleep(Duration::from_secs(1));
    net.set_link(false).unwrap();
    server.stop_server("fast").unwrap();
    server.start_server().unwrap();
    net.set_link(true).unwrap();
    drop(locker);

    // The test's own pooled connections died with the server: the first tries may fail.
    wait_until("the enqueue to succeed", Duration::from_secs(30), || {
        step::queue(2, Kind::Quick, 1).is_ok()
    });
    let carried_on = Instant::now();
    let deadline = Duration::from_secs(90);
    while !ran(2) {
        if carried_on.elapsed() > deadline {
            let _ = worker.kill();
            panic!(
                "the worker never came back from the partition:\n{}",
                read_log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-INT", &worker.id().to_string()])
        .status();
    let status = worker.wait().unwrap();
    assert!(status.success(), "{status}: {}", read_log());
}
