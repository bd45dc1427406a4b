//! A deliberately small stand-in for `weir_storage::Log` (see `mod.rs`): one file
//! `00000000000000000000.log` per partition, an in-memory batch index rebuilt at open,
//! torn tails truncated at the first invalid batch. No sequences, no compaction.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use weir_protocol::batch::{
    header::set_log_append_time, set_base_offset, set_partition_leader_epoch, BatchError,
    BatchIter, TimestampType,
};

/// `cleanup.policy` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Retention deletes old data.
    pub delete: bool,
    /// The cleaner keeps the latest record per key.
    pub compact: bool,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl CleanupPolicy {
    /// Parses Kafka's comma-separated form ("compact,delete").
    pub fn parse(s: &str) -> Result<CleanupPolicy, Error> {
        let mut p = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "delete" => p.delete = true,
                "compact" => p.compact = true,
                other => return Err(Error::InvalidConfig(format!("unknown policy {other:?}"))),
            }
        }
        if !p.delete && !p.compact {
            return Err(Error::InvalidConfig("empty cleanup.policy".into()));
        }
        Ok(p)
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// Per-partition settings (the contract's fields; Kafka's defaults).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_index_bytes: u32,
    pub index_interval_bytes: u32,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub cleanup_policy: CleanupPolicy,
    pub flush_messages: u64,
    pub flush_ms: i64,
    pub max_message_bytes: u32,
    pub message_timestamp_type: TimestampType,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub preallocate: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::default(),
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: TimestampType::CreateTime,
            delete_retention_ms: 24 * 3600 * 1000,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
            preallocate: false,
        }
    }
}

impl LogConfig {
    /// Rejects values the log cannot work with.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::InvalidConfig(m.to_string()));
        if self.segment_bytes < 14 {
            return bad("segment.bytes must be at least 14");
        }
        if self.segment_ms < 1 {
            return bad("segment.ms must be positive");
        }
        if self.flush_messages == 0 {
            return bad("flush.messages must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return bad("min.cleanable.dirty.ratio must lie in [0, 1]");
        }
        Ok(())
    }
}

/// Storage failures, named by meaning (subset of the contract's).
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum Error {
    #[error("I/O error during {op} on {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    RecordTooLarge { size: usize, max: u32 },
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id} epoch {got} is older than current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    #[error("disk full while writing {}", path.display())]
    DiskFull { path: PathBuf },
    #[error("log {} is poisoned by an earlier fsync failure", path.display())]
    Poisoned { path: PathBuf },
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
}

/// Outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_append_time_ms: i64,
    pub record_count: u32,
    pub duplicate: bool,
}

/// Outcome of a read.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct ReadInfo {
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    base: i64,
    next: i64,
    pos: u64,
    len: u32,
    max_ts: i64,
}

/// One partition's log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    file: File,
    config: LogConfig,
    entries: Vec<Entry>,
    end_pos: u64,
    log_start: i64,
    unflushed: u64,
}

