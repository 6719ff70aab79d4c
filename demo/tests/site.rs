//! The demo as a user runs it: `demo --bind …` serves the sign-up site with a worker in the
//! same process, the welcome email reaches a real SMTP server, and Ctrl-C stops it cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use toosimple_tests::smtp::SmtpServer;
use toosimple_tests::{TestDb, backend_suite, wait_until};

backend_suite!(sign_up_sends_the_welcome_email_and_ctrl_c_stops_cleanly);

struct Demo {
    child: Child,
    base: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &TestDb, smtp: &SmtpServer, dir: &std::path::Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env("TOOSIMPLE_DATABASE_URL", &db.url)
        .env("TOOSIMPLE_SMTP_URL", smtp.url())
        .env("TOOSIMPLE_LOG", "warn")
        .env("TOOSIMPLE_ADMIN_PASSWORD", "s3cret")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("demo> {line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("demo prints its URL");
        if let Some(rest) = line.strip_prefix("demo: open ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
        }
    };
    Demo { child, base }
}

fn post_signup(base: &str, email: &str, name: &str) -> (u16, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    match agent
        .post(&format!("{base}/signup"))
        .send_form(&[("email", email), ("name", name)])
    {
        Ok(response) => {
            let status = response.status();
            let location = response.header("location").unwrap_or_default().to_string();
            (status, location)
        }
        Err(ureq::Error::Status(status, response)) => (status, response.into_string().unwrap()),
        Err(e) => panic!("POST /signup: {e}"),
    }
}

fn get(url: &str) -> String {
    ureq::get(url).call().unwrap().into_string().unwrap()
}

fn sign_up_sends_the_welcome_email_and_ctrl_c_stops_cleanly(db: &TestDb) {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut demo = start(db, &smtp, dir.path());
    let base = demo.base.clone();

    assert!(get(&format!("{base}/")).contains("Subscribe"));
    // The admin dashboard is mounted at /admin (its login form, without a session).
    let admin = get(&format!("{base}/admin")).to_lowercase();
    assert!(admin.contains("password"), "{admin}");
    let (status, location) = post_signup(&base, "Zoe@Example.com", "Zoë Ünal");
    assert_eq!(status, 303, "a sign-up redirects back: {location}");
    assert!(
        location.starts_with("/?welcome=zoe%40example.com"),
        "{location}"
    );
    assert!(get(&format!("{base}{location}")).contains("is on its way"));

    wait_until("the welcome email", Duration::from_secs(30), || {
        !smtp.received().is_empty()
    });
    let mail = &smtp.received()[0];
    assert_eq!(mail.rcpt_to, ["zoe@example.com"]);
    let text = String::from_utf8_lossy(&mail.data);
    assert!(
        text.contains("/confirm/"),
        "the email holds the confirmation link"
    );
    wait_until("the list to show it sent", Duration::from_secs(30), || {
        get(&format!("{base}/subscribers")).contains("succeeded")
    });
    let list = get(&format!("{base}/subscribers"));
    assert!(
        list.contains("Zoë Ünal") && list.contains("zoe@example.com"),
        "{list}"
    );
    assert!(
        list.contains(r#"http-equiv="refresh""#),
        "the list refreshes itself"
    );

    // A duplicate address is a form error, and queues nothing.
    let (status, page) = post_signup(&base, "zoe@example.com", "Zoë again");
    assert_eq!(status, 409);
    assert!(
        page.contains("zoe@example.com is already subscribed"),
        "{page}"
    );
    assert!(
        page.contains(r#"value="Zoë again""#),
        "the form keeps what was typed"
    );
    let (status, page) = post_signup(&base, "not an address", "");
    assert_eq!(status, 422);
    assert!(page.contains("is not an email address"), "{page}");
    // Finding: a 10,000-character address came back whole in the error and in the form.
    let long = format!("{}@example.com", "x".repeat(10_000));
    let (status, page) = post_signup(&base, &long, &"y".repeat(10_000));
    assert_eq!(status, 422);
    assert!(
        page.contains("has 10012 characters, and an address has at most 254"),
        "{page}"
    );
    assert!(
        !page.contains(&"x".repeat(255)) && !page.contains(&"y".repeat(101)),
        "the page echoes at most a field's limit of what was typed ({} bytes)",
        page.len()
    );
    assert!(page.len() < 4_000, "{} bytes", page.len());
    let (status, page) = post_signup(&base, &format!("{}@", "x".repeat(200)), "");
    assert_eq!(status, 422);
    assert!(
        page.contains(&format!(
            "{}…&quot; is not an email address.",
            "x".repeat(59)
        )),
        "a refused address is quoted shortened: {page}"
    );
    assert_eq!(db.count("task_name = 'send_welcome'"), 1);

    // The confirmation link works.
    let token = text
        .split("/confirm/")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(get(&format!("{base}/confirm/{token}")).contains("Confirmed"));

    // Ctrl-C: the site and the worker stop, exit code 0.
    let status = Command::new("kill")
        .args(["-INT", &demo.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "demo did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
    // The in-process worker recorded its clean stop.
    assert!(
        toosimple_core::WorkerStatus::list_in(&db.store)
            .unwrap()
            .iter()
            .any(|w| w.label.starts_with("demo-") && w.exit_code == Some(0)),
        "the worker's status row says it stopped"
    );
}
