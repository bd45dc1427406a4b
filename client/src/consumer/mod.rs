//! The standalone consumer: `assign` partitions, optionally `seek`, then `poll`.
//!
//! Prefetching: one fetcher task per leader broker (see [`fetcher`]) keeps fetching ahead
//! of `poll` and hands raw batch bytes over a channel; the bytes in flight and buffered
//! are bounded by a semaphore (`max_buffered_bytes`), so a slow poller stalls fetching
//! instead of growing memory. `poll` decodes (and decompresses) in the caller's task.
//!
//! Each partition has an epoch bumped by every seek; fetched data of an older epoch is
//! dropped, so a seek never returns stale records. Group mode (issue 5) will drive
//! `assign`/`seek` from the coordinator's assignment and committed offsets.

mod fetcher;
pub mod group;
mod record_view;

pub use group::{Committer, GroupConfig, GroupConsumer, RebalanceListener};
pub use record_view::RecordView;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify, Semaphore};
use weir_protocol::batch::{BatchIter, RecordHeader, RecordIter, DEFAULT_MAX_DECOMPRESSED};

use crate::client::Client;
use crate::config::{ClientConfig, ConsumerConfig, OffsetReset};
use crate::error::{Error, Result};

/// A topic and one of its partitions.
///
/// Built with [`TopicPartition::new`] or from a `(topic, partition)` tuple; displayed
/// as `topic-partition`.
///
/// ```
/// use weir_client::TopicPartition;
///
/// let tp = TopicPartition::new("orders", 3);
/// assert_eq!(tp.to_string(), "orders-3");
/// assert_eq!(tp, TopicPartition::from(("orders", 3)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic and partition.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl From<(String, i32)> for TopicPartition {
    fn from((topic, partition): (String, i32)) -> Self {
        Self { topic, partition }
    }
}

impl From<(&str, i32)> for TopicPartition {
    fn from((topic, partition): (&str, i32)) -> Self {
        Self::new(topic, partition)
    }
}

impl From<&(String, i32)> for TopicPartition {
    fn from((topic, partition): &(String, i32)) -> Self {
        Self::new(topic.as_str(), *partition)
    }
}

impl From<&TopicPartition> for TopicPartition {
    fn from(tp: &TopicPartition) -> Self {
        tp.clone()
    }
}

impl From<&(&str, i32)> for TopicPartition {
    fn from((topic, partition): &(&str, i32)) -> Self {
        Self::new(*topic, *partition)
    }
}

/// Collects partitions given as anything convertible ([`TopicPartition`]s, references
/// to them, or `(topic, partition)` tuples).
pub(crate) fn collect_tps<T: Into<TopicPartition>>(
    tps: impl IntoIterator<Item = T>,
) -> Vec<TopicPartition> {
    tps.into_iter().map(Into::into).collect()
}

impl From<TopicPartition> for (String, i32) {
    fn from(tp: TopicPartition) -> Self {
        (tp.topic, tp.partition)
    }
}

/// How long one `poll` inside a stream waits before looking again (the stream itself
/// waits as long as it takes).
const STREAM_POLL: Duration = Duration::from_secs(1);

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<RecordHeader>,
}

impl ConsumerRecord {
    /// The record's topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(&*self.topic, self.partition)
    }
}

/// Where a partition should start, before the fetcher turns it into an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Offset(i64),
    Earliest,
    Latest,
    Timestamp(i64),
}

pub(crate) struct PartState {
    pub(crate) topic: Arc<str>,
    /// Next offset `poll` returns; -1 until known.
    pub(crate) position: i64,
    /// Next offset the fetcher asks for; `None` while `start` is unresolved.
    pub(crate) fetch_offset: Option<i64>,
    pub(crate) start: Option<Start>,
    pub(crate) epoch: u64,
    pub(crate) leader: Option<i32>,
    /// OFFSET_OUT_OF_RANGE was answered once at `fetch_offset` and metadata is being
    /// refreshed: a broker behind on metadata can still think it leads, with a shorter
    /// log; only a second answer, from the refreshed leader, resets the position.
    pub(crate) out_of_range_once: bool,
}

