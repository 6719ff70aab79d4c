//! PostgreSQL over TLS, as managed services require it: a private server with `ssl=on` and a
//! self-signed certificate made for the test (by the `openssl` command), a store and a worker
//! process connecting with `?sslmode=require`, and a task run through them. The server's own
//! view (`pg_stat_ssl`) shows every session encrypted.
//!
//! Finding: `sslmode=require` failed with libpq's "SSL support is not compiled in".

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::prelude::*;
use toosimple_chaos::postgres::{PrivatePostgres, is_root, succeeds};
use toosimple_tests::tasks::add;

const APP: &str = env!("CARGO_BIN_EXE_testapp");

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Without what the test needs: fails in CI, says why and skips elsewhere.
fn missing(reason: &str) {
    if ci() {
        panic!("{reason} (CI=true: the TLS test must run)");
    }
    eprintln!("SKIPPED: {reason}");
}

/// A self-signed certificate for 127.0.0.1 and its key in `dir`, readable by the server only.
fn certificate(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            // `verify-full` checks the address against the certificate's names.
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return Err("cannot make a certificate with the `openssl` command: install openssl".into());
    }
    use std::os::unix::fs::PermissionsExt;
    // The server refuses a key others can read; as root it runs as `postgres`, who must own it.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod the key: {e}"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod the folder: {e}"))?;
    if is_root() && !succeeds(Command::new("chown").arg("postgres").arg(&key).arg(&cert)) {
        return Err("cannot chown the certificate to postgres".into());
    }
    Ok((cert, key))
}

/// The sessions on `database` as the server sees them: (encrypted, total).
fn sessions(admin_url: &str, database: &str) -> (i64, i64) {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        encrypted: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        total: i64,
    }
    let mut admin = PgConnection::establish(admin_url).expect("connect to the private server");
    let count: Count = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE s.ssl) AS encrypted, count(*) AS total \
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1",
    )
    .bind::<diesel::sql_types::Text, _>(database)
    .get_result(&mut admin)
    .expect("read pg_stat_ssl");
    (count.encrypted, count.total)
}

#[test]
fn sslmode_require_connects_over_tls_and_runs_a_task() {
    let certs = tempfile::tempdir().expect("a temporary folder");
    let (cert, key) = match certificate(certs.path()) {
        Ok(files) => files,
        Err(reason) => return missing(&reason),
    };
    let ssl_cert = format!("ssl_cert_file={}", cert.display());
    let ssl_key = format!("ssl_key_file={}", key.display());
    let server = match PrivatePostgres::start(&[], &["fsync=off", "ssl=on", &ssl_cert, &ssl_key]) {
        Ok(server) => server,
        Err(reason) => return missing(&reason),
    };
    server.create_database("tls").unwrap();
    let url = format!("{}?sslmode=require", server.url("tls"));
    let admin_url = format!("{}?sslmode=disable", server.url("postgres"));

    let store = toosimple_core::init(&url).unwrap_or_else(|e| panic!("{}", e.report()));
    let handle = add::queue(2, 3).unwrap();
    let (encrypted, total) = sessions(&admin_url, "tls");
    assert!(total >= 1, "the store holds a session");
    assert_eq!(encrypted, total, "every session of the store is encrypted");

    let output = Command::new(APP)
        .args(["worker", "--until-done", "--tick", "0.1"])
        .env("TOOSIMPLE_DATABASE_URL", &url)
        .env("TOOSIMPLE_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .expect("run a worker");
    let log = String::from_utf8_lossy(&output.stderr);
    eprintln!("{log}");
    assert!(output.status.success(), "the worker exits 0: {log}");
    assert_eq!(handle.wait(Duration::from_secs(10)).unwrap(), 5, "{log}");
    let exec = handle.exec().unwrap();
    assert!(exec.worker.is_some(), "run by the worker process");

    // An idle worker is woken through LISTEN over TLS as well (its tick is 30 s), with the
    // server's certificate checked as `verify-full` asks. The LISTEN connection used to
    // speak plain TCP only: "no LISTEN wake-ups for now", and new work waited for the tick.
    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        server.url("tls"),
        cert.display()
    );
    let log_path = certs.path().join("idle.log");
    let mut idle = Command::new(APP)
        .args([
            "worker",
            "--tick",
            "30s",
            "--timeout",
            "60s",
            "--label",
            "idle",
        ])
        .env("TOOSIMPLE_DATABASE_URL", &verified)
        .env("TOOSIMPLE_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start a worker");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    toosimple_tests::wait_until(
        "the idle worker to register",
        Duration::from_secs(30),
        || {
            toosimple_core::WorkerStatus::list_in(&store)
                .unwrap()
                .iter()
                .any(|w| w.label == "idle")
        },
    );
    let woken = add::queue(20, 22).unwrap();
    let result = woken.wait(Duration::from_secs(10));
    let _ = Command::new("kill")
        .args(["-INT", &idle.id().to_string()])
        .status();
    let status = idle.wait().expect("the worker stops");
    assert_eq!(
        result.ok(),
        Some(42),
        "woken at once, not at the tick:\n{}",
        log()
    );
    assert!(status.success(), "{}", log());
    assert!(!log().contains("no LISTEN wake-ups"), "{}", log());
    drop(store);
}
