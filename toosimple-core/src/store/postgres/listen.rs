//! Wake-ups by PostgreSQL `LISTEN`: a trigger notifies `toosimple_queued` when executions are
//! inserted, so an idle worker starts new work at once instead of at its next tick. Polling at
//! each tick stays the correctness path: a lost notification only delays work to the tick.

use std::sync::Arc;
use std::time::Duration;

use crate::store::QUEUED_CHANNEL;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

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
                        let reason = crate::error::report(&e);
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

/// One connection's life: `LISTEN`, then forward notifications until it closes.
async fn listen(url: &str, wake: &Notify, warned: &mut bool) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
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
                    Ok(result) => result,
                    Err(_) => Ok(()),
                };
            }
        }
    }
}