pub(crate) enum ChunkKind {
    Records(Bytes),
    Failed(Error),
}

/// Fetched data for one partition; gives its buffer permits back when dropped.
pub(crate) struct Chunk {
    pub(crate) tp: TopicPartition,
    pub(crate) epoch: u64,
    pub(crate) kind: ChunkKind,
    pub(crate) permits: usize,
    pub(crate) memory: Arc<Semaphore>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.memory.add_permits(self.permits);
    }
}

pub(crate) struct Shared {
    pub(crate) client: Arc<Client>,
    pub(crate) config: ConsumerConfig,
    // std Mutex: short critical sections, never held across an await.
    pub(crate) parts: Mutex<HashMap<TopicPartition, PartState>>,
    pub(crate) memory: Arc<Semaphore>,
    /// Wakes fetchers after assign/seek.
    pub(crate) changed: Notify,
    pub(crate) tx: mpsc::UnboundedSender<Chunk>,
}

impl Shared {
    pub(crate) fn parts(&self) -> MutexGuard<'_, HashMap<TopicPartition, PartState>> {
        match self.parts.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// A standalone consumer (no group).
pub struct Consumer {
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<Chunk>,
    fetchers: HashMap<i32, tokio::task::JoinHandle<()>>,
    max_poll_records: usize,
    /// A chunk failed after earlier chunks of the same poll were decoded: those records
    /// were returned, and this error is the next poll's answer.
    deferred: Option<Error>,
    /// Decoded records not handed out yet (a dropped [`Consumer::stream`] leaves them
    /// here); `poll` returns them first, and positions count them as unread. A std Mutex
    /// because `seek` takes `&self`; never held across an await.
    unread: Mutex<VecDeque<ConsumerRecord>>,
}

impl Consumer {
    /// A consumer with nothing assigned.
    pub fn new(client_config: ClientConfig, config: ConsumerConfig) -> Result<Consumer> {
        Ok(Self::with_client(Client::new(client_config)?, config))
    }

    /// A consumer over an existing [`Client`].
    pub fn with_client(client: Arc<Client>, config: ConsumerConfig) -> Consumer {
        let (tx, rx) = mpsc::unbounded_channel();
        let max_poll_records = config.max_poll_records.max(1);
        // At least one full fetch must fit, or the fetcher could never start one.
        let permits = config
            .max_buffered_bytes
            .max(config.fetch_max_bytes)
            .min(Semaphore::MAX_PERMITS);
        Consumer {
            shared: Arc::new(Shared {
                client,
                memory: Arc::new(Semaphore::new(permits)),
                config,
                parts: Mutex::new(HashMap::new()),
                changed: Notify::new(),
                tx,
            }),
            rx,
            fetchers: HashMap::new(),
            max_poll_records,
            deferred: None,
            unread: Mutex::new(VecDeque::new()),
        }
    }

    /// Caps the records one `poll` returns (it stops after the batch that crosses it).
    pub fn set_max_poll_records(&mut self, n: usize) {
        self.max_poll_records = n.max(1);
    }

    /// The underlying client.
    pub fn client(&self) -> &Arc<Client> {
        &self.shared.client
    }

