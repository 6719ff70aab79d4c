//! Queuing an email, and the task that delivers it.

use chrono::{DateTime, Utc};
use lettre::Message;
use toosimple_core::{EnqueueConnection, TaskHandle, task};

use crate::{QueuedEmail, Transport};

/// The name of the delivery task, as stored in its executions.
pub const TASK_NAME: &str = "toosimple_mail.send";

/// Delivers one stored email through [`Transport::current`]: the task behind [`send`],
/// registered as `toosimple_mail.send` (unique, 10 retries, first retry after 3 s).
///
/// Called directly, it sends at once, in the caller's thread.
#[task(
    name = "toosimple_mail.send",
    unique = true,
    retries = 10,
    retry_delay = 3
)]
pub fn deliver(email: QueuedEmail) -> Result<(), String> {
    Transport::current().deliver(&email).map_err(|e| e.report())
}

/// Queues `message` for delivery by a worker and returns at once.
///
/// The task is unique, as the seed's: while an email is pending, queuing the very same
/// formatted message again (same headers, same `Date` second, same body) returns the pending
/// execution's handle, marked as a duplicate. Give messages a `Message-ID`
/// (`MessageBuilder::message_id(None)` generates one) to send identical ones separately.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let message = lettre::Message::builder()
///     .from("news@example.com".parse()?)
///     .to("ann@example.com".parse()?)
///     .subject("Hello")
///     .body("Hi Ann".to_string())?;
/// toosimple_mail::send(&message)?.wait(std::time::Duration::from_secs(60))?;
/// # Ok(())
/// # }
/// ```
pub fn send(message: &Message) -> Result<TaskHandle<()>, toosimple_core::Error> {
    deliver::queue(QueuedEmail::from_message(message))
}

/// Queues `message` to be delivered no earlier than `due`.
pub fn send_at(
    due: DateTime<Utc>,
    message: &Message,
) -> Result<TaskHandle<()>, toosimple_core::Error> {
    deliver::queue_at(due, QueuedEmail::from_message(message))
}

/// Queues `message` through `conn`, inside the caller's transaction: the email is sent only if
/// that transaction commits.
///
/// ```no_run
/// use diesel::Connection;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let message = lettre::Message::builder().to("ann@example.com".parse()?).from("a@b.c".parse()?).body(String::new())?;
/// let store = toosimple_core::default_store()?;
/// let mut conn = store.connection()?;
/// conn.transaction(|conn| {
///     // ... insert the rows the email is about ...
///     toosimple_mail::send_in(conn, &message).map_err(|_| diesel::result::Error::RollbackTransaction)
/// })?;
/// # Ok(())
/// # }
/// ```
pub fn send_in<C: EnqueueConnection + ?Sized>(
    conn: &mut C,
    message: &Message,
) -> Result<TaskHandle<()>, toosimple_core::Error> {
    deliver::queue_in(conn, QueuedEmail::from_message(message))
}
