//! `worker --reload`: in development, the worker restarts itself when its binary changes on
//! disk (after `cargo build`), as django-toosimple-q's `--reload` does.
//!
//! A watcher looks at the binary's size, modification time and inode twice a second. A change
//! that has held still for one more look (the linker writes in several steps) stops the worker
//! gracefully, so that its running tasks finish; the command line then replaces the process
//! with the new binary and the same arguments (`exec`: the process id, and so a `{pid}`
//! label, stay the same).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::worker::Shutdown;

/// How often the binary is looked at.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// What identifies one version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

/// The running program's file, read before it can be replaced: once replaced, Linux names the
/// old one "… (deleted)".
pub(crate) fn own_binary() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

/// Watches `path` until it changes and holds still, then notes it in `changed` and stops the
/// worker gracefully through `shutdown`.
pub(crate) fn watch(
    path: PathBuf,
    shutdown: Shutdown,
    changed: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let first = stamp(&path);
        let mut seen = first.clone();
        loop {
            tokio::time::sleep(LOOK_EVERY).await;
            let now = stamp(&path);
            // A missing file is a build in progress: wait for it to come back.
            if now.is_some() && now != first && now == seen {
                tracing::info!(
                    binary = %path.display(),
                    "the binary changed: finishing running tasks, then restarting (--reload)"
                );
                changed.store(true, Ordering::SeqCst);
                shutdown.graceful();
                return;
            }
            seen = now;
        }
    })
}

/// Replaces this process with `binary` run with this process's arguments; returns only if
/// that fails.
#[cfg(unix)]
pub(crate) fn exec_again(binary: &Path) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| binary.as_os_str().to_owned());
    std::process::Command::new(binary)
        .arg0(arg0)
        .args(args)
        .exec()
}
