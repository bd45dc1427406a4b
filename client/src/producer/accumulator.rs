//! Per-partition batching: records are encoded into an open batch per partition; a batch
//! closes when it reaches `batch_size` or its `linger` expires, and then waits in the
//! partition's ready queue for the sender.
//!
//! Ordering rule: at most one batch per partition is in flight. The broker appends the
//! produce requests of one connection in arrival order, but a batch that fails and is
//! retried would land behind a later batch already in flight; one at a time keeps sequence
//! numbers in order and makes a retry simply "the same batch again, first in line".
//!
//! This module does no I/O; the sender drives it with the current time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use weir_protocol::batch::{
    compute_crc, BatchBuilder, BatchError, BatchOptions, Compression, NewRecord,
};

use super::RecordMetadata;
use crate::error::{Error, Result};
use crate::fasthash::FastMap;

/// Byte offset of `baseSequence` in a batch header.
const BASE_SEQUENCE_AT: usize = 53;
/// Byte range of the CRC.
const CRC_AT: std::ops::Range<usize> = 17..21;

/// A sealed batch to build (compress) off the thread that accepts `send`.
pub struct SealJob {
    builder: BatchBuilder,
    done: oneshot::Sender<std::result::Result<Vec<u8>, BatchError>>,
}

impl SealJob {
    /// Builds the batch and hands the bytes (or the error) back to the batch.
    pub fn run(self) {
        // The batch may have been failed and dropped meanwhile: nobody to tell.
        let _ = self.done.send(self.builder.build());
    }
}

/// Where sealed compressed batches go to be built: the producer's compression thread.
pub type Sealer = std::sync::mpsc::Sender<SealJob>;

/// Where one record's outcome goes.
pub struct Waiter {
    pub(crate) tx: oneshot::Sender<Result<RecordMetadata>>,
    pub(crate) timestamp: i64,
}

/// A closed (or closing) batch of one partition.
pub struct ProducerBatch {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    builder: Option<BatchBuilder>,
    /// The build started when the batch was sealed, when it is compressed.
    sealing: Option<oneshot::Receiver<std::result::Result<Vec<u8>, BatchError>>>,
    /// Encoded bytes, set on the first send and reused by retries (same sequence).
    pub bytes: Option<Bytes>,
    pub(crate) waiters: Vec<Waiter>,
    /// Buffer memory held by the records.
    pub memory: usize,
    /// When the first record arrived.
    pub created: Instant,
    /// Send attempts so far.
    pub attempts: u32,
    /// Earliest time of the next attempt.
    pub retry_at: Option<Instant>,
    /// Why the last attempt failed: reported if the batch then times out waiting.
    pub last_error: Option<Error>,
    /// Sequence of the first record, -1 without idempotence or before the first send.
    pub base_sequence: i32,
}

impl ProducerBatch {
    /// Records in the batch.
    pub fn record_count(&self) -> i32 {
        self.waiters.len() as i32
    }

    /// Builds the wire bytes once; later calls return the same bytes.
    pub fn encode(&mut self) -> Result<Bytes> {
        if let Some(b) = &self.bytes {
            return Ok(b.clone());
        }
        let builder = self
            .builder
            .take()
            .ok_or_else(|| Error::Batch("batch has neither builder nor bytes".into()))?;
        self.finish_encode(builder.build()?)
    }

    /// Like [`ProducerBatch::encode`], waiting for a build started at seal time.
    pub async fn encode_sealed(&mut self) -> Result<Bytes> {
        if let Some(b) = &self.bytes {
            return Ok(b.clone());
        }
        match self.sealing.take() {
            Some(rx) => {
                let built = rx
                    .await
                    .map_err(|_| Error::Batch("compression thread stopped".into()))?;
                self.finish_encode(built?)
            }
            None => self.encode(),
        }
    }

