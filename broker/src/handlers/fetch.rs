//! Fetch (1), with long polling: if fewer than `min_bytes` are available the request
//! waits until a requested partition's high watermark moves (a `watch` wake-up, no
//! polling), `max_wait_ms` passes, or the broker shuts down.
//!
//! With zero copy (`server.fetch_zero_copy`, either listener), a consumer's
//! records of at least [`ZERO_COPY_MIN_BYTES`] that sit in the page cache are answered as
//! slices of the segment files, which the connection sends with `sendfile`. Follower
//! fetches always copy: they read past the high watermark, where a truncation (this
//! leader becoming a follower) could rewrite the bytes under a slice before it is sent;
//! below the high watermark the records are committed and never truncated.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use weir_protocol::native::v1::{
    FetchPartitionData, FetchRequest, FetchResponse, FetchableTopicResponse,
};
use weir_protocol::ErrorCode;
use weir_storage::{FileSlice, Records};

use crate::ctx::BrokerCtx;
use crate::error::partition_error_code;
use crate::instruments::recorders::{
    fetch_bytes, purgatory, storage_op, FetchPath, StorageOp, StorageThread,
};
use crate::instruments::Purgatory;
use crate::partition::{blocking, PartitionError, PartitionRef};
use crate::topics::TopicCounters;

/// One requested partition, resolved.
struct Target {
    topic: usize,
    index: i32,
    partition: Result<PartitionRef, ErrorCode>,
    leader_epoch: Option<i32>,
    offset: i64,
    max_bytes: usize,
    counters: Option<Arc<TopicCounters>>,
    /// A follower's fetch: reads to the log end.
    replica: bool,
}

/// Smallest read of one partition sent from the file: below it, a copy costs less than
/// the extra `sendfile` call and the separate write of the frame around it.
const ZERO_COPY_MIN_BYTES: usize = 64 * 1024;

/// A Fetch answer: the response, and per partition (in response order) the records that
/// stay in a segment file, whose `records` field in the response is then empty.
pub struct Fetched {
    /// The response.
    pub response: FetchResponse,
    /// Records to send from files, one entry per partition.
    pub in_file: Vec<Option<FileSlice>>,
}

/// One partition's answer.
struct PartData {
    data: FetchPartitionData,
    in_file: Option<FileSlice>,
}

impl PartData {
    fn bytes(&self) -> usize {
        self.data.records.len() + self.in_file.as_ref().map_or(0, FileSlice::len)
    }
}

/// Answers when enough data is there or the wait is over. `zero_copy`: the caller can
/// send records from files.
pub async fn handle(ctx: &BrokerCtx, req: FetchRequest, zero_copy: bool) -> Fetched {
    let wait =
        Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(ctx.max_fetch_wait);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(ctx.fetch_max_bytes);

    // A follower's fetch: it reads past the high watermark, and its offsets are its log
    // ends, which move the leader's high watermark. Only a broker the metadata names as a
    // replica of the partition gets that; any other replica id (a client claiming one)
    // is served as a consumer, below the high watermark.
    let replica = req.replica_id.filter(|id| *id >= 0 && *id != ctx.node_id);
    let image = ctx.controller.image();
    let now = crate::clock::now_ms();
    let mut names = Vec::with_capacity(req.topics.len());
    let mut targets = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let counters = ctx.topics.get(&t.topic).map(|s| s.counters.clone());
        for p in t.partitions {
            let partition = ctx.partition(&t.topic, p.partition);
            let follower = replica.filter(|id| {
                image
                    .topics
                    .get(&t.topic)
                    .and_then(|placed| placed.partitions.get(usize::try_from(p.partition).ok()?))
                    .is_some_and(|at| at.replicas.contains(id))
            });
            if let (Some(id), Ok(part)) = (follower, &partition) {
                part.follower_fetched(id, p.fetch_offset, now);
            }
            targets.push(Target {
                topic: ti,
                index: p.partition,
                partition,
                replica: follower.is_some(),
                leader_epoch: p.current_leader_epoch,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                counters: counters.clone(),
            });
        }
        names.push(t.topic);
    }
    // Subscribe before the first read so no append between read and wait is missed.
    let mut wakers: Vec<watch::Receiver<i64>> = targets
        .iter()
        .filter_map(|t| {
            t.partition.as_ref().ok().map(|p| {
                if t.replica {
                    p.subscribe_log_end()
                } else {
                    p.subscribe()
                }
            })
        })
        .collect();

    let mut parked = None;
    loop {
        // Marked seen *before* the read: an append that lands while the read runs then
        // still wakes the wait below. (Marking after the read lost such appends, and a
        // follower's fetch slept its whole max wait while acks=all producers waited on it.)
        for w in &mut wakers {
            w.borrow_and_update();
        }
        let (parts, bytes, errors) = read_all(&targets, max_bytes, zero_copy).await;
        let done = errors || bytes >= min_bytes;
        if done || Instant::now() >= deadline || wakers.is_empty() || ctx.shutdown.is_cancelled() {
            for (t, p) in targets.iter().zip(&parts) {
                if let Some(c) = &t.counters {
                    c.fetched(p.bytes() as u64);
                }
                if !t.replica {
                    fetch_bytes(FetchPath::Copy, p.data.records.len());
                    fetch_bytes(
                        FetchPath::Sendfile,
                        p.in_file.as_ref().map_or(0, FileSlice::len),
                    );
                }
            }
            return assemble(names, &targets, parts);
        }
        parked.get_or_insert_with(|| purgatory(Purgatory::Fetch));
        let any_change =
            futures::future::select_all(wakers.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = any_change => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = ctx.shutdown.cancelled() => {}
        }
    }
}

