//! A private PostgreSQL server in a temporary folder: one that a test or a chaos run may stop,
//! crash and restart without disturbing anyone else's.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use diesel::{Connection, PgConnection, RunQueryDsl};

/// A private PostgreSQL server, stopped and deleted when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    listen: String,
    settings: Vec<String>,
    /// Whether the server's programs run as the `postgres` user (`initdb` and `postgres`
    /// refuse to run as root).
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Initializes and starts a server on a free port of 127.0.0.1 and of each address in
    /// `also_listen`, with the `name=value` `settings`. Errs with the reason when PostgreSQL's
    /// server programs are missing or will not start.
    pub fn start(also_listen: &[String], settings: &[&str]) -> Result<PrivatePostgres, String> {
        let bin = server_bindir()
            .ok_or("no PostgreSQL server programs (initdb, pg_ctl) found: install postgresql")?;
        let as_postgres = is_root();
        if as_postgres && !succeeds(Command::new("id").arg("postgres")) {
            return Err("running as root without a `postgres` user to run PostgreSQL as".into());
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("cannot find a free port: {e}"))?
            .port();
        let mut listen = vec!["127.0.0.1".to_string()];
        listen.extend(also_listen.iter().cloned());
        let server = PrivatePostgres {
            bin,
            dir: tempfile::tempdir().map_err(|e| format!("cannot create a folder: {e}"))?,
            port,
            listen: listen.join(","),
            settings: settings.iter().map(|s| s.to_string()).collect(),
            as_postgres,
        };
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("postgres").arg(server.dir.path());
            if !succeeds(&mut chown) {
                return Err("cannot chown the server's folder to postgres".into());
            }
        }
        let initdb = server
            .command("initdb")
            .arg("-D")
            .arg(server.data())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync"])
            .output()
            .map_err(|e| format!("cannot run initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!("initdb failed: {initdb:?}"));
        }
        if !also_listen.is_empty() {
            // Clients on those addresses' own subnets (a veth pair's far end) may connect.
            use std::io::Write;
            std::fs::OpenOptions::new()
                .append(true)
                .open(server.data().join("pg_hba.conf"))
                .and_then(|mut hba| hba.write_all(b"host all all samenet trust\n"))
                .map_err(|e| format!("cannot extend pg_hba.conf: {e}"))?;
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

    /// A command running the server program `name`, as the `postgres` user when needed.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Runs `pg_ctl` on this server; errs with the server's log when it fails.
    pub fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "60"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "pg_ctl {args:?} failed: {output:?}\nserver log:\n{}",
            std::fs::read_to_string(self.log()).unwrap_or_default()
        ))
    }

    /// Starts the server (again) on its port, and waits until it accepts connections.
    pub fn start_server(&self) -> Result<(), String> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses={}",
            self.port,
            self.dir.path().display(),
            self.listen
        );
        for setting in &self.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let log = self.log().display().to_string();
        self.pg_ctl(&["-l", &log, "-o", &options, "start"])
    }

    /// Stops the server: `fast` disconnects clients and shuts down cleanly, `immediate`
    /// crashes it (recovery runs on the next start).
    pub fn stop_server(&self, mode: &str) -> Result<(), String> {
        self.pg_ctl(&["stop", "-m", mode])
    }

    /// The URL of `database` on this server through `host` (127.0.0.1 or an address given
    /// to [`start`](Self::start)).
    pub fn url_via(&self, host: &str, database: &str) -> String {
        format!("postgres://postgres@{host}:{}/{database}", self.port)
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        self.url_via("127.0.0.1", database)
    }

    /// Creates `database` and returns its URL.
    pub fn create_database(&self, database: &str) -> Result<String, String> {
        let mut admin = PgConnection::establish(&self.url("postgres"))
            .map_err(|e| format!("cannot connect to the private server: {e}"))?;
        diesel::sql_query(format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .map_err(|e| format!("cannot create the database: {e}"))?;
        Ok(self.url(database))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Whether or not it runs (it may have been stopped by a fault); the folder goes after.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30", "-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The folder of `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn server_bindir() -> Option<PathBuf> {
    let has_programs = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_programs(d)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_programs(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `command` quietly; whether it succeeded.
pub fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