    /// Hands the builder to `sealer` when the batch is compressed, so the compression runs
    /// while earlier batches are in flight, on a thread of its own. Without a sealer (or if
    /// its thread is gone) the batch is built when it is sent.
    fn seal(&mut self, sealer: Option<&Sealer>, compression: Compression) {
        let Some(sealer) = sealer else { return };
        if compression == Compression::None || self.sealing.is_some() {
            return;
        }
        let Some(builder) = self.builder.take() else {
            return;
        };
        let (done, rx) = oneshot::channel();
        match sealer.send(SealJob { builder, done }) {
            Ok(()) => self.sealing = Some(rx),
            Err(std::sync::mpsc::SendError(job)) => self.builder = Some(job.builder),
        }
    }

    /// Stamps the sequence (known only once the batch is drained) into built bytes.
    fn finish_encode(&mut self, mut out: Vec<u8>) -> Result<Bytes> {
        if self.base_sequence >= 0 {
            if let Some(seq) = out.get_mut(BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4) {
                seq.copy_from_slice(&self.base_sequence.to_be_bytes());
            }
            let crc = compute_crc(&out);
            if let Some(c) = out.get_mut(CRC_AT) {
                c.copy_from_slice(&crc.to_be_bytes());
            }
        }
        let bytes = Bytes::from(out);
        self.bytes = Some(bytes.clone());
        Ok(bytes)
    }

    /// Completes every record: offsets count up from `base_offset` (-1 when unknown).
    pub fn complete(self, base_offset: i64, log_append_time: i64) {
        let partition = self.partition;
        for (i, w) in self.waiters.into_iter().enumerate() {
            let offset = if base_offset >= 0 {
                base_offset + i as i64
            } else {
                -1
            };
            let timestamp = if log_append_time >= 0 {
                log_append_time
            } else {
                w.timestamp
            };
            let _ = w.tx.send(Ok(RecordMetadata {
                partition,
                offset,
                timestamp,
            }));
        }
    }

    /// Fails every record with `error`.
    pub fn fail(self, error: &Error) {
        for w in self.waiters {
            let _ = w.tx.send(Err(error.clone()));
        }
    }
}

struct PartitionQueue {
    open: Option<ProducerBatch>,
    ready: VecDeque<ProducerBatch>,
    in_flight: bool,
    next_sequence: i32,
}

impl PartitionQueue {
    fn new() -> Self {
        PartitionQueue {
            open: None,
            ready: VecDeque::new(),
            in_flight: false,
            next_sequence: 0,
        }
    }
}

/// Batching settings and the producer identity stamped into batches.
#[derive(Debug, Clone, Copy)]
pub struct AccumulatorConfig {
    /// Close a batch at about this many bytes.
    pub batch_size: usize,
    /// Close a batch after this long.
    pub linger: Duration,
    /// Codec.
    pub compression: Compression,
    /// zstd level, when the codec is zstd.
    pub zstd_level: i32,
    /// Producer id, -1 without idempotence.
    pub producer_id: i64,
    /// Producer epoch, -1 without idempotence.
    pub producer_epoch: i16,
}

/// Batches drained for sending, grouped by leader.
#[derive(Default)]
pub struct Drained {
    /// Leader node → one batch per partition.
    pub by_node: HashMap<i32, Vec<ProducerBatch>>,
    /// Topics with a partition whose leader is unknown (metadata needs a refresh).
    pub no_leader: Vec<Arc<str>>,
}

/// All partitions' queues.
pub struct Accumulator {
    config: AccumulatorConfig,
    sealer: Option<Sealer>,
    topics: FastMap<Arc<str>, Vec<PartitionQueue>>,
    /// Batches not yet completed (open, ready or in flight).
    pending: usize,
}

