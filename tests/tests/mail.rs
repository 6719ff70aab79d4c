//! toosimple-mail: emails queued by `send`/`send_in` and delivered by an in-process worker to a
//! real SMTP server on 127.0.0.1 (see `toosimple_tests::smtp`), or into a folder.

use std::time::Duration;

use diesel::Connection;
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use toosimple_core::{State, TaskExec, TaskExecFilter};
use toosimple_mail::{QueuedEmail, Transport};
use toosimple_tests::smtp::{SmtpServer, free_port};
use toosimple_tests::{TestDb, backend_suite, wait_until};
use toosimple_worker::Exit;

backend_suite!(
    delivers_subject_recipients_and_non_ascii_body_intact,
    a_server_down_at_first_gets_the_email_from_a_retry,
    send_in_commits_and_rolls_back_with_the_callers_transaction,
    the_same_message_queued_twice_is_sent_once,
    without_smtp_emails_become_eml_files,
);

const BODY: &str =
    "Grüße, Zoë! Ваше письмо — 日本語のテキスト ✓\r\n.a line starting with a dot\r\nend";

fn message(subject: &str) -> Message {
    Message::builder()
        .from(
            "Newsletter Zoë <news@example.com>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to("Ann Ünal <ann@example.com>".parse::<Mailbox>().unwrap())
        .to("bob@example.org".parse::<Mailbox>().unwrap())
        .cc("José <jose@example.net>".parse::<Mailbox>().unwrap())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN) // text/plain; charset=utf-8
        .body(BODY.to_string())
        .unwrap()
}

fn mail_execs() -> Vec<TaskExec> {
    let mut all = TaskExec::list(
        &TaskExecFilter::default()
            .task_name(toosimple_mail::TASK_NAME)
            .limit(100),
    )
    .unwrap();
    all.reverse();
    all
}

/// Parses `data` as a MIME message and checks it is [`message`]`(subject)`.
fn assert_is_the_message(data: &[u8], subject: &str) {
    let parsed = mailparse::parse_mail(data).expect("a valid RFC 5322 message");
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
    };
    assert_eq!(header("Subject").as_deref(), Some(subject));
    assert_eq!(
        header("From").as_deref(),
        Some("Newsletter Zoë <news@example.com>")
    );
    let to = header("To").expect("a To header");
    assert!(to.contains("Ann Ünal <ann@example.com>"), "{to}");
    assert!(to.contains("bob@example.org"), "{to}");
    assert_eq!(header("Cc").as_deref(), Some("José <jose@example.net>"));
    assert_eq!(parsed.get_body().unwrap(), BODY);
}

fn delivers_subject_recipients_and_non_ascii_body_intact(db: &TestDb) {
    let server = SmtpServer::start();
    toosimple_mail::set_transport(Transport::Smtp { url: server.url() });
    let subject = "Bienvenue, Zoë ! — Привет 👋";
    let message = message(subject);
    let handle = toosimple_mail::send(&message).unwrap();
    // Stored, not sent: the request that queued it does not wait for the server.
    assert_eq!(handle.state().unwrap(), State::Queued);
    assert!(server.received().is_empty());

    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(handle.state().unwrap(), State::Succeeded);
    let received = server.received();
    assert_eq!(received.len(), 1, "delivered once");
    let mail = &received[0];
    assert_eq!(mail.mail_from, "news@example.com");
    let mut rcpt = mail.rcpt_to.clone();
    rcpt.sort();
    assert_eq!(
        rcpt,
        ["ann@example.com", "bob@example.org", "jose@example.net"]
    );
    assert_is_the_message(&mail.data, subject);
    // Byte for byte what lettre formatted (the SMTP layer adds a final CRLF if missing).
    let formatted = message.formatted();
    let data = mail
        .data
        .strip_suffix(b"\r\n")
        .filter(|_| !formatted.ends_with(b"\r\n"));
    assert_eq!(data.unwrap_or(&mail.data), &formatted[..]);
}

