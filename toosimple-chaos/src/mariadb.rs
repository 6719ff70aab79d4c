//! A private MariaDB server in a temporary folder: one that a test or a chaos run may stop,
//! crash and restart without disturbing anyone else's.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::{Connection, MysqlConnection, RunQueryDsl};

use crate::postgres::{is_root, succeeds};

/// Where Debian's `mariadb-server` puts the server and its initializer.
const MARIADBD: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "mariadb-install-db";

/// A private MariaDB server, stopped and deleted when dropped. It trusts every local client
/// (`--skip-grant-tables`): it lives in a private folder, on 127.0.0.1, for one run.
pub struct PrivateMariadb {
    dir: tempfile::TempDir,
    port: u16,
    /// Whether the server runs as the `mysql` user (it refuses root).
    as_mysql: bool,
    server: Mutex<Option<Child>>,
}

impl PrivateMariadb {
    /// Initializes and starts a server on a free port of 127.0.0.1. Errs with the reason
    /// when MariaDB's server programs are missing or will not start.
    pub fn start() -> Result<PrivateMariadb, String> {
        if !std::path::Path::new(MARIADBD).is_file() {
            return Err(format!(
                "no MariaDB server at {MARIADBD}: install mariadb-server"
            ));
        }
        let as_mysql = is_root();
        if as_mysql && !succeeds(Command::new("id").arg("mysql")) {
            return Err("running as root without a `mysql` user to run MariaDB as".into());
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        let server = PrivateMariadb {
            dir: tempfile::tempdir().map_err(|e| format!("cannot create a folder: {e}"))?,
            port,
            as_mysql,
            server: Mutex::new(None),
        };
        if as_mysql {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("mysql").arg(server.dir.path());
            if !succeeds(&mut chown) {
                return Err("cannot chown the server's folder to mysql".into());
            }
        }
        let mut install = Command::new(INSTALL_DB);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", server.data().display()))
            .args(["--skip-test-db", "--auth-root-authentication-method=normal"]);
        if as_mysql {
            install.arg("--user=mysql");
        }
        let installed = install
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {INSTALL_DB}: {e}"))?;
        if !installed.status.success() {
            return Err(format!("{INSTALL_DB} failed: {installed:?}"));
        }
        server.start_server()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Starts the server (again) on its port, and waits until it accepts connections.
    pub fn start_server(&self) -> Result<(), String> {
        let mut slot = self.server.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = slot.as_mut()
            && child.try_wait().ok().flatten().is_none()
        {
            return Ok(());
        }
        let mut command = Command::new(MARIADBD);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--log-error={}", self.log().display()))
            .args([
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--max-connections=500",
                "--innodb-buffer-pool-size=64M",
            ]);
        if self.as_mysql {
            command.arg("--user=mysql");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {MARIADBD}: {e}"))?;
        *slot = Some(child);
        drop(slot);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if MysqlConnection::establish(&self.url("mysql")).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the private MariaDB did not accept connections within 60 s; its log:\n{}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server: `fast` shuts it down cleanly (SIGTERM: clients are disconnected),
    /// `immediate` crashes it (SIGKILL: crash recovery runs on the next start).
    pub fn stop_server(&self, mode: &str) -> Result<(), String> {
        let mut slot = self.server.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut child) = slot.take() else {
            return Ok(());
        };
        let signal = if mode == "immediate" {
            "-KILL"
        } else {
            "-TERM"
        };
        succeeds(Command::new("kill").args([signal, &child.id().to_string()]));
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the private MariaDB did not stop within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database` and returns its URL.
    pub fn create_database(&self, database: &str) -> Result<String, String> {
        let mut admin = MysqlConnection::establish(&self.url("mysql"))
            .map_err(|e| format!("cannot connect to the private server: {e}"))?;
        diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .map_err(|e| format!("cannot create the database: {e}"))?;
        Ok(self.url(database))
    }
}

impl Drop for PrivateMariadb {
    fn drop(&mut self) {
        // Whether or not it runs (it may have been stopped by a fault); the folder goes after.
        if let Some(mut child) = self
            .server
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
