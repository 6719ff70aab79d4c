//! Wake-ups by PostgreSQL `LISTEN`: a trigger notifies `toosimple_queued` when executions are
//! inserted, so an idle worker starts new work at once instead of at its next tick. Polling at
//! each tick stays the correctness path: a lost notification only delays work to the tick.

use std::sync::Arc;
use std::time::Duration;

use crate::store::QUEUED_CHANNEL;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
#[cfg(not(feature = "tls"))]
use tokio_postgres::NoTls;

/// Listens on `url` for as long as the returned task lives (abort it to stop), reconnecting
/// with backoff; each notification wakes `wake`.
pub(in crate::store) fn spawn(url: String, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(200);
        let mut warned = false;
        loop {
            match listen(&url, &wake, &mut warned).await {
                Ok(()) => pause = Duration::from_millis(200),
                Err(e) => {
                    // Not a fault: polling at each tick still finds the work.
                    if !warned {
                        let reason = crate::error::report(&*e);
                        tracing::info!(
                            "no LISTEN wake-ups for now ({reason}): new work starts at the next tick"
                        );
                        warned = true;
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    })
}

/// Why a LISTEN connection ended or could not start.
type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One connection's life: `LISTEN`, then forward notifications until it closes. With the
/// `tls` feature it speaks TLS as libpq does for the same URL (`sslmode` `prefer` by default,
/// `require`, `verify-ca`, `verify-full` with `sslrootcert`); without it, plain TCP.
async fn listen(url: &str, wake: &Notify, warned: &mut bool) -> Result<(), Failure> {
    #[cfg(feature = "tls")]
    {
        let (url, connector) = tls::connector(url)?;
        let (client, connection) = tokio_postgres::connect(&url, connector).await?;
        forward(client, connection, wake, warned).await
    }
    #[cfg(not(feature = "tls"))]
    {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        forward(client, connection, wake, warned).await
    }
}

/// `LISTEN` on `client`, then wake `wake` at each notification until `connection` closes.
async fn forward<S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    wake: &Notify,
    warned: &mut bool,
) -> Result<(), Failure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, mut closed) = tokio::sync::oneshot::channel();
    let forwarded = Arc::new(Notify::new());
    let forward = forwarded.clone();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        let mut ended = Ok(());
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => forward.notify_one(),
                Ok(_) => {}
                Err(e) => {
                    ended = Err(e);
                    break;
                }
            }
        }
        let _ = sender.send(ended);
    });
    client
        .batch_execute(&format!("LISTEN {QUEUED_CHANNEL}"))
        .await?;
    tracing::debug!("listening for new executions on {QUEUED_CHANNEL}");
    // A later loss of this connection is worth a line again.
    *warned = false;
    // Work enqueued while this connection was down would otherwise wait for the tick.
    wake.notify_one();
    loop {
        tokio::select! {
            _ = forwarded.notified() => wake.notify_one(),
            ended = &mut closed => {
                return match ended {
                    Ok(result) => result.map_err(Failure::from),
                    Err(_) => Ok(()),
                };
            }
        }
    }
}

/// The LISTEN connection's TLS, read from the libpq URL the store connects with.
#[cfg(feature = "tls")]
mod tls {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    use postgres_openssl::MakeTlsConnector;

    /// libpq's TLS options that tokio-postgres does not take: read here, left out of its URL.
    const LIBPQ_ONLY: &[&str] = &[
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslcompression",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "requiressl",
        "gssencmode",
        "krbsrvname",
    ];

    /// The URL tokio-postgres accepts and a connector that checks what libpq would:
    /// `verify-ca` and `verify-full` check the server's certificate (against `sslrootcert`,
    /// else the system's roots; `verify-full` its host name too), which tokio-postgres knows
    /// as `require` with a verifying connector; `prefer` and `require` encrypt unverified.
    pub(super) fn connector(url: &str) -> Result<(String, MakeTlsConnector), super::Failure> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let (mut mode, mut root) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => mode = Some(value.to_string()),
                "sslrootcert" => root = Some(value.to_string()),
                _ if LIBPQ_ONLY.contains(&key) => {}
                _ => kept.push(pair.to_string()),
            }
        }
        let verify = matches!(mode.as_deref(), Some("verify-ca" | "verify-full"));
        match mode.as_deref() {
            Some("verify-ca" | "verify-full") => kept.push("sslmode=require".to_string()),
            Some(other) => kept.push(format!("sslmode={other}")),
            None => {}
        }
        let build = || -> Result<MakeTlsConnector, openssl::error::ErrorStack> {
            let mut builder = SslConnector::builder(SslMethod::tls())?;
            if verify {
                builder.set_verify(SslVerifyMode::PEER);
                match &root {
                    Some(file) => builder.set_ca_file(percent_decoded(file))?,
                    None => builder.set_default_verify_paths()?,
                }
            } else {
                builder.set_verify(SslVerifyMode::NONE);
            }
            let mut connector = MakeTlsConnector::new(builder.build());
            let check_host = mode.as_deref() == Some("verify-full");
            connector.set_callback(move |config, _| {
                config.set_verify_hostname(check_host);
                Ok(())
            });
            Ok(connector)
        };
        let connector = build().map_err(|e| format!("cannot set up TLS: {e}"))?;
        let url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((url, connector))
    }

    /// A URL query value as a path (`%2F` and the like decoded).
    fn percent_decoded(value: &str) -> String {
        let bytes = value.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
                && let Ok(byte) = u8::from_str_radix(hex, 16)
            {
                out.push(byte);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}
