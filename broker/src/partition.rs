//! One partition this broker leads: its log plus the replication-facing state (leader
//! epoch, high watermark) that a cluster will build on.
//!
//! Locking: the log sits behind a std `RwLock` that is only ever taken inside blocking
//! sections (`spawn_blocking`), never across an `.await`, so async tasks never stall on
//! disk I/O. The high watermark lives in a `watch` channel: publishing a new value is also
//! what wakes long-polling fetches.
//!
//! Durability: with `flush.messages = 1` (the shipped default) an append is fsynced before
//! the high watermark covers it and before it is acknowledged, and fsyncs are shared (group
//! commit): appends that arrive while one fsync runs are covered by the next single fsync.
//! The storage layer's own per-append flush is switched off in that mode so the broker can
//! batch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use crate::storage::{AppendInfo, Error as StorageError, Log, LogConfig, ReadInfo};

/// Why a partition operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The log reported an error.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The log was closed (shutdown) or deleted (topic deletion) meanwhile.
    #[error("partition {0} is closed")]
    Closed(String),
    /// A previous operation panicked while holding the log; refuse further use.
    #[error("partition {0} is unusable after an internal failure")]
    Broken(String),
}

/// A partition's log and leader state.
pub struct Partition {
    topic: String,
    index: i32,
    dir: PathBuf,
    log: RwLock<Option<Log>>,
    leader_epoch: AtomicI32,
    high_watermark: watch::Sender<i64>,
    /// fsync (group commit) before acknowledging every append.
    sync_each_append: AtomicBool,
    /// One fsync at a time; waiters often find their data already covered.
    flush_gate: Mutex<()>,
}

/// What the storage layer gets: with `flush.messages = 1` the broker does the fsyncs
/// (grouped), so storage's own per-append flush is turned off.
fn storage_config(mut config: LogConfig) -> (LogConfig, bool) {
    let sync = config.flush_messages <= 1;
    if sync {
        config.flush_messages = u64::MAX;
    }
    (config, sync)
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("name", &self.name())
            .field("leader_epoch", &self.leader_epoch())
            .field("high_watermark", &self.high_watermark())
            .finish_non_exhaustive()
    }
}

impl Partition {
    /// Opens (recovering if needed) the log in `dir`. Blocking.
    pub fn open(
        topic: &str,
        index: i32,
        dir: &Path,
        config: LogConfig,
        leader_epoch: i32,
    ) -> Result<Partition, StorageError> {
        let (config, sync) = storage_config(config);
        let log = Log::open(dir, config)?;
        // One node: everything in the log was appended by this leader, so the high
        // watermark is the log end. With replicas it becomes min(ISR log ends).
        let (hw, _) = watch::channel(log.log_end_offset());
        Ok(Partition {
            topic: topic.to_string(),
            index,
            dir: dir.to_path_buf(),
            log: RwLock::new(Some(log)),
            leader_epoch: AtomicI32::new(leader_epoch),
            high_watermark: hw,
            sync_each_append: AtomicBool::new(sync),
            flush_gate: Mutex::new(()),
        })
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partition number.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// "topic-index", for logs and errors.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }

    /// Current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Offsets below this are committed (visible to consumers).
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Runs `f` on the log with shared access. Blocking: call from a blocking section.
    pub fn with_log<R>(
        &self,
        f: impl FnOnce(&Log) -> Result<R, StorageError>,
    ) -> Result<R, PartitionError> {
        let guard = self
            .log
            .read()
            .map_err(|_| PartitionError::Broken(self.name()))?;
        let log = guard
            .as_ref()
            .ok_or_else(|| PartitionError::Closed(self.name()))?;
        Ok(f(log)?)
    }

    /// Runs `f` on the log with exclusive access. Blocking: call from a blocking section.
    pub fn with_log_mut<R>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<R, StorageError>,
    ) -> Result<R, PartitionError> {
        let mut guard = self
            .log
            .write()
            .map_err(|_| PartitionError::Broken(self.name()))?;
        let log = guard
            .as_mut()
            .ok_or_else(|| PartitionError::Closed(self.name()))?;
        Ok(f(log)?)
    }

