//! The producer: `send` encodes a record into its partition's open batch (see
//! [`accumulator`]) and returns a future of its offset; a background sender task (see
//! [`sender`]) ships batches to partition leaders, retries retriable failures and
//! completes the futures.
//!
//! Idempotence is on by default: the producer asks for a producer id at start and stamps
//! id, epoch and a per-partition sequence into every batch, so a retried batch the broker
//! already appended is answered with its original offsets instead of being appended twice.

pub mod accumulator;
mod sender;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{oneshot, Notify, Semaphore, TryAcquireError};
use weir_protocol::batch::{Compression, NewRecord, RecordHeader};
use weir_protocol::native::v1::InitProducerIdRequest;

use crate::client::Client;
use crate::config::{Acks, BufferFull, ClientConfig, ProducerConfig};
use crate::error::{Error, Result};
use crate::partitioner::{DefaultPartitioner, Partitioner};
use accumulator::{Accumulator, AccumulatorConfig, SealJob, Sealer};

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Explicit partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// Key (`None` = null key).
    pub key: Option<Bytes>,
    /// Value (`None` = null value, a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<RecordHeader>,
    /// CreateTime in ms since the epoch; `None` = now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with `value` and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(RecordHeader {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    fn estimated_size(&self) -> usize {
        let opt = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + 4)
            .sum();
        opt(&self.key) + opt(&self.value) + headers + 24
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Partition.
    pub partition: i32,
    /// Offset; -1 with `acks = 0`.
    pub offset: i64,
    /// The record's timestamp (LogAppendTime when the topic uses it).
    pub timestamp: i64,
}

/// Resolves when the record is acknowledged or finally failed.
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

pub(crate) struct Inner {
    client: Arc<Client>,
    config: ProducerConfig,
    partitioner: Arc<dyn Partitioner>,
    acc: Mutex<Accumulator>,
    memory: Semaphore,
    /// Wakes the sender: a batch is ready, a batch opened, flush or close started.
    wake: Notify,
    /// Wakes flushers when the accumulator drains.
    idle: Notify,
    flushing: AtomicUsize,
    closing: AtomicBool,
    sends: AtomicUsize,
}

impl Inner {
    fn acc(&self) -> MutexGuard<'_, Accumulator> {
        match self.acc.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Holds `flushing` raised (batches go out without lingering) while a flush runs, and
/// lowers it however the flush ends, cancellation included.
struct FlushingGuard<'a>(&'a Inner);

impl<'a> FlushingGuard<'a> {
    fn raise(inner: &'a Inner) -> Self {
        inner.flushing.fetch_add(1, Ordering::SeqCst);
        FlushingGuard(inner)
    }
}