    /// Replaces the assignment. New partitions start per `auto_offset_reset` (earliest,
    /// else latest) unless a seek follows; partitions kept keep their position.
    ///
    /// Takes [`TopicPartition`]s, references to them, or `(topic, partition)` tuples.
    ///
    /// ```no_run
    /// # async fn demo(mut consumer: weir_client::Consumer) -> weir_client::Result<()> {
    /// use weir_client::TopicPartition;
    /// let tp = TopicPartition::new("orders", 0);
    /// consumer.assign([&tp, &TopicPartition::new("orders", 1)]).await?;
    /// consumer.seek(&tp, 42)?;
    /// consumer.assign([("orders", 2)]).await?; // tuples still work
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancellation safety: safe; the assignment changes only after the last await.
    pub async fn assign<T: Into<TopicPartition>>(
        &mut self,
        partitions: impl IntoIterator<Item = T>,
    ) -> Result<()> {
        let partitions = collect_tps(partitions);
        let default_start = match self.shared.config.auto_offset_reset {
            OffsetReset::Earliest => Start::Earliest,
            OffsetReset::Latest | OffsetReset::Error => Start::Latest,
        };
        let mut leaders = Vec::with_capacity(partitions.len());
        for tp in &partitions {
            let meta = self.shared.client.topic(&tp.topic).await?;
            if tp.partition < 0 || tp.partition >= meta.partition_count() {
                return Err(Error::UnknownPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    count: meta.partition_count(),
                });
            }
            leaders.push(meta.leader(tp.partition));
        }
        self.unread().retain(|r| {
            partitions
                .iter()
                .any(|tp| tp.partition == r.partition && *tp.topic == *r.topic)
        });
        {
            let mut parts = self.shared.parts();
            parts.retain(|tp, _| partitions.contains(tp));
            for (tp, leader) in partitions.iter().zip(leaders) {
                let e = parts.entry(tp.clone()).or_insert_with(|| PartState {
                    topic: Arc::from(tp.topic.as_str()),
                    position: -1,
                    fetch_offset: None,
                    start: Some(default_start),
                    epoch: 0,
                    leader: None,
                    out_of_range_once: false,
                });
                e.leader = leader;
            }
        }
        self.ensure_fetchers();
        self.shared.changed.notify_waiters();
        Ok(())
    }

    /// Drops the whole assignment (`assign` with no partitions).
    ///
    /// Cancellation safety: safe; the assignment changes only after the last await.
    pub async fn unassign(&mut self) -> Result<()> {
        self.assign(Vec::<TopicPartition>::new()).await
    }

    /// Every partition of `topic`.
    ///
    /// Cancellation safety: safe; the assignment changes only after the last await.
    pub async fn assign_topic(&mut self, topic: &str) -> Result<Vec<TopicPartition>> {
        let meta = self.shared.client.topic(topic).await?;
        let tps: Vec<TopicPartition> = (0..meta.partition_count())
            .map(|p| TopicPartition::new(topic, p))
            .collect();
        self.assign(&tps).await?;
        Ok(tps)
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut v: Vec<_> = self.shared.parts().keys().cloned().collect();
        v.sort();
        v
    }

    fn set_start(&self, tp: &TopicPartition, start: Start) -> Result<()> {
        let mut parts = self.shared.parts();
        let p = parts
            .get_mut(tp)
            .ok_or_else(|| Error::Config(format!("{tp} is not assigned; assign it first")))?;
        p.epoch += 1;
        p.fetch_offset = None;
        self.unread()
            .retain(|r| !(r.partition == tp.partition && *r.topic == *tp.topic));
        p.start = Some(start);
        if let Start::Offset(o) = start {
            p.position = o;
            p.fetch_offset = Some(o);
            p.start = None;
        }
        drop(parts);
        self.shared.changed.notify_waiters();
        Ok(())
    }

    /// Next `poll` of `tp` starts at `offset`.
    pub fn seek(&self, tp: impl Into<TopicPartition>, offset: i64) -> Result<()> {
        self.set_start(&tp.into(), Start::Offset(offset))
    }

    /// Next `poll` of each partition starts at its log start.
    pub fn seek_to_beginning<T: Into<TopicPartition>>(
        &self,
        tps: impl IntoIterator<Item = T>,
    ) -> Result<()> {
        collect_tps(tps)
            .iter()
            .try_for_each(|tp| self.set_start(tp, Start::Earliest))
    }

    /// Next `poll` of each partition starts at its log end (only new records).
    pub fn seek_to_end<T: Into<TopicPartition>>(
        &self,
        tps: impl IntoIterator<Item = T>,
    ) -> Result<()> {
        collect_tps(tps)
            .iter()
            .try_for_each(|tp| self.set_start(tp, Start::Latest))
    }

    /// Next `poll` starts at the first record with timestamp >= `timestamp_ms` (the end
    /// if there is none).
    pub fn seek_to_timestamp<T: Into<TopicPartition>>(
        &self,
        tps: impl IntoIterator<Item = T>,
        timestamp_ms: i64,
    ) -> Result<()> {
        collect_tps(tps)
            .iter()
            .try_for_each(|tp| self.set_start(tp, Start::Timestamp(timestamp_ms)))
    }