/// What an append changed, so the caller knows whether to wake the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// A batch became ready to send.
    pub batch_ready: bool,
    /// A new batch was opened (its linger deadline is new).
    pub new_batch: bool,
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new(config: AccumulatorConfig) -> Self {
        Accumulator {
            config,
            sealer: None,
            topics: FastMap::default(),
            pending: 0,
        }
    }

    /// Batches open, queued or in flight.
    pub fn pending_batches(&self) -> usize {
        self.pending
    }

    /// Whether nothing is open, queued or in flight.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Sealed compressed batches are built by `sealer` from now on.
    pub fn set_sealer(&mut self, sealer: Sealer) {
        self.sealer = Some(sealer);
    }

    fn queue(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionQueue> {
        queue_in(&mut self.topics, topic, partition)
    }

    fn new_batch(&self, topic: Arc<str>, partition: i32, now: Instant) -> ProducerBatch {
        let c = &self.config;
        let options = BatchOptions {
            producer_id: c.producer_id,
            producer_epoch: c.producer_epoch,
            zstd_level: c.zstd_level,
            ..BatchOptions::new(c.compression)
        };
        ProducerBatch {
            topic,
            partition,
            builder: Some(BatchBuilder::with_capacity(
                options,
                c.batch_size.min(1 << 20),
            )),
            sealing: None,
            bytes: None,
            waiters: Vec::new(),
            memory: 0,
            created: now,
            attempts: 0,
            retry_at: None,
            last_error: None,
            base_sequence: -1,
        }
    }

    /// Encodes `record` into the open batch of `topic`-`partition`.
    pub fn append(
        &mut self,
        topic: &str,
        partition: i32,
        record: &NewRecord<'_>,
        memory: usize,
        tx: oneshot::Sender<Result<RecordMetadata>>,
        now: impl FnOnce() -> Instant,
    ) -> Result<Appended> {
        let batch_size = self.config.batch_size;
        let bad = || Error::Config(format!("invalid partition {partition}"));
        let mut out = Appended {
            batch_ready: false,
            new_batch: false,
        };
        let q = queue_in(&mut self.topics, topic, partition).ok_or_else(bad)?;
        let full = q.open.as_ref().is_some_and(|b| {
            b.builder
                .as_ref()
                .is_some_and(|bb| !bb.is_empty() && bb.uncompressed_size() + memory > batch_size)
        });
        if full {
            if let Some(mut b) = q.open.take() {
                b.seal(self.sealer.as_ref(), self.config.compression);
                q.ready.push_back(b);
                out.batch_ready = true;
            }
        }
        if q.open.is_none() {
            let name = self
                .topics
                .get_key_value(topic)
                .map(|(k, _)| k.clone())
                .ok_or_else(bad)?;
            let fresh = self.new_batch(name, partition, now());
            self.queue(topic, partition).ok_or_else(bad)?.open = Some(fresh);
            self.pending += 1;
            out.new_batch = true;
        }
        let q = queue_in(&mut self.topics, topic, partition).ok_or_else(bad)?;
        let Some(batch) = q.open.as_mut() else {
            return Err(bad());
        };
        let builder = batch
            .builder
            .as_mut()
            .ok_or_else(|| Error::Batch("open batch already encoded".into()))?;
        builder.push(record)?;
        batch.waiters.push(Waiter {
            tx,
            timestamp: record.timestamp,
        });
        batch.memory += memory;
        if builder.uncompressed_size() >= batch_size {
            if let Some(mut b) = q.open.take() {
                b.seal(self.sealer.as_ref(), self.config.compression);
                q.ready.push_back(b);
                out.batch_ready = true;
            }
        }
        Ok(out)
    }

    /// Takes the batches that may be sent now: per partition with nothing in flight, the
    /// first ready batch whose backoff passed, else the open batch if its linger expired
    /// (or `force`, during flush). `leader` maps a partition to its leader; `has_room`
    /// says whether a node may take another request.
    pub fn drain(
        &mut self,
        now: Instant,
        force: bool,
        leader: impl Fn(&str, i32) -> Option<i32>,
        mut has_room: impl FnMut(i32) -> bool,
    ) -> Drained {
        let linger = self.config.linger;
        let idempotent = self.config.producer_id >= 0;
        let mut out = Drained::default();
        for (topic, queues) in &mut self.topics {
            for (idx, q) in queues.iter_mut().enumerate() {
                if q.in_flight {
                    continue;
                }
                if q.ready.is_empty() {
                    let expired = q
                        .open
                        .as_ref()
                        .is_some_and(|b| force || now.duration_since(b.created) >= linger);
                    if !expired {
                        continue;
                    }
                }
                let sendable = match (q.ready.front(), &q.open) {
                    (Some(b), _) => b.retry_at.is_none_or(|t| t <= now),
                    (None, Some(_)) => true,
                    (None, None) => false,
                };
                if !sendable {
                    continue;
                }
                let partition = idx as i32;
                let Some(node) = leader(topic, partition) else {
                    if !out.no_leader.contains(topic) {
                        out.no_leader.push(topic.clone());
                    }
                    continue;
                };
                if !has_room(node) {
                    continue;
                }
                let Some(mut batch) = q.ready.pop_front().or_else(|| q.open.take()) else {
                    continue;
                };
                if idempotent && batch.base_sequence < 0 {
                    batch.base_sequence = q.next_sequence;
                    q.next_sequence = q.next_sequence.wrapping_add(batch.record_count()) & i32::MAX;
                }
                batch.seal(self.sealer.as_ref(), self.config.compression);
                q.in_flight = true;
                out.by_node.entry(node).or_default().push(batch);
            }
        }
        out
    }

    /// The earliest time after `now` at which something becomes sendable by time alone.
    /// Deadlines already passed are left out: such batches wait for an event (a response
    /// freeing a slot, a metadata refresh) that wakes the sender anyway.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let linger = self.config.linger;
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| {
            if t > now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for q in self.topics.values().flatten() {
            if q.in_flight {
                continue;
            }
            if let Some(b) = q.ready.front() {
                consider(b.retry_at.unwrap_or(b.created));
            } else if let Some(b) = &q.open {
                consider(b.created + linger);
            }
        }
        next
    }

    /// Puts a failed batch back first in line, to be retried with the same sequence.
    pub fn requeue(&mut self, batch: ProducerBatch) {
        let (topic, partition) = (batch.topic.clone(), batch.partition);
        if let Some(q) = self.queue(&topic, partition) {
            q.in_flight = false;
            q.ready.push_front(batch);
        }
    }

    /// Marks the in-flight batch of a partition as finished (acknowledged or failed).
    /// `rejected_sequence`: the broker definitely did not append a batch starting at this
    /// sequence, so later batches reuse it instead of leaving a gap.
    pub fn finished(&mut self, topic: &str, partition: i32, rejected_sequence: Option<i32>) {
        if let Some(q) = self.queue(topic, partition) {
            q.in_flight = false;
            if let Some(seq) = rejected_sequence {
                if seq >= 0 {
                    q.next_sequence = seq;
                }
            }
        }
        self.pending = self.pending.saturating_sub(1);
    }

    /// Removes batches that waited longer than `timeout` without being in flight (e.g. no
    /// leader). The caller fails them and reports each through [`Accumulator::finished`].
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> Vec<ProducerBatch> {
        let mut out = Vec::new();
        let old = |b: &ProducerBatch| now.duration_since(b.created) >= timeout;
        for q in self.topics.values_mut().flatten() {
            if q.in_flight {
                continue;
            }
            while q.ready.front().is_some_and(old) {
                out.extend(q.ready.pop_front());
            }
            if q.ready.is_empty() && q.open.as_ref().is_some_and(old) {
                out.extend(q.open.take());
            }
        }
        out
    }

    /// Removes every batch that is not in flight (used when the producer shuts down hard).
    pub fn take_all_queued(&mut self) -> Vec<ProducerBatch> {
        let mut out = Vec::new();
        for q in self.topics.values_mut().flatten() {
            out.extend(q.ready.drain(..));
            out.extend(q.open.take());
        }
        self.pending = self.pending.saturating_sub(out.len());
        out
    }
}

