//! docker-compose.yml, rehearsed without a container engine: each service's command runs as a
//! local process with the environment compose would give it, in dependency order, and the test
//! then does what a user does after `docker compose up`: open the site, sign up, get the
//! welcome email, and see both worker replicas take tasks from the shared queue.
//!
//! The image services are stood in for: `postgres` by a scratch database on the tests'
//! PostgreSQL server, `mailpit` by the tests' SMTP server. Service host names in the
//! environment (`postgres:5432`, `mailpit:1025`) are pointed at them, and published ports at
//! free ones. Without a reachable PostgreSQL the test says it skipped, except in CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use diesel::prelude::*;
use serde_yaml::Value;
use toosimple_tests::smtp::{SmtpServer, free_port};
use toosimple_tests::{TestDb, wait_for_exit, wait_until};

const DEMO: &str = env!("CARGO_BIN_EXE_demo");
const DEADLINE: Duration = Duration::from_secs(60);

fn compose() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker-compose.yml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A scratch database on the tests' server, dropped at the end.
struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    fn create() -> Option<ScratchDatabase> {
        let admin_url = TestDb::postgres_admin_url();
        let mut admin = TestDb::postgres_admin()?;
        let name = format!(
            "compose_{}_{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        Some(ScratchDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// The services in an order where each comes after those it depends on.
fn in_dependency_order(services: &serde_yaml::Mapping) -> Vec<String> {
    fn visit(
        name: &str,
        services: &serde_yaml::Mapping,
        done: &mut Vec<String>,
        path: &mut Vec<String>,
    ) {
        if done.iter().any(|d| d == name) {
            return;
        }
        assert!(
            !path.iter().any(|p| p == name),
            "a dependency cycle through {name}"
        );
        path.push(name.to_string());
        let service = &services[name];
        let deps: Vec<String> = match &service["depends_on"] {
            Value::Mapping(m) => m
                .keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
            Value::Sequence(s) => s
                .iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        for dep in deps {
            visit(&dep, services, done, path);
        }
        path.pop();
        done.push(name.to_string());
    }
    let mut done = Vec::new();
    for name in services.keys().filter_map(|k| k.as_str()) {
        visit(name, services, &mut done, &mut Vec::new());
    }
    done
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Compose's `$$` is a literal `$` for the container's shell.
fn unescape(text: &str) -> String {
    text.replace("$$", "$")
}

/// The stand-ins: service host names and published ports, as the local processes reach them.
struct StandIns {
    database_url: String,
    smtp: String,
    ports: BTreeMap<u16, u16>,
}

impl StandIns {
    /// `value` with the compose network's addresses pointed at the stand-ins.
    fn rewrite(&self, value: &str) -> String {
        let mut value = value.to_string();
        if value.starts_with("postgres://") && value.contains("@postgres:") {
            value = self.database_url.clone();
        }
        value = value.replace("smtp://mailpit:1025", &self.smtp);
        for (published, local) in &self.ports {
            value = value
                .replace(&format!(":{published}/"), &format!(":{local}/"))
                .replace(
                    &format!("0.0.0.0:{published}"),
                    &format!("127.0.0.1:{local}"),
                );
            if value.ends_with(&format!(":{published}")) {
                value = format!(
                    "{}:{local}",
                    &value[..value.len() - published.to_string().len() - 1]
                );
            }
        }
        value
    }
}

/// A service's processes, stopped with SIGINT (the workers' `stop_signal`) at the end.
struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn compose_services_run_as_local_processes_serve_the_site_share_the_queue_and_send_the_email() {
    let Some(database) = ScratchDatabase::create() else {
        return;
    };
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap().clone();
    let order = in_dependency_order(&services);
    assert_eq!(
        order.first().map(String::as_str),
        Some("postgres"),
        "{order:?}"
    );

    let smtp = SmtpServer::start();
    let mut stand_ins = StandIns {
        database_url: database.url.clone(),
        smtp: smtp.url(),
        ports: BTreeMap::new(),
    };
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = Path::new(DEMO).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        demo_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut running: Vec<Running> = Vec::new();
    let mut web_port = None;
    let mut worker_labels = Vec::new();
    for name in &order {
        let service = &services[name.as_str()];
        if service.get("build").is_none() {
            // An image: stood in for.
            let image = service["image"].as_str().unwrap();
            assert!(
                image.starts_with("postgres:") || image.starts_with("axllent/mailpit"),
                "service {name} runs image {image}, which this rehearsal cannot stand in for: teach it"
            );
            continue;
        }
        for port in strings(&service["ports"]) {
            let published: u16 = port.rsplit(':').next().unwrap().parse().unwrap();
            let local = free_port();
            stand_ins.ports.insert(published, local);
            if name == "web" {
                web_port = Some(local);
            }
        }
        // What each dependency must have reached first.
        if let Value::Mapping(deps) = &service["depends_on"] {
            for (dep, rule) in deps {
                let dep = dep.as_str().unwrap();
                match rule["condition"].as_str() {
                    Some("service_completed_successfully") => assert!(
                        !running.iter().any(|r| r.name == dep),
                        "{dep} is still running"
                    ),
                    Some("service_healthy") | Some("service_started") | None => {}
                    Some(other) => panic!("unknown depends_on condition {other}"),
                }
            }
        }
        let replicas = service["deploy"]["replicas"].as_u64().unwrap_or(1);
        for n in 1..=replicas {
            let hostname = format!("compose-{name}-{n}");
            let (program, args) = match strings(&service["entrypoint"]).as_slice() {
                [] => (
                    DEMO.to_string(),
                    strings(&service["command"])
                        .iter()
                        .map(|a| stand_ins.rewrite(&unescape(a)))
                        .collect::<Vec<_>>(),
                ),
                [program, rest @ ..] => (
                    program.clone(),
                    rest.iter()
                        .chain(strings(&service["command"]).iter())
                        .map(|a| stand_ins.rewrite(&unescape(a)))
                        .collect(),
                ),
            };
            let log = dir.path().join(format!("{hostname}.log"));
            let mut command = Command::new(&program);
            command
                .args(&args)
                .env_clear()
                .env("PATH", &path)
                .env("HOSTNAME", &hostname)
                .env("NO_COLOR", "1")
                .current_dir(dir.path())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(dir.path().join(format!("{hostname}.err"))).unwrap());
            if let Value::Mapping(env) = &service["environment"] {
                for (key, value) in env {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                    };
                    command.env(key.as_str().unwrap(), stand_ins.rewrite(&value));
                }
            }
            if name == "worker" {
                worker_labels.push(format!("worker-{hostname}"));
            }
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("start {name}: {program} {args:?}: {e}"));
            running.push(Running {
                name: name.clone(),
                child,
                log: dir.path().join(format!("{hostname}.err")),
            });
        }
        // `migrate` runs once, to its end, before anything that depends on it.
        if service["deploy"]["replicas"].is_null()
            && services.values().any(|other| {
                other["depends_on"][name.as_str()]["condition"].as_str()
                    == Some("service_completed_successfully")
            })
        {
            let mut once = running.pop().unwrap();
            let log = once.log.clone();
            let status = wait_for_exit(&mut once.child, DEADLINE, name, || {
                std::fs::read_to_string(&log).unwrap_or_default()
            });
            assert!(status.success(), "{name} failed:\n{}", once.log());
        }
    }
    assert_eq!(
        worker_labels.len(),
        2,
        "two worker replicas: {worker_labels:?}"
    );

    // The site answers.
    let base = format!(
        "http://127.0.0.1:{}",
        web_port.expect("web publishes a port")
    );
    wait_until("the site answering", DEADLINE, || {
        ureq::get(&format!("{base}/"))
            .call()
            .is_ok_and(|r| r.into_string().unwrap_or_default().contains("Subscribe"))
    });

    // A sign-up: the welcome email arrives at the stand-in for Mailpit.
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let signup = agent
        .post(&format!("{base}/signup"))
        .send_form(&[("email", "ann@example.com"), ("name", "Ann")])
        .unwrap();
    assert_eq!(signup.status(), 303);
    wait_until("the welcome email", DEADLINE, || {
        !smtp.received().is_empty()
    });
    assert_eq!(smtp.received()[0].rcpt_to, ["ann@example.com"]);

    // Both workers take tasks from the shared queue.
    for _ in 0..24 {
        let out = Command::new(DEMO)
            .args(["enqueue", "render_report", r#"{"pages": 2}"#])
            .env("TOOSIMPLE_DATABASE_URL", &database.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = toosimple_core::Store::connect(&database.url).unwrap();
    let reports = || {
        toosimple_core::TaskExec::list_in(
            &store,
            &toosimple_core::TaskExecFilter::default().task_name("render_report"),
        )
        .unwrap()
    };
    wait_until("every report rendered", DEADLINE, || {
        reports()
            .iter()
            .all(|e| e.state == toosimple_core::State::Succeeded)
    });
    let by: std::collections::BTreeSet<String> =
        reports().into_iter().filter_map(|e| e.worker).collect();
    let expected: std::collections::BTreeSet<String> = worker_labels.iter().cloned().collect();
    assert_eq!(by, expected, "both replicas took tasks");

    // `docker compose stop`: SIGINT to the workers (their stop_signal), SIGTERM to the site.
    for service in &running {
        let signal = if service.name == "worker" {
            "-INT"
        } else {
            "-TERM"
        };
        let _ = Command::new("kill")
            .args([signal, &service.child.id().to_string()])
            .status();
    }
    for service in &mut running {
        let log = service.log.clone();
        let status = wait_for_exit(&mut service.child, DEADLINE, &service.name, || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        if service.name == "worker" {
            assert_eq!(status.code(), Some(0), "{}", service.log());
        }
    }
    drop(store);
}
