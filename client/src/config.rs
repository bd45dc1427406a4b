//! Client settings. Durations are `Duration`s, sizes are bytes; every default follows the
//! Kafka Java client unless a comment says why not.

use std::sync::Arc;
use std::time::Duration;

use weir_protocol::batch::Compression;

use crate::partitioner::Partitioner;

/// Settings shared by [`crate::Producer`], [`crate::Consumer`] and [`crate::Admin`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `HOST:PORT` of brokers to ask for metadata first.
    pub bootstrap_servers: Vec<String>,
    /// Sent in every request envelope; shows up in broker logs.
    pub client_id: String,
    /// Longest wait for one response.
    pub request_timeout: Duration,
    /// Longest wait for a TCP connect.
    pub connect_timeout: Duration,
    /// Pause before retrying a retriable failure.
    pub retry_backoff: Duration,
    /// Cached metadata older than this is refreshed before use.
    pub metadata_max_age: Duration,
    /// Largest response frame accepted (fetch responses can be large).
    pub max_frame_bytes: usize,
}

impl ClientConfig {
    /// Settings for `bootstrap` (`HOST:PORT`, several separated by commas).
    pub fn new(bootstrap: &str) -> Self {
        ClientConfig {
            bootstrap_servers: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            client_id: "weir-client".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry_backoff: Duration::from_millis(100),
            metadata_max_age: Duration::from_secs(300),
            max_frame_bytes: 256 << 20,
        }
    }
}

/// How many acknowledgements a produce request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Fire and forget: no response, offsets are unknown (-1).
    None,
    /// After the leader appended.
    Leader,
    /// After every in-sync replica appended.
    All,
}

impl Acks {
    /// The wire value.
    pub fn as_i32(self) -> i32 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// Parses `0`, `1`, `all` or `-1`.
    pub fn parse(s: &str) -> Option<Acks> {
        match s {
            "0" => Some(Acks::None),
            "1" => Some(Acks::Leader),
            "all" | "-1" => Some(Acks::All),
            _ => None,
        }
    }
}

/// Parses a codec name as Kafka spells it (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
pub fn parse_compression(s: &str) -> Option<Compression> {
    match s {
        "none" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Producer settings.
#[derive(Clone)]
pub struct ProducerConfig {
    /// How long a non-full batch waits for more records.
    pub linger: Duration,
    /// A batch is closed once its records take about this many bytes (uncompressed).
    pub batch_size: usize,
    /// Codec applied to every batch.
    pub compression: Compression,
    /// zstd level (Kafka's `compression.zstd.level`, default 3); negative levels are
    /// zstd's fast ones.
    pub zstd_level: i32,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Bytes of records waiting to be acknowledged; `send` waits when they are used up.
    pub buffer_memory: usize,
    /// Produce requests outstanding per broker connection.
    pub max_in_flight: usize,
    /// A record is failed when it is not acknowledged within this time (retries included).
    pub delivery_timeout: Duration,
    /// Idempotent producer: sequence numbers let the broker drop duplicate retries.
    /// Ignored with `acks = 0`, which gets no responses to retry on.
    pub idempotence: bool,
    /// Custom partitioner; `None` = murmur2 for keys, sticky for null keys.
    pub partitioner: Option<Arc<dyn Partitioner>>,
    /// What `send`/`enqueue` does when `buffer_memory` is used up.
    pub buffer_full: BufferFull,
    /// With [`BufferFull::Block`]: fail with [`crate::Error::BufferFull`] after waiting
    /// this long (Kafka's `max.block.ms`); `None` waits as long as it takes.
    pub max_block: Option<Duration>,
}

/// Backpressure when the producer's buffer memory is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferFull {
    /// Wait for acknowledgements to free memory (bounded by `max_block` if set).
    Block,
    /// Fail the send at once with [`crate::Error::BufferFull`].
    Fail,
}

impl std::fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerConfig")
            .field("linger", &self.linger)
            .field("batch_size", &self.batch_size)
            .field("compression", &self.compression)
            .field("zstd_level", &self.zstd_level)
            .field("acks", &self.acks)
            .field("buffer_memory", &self.buffer_memory)
            .field("max_in_flight", &self.max_in_flight)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("idempotence", &self.idempotence)
            .field("custom_partitioner", &self.partitioner.is_some())
            .field("buffer_full", &self.buffer_full)
            .field("max_block", &self.max_block)
            .finish()
    }
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            linger: Duration::from_millis(5),
            // Larger than Kafka's 16 KiB: the native protocol has no per-batch cost to
            // amortise elsewhere, and bigger batches are what makes 100-byte records fast.
            batch_size: 256 << 10,
            compression: Compression::None,
            zstd_level: weir_protocol::batch::compression::DEFAULT_ZSTD_LEVEL,
            acks: Acks::All,
            buffer_memory: 64 << 20,
            max_in_flight: 5,
            delivery_timeout: Duration::from_secs(120),
            idempotence: true,
            partitioner: None,
            buffer_full: BufferFull::Block,
            max_block: None,
        }
    }
}

/// What a consumer does when its position is outside the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Jump to the log start.
    Earliest,
    /// Jump to the log end.
    Latest,
    /// Report [`crate::Error::OffsetOutOfRange`] from `poll`.
    Error,
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Bytes of fetched, not yet polled data; prefetching pauses above it.
    pub max_buffered_bytes: usize,
    /// `max_bytes` of one fetch request.
    pub fetch_max_bytes: usize,
    /// Per-partition cap in one fetch request.
    pub partition_max_bytes: usize,
    /// Long-poll wait of a fetch request.
    pub fetch_max_wait: Duration,
    /// Verify batch CRCs before handing records out.
    pub check_crcs: bool,
    /// Reset policy on OFFSET_OUT_OF_RANGE.
    pub auto_offset_reset: OffsetReset,
    /// Most records one `poll` returns (it stops after the batch that crosses it).
    pub max_poll_records: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_buffered_bytes: 64 << 20,
            // Measured: 1 MiB/8 MiB fetches consume about twice as fast as 4/16 MiB on
            // the 2-core box (smaller buffers stay in cache and avoid fresh-page faults).
            fetch_max_bytes: 8 << 20,
            partition_max_bytes: 1 << 20,
            fetch_max_wait: Duration::from_millis(500),
            check_crcs: true,
            auto_offset_reset: OffsetReset::Latest,
            max_poll_records: 10_000,
        }
    }
}