fn queue_in<'a>(
    topics: &'a mut FastMap<Arc<str>, Vec<PartitionQueue>>,
    topic: &str,
    partition: i32,
) -> Option<&'a mut PartitionQueue> {
    let idx = usize::try_from(partition).ok()?;
    if !topics.contains_key(topic) {
        topics.insert(Arc::from(topic), Vec::new());
    }
    let queues = topics.get_mut(topic)?;
    if queues.len() <= idx {
        queues.resize_with(idx + 1, PartitionQueue::new);
    }
    queues.get_mut(idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::batch::{decode_records, validate_batch};

    fn acc(batch_size: usize, pid: i64) -> Accumulator {
        Accumulator::new(AccumulatorConfig {
            batch_size,
            linger: Duration::from_millis(10),
            compression: Compression::None,
            zstd_level: 3,
            producer_id: pid,
            producer_epoch: if pid >= 0 { 0 } else { -1 },
        })
    }

    #[tokio::test]
    async fn sealed_batches_are_built_by_the_sealer_and_stamped_when_sent() {
        let mut a = Accumulator::new(AccumulatorConfig {
            batch_size: 1000,
            linger: Duration::from_millis(10),
            compression: Compression::Zstd,
            zstd_level: 3,
            producer_id: 7,
            producer_epoch: 0,
        });
        let (tx, rx) = std::sync::mpsc::channel::<SealJob>();
        a.set_sealer(tx);
        let now = Instant::now();
        push(&mut a, 0, &[b'x'; 400], now);
        push(&mut a, 0, &[b'y'; 400], now);
        // The third record does not fit: the first two are sealed and go to the sealer.
        let third = push(&mut a, 0, &[b'z'; 400], now);
        assert!(third.batch_ready);
        let job = rx
            .try_recv()
            .unwrap_or_else(|e| panic!("nothing sealed: {e}"));
        let d = a.drain(now, false, |_, _| Some(1), |_| true);
        let mut batches = d.by_node.into_values().flatten();
        let mut b = batches.next().unwrap_or_else(|| panic!("nothing drained"));
        assert!(b.builder.is_none() && b.sealing.is_some());
        std::thread::spawn(move || job.run())
            .join()
            .unwrap_or_else(|_| panic!("sealer panicked"));
        let bytes = b.encode_sealed().await.unwrap_or_else(|e| panic!("{e}"));
        let header = validate_batch(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header.compression().ok(), Some(Compression::Zstd));
        assert_eq!(header.base_sequence, 0, "sequence stamped after the build");
        let records = decode_records(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(records.len(), 2);
        // The open batch is sealed when drained (linger), as its own job.
        let later = now + Duration::from_millis(20);
        let d = a.drain(later, false, |_, _| Some(1), |_| true);
        assert!(d.by_node.is_empty(), "one batch in flight per partition");
        a.finished("t", 0, None);
        let d = a.drain(later, false, |_, _| Some(1), |_| true);
        let mut open = d.by_node.into_values().flatten();
        let mut b = open
            .next()
            .unwrap_or_else(|| panic!("open batch not drained"));
        assert!(b.sealing.is_some());
        let job = rx
            .try_recv()
            .unwrap_or_else(|e| panic!("open batch not sealed: {e}"));
        job.run();
        let bytes = b.encode_sealed().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            validate_batch(&bytes).map(|h| h.base_sequence).ok(),
            Some(2)
        );
    }

    #[test]
    fn uncompressed_batches_are_not_sealed() {
        let mut a = acc(1000, -1);
        let (tx, rx) = std::sync::mpsc::channel::<SealJob>();
        a.set_sealer(tx);
        let now = Instant::now();
        for v in [b'x', b'y', b'z'] {
            push(&mut a, 0, &[v; 400], now);
        }
        assert!(rx.try_recv().is_err());
    }

    fn push(a: &mut Accumulator, p: i32, v: &[u8], now: Instant) -> Appended {
        let (tx, _rx) = oneshot::channel();
        a.append(
            "t",
            p,
            &NewRecord::new(1, None, Some(v)),
            v.len() + 20,
            tx,
            || now,
        )
        .unwrap_or_else(|e| panic!("append: {e}"))
    }

    #[test]
    fn batch_waits_for_linger_then_drains() {
        let mut a = acc(1 << 20, -1);
        let t0 = Instant::now();
        let r = push(&mut a, 0, b"x", t0);
        assert!(r.new_batch && !r.batch_ready);
        push(&mut a, 0, b"y", t0);
        let d = a.drain(t0, false, |_, _| Some(1), |_| true);
        assert!(d.by_node.is_empty());
        assert_eq!(a.next_deadline(t0), Some(t0 + Duration::from_millis(10)));
        assert_eq!(a.next_deadline(t0 + Duration::from_millis(10)), None);
        let later = t0 + Duration::from_millis(10);
        let mut d = a.drain(later, false, |_, _| Some(1), |_| true);
        let batches = d.by_node.remove(&1).unwrap_or_default();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].record_count(), 2);
    }

    #[test]
    fn full_batch_is_ready_at_once_and_one_per_partition_in_flight() {
        let mut a = acc(100, 7);
        let t0 = Instant::now();
        let mut ready = 0;
        for _ in 0..10 {
            ready += usize::from(push(&mut a, 0, &[0u8; 40], t0).batch_ready);
        }
        assert!(ready >= 3, "{ready}");
        let mut d = a.drain(t0, false, |_, _| Some(1), |_| true);
        let mut first = d.by_node.remove(&1).unwrap_or_default();
        assert_eq!(first.len(), 1, "one batch per partition in flight");
        assert_eq!(first[0].base_sequence, 0);
        // Nothing more while it is in flight.
        assert!(a
            .drain(t0, true, |_, _| Some(1), |_| true)
            .by_node
            .is_empty());
        let b = first.remove(0);
        let n = b.record_count();
        a.finished("t", 0, None);
        b.complete(100, -1);
        let mut d = a.drain(t0, false, |_, _| Some(1), |_| true);
        let second = d.by_node.remove(&1).unwrap_or_default();
        assert_eq!(second[0].base_sequence, n, "sequence continues");
    }

    #[test]
    fn requeued_batch_keeps_sequence_and_bytes() {
        let mut a = acc(1 << 20, 3);
        let t0 = Instant::now();
        push(&mut a, 2, b"a", t0);
        push(&mut a, 2, b"b", t0);
        let mut d = a.drain(t0, true, |_, _| Some(1), |_| true);
        let mut b = d.by_node.remove(&1).unwrap_or_default().remove(0);
        let bytes = b.encode().unwrap_or_else(|e| panic!("{e}"));
        let h = validate_batch(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (3, 0, 0)
        );
        assert_eq!(decode_records(&bytes).map(|r| r.len()).unwrap_or(0), 2);
        b.retry_at = Some(t0 + Duration::from_millis(5));
        a.requeue(b);
        assert!(a
            .drain(t0, true, |_, _| Some(1), |_| true)
            .by_node
            .is_empty());
        let mut d = a.drain(
            t0 + Duration::from_millis(5),
            true,
            |_, _| Some(1),
            |_| true,
        );
        let mut b = d.by_node.remove(&1).unwrap_or_default().remove(0);
        assert_eq!(b.encode().ok(), Some(bytes));
    }

    #[test]
    fn no_leader_and_no_room_hold_batches() {
        let mut a = acc(1 << 20, -1);
        let t0 = Instant::now();
        push(&mut a, 0, b"a", t0);
        let d = a.drain(t0, true, |_, _| None, |_| true);
        assert!(d.by_node.is_empty());
        assert_eq!(d.no_leader.len(), 1);
        assert!(a
            .drain(t0, true, |_, _| Some(1), |_| false)
            .by_node
            .is_empty());
        assert_eq!(a.drain(t0, true, |_, _| Some(1), |_| true).by_node.len(), 1);
        assert!(!a.is_empty());
        a.finished("t", 0, None);
        assert!(a.is_empty());
    }

    #[test]
    fn rejected_sequence_is_reused() {
        let mut a = acc(1 << 20, 1);
        let t0 = Instant::now();
        push(&mut a, 0, b"a", t0);
        let mut d = a.drain(t0, true, |_, _| Some(1), |_| true);
        let b = d.by_node.remove(&1).unwrap_or_default().remove(0);
        a.finished("t", 0, Some(b.base_sequence));
        push(&mut a, 0, b"b", t0);
        let mut d = a.drain(t0, true, |_, _| Some(1), |_| true);
        assert_eq!(d.by_node.remove(&1).unwrap_or_default()[0].base_sequence, 0);
    }
}
