//! Where delivered mail goes: an SMTP server, or `.eml` files in a folder.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use lettre::Transport as _;
use lettre::transport::file::FileTransport;
use lettre::transport::smtp::SmtpTransport;

use crate::{Error, QueuedEmail};

/// The environment variable naming the SMTP server: `smtp://user:password@host:port`.
pub const SMTP_URL_ENV: &str = "TOOSIMPLE_SMTP_URL";

/// The environment variable naming the folder that receives `.eml` files when
/// [`SMTP_URL_ENV`] is unset.
pub const MAIL_DIR_ENV: &str = "TOOSIMPLE_MAIL_DIR";

/// The folder used when neither [`SMTP_URL_ENV`] nor [`MAIL_DIR_ENV`] is set.
pub const DEFAULT_MAIL_DIR: &str = "./outbox";

/// How long one SMTP conversation may take before the attempt fails (and is retried).
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where [`deliver`](fn@crate::deliver) sends mail.
///
/// ```
/// use toosimple_mail::Transport;
///
/// let smtp = Transport::from_vars(Some("smtp://127.0.0.1:2525"), None);
/// assert_eq!(smtp, Transport::Smtp { url: "smtp://127.0.0.1:2525".into() });
/// let folder = Transport::from_vars(None, None);
/// assert_eq!(folder, Transport::Folder("./outbox".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// An SMTP server, as lettre's `SmtpTransport::from_url` reads the URL.
    Smtp {
        /// `smtp://[user:password@]host[:port]`.
        url: String,
    },
    /// A folder (created when missing) that receives one `.eml` file per email.
    Folder(PathBuf),
}

static OVERRIDE: Mutex<Option<Transport>> = Mutex::new(None);

/// Makes every later delivery in this process use `transport`, whatever the environment says.
pub fn set_transport(transport: Transport) {
    *OVERRIDE.lock().unwrap_or_else(|e| e.into_inner()) = Some(transport);
}

/// Undoes [`set_transport`]: deliveries read the environment again.
pub fn clear_transport() {
    *OVERRIDE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

impl Transport {
    /// The transport set by [`set_transport`], or else read from `TOOSIMPLE_SMTP_URL` and
    /// `TOOSIMPLE_MAIL_DIR`.
    pub fn current() -> Transport {
        if let Some(transport) = &*OVERRIDE.lock().unwrap_or_else(|e| e.into_inner()) {
            return transport.clone();
        }
        Transport::from_env()
    }

    /// Reads `TOOSIMPLE_SMTP_URL` and `TOOSIMPLE_MAIL_DIR`: see [`Transport::from_vars`].
    pub fn from_env() -> Transport {
        let smtp = std::env::var(SMTP_URL_ENV).ok();
        let dir = std::env::var(MAIL_DIR_ENV).ok();
        Transport::from_vars(smtp.as_deref(), dir.as_deref())
    }

    /// SMTP when `smtp_url` is set and not empty; otherwise the folder `mail_dir`, or
    /// [`DEFAULT_MAIL_DIR`].
    pub fn from_vars(smtp_url: Option<&str>, mail_dir: Option<&str>) -> Transport {
        match smtp_url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Transport::Smtp { url: url.into() },
            None => Transport::Folder(
                mail_dir
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .unwrap_or(DEFAULT_MAIL_DIR)
                    .into(),
            ),
        }
    }

    /// Delivers `email` now, once: no retry here (the task's retries do that).
    pub fn deliver(&self, email: &QueuedEmail) -> Result<(), Error> {
        let envelope = email.envelope()?;
        let bytes = email.bytes()?;
        match self {
            Transport::Smtp { url } => {
                let smtp = SmtpTransport::from_url(url)
                    .map_err(|source| Error::SmtpUrl {
                        url: mask(url),
                        source,
                    })?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                smtp.send_raw(&envelope, &bytes)
                    .map(drop)
                    .map_err(|source| Error::Smtp {
                        server: mask(url),
                        to: email.to.join(", "),
                        source,
                    })
            }
            Transport::Folder(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| Error::Folder {
                    dir: dir.clone(),
                    source,
                })?;
                FileTransport::new(dir)
                    .send_raw(&envelope, &bytes)
                    .map(drop)
                    .map_err(|source| Error::File {
                        dir: dir.clone(),
                        source,
                    })
            }
        }
    }
}

/// `url` with its password replaced by `***`.
fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_the_password_only() {
        assert_eq!(
            mask("smtp://ann:s3cret@mail.example.com:587/hello"),
            "smtp://ann:***@mail.example.com:587/hello"
        );
        assert_eq!(mask("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
        assert_eq!(mask("smtp://ann@host"), "smtp://ann@host");
    }

    #[test]
    fn an_empty_smtp_url_means_the_folder() {
        assert_eq!(
            Transport::from_vars(Some(" "), Some("/tmp/mail")),
            Transport::Folder("/tmp/mail".into())
        );
    }
}