    /// Appends already-validated batches as leader and advances the high watermark.
    /// Blocking.
    pub fn append(&self, batches: &mut [u8], now_ms: i64) -> Result<AppendInfo, PartitionError> {
        let epoch = self.leader_epoch();
        let (info, end) = self.with_log_mut(|log| {
            let info = log.append_as_leader(batches, epoch, now_ms)?;
            Ok((info, log.log_end_offset()))
        })?;
        if self.sync_each_append.load(Ordering::Acquire) {
            self.flush_through(end)?;
        }
        self.advance_high_watermark(end);
        Ok(info)
    }

    /// Makes every offset below `end` durable, sharing fsyncs between concurrent appends.
    fn flush_through(&self, end: i64) -> Result<(), PartitionError> {
        let _waiting = crate::metrics::recorders::purgatory(crate::metrics::Purgatory::Produce);
        let _gate = self
            .flush_gate
            .lock()
            .map_err(|_| PartitionError::Broken(self.name()))?;
        // An fsync that ran while we waited may already cover this append.
        if self.with_log(|log| Ok(log.recovery_point()))? >= end {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let flushed = self.with_log_mut(|log| log.flush());
        crate::metrics::recorders::log_flushed(started.elapsed());
        flushed
    }

    /// Reads up to the high watermark. Blocking.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadInfo, PartitionError> {
        let hw = self.high_watermark();
        self.with_log(|log| log.read(offset, max_bytes, Some(hw)))
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> Result<i64, PartitionError> {
        self.with_log(|log| Ok(log.log_start_offset()))
    }

    fn advance_high_watermark(&self, to: i64) {
        self.high_watermark.send_if_modified(|hw| {
            if to > *hw {
                *hw = to;
                true
            } else {
                false
            }
        });
    }

    /// Re-reads the log end after an operation that can move it backwards or forwards
    /// outside `append` (none on a single node today; kept for truncation later).
    pub fn sync_high_watermark(&self) -> Result<(), PartitionError> {
        let end = self.with_log(|log| Ok(log.log_end_offset()))?;
        self.high_watermark.send_replace(end);
        Ok(())
    }

    /// Applies new settings to the log.
    pub fn update_config(&self, config: LogConfig) -> Result<(), PartitionError> {
        let (config, sync) = storage_config(config);
        self.with_log_mut(|log| log.update_config(config))?;
        self.sync_each_append.store(sync, Ordering::Release);
        Ok(())
    }

    /// Flushes and closes the log (graceful shutdown). Blocking.
    pub fn close(&self) -> Result<(), PartitionError> {
        let mut guard = self
            .log
            .write()
            .map_err(|_| PartitionError::Broken(self.name()))?;
        match guard.take() {
            Some(log) => Ok(log.close()?),
            None => Ok(()),
        }
    }

    /// Closes the log and removes its directory (topic deletion). Blocking.
    pub fn delete(&self) -> Result<(), PartitionError> {
        let taken = match self.log.write() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        match taken {
            Some(log) => Ok(log.delete()?),
            None => {
                // Already closed: remove what is left on disk.
                match std::fs::remove_dir_all(&self.dir) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(PartitionError::Storage(StorageError::Io {
                        op: "remove dir",
                        path: self.dir.clone(),
                        source,
                    })),
                }
            }
        }
    }
}

/// Runs blocking work (storage calls) off the async workers.
pub async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, PartitionError> + Send + 'static,
    what: &str,
) -> Result<R, PartitionError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, what, "blocking storage task failed");
            Err(PartitionError::Broken(what.to_string()))
        }
    }
}

/// A shared partition handle.
pub type PartitionRef = Arc<Partition>;
