//! Making appended data durable: the flush policy (`flush.messages`, `flush.ms`), inline
//! flushes, and flush handles that let the caller fsync outside its partition lock.
//!
//! Group commit with a handle, for a caller that serialises writers with a lock:
//!
//! 1. under the lock: [`Log::flush_handle`] notes what is unflushed (the log end offset
//!    and the active segment's file, shared via `Arc`) and resets the policy counters;
//! 2. without the lock: [`FlushHandle::sync`] runs the fsync while appends carry on;
//! 3. under the lock: [`Log::complete_flush`] advances the recovery point, or poisons the
//!    log if the fsync failed.
//!
//! Only the active segment's `.log` needs the fsync: a roll fsyncs the segment it seals
//! (so a handle taken before a roll covers nothing the roll did not), and the active
//! segment's indexes are rebuilt by recovery after any unclean stop. A handle whose
//! segment was rolled, cleaned or deleted meanwhile still holds the open file, and an
//! fsync of an unlinked file is harmless.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Log, CHECKPOINT_INTERVAL_MS};
use crate::error::{Error, Result};

/// Who applies the flush policy after an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// The append fsyncs itself when the policy says so (holding `&mut Log`).
    Inline,
    /// The append only reports [`AppendInfo::flush_needed`](super::AppendInfo); the caller
    /// flushes with a [`FlushHandle`].
    Deferred,
}

/// A pending fsync taken under the partition lock and run without it.
#[derive(Debug)]
#[must_use = "a flush handle does nothing until synced and completed"]
pub struct FlushHandle {
    file: Arc<File>,
    path: PathBuf,
    offset: i64,
    tail_epoch: u64,
    /// Test hook carried over from the log: this sync reports EIO.
    fail: bool,
}

impl FlushHandle {
    /// Every offset below this is durable once the sync succeeds.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Starts writing the data back without waiting for it (`sync_file_range`), so that
    /// the fsyncs of many handles started together share the filesystem's journal
    /// commits. Only a hint: [`FlushHandle::sync`] alone decides durability, and a
    /// write-back failure is still reported by it (this call does not consume the error).
    pub fn start_writeback(&self) {
        if self.fail {
            return;
        }
        // SAFETY: a valid descriptor owned by `self.file`; the call touches no memory of
        // ours.
        let _ = unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE)
        };
    }

    /// fsyncs the data. Call it without holding the log's lock, then hand the result to
    /// [`Log::complete_flush`]; never retry a failed sync (the kernel may have dropped the
    /// dirty pages, so a retry could "succeed" over lost data).
    pub fn sync(&self) -> Result<()> {
        if self.fail {
            return Err(Error::Io {
                op: "fsync segment",
                path: self.path.clone(),
                source: std::io::Error::from_raw_os_error(libc::EIO),
            });
        }
        self.file
            .sync_data()
            .map_err(Error::io_at("fsync segment", &self.path))
    }
}

impl Log {
    /// Whether the flush policy wants the unflushed data made durable now.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        self.unflushed_messages > 0 && self.unflushed_messages >= self.config.flush_messages
            || self
                .first_unflushed_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= self.config.flush_ms)
    }

    /// Takes a flush handle covering everything appended so far, or `None` when that is
    /// already durable. The policy counters restart, since later appends are not covered.
    pub fn flush_handle(&mut self) -> Result<Option<FlushHandle>> {
        self.check_poisoned()?;
        let leo = self.log_end_offset();
        self.unflushed_messages = 0;
        self.first_unflushed_ms = None;
        if self.recovery_point >= leo {
            return Ok(None);
        }
        let active = self.active()?;
        Ok(Some(FlushHandle {
            file: active.shared_log_file(),
            path: active.log_path().to_path_buf(),
            offset: leo,
            tail_epoch: self.tail_epoch,
            fail: std::mem::take(&mut self.fail_next_fsync),
        }))
    }

    /// Records the outcome of [`FlushHandle::sync`]: advances the recovery point (unless a
    /// truncation meanwhile made the handle stale) and returns it, or poisons the log and
    /// returns the fsync error. The checkpoint file is left to `maybe_flush`, a roll or
    /// `close`, so completing a flush costs no further I/O.
    pub fn complete_flush(&mut self, handle: FlushHandle, synced: Result<()>) -> Result<i64> {
        if let Err(e) = synced {
            self.poisoned = true;
            tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; log poisoned");
            return Err(e);
        }
        if handle.tail_epoch == self.tail_epoch {
            let to = handle.offset.min(self.log_end_offset());
            self.recovery_point = self.recovery_point.max(to);
        }
        Ok(self.recovery_point)
    }

    /// fsyncs everything appended so far while holding `&mut self`; the recovery point
    /// becomes the log end offset. A failed fsync poisons the log.
    pub fn flush(&mut self) -> Result<()> {
        self.check_poisoned()?;
        if self.recovery_point < self.log_end_offset() || self.unflushed_messages > 0 {
            let r = if std::mem::take(&mut self.fail_next_fsync) {
                Err(Error::Io {
                    op: "fsync segment",
                    path: self.dir.clone(),
                    source: std::io::Error::from_raw_os_error(libc::EIO),
                })
            } else {
                self.active()?.flush()
            };
            if let Err(e) = r {
                self.poisoned = true;
                tracing::error!(dir = %self.dir.display(), error = %e, "fsync failed; log poisoned");
                return Err(e);
            }
        }
        self.recovery_point = self.log_end_offset();
        self.unflushed_messages = 0;
        self.first_unflushed_ms = None;
        Ok(())
    }

    /// Applies `flush.ms` and persists an advanced recovery point now and then; the broker
    /// calls this periodically.
    pub fn maybe_flush(&mut self, now_ms: i64) -> Result<()> {
        if let Some(t) = self.first_unflushed_ms {
            if now_ms.saturating_sub(t) >= self.config.flush_ms {
                self.flush()?;
            }
        }
        if self.recovery_point > self.persisted_recovery_point
            && now_ms.saturating_sub(self.last_checkpoint_ms) >= CHECKPOINT_INTERVAL_MS
        {
            self.write_checkpoint(false)?;
            self.last_checkpoint_ms = now_ms;
        }
        Ok(())
    }

    /// After an append: applies the policy inline, or reports (flush and hold the
    /// acknowledgement for it, flush without holding it). `flush.messages` holds the
    /// acknowledgement (with 1, the default, every acknowledged record is on disk);
    /// `flush.ms` only starts a flush, except `flush.ms = 0`, which asks for every append
    /// to be durable as `flush.messages = 1` does.
    pub(crate) fn apply_flush_policy(
        &mut self,
        mode: FlushMode,
        now_ms: i64,
    ) -> Result<(bool, bool)> {
        match mode {
            // As before handles existed: `flush.ms` is left to the periodic `maybe_flush`.
            FlushMode::Inline if self.unflushed_messages >= self.config.flush_messages => {
                self.flush().map(|()| (false, false))
            }
            FlushMode::Inline => Ok((false, false)),
            FlushMode::Deferred => {
                let by_count = self.unflushed_messages > 0
                    && self.unflushed_messages >= self.config.flush_messages;
                let by_time = self
                    .first_unflushed_ms
                    .is_some_and(|t| now_ms.saturating_sub(t) >= self.config.flush_ms);
                let hold = by_count || (by_time && self.config.flush_ms <= 0);
                Ok((hold, by_time && !hold))
            }
        }
    }
}
