//! SIGINT and SIGTERM, as django-toosimple-q's worker reads them: a first SIGINT stops
//! gracefully; SIGTERM or a second SIGINT terminates.

use crate::worker::Shutdown;

/// Forwards the process's signals to `shutdown` until the process ends.
pub(crate) async fn forward(shutdown: Shutdown) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::error!("cannot listen for signals: stop this worker with SIGKILL");
            return;
        };
        loop {
            tokio::select! {
                _ = interrupt.recv() => {
                    if shutdown.is_stopping() {
                        tracing::warn!("second SIGINT: terminating");
                        shutdown.terminate();
                    } else {
                        tracing::info!("SIGINT: finishing running tasks, then stopping (SIGINT again to terminate)");
                        shutdown.graceful();
                    }
                }
                _ = terminate.recv() => {
                    tracing::warn!("SIGTERM: terminating");
                    shutdown.terminate();
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let mut count = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            count += 1;
            if count == 1 {
                shutdown.graceful();
            } else {
                shutdown.terminate();
            }
        }
    }
}