fn assemble(names: Vec<String>, targets: &[Target], parts: Vec<PartData>) -> Fetched {
    let mut responses: Vec<(FetchableTopicResponse, Vec<Option<FileSlice>>)> = names
        .into_iter()
        .map(|topic| {
            let r = FetchableTopicResponse {
                topic,
                partitions: Vec::new(),
            };
            (r, Vec::new())
        })
        .collect();
    for (t, p) in targets.iter().zip(parts) {
        if let Some((r, files)) = responses.get_mut(t.topic) {
            r.partitions.push(p.data);
            files.push(p.in_file);
        }
    }
    // Partitions are grouped by topic in the response, so the file slices follow the same
    // grouping.
    let mut in_file = Vec::with_capacity(targets.len());
    let mut topics = Vec::with_capacity(responses.len());
    for (r, files) in responses {
        topics.push(r);
        in_file.extend(files);
    }
    Fetched {
        response: FetchResponse {
            error_code: 0,
            responses: topics,
            throttle_time_ms: 0,
        },
        in_file,
    }
}

fn error_data(index: i32, code: ErrorCode) -> FetchPartitionData {
    FetchPartitionData {
        partition_index: index,
        error_code: code.as_i32(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: Bytes::new(),
    }
}

/// Reads every target once. Returns the partition data, total record bytes, and whether
/// any partition had an error (errors end a long poll, as in Kafka).
///
/// Tail readers are served on this (async) thread when every read finds its data in the
/// page cache of an active segment and no writer holds a log: a consumer at the log end
/// then costs no hand-off to a blocking thread and back. Anything else (an older segment,
/// pages not cached, a busy lock) reads on a blocking thread as before.
async fn read_all(
    targets: &[Target],
    max_bytes: usize,
    zero_copy: bool,
) -> (Vec<PartData>, usize, bool) {
    let plan: Vec<_> = targets
        .iter()
        .map(|t| Planned {
            index: t.index,
            partition: t.partition.clone(),
            leader_epoch: t.leader_epoch,
            offset: t.offset,
            max_bytes: t.max_bytes,
            replica: t.replica,
            zero_copy: zero_copy && !t.replica,
        })
        .collect();
    if let Some(done) = read_plan(&plan, max_bytes, Access::Cached) {
        storage_op(StorageOp::FetchRead, StorageThread::Async);
        return done;
    }
    storage_op(StorageOp::FetchRead, StorageThread::Blocking);
    let result = blocking(
        move || {
            // Blocking reads never give up; kept total rather than unreachable.
            read_plan(&plan, max_bytes, Access::Blocking)
                .ok_or_else(|| PartitionError::Broken("fetch read".into()))
        },
        "fetch read",
    )
    .await;
    match result {
        Ok(r) => r,
        Err(e) => {
            let code = partition_error_code(&e);
            let parts = targets
                .iter()
                .map(|t| PartData {
                    data: error_data(t.index, code),
                    in_file: None,
                })
                .collect();
            (parts, 0, true)
        }
    }
}

/// One partition to read, detached from the request.
struct Planned {
    index: i32,
    partition: Result<PartitionRef, ErrorCode>,
    leader_epoch: Option<i32>,
    offset: i64,
    max_bytes: usize,
    replica: bool,
    /// Cached records of at least [`ZERO_COPY_MIN_BYTES`] may stay in the file.
    zero_copy: bool,
}

/// How a read may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// On an async thread: never wait for a lock or the disk; give up instead.
    Cached,
    /// On a blocking thread: wait as needed.
    Blocking,
}

