//! Idempotent-producer state: per producer id, its epoch and its last 5 batches.
//!
//! - this file: the pure rules (sequence checks, duplicate detection, replay).
//! - `snapshot`: the `<offset>.snapshot` file format and its I/O.
//!
//! The rules follow Kafka's broker: a batch equal to one of the last five of its producer
//! (same epoch, same first and last sequence) is a duplicate and is answered with its
//! original offsets; an older epoch is fenced; a new epoch must start at sequence 0; within
//! an epoch the sequence must continue by exactly one. A producer without state (new, or
//! evicted by retention) may start anywhere.

pub mod snapshot;

use std::collections::{HashMap, VecDeque};

use weir_protocol::batch::BatchHeader;

use crate::error::{Error, Result};

/// Batches remembered per producer (matches `max.in.flight.requests.per.connection` ≤ 5).
pub const BATCHES_TO_RETAIN: usize = 5;

/// What the log remembers about one appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset assigned to the last record.
    pub last_offset: i64,
    /// maxTimestamp of the batch as stored (the log-append time when that is in use).
    pub max_timestamp: i64,
}

/// State of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// Producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub epoch: i16,
    /// The most recent batches, oldest first (at most [`BATCHES_TO_RETAIN`]).
    pub batches: VecDeque<BatchMetadata>,
    /// Largest batch timestamp seen (for expiry).
    pub last_timestamp: i64,
}

impl ProducerEntry {
    pub(crate) fn new(producer_id: i64, epoch: i16) -> Self {
        ProducerEntry {
            producer_id,
            epoch,
            batches: VecDeque::with_capacity(BATCHES_TO_RETAIN),
            last_timestamp: -1,
        }
    }

    /// Sequence of the last record written, if any batch is remembered.
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// Offset of the last record written, if any.
    pub fn last_offset(&self) -> Option<i64> {
        self.batches.back().map(|b| b.last_offset)
    }

    fn push(&mut self, epoch: i16, meta: BatchMetadata) {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.batches.clear();
        }
        if self.batches.len() == BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
        self.last_timestamp = self.last_timestamp.max(meta.max_timestamp);
    }
}

/// Last sequence of a batch, with Kafka's wrap after `i32::MAX`.
pub fn last_sequence(base_seq: i32, last_offset_delta: i32) -> i32 {
    if base_seq > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - base_seq) - 1
    } else {
        base_seq + last_offset_delta
    }
}

fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// Outcome of checking one batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New data: append it.
    Accept,
    /// Already in the log: answer with the original batch, append nothing.
    Duplicate(BatchMetadata),
}

/// Checks a client batch of producer `entry` (None = no state) against the rules above.
pub fn check_batch(entry: Option<&ProducerEntry>, h: &BatchHeader) -> Result<SequenceCheck> {
    let Some(e) = entry else {
        return Ok(SequenceCheck::Accept);
    };
    let first = h.base_sequence;
    let last = last_sequence(first, h.last_offset_delta);
    if h.producer_epoch == e.epoch {
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(SequenceCheck::Duplicate(*b));
        }
    }
    if h.producer_epoch < e.epoch {
        return Err(Error::InvalidProducerEpoch {
            producer_id: h.producer_id,
            current: e.epoch,
            got: h.producer_epoch,
        });
    }
    let expected = if h.producer_epoch > e.epoch {
        0
    } else {
        e.last_seq().map_or(0, next_sequence)
    };
    if first != expected {
        return Err(Error::OutOfOrderSequence {
            producer_id: h.producer_id,
            expected,
            got: first,
        });
    }
    Ok(SequenceCheck::Accept)
}

/// All producers of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateManager {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// State of one producer.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Number of producers tracked.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// No producers tracked?
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Iterates all entries.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerEntry> {
        self.producers.values()
    }

    /// Inserts or replaces an entry (snapshot loading, committing staged updates).
    pub fn insert(&mut self, entry: ProducerEntry) {
        self.producers.insert(entry.producer_id, entry);
    }

    /// Records an appended batch whose header carries its final offsets. Batches without
    /// a producer id are ignored; a control batch only moves the epoch.
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry::new(h.producer_id, h.producer_epoch));
        apply(entry, h);
    }

    /// Drops producers whose last batch lies below the new log start offset.
    pub fn evict_below(&mut self, log_start_offset: i64) {
        self.producers
            .retain(|_, e| e.last_offset().is_none_or(|o| o >= log_start_offset));
    }

    /// Drops producers idle for longer than `expiration_ms` (`producer.id.expiration.ms`).
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) <= expiration_ms);
    }
}

/// Applies an appended (or replayed) batch to an entry.
pub(crate) fn apply(entry: &mut ProducerEntry, h: &BatchHeader) {
    if h.is_control() || h.base_sequence < 0 {
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        return;
    }
    entry.push(
        h.producer_epoch,
        BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h.base_sequence, h.last_offset_delta),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
        },
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 10,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn sequence_rules_table() {
        let mut s = ProducerStateManager::new();
        // (pid, epoch, seq, count) -> expected
        assert_eq!(
            check_batch(s.get(1), &header(1, 0, 7, 3, 0)).unwrap(),
            SequenceCheck::Accept,
            "unknown producer may start anywhere"
        );
        s.record(&header(1, 0, 0, 3, 100));
        s.record(&header(1, 0, 3, 2, 103));
        let dup = check_batch(s.get(1), &header(1, 0, 0, 3, 0)).unwrap();
        assert!(
            matches!(dup, SequenceCheck::Duplicate(b) if b.base_offset == 100 && b.last_offset == 102)
        );
        assert_eq!(
            check_batch(s.get(1), &header(1, 0, 5, 1, 0)).unwrap(),
            SequenceCheck::Accept
        );
        assert!(matches!(
            check_batch(s.get(1), &header(1, 0, 6, 1, 0)),
            Err(Error::OutOfOrderSequence {
                expected: 5,
                got: 6,
                ..
            })
        ));
        assert!(matches!(
            check_batch(s.get(1), &header(1, 1, 5, 1, 0)),
            Err(Error::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(
            check_batch(s.get(1), &header(1, 1, 0, 1, 0)).unwrap(),
            SequenceCheck::Accept
        );
        s.record(&header(1, 2, 0, 1, 105));
        assert!(matches!(
            check_batch(s.get(1), &header(1, 1, 0, 1, 0)),
            Err(Error::InvalidProducerEpoch {
                current: 2,
                got: 1,
                ..
            })
        ));
    }

    #[test]
    fn keeps_only_five_batches_and_wraps() {
        let mut s = ProducerStateManager::new();
        for i in 0..7 {
            s.record(&header(9, 0, i, 1, i64::from(i)));
        }
        let e = s.get(9).unwrap();
        assert_eq!(e.batches.len(), BATCHES_TO_RETAIN);
        assert_eq!(e.batches.front().unwrap().first_seq, 2);
        // A retry of a batch older than the cached five is out of order, not a duplicate.
        assert!(check_batch(s.get(9), &header(9, 0, 0, 1, 0)).is_err());
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 2), 1);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        s.evict_below(7);
        assert!(s.get(9).is_none());
    }
}
