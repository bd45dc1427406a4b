//! Who vouches that a log's files were closed cleanly when it is opened.
//!
//! A standalone log keeps that in its own checkpoint: the flag is set by `close` and must
//! be cleared (a checkpoint rewrite: temp file, fsync, rename, directory fsync) before the
//! first change after an open. A broker with hundreds of partitions pays that once per
//! partition after every start, on the first produce. It instead keeps one marker per data
//! directory (as Kafka's `.kafka_cleanshutdown`): written after every log was closed,
//! removed at start before anything is written. Its logs then never rewrite their
//! checkpoints as unclean; the marker's absence alone makes them recover.

/// How [`Log::open_with`](super::Log::open_with) learns whether the files were closed
/// cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// The log's own checkpoint flag decides, and is cleared before the first change.
    PerLog,
    /// The data directory's clean-shutdown marker was present: every log in it was
    /// flushed and closed. A log without a checkpoint is still scanned, since no clean
    /// close leaves one without it.
    MarkedClean,
    /// No marker: recover from the checkpoint's recovery point, whatever its flag says.
    Unmarked,
}

impl Shutdown {
    /// Whether the data directory's marker, not the log's checkpoint flag, decides.
    pub(crate) fn by_marker(self) -> bool {
        self != Shutdown::PerLog
    }
}