    /// The next offset `poll` returns for `tp`, once known.
    pub fn position(&self, tp: impl Into<TopicPartition>) -> Option<i64> {
        let tp = tp.into();
        // Records decoded but not handed out yet are still unread.
        let first_unread = self
            .unread()
            .iter()
            .find(|r| r.partition == tp.partition && *r.topic == *tp.topic)
            .map(|r| r.offset);
        if first_unread.is_some() {
            return first_unread;
        }
        self.shared
            .parts()
            .get(&tp)
            .and_then(|p| p.start.is_none().then_some(p.position))
            .filter(|o| *o >= 0)
    }

    fn unread(&self) -> MutexGuard<'_, VecDeque<ConsumerRecord>> {
        match self.unread.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Puts records `poll` returned back in front of the unread ones (the stream takes
    /// them one at a time).
    pub(crate) fn unread_front(&self, records: Vec<ConsumerRecord>) {
        let mut unread = self.unread();
        for r in records.into_iter().rev() {
            unread.push_front(r);
        }
    }

    /// The next unread record, if one was decoded already.
    pub(crate) fn next_unread(&self) -> Option<ConsumerRecord> {
        self.unread().pop_front()
    }

    /// Records as an endless stream: each item is one record, or an error `poll` would
    /// have returned (the stream goes on after it; stop on the errors you treat as fatal).
    ///
    /// Cancellation safety: safe. Dropping the stream (or a `next()` in `tokio::select!`)
    /// loses nothing not yielded yet: such records stay in the consumer, and the next
    /// `poll` or stream returns them.
    ///
    /// ```no_run
    /// # async fn demo() -> weir_client::Result<()> {
    /// use futures::StreamExt;
    /// use weir_client::{ClientConfig, Consumer, ConsumerConfig};
    /// let mut consumer = Consumer::new(ClientConfig::new("127.0.0.1:9292"), ConsumerConfig::default())?;
    /// consumer.assign_topic("orders").await?;
    /// let mut records = consumer.stream().take(10);
    /// while let Some(record) = records.next().await {
    ///     let record = record?;
    ///     println!("{}-{}@{}", record.topic, record.partition, record.offset);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream(&mut self) -> futures::stream::BoxStream<'_, Result<ConsumerRecord>> {
        // Boxed (so `Unpin`): callers can `.next()` it without pinning.
        Box::pin(futures::stream::unfold(self, |c| async move {
            loop {
                if let Some(r) = c.next_unread() {
                    return Some((Ok(r), c));
                }
                match c.poll(STREAM_POLL).await {
                    Ok(records) => c.unread_front(records),
                    Err(e) => return Some((Err(e), c)),
                }
            }
        }))
    }

    fn ensure_fetchers(&mut self) {
        let nodes: Vec<i32> = {
            let parts = self.shared.parts();
            let mut n: Vec<i32> = parts.values().filter_map(|p| p.leader).collect();
            n.sort_unstable();
            n.dedup();
            n
        };
        for node in nodes {
            let alive = self.fetchers.get(&node).is_some_and(|h| !h.is_finished());
            if !alive {
                let h = tokio::spawn(fetcher::run(self.shared.clone(), node));
                self.fetchers.insert(node, h);
            }
        }
    }

    async fn fix_leaders(&mut self) -> Result<()> {
        let lost: Vec<String> = {
            let parts = self.shared.parts();
            let mut t: Vec<String> = parts
                .iter()
                .filter(|(_, p)| p.leader.is_none())
                .map(|(tp, _)| tp.topic.clone())
                .collect();
            t.dedup();
            t
        };
        if lost.is_empty() {
            return Ok(());
        }
        let view = self.shared.client.refresh_metadata(&lost).await?;
        {
            let mut parts = self.shared.parts();
            for (TopicPartition { topic, partition }, p) in parts.iter_mut() {
                if p.leader.is_none() {
                    p.leader = view.topics.get(topic).and_then(|m| m.leader(*partition));
                }
            }
        }
        self.ensure_fetchers();
        self.shared.changed.notify_waiters();
        Ok(())
    }

