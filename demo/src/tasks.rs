//! The demo's tasks: one per queue, together showing every option.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use toosimple_core::{schedule, task};
use toosimple_mail::QueuedEmail;

use crate::subscribers;

/// Who the newsletter's emails come from.
pub const MAIL_FROM: &str = "Toosimple Weekly <newsletter@toosimple.example>";

/// The environment variable giving the site's public address, used in emailed links.
pub const PUBLIC_URL_ENV: &str = "DEMO_PUBLIC_URL";

/// The public address when [`PUBLIC_URL_ENV`] is unset.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8000";

/// The site's public address, without a trailing slash.
pub fn public_url() -> String {
    std::env::var(PUBLIC_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_string())
        .trim_end_matches('/')
        .to_string()
}

fn store() -> Result<toosimple_core::Store, String> {
    toosimple_core::default_store().map_err(|e| e.report())
}

fn mailbox(name: &str, email: &str) -> Result<Mailbox, String> {
    let address = email
        .parse()
        .map_err(|e| format!("{email:?} is not an email address: {e}"))?;
    Ok(Mailbox::new(Some(name.to_string()), address))
}

/// The welcome email for a subscriber, with their confirmation link.
pub fn welcome_message(sub: &subscribers::Subscriber) -> Result<Message, String> {
    let link = format!("{}/confirm/{}", public_url(), sub.token);
    Message::builder()
        .from(MAIL_FROM.parse().map_err(|e| format!("{e}"))?)
        .to(mailbox(&sub.name, &sub.email)?)
        .subject(format!("Welcome, {}!", sub.name))
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "Hello {},\n\nthanks for signing up. Confirm your address here:\n{link}\n\n— Toosimple Weekly\n",
            sub.name
        ))
        .map_err(|e| format!("cannot build the welcome email: {e}"))
}

/// Sends a new subscriber their welcome email, through toosimple-mail's transport (SMTP from
/// `TOOSIMPLE_SMTP_URL`, or `.eml` files in `./outbox`). Queued by the sign-up in the same
/// transaction as the subscriber's row; an unreachable mail server means retries.
#[task(queue = "emails", retries = 10, retry_delay = 3)]
pub fn send_welcome(subscriber_id: i64) -> Result<String, String> {
    let store = store()?;
    let Some(sub) = subscribers::get(&store, subscriber_id).map_err(|e| e.report())? else {
        return Ok(format!(
            "subscriber {subscriber_id} is gone: nothing to send"
        ));
    };
    let message = welcome_message(&sub)?;
    toosimple_mail::Transport::current()
        .deliver(&QueuedEmail::from_message(&message))
        .map_err(|e| e.report())?;
    Ok(format!("welcomed {}", sub.email))
}

/// Every morning at 8:00 UTC, queues a digest email to each confirmed subscriber (through
/// `toosimple_mail::send`). With `catch_up`, a worker that was down at 8:00 runs every missed
/// morning, each with its own `scheduled_for`.
#[schedule(cron = "0 8 * * *", catch_up = true, datetime_arg = "scheduled_for")]
#[task(queue = "digests")]
pub fn nightly_digest(scheduled_for: Option<DateTime<Utc>>) -> Result<usize, String> {
    let store = store()?;
    let day = scheduled_for
        .unwrap_or_else(Utc::now)
        .format("%A %-d %B %Y");
    let readers = subscribers::confirmed(&store).map_err(|e| e.report())?;
    for sub in &readers {
        let message = Message::builder()
            .from(MAIL_FROM.parse().map_err(|e| format!("{e}"))?)
            .to(mailbox(&sub.name, &sub.email)?)
            .subject(format!("Your digest for {day}"))
            .header(ContentType::TEXT_PLAIN)
            .body(format!("Hello {}, here is what happened.\n", sub.name))
            .map_err(|e| format!("cannot build the digest: {e}"))?;
        toosimple_mail::send(&message).map_err(|e| e.report())?;
    }
    Ok(readers.len())
}

/// Every minute, deletes the subscribers who have not confirmed within a day. Unique: however
/// often it is queued, at most one execution is pending.
#[schedule(cron = "* * * * *")]
#[task(queue = "maintenance", unique = true)]
pub fn cleanup_unconfirmed() -> Result<usize, String> {
    subscribers::delete_unconfirmed(&store()?, chrono::TimeDelta::days(1)).map_err(|e| e.report())
}

/// Imports a batch from a partner that fails half the time: each failure is replaced by a
/// retry (1 s, then 2 s, 4 s, 8 s), chained by `replaced_by`.
#[task(queue = "imports", retries = 4, retry_delay = 1)]
pub fn flaky_import(batch: i64) -> Result<i64, String> {
    if rand::random::<bool>() {
        return Err(format!(
            "the partner's server dropped batch {batch} (it does that)"
        ));
    }
    Ok(batch * 100)
}

/// Renders a report asynchronously; a report taking more than 2 seconds fails as timed out.
#[task(queue = "reports", timeout = 2, priority = 5)]
pub async fn render_report(pages: u64) -> String {
    tokio::time::sleep(Duration::from_millis(pages * 100)).await;
    format!("report of {pages} pages")
}
