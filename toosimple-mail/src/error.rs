use std::path::PathBuf;

/// Why an email could not be stored or delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `TOOSIMPLE_SMTP_URL` (or the URL given to [`Transport::Smtp`](crate::Transport::Smtp)) is
    /// not one lettre can connect with.
    #[error(
        "the SMTP URL {url} is not usable: write smtp://user:password@host:port (smtps:// and ?tls=required need toosimple-mail's `tls` feature)"
    )]
    SmtpUrl {
        /// The URL, password hidden.
        url: String,
        /// What lettre said.
        #[source]
        source: lettre::transport::smtp::Error,
    },

    /// The SMTP server could not be reached or did not accept the email.
    #[error("cannot deliver the email to {to} through the SMTP server {server}")]
    Smtp {
        /// The server's URL, password hidden.
        server: String,
        /// The recipients.
        to: String,
        /// What went wrong (connection refused, a 4xx or 5xx answer, a time-out).
        #[source]
        source: lettre::transport::smtp::Error,
    },

    /// The email could not be written into the outbox folder.
    #[error("cannot write the email into the folder {}", dir.display())]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },

    /// The email could not be written by lettre's file transport.
    #[error("cannot write the email into the folder {}", dir.display())]
    File {
        /// The folder.
        dir: PathBuf,
        /// What lettre said.
        #[source]
        source: lettre::transport::file::Error,
    },

    /// A stored email's envelope or content is not valid (a row edited by hand, or written by
    /// an incompatible version).
    #[error("the stored email is not valid: {reason}")]
    Invalid {
        /// What is wrong with it.
        reason: String,
    },

    /// Storing the email's execution failed.
    #[error("cannot queue the email")]
    Queue(#[source] toosimple_core::Error),
}

impl Error {
    /// The message followed by each underlying cause, `: `-separated (what a failed execution
    /// records as its error).
    pub fn report(&self) -> String {
        toosimple_core::runtime::report(self)
    }
}