    /// Records fetched so far, waiting up to `timeout` for the first; empty on timeout.
    ///
    /// A failing partition never costs the records already decoded for others in the same
    /// call: they are returned, and the error comes with the next call.
    ///
    /// Cancellation safety: safe, e.g. in `tokio::select!`. Records are decoded only after
    /// the last await, so a dropped poll has taken nothing off the prefetch buffer.
    ///
    /// ```no_run
    /// # async fn demo() -> weir_client::Result<()> {
    /// use std::time::Duration;
    /// use weir_client::{ClientConfig, Consumer, ConsumerConfig};
    /// let mut consumer = Consumer::new(ClientConfig::new("127.0.0.1:9292"), ConsumerConfig::default())?;
    /// consumer.assign(&[("orders".to_string(), 0)]).await?;
    /// consumer.seek(&("orders".to_string(), 0), 42)?;
    /// for record in consumer.poll(Duration::from_secs(1)).await? {
    ///     println!("{}: {:?}", record.offset, record.value);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        {
            let mut unread = self.unread();
            if !unread.is_empty() {
                let n = unread.len().min(self.max_poll_records);
                return Ok(unread.drain(..n).collect());
            }
        }
        let mut out = Vec::new();
        self.poll_chunks(timeout, &mut |v: &RecordView<'_>| out.push(v.to_record()))
            .await?;
        Ok(out)
    }

    /// [`Consumer::poll`] without building a [`ConsumerRecord`] per record: calls `visit`
    /// with each record read in place (key and value borrow the fetched bytes) and
    /// returns how many it visited, 0 on timeout. For consumers that process records
    /// where they lie (count, filter, copy out what they keep): it skips an allocation and
    /// two reference counts per record. Same positions, errors and cancellation safety as
    /// `poll`, whose records it also sees if a [`Consumer::stream`] left some decoded.
    ///
    /// ```no_run
    /// # async fn demo(consumer: &mut weir_client::Consumer) -> weir_client::Result<()> {
    /// use std::time::Duration;
    /// let mut bytes = 0;
    /// let n = consumer
    ///     .poll_each(Duration::from_secs(1), |r| bytes += r.value().map_or(0, <[u8]>::len))
    ///     .await?;
    /// println!("{n} records, {bytes} value bytes");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn poll_each<F>(&mut self, timeout: Duration, mut visit: F) -> Result<usize>
    where
        F: FnMut(&RecordView<'_>),
    {
        let unread: Vec<ConsumerRecord> = {
            let mut unread = self.unread();
            let n = unread.len().min(self.max_poll_records);
            unread.drain(..n).collect()
        };
        if !unread.is_empty() {
            for r in &unread {
                visit(&RecordView::decoded(r));
            }
            return Ok(unread.len());
        }
        self.poll_chunks(timeout, &mut visit).await
    }

    /// The fetch side of `poll`: waits up to `timeout` for fetched data, then hands every
    /// record of what has arrived (up to about `max_poll_records`) to `visit`.
    async fn poll_chunks<F>(&mut self, timeout: Duration, visit: &mut F) -> Result<usize>
    where
        F: FnMut(&RecordView<'_>),
    {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let deadline = Instant::now() + timeout;
        let mut last_leader_check = Instant::now() - Duration::from_secs(1);
        loop {
            if last_leader_check.elapsed() >= self.shared.client.config().retry_backoff {
                last_leader_check = Instant::now();
                if let Err(e) = self.fix_leaders().await {
                    if !e.is_retriable() {
                        return Err(e);
                    }
                }
            }
            let wait_until = deadline.min(Instant::now() + Duration::from_millis(200));
            let first = match tokio::time::timeout_at(wait_until.into(), self.rx.recv()).await {
                Ok(Some(c)) => c,
                Ok(None) => return Err(Error::Closed),
                Err(_) if Instant::now() >= deadline => return Ok(0),
                Err(_) => continue,
            };
            let mut seen = 0;
            let mut failed = self.absorb(first, visit, &mut seen).err();
            while failed.is_none() && seen < self.max_poll_records {
                match self.rx.try_recv() {
                    Ok(c) => failed = self.absorb(c, visit, &mut seen).err(),
                    Err(_) => break,
                }
            }
            if let Some(e) = failed {
                // Positions already moved past what was visited: failing the call would
                // skip those records.
                if seen == 0 {
                    return Err(e);
                }
                self.deferred = Some(e);
                return Ok(seen);
            }
            if seen > 0 || Instant::now() >= deadline {
                return Ok(seen);
            }
        }
    }

    fn absorb<F>(&self, chunk: Chunk, visit: &mut F, seen: &mut usize) -> Result<()>
    where
        F: FnMut(&RecordView<'_>),
    {
        let mut parts = self.shared.parts();
        let Some(state) = parts.get_mut(&chunk.tp) else {
            return Ok(()); // unassigned since
        };
        if state.epoch != chunk.epoch {
            return Ok(()); // a seek happened since this was fetched
        }
        let bytes = match &chunk.kind {
            ChunkKind::Failed(e) => return Err(e.clone()),
            ChunkKind::Records(b) => b,
        };
        let check = self.shared.config.check_crcs;
        let topic = state.topic.clone();
        for item in BatchIter::new(bytes, check) {
            let (header, batch) = item?;
            let next = header.next_offset();
            if next <= state.position {
                continue;
            }
            if !header.is_control() {
                let mut records =
                    RecordIter::from_bytes(bytes.slice_ref(batch), DEFAULT_MAX_DECOMPRESSED)?;
                while let Some(r) = records.next_view() {
                    let r = r?;
                    if r.offset < state.position {
                        continue;
                    }
                    visit(&RecordView::wire(&topic, chunk.tp.partition, r));
                    *seen += 1;
                }
            }
            state.position = next;
        }
        Ok(())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        for h in self.fetchers.values() {
            h.abort();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use weir_protocol::batch::{BatchBuilder, BatchOptions, NewRecord};

    fn part(topic: &str) -> PartState {
        PartState {
            topic: Arc::from(topic),
            position: 0,
            fetch_offset: Some(0),
            start: None,
            epoch: 0,
            // Known leader: poll has no metadata to refresh, so no broker is needed.
            leader: Some(0),
            out_of_range_once: false,
        }
    }

    fn chunk(c: &Consumer, p: i32, kind: ChunkKind) -> Chunk {
        Chunk {
            tp: TopicPartition::new("t", p),
            epoch: 0,
            kind,
            permits: 0,
            memory: c.shared.memory.clone(),
        }
    }

    /// A failing partition after a good one in the same poll: the good one's records are
    /// returned (its position already moved past them), the error comes next.
    #[tokio::test]
    async fn a_failed_chunk_does_not_drop_records_decoded_before_it() {
        let client = Client::new(ClientConfig::new("127.0.0.1:9")).unwrap();
        let mut c = Consumer::with_client(client, ConsumerConfig::default());
        c.shared
            .parts()
            .insert(TopicPartition::new("t", 0), part("t"));
        c.shared
            .parts()
            .insert(TopicPartition::new("t", 1), part("t"));
        let mut b = BatchBuilder::new(BatchOptions::default());
        for v in [b"a", b"b", b"c"] {
            b.push(&NewRecord {
                timestamp: 1,
                key: None,
                value: Some(v),
                headers: &[],
            })
            .unwrap();
        }
        let bytes = Bytes::from(b.build().unwrap());
        let good = chunk(&c, 0, ChunkKind::Records(bytes));
        let bad = chunk(&c, 1, ChunkKind::Failed(Error::Config("boom".into())));
        c.shared.tx.send(good).unwrap();
        c.shared.tx.send(bad).unwrap();

        let first = c.poll(Duration::from_secs(5)).await;
        let offsets: Vec<i64> = first
            .expect("records first")
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, vec![0, 1, 2]);
        let second = c.poll(Duration::from_millis(10)).await;
        assert!(matches!(second, Err(Error::Config(_))), "{second:?}");
        assert_eq!(c.position(("t", 0)), Some(3));
    }
}
