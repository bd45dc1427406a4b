//! The data directory's clean-shutdown marker `.weir_cleanshutdown` (Kafka's
//! `.kafka_cleanshutdown`).
//!
//! Present at start: every partition log in the directory was flushed and closed, so all
//! open without a scan. It is removed (durably) once they are open and before anything can
//! write to them, so a crash from then on finds no marker and every partition recovers from
//! its recovery point, whatever its own checkpoint says. A graceful shutdown writes it back
//! only after every partition closed without error and nothing left a partition directory
//! behind unclosed (a failed open, deletion or orphan removal "taints" the run).
//!
//! A directory written before the marker existed has none, so its first start recovers
//! every partition from its recovery point (after the old clean close that is the log end:
//! only the active segments are scanned). Telling such a directory apart from one that
//! crashed would take another marker, and trusting old per-partition flags there could
//! trust a log a newer binary wrote to after setting that flag.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::storage::Shutdown;

/// File name in the data directory.
pub const MARKER_FILE: &str = ".weir_cleanshutdown";

/// Failures reading, removing or writing the marker.
#[derive(Debug, thiserror::Error)]
#[error("clean-shutdown marker {path}: {op}: {source}")]
pub struct MarkerError {
    /// What was being done.
    op: &'static str,
    /// The marker (or its directory).
    path: String,
    /// OS error.
    source: std::io::Error,
}

fn err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MarkerError {
    let path = path.display().to_string();
    move |source| MarkerError { op, path, source }
}

/// How the partitions found in `data_dir` at start are to be opened.
pub fn at_start(data_dir: &Path) -> Result<Shutdown, MarkerError> {
    let path = data_dir.join(MARKER_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(Shutdown::MarkedClean),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Shutdown::Unmarked),
        Err(e) => Err(err("stat", &path)(e)),
    }
}

/// Removes the marker and makes the removal durable, so a crash from here on recovers.
pub fn remove(data_dir: &Path) -> Result<(), MarkerError> {
    let path = data_dir.join(MARKER_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err("remove", &path)(e)),
    }
    sync_dir(data_dir)
}

/// Writes the marker durably. Only after every partition log was flushed and closed.
pub fn write(data_dir: &Path) -> Result<(), MarkerError> {
    let path = data_dir.join(MARKER_FILE);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(err("create", &path))?;
    // Kafka's marker is empty; a line of text helps whoever finds it.
    f.write_all(b"weir: every partition log here was closed cleanly\n")
        .map_err(err("write", &path))?;
    f.sync_all().map_err(err("fsync", &path))?;
    sync_dir(data_dir)
}

fn sync_dir(dir: &Path) -> Result<(), MarkerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err("fsync directory", dir))
}

/// Whether this run may still end with the marker: cleared by anything that leaves a
/// partition directory that was not closed cleanly.
#[derive(Debug, Default)]
pub struct Taint {
    tainted: AtomicBool,
}

impl Taint {
    /// Records why the next start must recover every partition.
    pub fn set(&self, why: &str) {
        if !self.tainted.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                why,
                "the next start will recover every partition (no clean-shutdown marker)"
            );
        }
    }

    /// Whether anything tainted this run.
    pub fn is_set(&self) -> bool {
        self.tainted.load(Ordering::Acquire)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(at_start(dir.path()).unwrap(), Shutdown::Unmarked);
        remove(dir.path()).unwrap();
        write(dir.path()).unwrap();
        assert_eq!(at_start(dir.path()).unwrap(), Shutdown::MarkedClean);
        remove(dir.path()).unwrap();
        assert_eq!(at_start(dir.path()).unwrap(), Shutdown::Unmarked);
    }
}
