//! Queued email for toosimple: the request that sends an email only stores it, and a worker
//! delivers it, retrying while the mail server is down (django-toosimple-q's `contrib.mail`).
//!
//! Build a [`lettre::Message`] as usual and hand it to [`send`] (or [`send_in`], inside your
//! own database transaction). It returns at once with the handle of a `toosimple_mail.send`
//! execution; any worker of the application delivers it.
//!
//! ```no_run
//! use lettre::Message;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let message = Message::builder()
//!     .from("Newsletter <news@example.com>".parse()?)
//!     .to("Zoë <zoe@example.com>".parse()?)
//!     .subject("Bienvenue, Zoë !")
//!     .body("Merci de votre inscription.".to_string())?;
//! let handle = toosimple_mail::send(&message)?; // a row; a worker delivers it
//! println!("email queued as execution {}", handle.id());
//! # Ok(())
//! # }
//! ```
//!
//! # The task
//! [`deliver`](fn@deliver) is registered as `toosimple_mail.send`: unique, 10 retries, first retry after 3
//! seconds, doubling (3 s, 6 s, 12 s, … about 51 minutes in all), as the seed's `send_email`. A
//! failed attempt (the server refuses the connection, answers with an error, times out) fails
//! the execution, whose replacement tries again later: an unreachable SMTP server delays the
//! email, it does not lose it.
//!
//! # Where mail goes
//! [`Transport::from_env`] reads `TOOSIMPLE_SMTP_URL` (`smtp://user:password@host:port`, as
//! lettre's `SmtpTransport::from_url`); when it is unset, each email is written as an `.eml` file
//! into `TOOSIMPLE_MAIL_DIR` (default `./outbox`). [`set_transport`] overrides both for the
//! process. TLS (`smtps://`, `?tls=required`) needs the `tls` feature, which builds rustls.
//!
//! # What is stored
//! The execution's arguments hold a [`QueuedEmail`]: the envelope and the message formatted as
//! RFC 5322 text, exactly the bytes lettre would have sent, so any header, attachment and
//! non-ASCII text survives the round trip.

#![warn(missing_docs)]

mod email;
mod error;
mod send;
mod transport;

pub use lettre;

pub use crate::email::{Content, QueuedEmail};
pub use crate::error::Error;
pub use crate::send::{TASK_NAME, deliver, send, send_at, send_in};
pub use crate::transport::{
    DEFAULT_MAIL_DIR, MAIL_DIR_ENV, SMTP_URL_ENV, Transport, clear_transport, set_transport,
};
