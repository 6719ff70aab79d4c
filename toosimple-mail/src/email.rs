//! The serde form of a message, stored in the execution's arguments.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
use lettre::address::{Address, Envelope};
use serde::{Deserialize, Serialize};

use crate::Error;

/// An email as stored in a `toosimple_mail.send` execution: its envelope (who the server is
/// told it is from and to) and the formatted message.
///
/// ```
/// use toosimple_mail::QueuedEmail;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let message = lettre::Message::builder()
///     .from("news@example.com".parse()?)
///     .to("zoe@example.com".parse()?)
///     .subject("Grüße")
///     .body("Schön, dass du da bist.".to_string())?;
/// let email = QueuedEmail::from_message(&message);
/// assert_eq!(email.to, ["zoe@example.com"]);
/// assert_eq!(email.bytes()?, message.formatted()); // byte for byte
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEmail {
    /// The envelope sender (`MAIL FROM`), if any.
    pub from: Option<String>,
    /// The envelope recipients (`RCPT TO`): `To`, `Cc` and `Bcc` together.
    pub to: Vec<String>,
    /// The message, formatted as RFC 5322.
    pub message: Content,
}

/// The formatted message: as text when it is UTF-8 (lettre encodes headers and bodies to
/// ASCII unless told otherwise), in base64 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// The message's text.
    Text(String),
    /// The message's bytes, base64-encoded.
    Base64(String),
}

impl QueuedEmail {
    /// The stored form of `message`.
    pub fn from_message(message: &Message) -> QueuedEmail {
        let envelope = message.envelope();
        let content = match String::from_utf8(message.formatted()) {
            Ok(text) => Content::Text(text),
            Err(e) => Content::Base64(STANDARD.encode(e.into_bytes())),
        };
        QueuedEmail {
            from: envelope.from().map(ToString::to_string),
            to: envelope.to().iter().map(ToString::to_string).collect(),
            message: content,
        }
    }

    /// The formatted message's bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, Error> {
        match &self.message {
            Content::Text(text) => Ok(text.clone().into_bytes()),
            Content::Base64(data) => STANDARD.decode(data).map_err(|e| Error::Invalid {
                reason: format!("the message is not valid base64: {e}"),
            }),
        }
    }

    /// The envelope, as lettre's transports take it.
    pub fn envelope(&self) -> Result<Envelope, Error> {
        let parse = |text: &str| {
            text.parse::<Address>().map_err(|e| Error::Invalid {
                reason: format!("{text:?} is not an email address: {e}"),
            })
        };
        let from = self.from.as_deref().map(parse).transpose()?;
        let to = self
            .to
            .iter()
            .map(|t| parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        Envelope::new(from, to).map_err(|e| Error::Invalid {
            reason: format!("the envelope is not valid: {e}"),
        })
    }
}