impl Drop for FlushingGuard<'_> {
    fn drop(&mut self) {
        self.0.flushing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An asynchronous, batching, idempotent producer.
pub struct Producer {
    inner: Arc<Inner>,
    sender: Option<tokio::task::JoinHandle<()>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Connects (InitProducerId when idempotent) and starts the sender task.
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn new(client_config: ClientConfig, config: ProducerConfig) -> Result<Producer> {
        Self::with_client(Client::new(client_config)?, config).await
    }

    /// A producer over an existing [`Client`].
    ///
    /// Cancellation safety: safe; dropping it changes nothing.
    pub async fn with_client(client: Arc<Client>, config: ProducerConfig) -> Result<Producer> {
        if config.batch_size == 0 || config.buffer_memory < config.batch_size {
            return Err(Error::Config(
                "batch_size must be > 0 and buffer_memory >= batch_size".into(),
            ));
        }
        if config.buffer_memory > Semaphore::MAX_PERMITS {
            return Err(Error::Config("buffer_memory is too large".into()));
        }
        let (producer_id, producer_epoch) = if config.idempotence && config.acks != Acks::None {
            // Producer-id blocks are handed out through the metadata quorum by the active
            // controller, so that is where the id comes from.
            let r = client
                .request_controller(InitProducerIdRequest {
                    transactional_id: None,
                    transaction_timeout_ms: 60_000,
                    producer_id: None,
                    producer_epoch: None,
                })
                .await?;
            Error::check(r.error_code, || "InitProducerId".into(), "")?;
            let epoch = i16::try_from(r.producer_epoch).map_err(|_| Error::Protocol {
                addr: "InitProducerId".into(),
                reason: format!("epoch {} out of range", r.producer_epoch),
            })?;
            (r.producer_id, epoch)
        } else {
            (-1, -1)
        };
        let partitioner = config
            .partitioner
            .clone()
            .unwrap_or_else(|| Arc::new(DefaultPartitioner::new(config.batch_size)));
        let mut acc = Accumulator::new(AccumulatorConfig {
            batch_size: config.batch_size,
            linger: config.linger,
            compression: config.compression,
            zstd_level: config.zstd_level,
            producer_id,
            producer_epoch,
        });
        if config.compression != Compression::None {
            if let Some(sealer) = spawn_compressor() {
                acc.set_sealer(sealer);
            }
        }
        let inner = Arc::new(Inner {
            acc: Mutex::new(acc),
            memory: Semaphore::new(config.buffer_memory),
            client,
            config,
            partitioner,
            wake: Notify::new(),
            idle: Notify::new(),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            sends: AtomicUsize::new(0),
        });
        let sender = tokio::spawn(sender::run(inner.clone()));
        Ok(Producer {
            inner,
            sender: Some(sender),
        })
    }

    /// The underlying client (metadata, connections).
    pub fn client(&self) -> &Arc<Client> {
        &self.inner.client
    }

    /// Sends `record` and waits for its acknowledgement. Awaiting each send before the
    /// next serialises on the linger time; for throughput use [`Producer::enqueue`] and
    /// await the returned futures later.
    ///
    /// Cancellation safety: dropping it once the record is enqueued does not withdraw the
    /// record: it is still sent.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.enqueue(record).await?.await
    }

    /// Puts `record` into its batch; waits only when buffer memory is used up. The
    /// returned future resolves when the record is acknowledged.
    ///
    /// Cancellation safety: safe; the record is either enqueued (and will be sent) or not.
    ///
    /// ```no_run
    /// # async fn demo() -> weir_client::Result<()> {
    /// use weir_client::{ClientConfig, Producer, ProducerConfig, ProducerRecord};
    /// let producer = Producer::new(ClientConfig::new("127.0.0.1:9292"), ProducerConfig::default()).await?;
    /// let mut acks = Vec::new();
    /// for i in 0..100 {
    ///     let record = ProducerRecord::new("orders", format!("order {i}")).with_key("customer-7");
    ///     acks.push(producer.enqueue(record).await?); // returns at once
    /// }
    /// producer.flush_timeout(std::time::Duration::from_secs(10)).await?;
    /// for ack in acks {
    ///     let meta = ack.await?;
    ///     println!("partition {} offset {}", meta.partition, meta.offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &*self.inner;
        if inner.closing.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        // The cache is trusted for most records; every 4096th checks its age (one clock
        // read per record was measurable) and, when old, refreshes it in the background:
        // waiting here would stall every partition on one stuck broker.
        let n = inner.sends.fetch_add(1, Ordering::Relaxed);
        let meta = match inner.client.cached_topic(&record.topic) {
            Some(m) => {
                if n & 4095 == 0 {
                    inner.client.refresh_if_stale(&record.topic);
                }
                m
            }
            None => inner.client.topic(&record.topic).await?,
        };
        let mut count = meta.partition_count();
        if record.partition.is_some_and(|p| p >= count) {
            // The topic may have grown since the cache was filled: ask before refusing.
            let view = inner
                .client
                .refresh_metadata(std::slice::from_ref(&record.topic))
                .await?;
            if let Some(m) = view.topics.get(&record.topic) {
                count = m.partition_count();
            }
        }
        let partition = match record.partition {
            Some(p) if p >= 0 && p < count => p,
            Some(p) => {
                return Err(Error::UnknownPartition {
                    topic: record.topic,
                    partition: p,
                    count,
                })
            }
            None => inner.partitioner.partition(
                &record.topic,
                record.key.as_deref(),
                record.value.as_ref().map_or(0, Bytes::len),
                count,
            ),
        };
        let size = record.estimated_size();
        let limit = inner.config.buffer_memory.min(u32::MAX as usize);
        if size > limit {
            return Err(Error::RecordTooLarge { size, limit });
        }
        match inner.memory.try_acquire_many(size as u32) {
            Ok(p) => p.forget(),
            Err(TryAcquireError::NoPermits) => self.wait_for_memory(size as u32, limit).await?,
            Err(TryAcquireError::Closed) => return Err(Error::Closed),
        }
        let (tx, rx) = oneshot::channel();
        let new = NewRecord {
            timestamp: record.timestamp.unwrap_or_else(now_ms),
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &record.headers,
        };
        let appended = inner
            .acc()
            .append(&record.topic, partition, &new, size, tx, Instant::now);
        match appended {
            Ok(a) => {
                if a.batch_ready || a.new_batch {
                    inner.wake.notify_one();
                }
                Ok(DeliveryFuture { rx })
            }
            Err(e) => {
                inner.memory.add_permits(size);
                Err(e)
            }
        }
    }

    /// Backpressure when buffer memory is used up, as configured: wait, wait up to
    /// `max_block`, or fail at once.
    async fn wait_for_memory(&self, size: u32, limit: usize) -> Result<()> {
        let config = &self.inner.config;
        if config.buffer_full == BufferFull::Fail {
            return Err(Error::BufferFull {
                limit,
                waited_ms: 0,
            });
        }
        let acquire = self.inner.memory.acquire_many(size);
        let permit = match config.max_block {
            None => acquire.await,
            Some(max) => {
                tokio::time::timeout(max, acquire)
                    .await
                    .map_err(|_| Error::BufferFull {
                        limit,
                        waited_ms: u64::try_from(max.as_millis()).unwrap_or(u64::MAX),
                    })?
            }
        };
        permit.map_err(|_| Error::Closed)?.forget();
        Ok(())
    }

    /// Sends every buffered record now and waits until all are acknowledged or failed.
    /// Records enqueued concurrently while flushing are waited for too.
    ///
    /// Cancellation safety: safe; a dropped flush stops overriding `linger` at once (the
    /// records it pushed out stay in flight and are acknowledged as usual).
    pub async fn flush(&self) {
        let inner = &*self.inner;
        let _flushing = FlushingGuard::raise(inner);
        inner.wake.notify_one();
        loop {
            let idle = inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if inner.acc().is_empty() {
                break;
            }
            idle.await;
        }
    }

    /// [`Producer::flush`] that gives up after `timeout`: `Ok` once every record buffered
    /// when it was called (and since) is acknowledged or failed, else
    /// [`Error::FlushTimeout`] with the records still unacknowledged. Failures of single
    /// records are reported by their delivery futures, not here.
    ///
    /// Cancellation safety: safe, as [`Producer::flush`].
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.flush()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::FlushTimeout {
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                pending_batches: self.inner.acc().pending_batches(),
            }),
        }
    }

    /// [`Producer::close`] that gives up after `timeout`; on
    /// [`Error::FlushTimeout`] the records still buffered keep being sent in the
    /// background until their delivery timeout.
    ///
    /// Cancellation safety: as [`Producer::close`].
    pub async fn close_timeout(self, timeout: Duration) -> Result<()> {
        let flushed = self.flush_timeout(timeout).await;
        if flushed.is_ok() {
            self.close().await;
        }
        flushed
    }

    /// Flushes, then stops the sender task.
    ///
    /// Cancellation safety: dropping it mid-way is like dropping the producer: what is
    /// buffered is still sent in the background.
    pub async fn close(mut self) {
        self.flush().await;
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        if let Some(s) = self.sender.take() {
            let _ = s.await;
        }
    }
}

/// The producer's compression thread: builds sealed batches in the order they were sealed,
/// so compressing a batch overlaps the network round trip of the one before it and never
/// runs on the threads that call `send` or drive the sender. One thread per producer keeps
/// its zstd context warm; it ends when the accumulator (the only sender) is dropped.
/// `None` when no thread can be started: batches are then built when sent.
fn spawn_compressor() -> Option<Sealer> {
    let (tx, rx) = std::sync::mpsc::channel::<SealJob>();
    let spawned = std::thread::Builder::new()
        .name("weir-producer-compress".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job.run();
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::warn!(error = %e, "no compression thread; compressing on send");
            None
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // The sender finishes what is buffered, then exits on its own.
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
    }
}