const SEGMENT: &str = "00000000000000000000.log";
const START_CHECKPOINT: &str = "log-start-offset";

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl Log {
    /// Opens (or creates) the log in `dir`, truncating a torn tail.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log, Error> {
        std::fs::create_dir_all(dir).map_err(io("create dir", dir))?;
        let path = dir.join(SEGMENT);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io("open", &path))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io("read", &path))?;
        let mut entries = Vec::new();
        let mut iter = BatchIter::new(&buf, true);
        for item in iter.by_ref() {
            let Ok((h, bytes)) = item else { break };
            let pos = entries
                .last()
                .map_or(0, |e: &Entry| e.pos + u64::from(e.len));
            entries.push(Entry {
                base: h.base_offset,
                next: h.next_offset(),
                pos,
                len: bytes.len() as u32,
                max_ts: h.max_timestamp,
            });
        }
        let valid = entries.last().map_or(0, |e| e.pos + u64::from(e.len));
        if valid < buf.len() as u64 {
            tracing::warn!(dir = %dir.display(), valid, len = buf.len(), "truncating torn tail");
            file.set_len(valid).map_err(io("truncate", &path))?;
            file.sync_all().map_err(io("fsync", &path))?;
        }
        let log_start = std::fs::read_to_string(dir.join(START_CHECKPOINT))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or_else(|| entries.first().map_or(0, |e| e.base));
        Ok(Log {
            dir: dir.to_path_buf(),
            file,
            config,
            entries,
            end_pos: valid,
            log_start,
            unflushed: 0,
        })
    }

    /// Validates, stamps offsets and epoch, appends; applies `flush.messages`.
    pub fn append_as_leader(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, Error> {
        let mut spans = Vec::new();
        let mut pos = 0usize;
        for item in BatchIter::new(batches, true) {
            let (h, bytes) = item?;
            if bytes.len() > self.config.max_message_bytes as usize {
                return Err(Error::RecordTooLarge {
                    size: bytes.len(),
                    max: self.config.max_message_bytes,
                });
            }
            spans.push((pos, bytes.len(), h));
            pos += bytes.len();
        }
        if spans.is_empty() || pos != batches.len() {
            return Err(Error::InvalidRecord("no complete batch".into()));
        }
        let first = self.log_end_offset();
        let mut next = first;
        let mut count = 0u32;
        let append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        let base_entry_pos = self.end_pos;
        let mut new_entries = Vec::with_capacity(spans.len());
        for (start, len, h) in spans {
            let Some(b) = batches.get_mut(start..start + len) else {
                return Err(Error::InvalidRecord("batch span".into()));
            };
            set_base_offset(b, next);
            set_partition_leader_epoch(b, leader_epoch);
            if append_time {
                set_log_append_time(b, now_ms);
            }
            let span = i64::from(h.last_offset_delta) + 1;
            new_entries.push(Entry {
                base: next,
                next: next + span,
                pos: base_entry_pos + start as u64,
                len: len as u32,
                max_ts: if append_time { now_ms } else { h.max_timestamp },
            });
            next += span;
            count += h.records_count.max(0) as u32;
        }
        let path = self.dir.join(SEGMENT);
        if let Err(e) = self.file.write_all(batches) {
            // Leave the file as it was so the in-memory index stays true.
            let _ = self.file.set_len(self.end_pos);
            return Err(io("append", &path)(e));
        }
        self.end_pos += batches.len() as u64;
        self.entries.extend(new_entries);
        self.unflushed += u64::from(count);
        if self.unflushed >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset: first,
            last_offset: next - 1,
            log_append_time_ms: if append_time { now_ms } else { -1 },
            record_count: count,
            duplicate: false,
        })
    }

    /// Whole batches from the one containing `offset`; at least one if any exists.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: Option<i64>,
    ) -> Result<ReadInfo, Error> {
        let end = self.log_end_offset();
        if offset < self.log_start || offset > end {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start,
                log_end: end,
            });
        }
        let limit = max_offset.unwrap_or(end);
        let first = self.entries.partition_point(|e| e.next <= offset);
        let mut len = 0u64;
        let mut start = None;
        for e in self.entries.iter().skip(first) {
            if e.base >= limit || (len > 0 && len + u64::from(e.len) > max_bytes as u64) {
                break;
            }
            start.get_or_insert(e.pos);
            len += u64::from(e.len);
        }
        let records = match start {
            Some(pos) => {
                let mut buf = vec![0u8; len as usize];
                let path = self.dir.join(SEGMENT);
                let mut f = &self.file;
                f.seek(SeekFrom::Start(pos)).map_err(io("seek", &path))?;
                f.read_exact(&mut buf).map_err(io("read", &path))?;
                Bytes::from(buf)
            }
            None => Bytes::new(),
        };
        Ok(ReadInfo {
            records,
            log_start_offset: self.log_start,
            log_end_offset: end,
        })
    }

    /// First batch whose max timestamp is >= `ts`: (its base offset, its max timestamp).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, Error> {
        Ok(self
            .entries
            .iter()
            .find(|e| e.next > self.log_start && e.max_ts >= ts)
            .map(|e| (e.base.max(self.log_start), e.max_ts)))
    }

    /// Moves the log start forward (records before `offset` become unreadable).
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, Error> {
        let end = self.log_end_offset();
        if offset > end {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start,
                log_end: end,
            });
        }
        if offset > self.log_start {
            self.log_start = offset;
            let path = self.dir.join(START_CHECKPOINT);
            std::fs::write(&path, offset.to_string()).map_err(io("checkpoint", &path))?;
        }
        Ok(self.log_start)
    }

    /// Time/size retention: not implemented by the stand-in (one file, nothing to drop).
    pub fn apply_retention(&mut self, _now_ms: i64) -> Result<usize, Error> {
        Ok(0)
    }

    /// Flushes when `flush.ms` has passed (the stand-in flushes whenever data is pending).
    pub fn maybe_flush(&mut self, _now_ms: i64) -> Result<(), Error> {
        if self.unflushed > 0 && self.config.flush_ms != i64::MAX {
            self.flush()?;
        }
        Ok(())
    }

    /// fsync.
    pub fn flush(&mut self) -> Result<(), Error> {
        let path = self.dir.join(SEGMENT);
        self.file.sync_data().map_err(io("fsync", &path))?;
        self.unflushed = 0;
        Ok(())
    }

    /// Replaces the config.
    pub fn update_config(&mut self, c: LogConfig) {
        self.config = c;
    }

    /// Current config.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Flush and close.
    pub fn close(mut self) -> Result<(), Error> {
        self.flush()
    }

    /// Remove the directory.
    pub fn delete(self) -> Result<(), Error> {
        let dir = self.dir.clone();
        drop(self);
        std::fs::remove_dir_all(&dir).map_err(io("remove dir", &dir))
    }

    /// First readable offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start
    }

    /// Next offset to be written.
    pub fn log_end_offset(&self) -> i64 {
        self.entries.last().map_or(self.log_start, |e| e.next)
    }

    /// Bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.end_pos
    }

    /// Always 1.
    pub fn segment_count(&self) -> usize {
        1
    }
}