fn a_server_down_at_first_gets_the_email_from_a_retry(db: &TestDb) {
    let def = toosimple_core::find_task(toosimple_mail::TASK_NAME).unwrap();
    assert_eq!(
        (def.retries(), def.retry_delay(), def.is_unique()),
        (10, 3, true),
        "the seed's send_email options"
    );

    let port = free_port();
    toosimple_mail::set_transport(Transport::Smtp {
        url: format!("smtp://127.0.0.1:{port}"),
    });
    let subject = "Réessayé jusqu'à l'arrivée";
    let first = toosimple_mail::send(&message(subject)).unwrap();
    let worker = db.worker();
    let shutdown = worker.shutdown_handle();
    let running = std::thread::spawn(move || worker.run());

    wait_until("the first attempt to fail", Duration::from_secs(30), || {
        first.state().unwrap() == State::Failed
    });
    let failed = first.exec().unwrap();
    let error = failed.error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("127.0.0.1:{port}")),
        "the error names the server: {error}"
    );
    let retry = TaskExec::get(failed.replaced_by.expect("a retry is scheduled")).unwrap();
    assert_eq!(retry.state, State::Sleeping);
    assert_eq!(retry.retries, 9);
    assert_eq!(retry.args, failed.args, "the retry carries the same email");

    // The server comes up before the retry is due (3 s after the failure).
    let server = SmtpServer::start_on(port);
    wait_until(
        "a retry to deliver the email",
        Duration::from_secs(60),
        || !server.received().is_empty(),
    );
    wait_until(
        "the delivery to be recorded",
        Duration::from_secs(30),
        || mail_execs().iter().any(|e| e.state == State::Succeeded),
    );
    shutdown.graceful();
    assert_eq!(running.join().unwrap(), Exit::Stopped);

    let received = server.received();
    assert_eq!(received.len(), 1, "delivered exactly once");
    assert_is_the_message(&received[0].data, subject);
    let execs = mail_execs();
    assert!(
        execs.iter().all(|e| e.state != State::Processing),
        "{execs:?}"
    );
    assert_eq!(
        execs.iter().filter(|e| e.state == State::Succeeded).count(),
        1
    );
    // Every failed attempt points at its replacement, down to the one that succeeded.
    let mut exec = first.exec().unwrap();
    while let Some(next) = exec.replaced_by {
        assert_eq!(exec.state, State::Failed);
        exec = TaskExec::get(next).unwrap();
    }
    assert_eq!(exec.state, State::Succeeded);
}

fn send_in_commits_and_rolls_back_with_the_callers_transaction(db: &TestDb) {
    let server = SmtpServer::start();
    toosimple_mail::set_transport(Transport::Smtp { url: server.url() });
    let mut conn = db.store.connection().unwrap();

    let rolled_back = conn.transaction::<(), diesel::result::Error, _>(|conn| {
        toosimple_mail::send_in(conn, &message("rolled back")).unwrap();
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert!(mail_execs().is_empty(), "a rolled back email is not queued");

    let handle = conn
        .transaction::<_, diesel::result::Error, _>(|conn| {
            Ok(toosimple_mail::send_in(conn, &message("committed")).unwrap())
        })
        .unwrap();
    drop(conn);
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(handle.state().unwrap(), State::Succeeded);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_is_the_message(&received[0].data, "committed");
}

fn the_same_message_queued_twice_is_sent_once(db: &TestDb) {
    let server = SmtpServer::start();
    toosimple_mail::set_transport(Transport::Smtp { url: server.url() });
    let message = message("only once");
    let first = toosimple_mail::send(&message).unwrap();
    let again = toosimple_mail::send(&message).unwrap();
    assert!(again.is_duplicate());
    assert_eq!(again.id(), first.id());
    // Like the seed (whose unique key is the pickled message), an identical message pending
    // at the same time is folded into the first; one with its own Message-ID is another email.
    let twin = toosimple_mail::send(&self::message("only once")).unwrap();
    assert!(twin.is_duplicate() || twin.id() != first.id());
    let with_id = Message::builder()
        .message_id(None) // generated, unique
        .from("news@example.com".parse::<Mailbox>().unwrap())
        .to("ann@example.com".parse::<Mailbox>().unwrap())
        .subject("only once")
        .body(BODY.to_string())
        .unwrap();
    let other = toosimple_mail::send(&with_id).unwrap();
    assert!(!other.is_duplicate());
    let twins = if twin.is_duplicate() { 0 } else { 1 };
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(server.received().len(), 2 + twins);
}

fn without_smtp_emails_become_eml_files(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox"); // created on first delivery
    toosimple_mail::set_transport(Transport::Folder(outbox.clone()));
    let message = message("Écrit dans un fichier");
    let handle = toosimple_mail::send(&message).unwrap();
    assert_eq!(db.worker().until_done().run(), Exit::Stopped);
    assert_eq!(handle.state().unwrap(), State::Succeeded);
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let data = std::fs::read(&files[0]).unwrap();
    assert_eq!(
        data,
        message.formatted(),
        "the file holds the message as formatted"
    );
    assert_is_the_message(&data, "Écrit dans un fichier");
    // The stored arguments are the same bytes.
    let stored: QueuedEmail =
        serde_json::from_value(handle.exec().unwrap().args["email"].clone()).unwrap();
    assert_eq!(stored.bytes().unwrap(), message.formatted());
}