/// Why one partition's read did not produce data.
enum ReadFail {
    /// The partition's error for the response.
    Code(ErrorCode),
    /// `Access::Cached` would have had to wait.
    WouldWait,
}

impl From<ErrorCode> for ReadFail {
    fn from(code: ErrorCode) -> Self {
        ReadFail::Code(code)
    }
}

/// Bytes one fetch pass may copy on an async thread. Tail readers need far less; a reader
/// far behind inside the active segment gets this much per pass (plus one whole batch,
/// KIP-74) and fetches again, so no async thread spends milliseconds copying while other
/// connections wait on it. Records sent from the file are not copied and not counted;
/// with zero copy, one partition's copy is smaller than [`ZERO_COPY_MIN_BYTES`] (a larger
/// read is either a slice or goes to a blocking thread).
const INLINE_READ_BUDGET: usize = 1 << 20;

/// Reads the plan in order; `None` when `Access::Cached` would have had to wait for
/// any partition (the whole plan is then read again with `Access::Blocking`).
fn read_plan(
    plan: &[Planned],
    max_bytes: usize,
    access: Access,
) -> Option<(Vec<PartData>, usize, bool)> {
    let mut remaining = max_bytes;
    let mut copy_left = match access {
        Access::Cached => INLINE_READ_BUDGET,
        Access::Blocking => usize::MAX,
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut out = Vec::with_capacity(plan.len());
    for t in plan {
        let limit = if copy_left == 0 {
            0
        } else if t.zero_copy {
            t.max_bytes.min(remaining)
        } else {
            t.max_bytes.min(remaining).min(copy_left)
        };
        let data = match &t.partition {
            Err(code) => Err(ReadFail::Code(*code)),
            Ok(p) => read_one(p, t, limit, total == 0, access),
        };
        match data {
            Ok(d) => {
                let bytes = d.bytes();
                total += bytes;
                remaining = remaining.saturating_sub(bytes);
                copy_left = copy_left.saturating_sub(d.data.records.len());
                out.push(d);
            }
            Err(ReadFail::Code(code)) => {
                errors = true;
                out.push(PartData {
                    data: error_data(t.index, code),
                    in_file: None,
                });
            }
            Err(ReadFail::WouldWait) => return None,
        }
    }
    Some((out, total, errors))
}

/// Reads one partition. `first` = nothing returned yet in this response, so one batch
/// larger than the limit is still returned whole (KIP-74) and consumers never stall.
fn read_one(
    p: &PartitionRef,
    t: &Planned,
    limit: usize,
    first: bool,
    access: Access,
) -> Result<PartData, ReadFail> {
    let (offset, replica) = (t.offset, t.replica);
    if let Some(e) = t.leader_epoch {
        let current = p.leader_epoch();
        if e < current {
            return Err(ErrorCode::FencedLeaderEpoch.into());
        }
        if e > current {
            return Err(ErrorCode::UnknownLeaderEpoch.into());
        }
    }
    let hw = p.high_watermark();
    let code = |e: PartitionError| ReadFail::Code(partition_error_code(&e));
    let log_start = match access {
        Access::Blocking => p.log_start_offset().map_err(code)?,
        Access::Cached => p
            .try_log_start_offset()
            .map_err(code)?
            .ok_or(ReadFail::WouldWait)?,
    };
    if offset < log_start {
        return Err(ErrorCode::OffsetOutOfRange.into());
    }
    // Past the log end is out of range. Between the high watermark and the log end
    // (appended, fsync or replication pending) is not an error for a consumer, just
    // nothing visible yet; a follower reads it.
    let end = p.log_end_offset();
    if offset > end {
        return Err(ErrorCode::OffsetOutOfRange.into());
    }
    let visible = if replica { end } else { hw };
    let mut records = Records::Copied(Bytes::new());
    if offset < visible && (limit > 0 || first) {
        let zero_copy_min = t.zero_copy.then_some(ZERO_COPY_MIN_BYTES);
        let cached_only = access == Access::Cached;
        let read = p
            .read_records(offset, limit, replica, zero_copy_min, cached_only)
            .map_err(code)?
            .ok_or(ReadFail::WouldWait)?;
        if first || read.records.len() <= limit {
            records = read.records;
        }
    }
    let (records, in_file) = match records {
        Records::Copied(b) => (b, None),
        Records::InFile(slice) => (Bytes::new(), Some(slice)),
    };
    Ok(PartData {
        data: FetchPartitionData {
            partition_index: p.index(),
            error_code: 0,
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: log_start,
            records,
        },
        in_file,
    })
}
