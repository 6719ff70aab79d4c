//! A small tmpfs mounted by a test, to fill a database's disk for real.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a chosen size, unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it: `1m`, `512k`) on a new folder.
    ///
    /// Mounting needs root. Where it is impossible, this prints why and returns `None`, except
    /// in CI (`CI=true`), where the test must run and this panics instead.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("create a mount point");
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        let failure = match output {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            Err(e) => Some(format!("cannot run mount: {e}")),
        };
        if let Some(reason) = failure {
            let reason = format!("cannot mount a {size} tmpfs (needs root): {reason}");
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{reason} (CI=true: the full-disk tests must run)");
            }
            eprintln!("SKIPPED: {reason}");
            return None;
        }
        Some(Tmpfs { dir })
    }

    /// The mounted folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system has no byte left; returns its path (delete it to
    /// give the space back).
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler file");
        let block = [0u8; 4096];
        while file.write_all(&block).is_ok() {}
        // A last partial block can still fit.
        while file.write_all(&[0u8]).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a connection a test leaked must not keep the mount (and the test) alive.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
