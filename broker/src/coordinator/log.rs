//! `__consumer_offsets` I/O: creating the topic, the single writer task that appends the
//! coordinator's records in the order they were queued, and the replay at start.

use std::collections::{BTreeMap, HashMap};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use weir_protocol::batch::{decode_records, BatchBuilder, BatchIter, BatchOptions, NewRecord};
use weir_protocol::ErrorCode;

use crate::controller::Controller;
use crate::error::partition_error_code;
use crate::group::records::{self, GroupRecord, OFFSETS_TOPIC};
use crate::group::{Group, GroupConfig, GroupState, Millis};
use crate::log_throttle::Throttle;
use crate::partition::{blocking, DurableWait};
use crate::topics::Topics;

/// Largest chunk read at a time during replay.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// Why the offsets topic could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsLogError {
    /// Creating the topic failed.
    #[error("cannot create {OFFSETS_TOPIC}: {0}")]
    Create(String),
    /// Reading it back failed.
    #[error("cannot replay {OFFSETS_TOPIC} partition {partition}: {reason}")]
    Replay {
        /// Partition.
        partition: usize,
        /// What went wrong.
        reason: String,
    },
}

/// Records for one partition of the topic, with an optional durability acknowledgement.
pub(super) struct WriteRequest {
    pub partition: i32,
    pub records: Vec<(Bytes, Option<Bytes>)>,
    pub ack: Option<oneshot::Sender<ErrorCode>>,
}

/// A single node creates `__consumer_offsets` at its first start; in a cluster the active
/// controller does, once the brokers that will hold it have registered.
pub(super) async fn ensure_topic(
    controller: &Controller,
    partitions: i32,
) -> Result<(), OffsetsLogError> {
    if controller.is_cluster() || controller.image().topics.contains_key(OFFSETS_TOPIC) {
        return Ok(());
    }
    controller
        .create_offsets_topic(partitions, 1)
        .await
        .map_err(|e| OffsetsLogError::Create(format!("{e:?}")))
}

/// Kafka's `offsets.commit.timeout.ms`: how long a commit waits for its fsync before the
/// coordinator answers REQUEST_TIMED_OUT (the record may still become durable).
const COMMIT_TIMEOUT_MS: i32 = 5_000;

/// Append failures are logged at most this often; the rest are counted.
static APPEND_FAILED: Throttle = Throttle::new(std::time::Duration::from_secs(10));

/// Most requests appended in one round; bounds one batch's size.
const MAX_REQUESTS_PER_ROUND: usize = 512;

/// Appends queued records in order and acknowledges each request once it is durable.
///
/// Works in rounds: whatever queued up while the previous round waited for its fsync goes
/// into one batch per partition, so concurrent commits share an fsync (group commit) and
/// records reach each partition in the order they were queued.
pub(super) async fn run_writer(topics: Topics, mut rx: mpsc::UnboundedReceiver<WriteRequest>) {
    while let Some(first) = rx.recv().await {
        let mut round: BTreeMap<i32, Round> = BTreeMap::new();
        let mut add = |req: WriteRequest| {
            let r = round.entry(req.partition).or_default();
            r.records.extend(req.records);
            r.acks.extend(req.ack);
        };
        add(first);
        for _ in 1..MAX_REQUESTS_PER_ROUND {
            match rx.try_recv() {
                Ok(req) => add(req),
                Err(_) => break,
            }
        }
        let appends = round.into_iter().map(|(partition, r)| {
            let topics = &topics;
            async move {
                let code = append(topics, partition, r.records).await;
                if code != ErrorCode::None {
                    if let Some(suppressed) = APPEND_FAILED.allow(std::time::Instant::now()) {
                        tracing::warn!(partition, error = %code, suppressed, "{OFFSETS_TOPIC} append failed");
                    }
                }
                for ack in r.acks {
                    let _ = ack.send(code);
                }
            }
        });
        futures::future::join_all(appends).await;
    }
}

/// One partition's share of a writer round.
#[derive(Default)]
struct Round {
    records: Vec<(Bytes, Option<Bytes>)>,
    acks: Vec<oneshot::Sender<ErrorCode>>,
}

async fn append(topics: &Topics, partition: i32, recs: Vec<(Bytes, Option<Bytes>)>) -> ErrorCode {
    let part = match topics.partition(OFFSETS_TOPIC, partition) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let now = crate::clock::now_ms();
    let mut builder = BatchBuilder::new(BatchOptions::default());
    for (k, v) in &recs {
        if builder
            .push(&NewRecord::new(now, Some(k), v.as_deref()))
            .is_err()
        {
            return ErrorCode::Unknown;
        }
    }
    let buf = match builder.build() {
        Ok(b) => BytesMut::from(&b[..]),
        Err(_) => return ErrorCode::Unknown,
    };
    // Like produce with acks=all: answered once every in-sync replica of the offsets
    // partition has the record, so a commit survives its coordinator's broker.
    let wait = DurableWait::Replicated {
        timeout_ms: COMMIT_TIMEOUT_MS,
    };
    match part.append_durable(buf, now, wait, |_, _| {}).await {
        Ok(_) => ErrorCode::None,
        Err(e) => partition_error_code(&e),
    }
}

/// Rebuilds every group from the partitions of the topic that `leads` says this broker
/// leads (their groups are coordinated here): the latest record per key wins, tombstones
/// delete.
pub(super) async fn replay(
    topics: &Topics,
    leads: impl Fn(i32) -> bool,
    config: &GroupConfig,
    now: Millis,
) -> Result<HashMap<String, Group>, OffsetsLogError> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    let Some(topic) = topics.get(OFFSETS_TOPIC) else {
        return Ok(groups);
    };
    for part in topic.hosted().filter(|p| leads(p.index())) {
        let err = |reason: String| OffsetsLogError::Replay {
            partition: usize::try_from(part.index()).unwrap_or(0),
            reason,
        };
        let p = part.clone();
        let mut offset = blocking(move || p.log_start_offset(), "offsets log start")
            .await
            .map_err(|e| err(e.to_string()))?;
        // The leader's log is the truth (a new leader's high watermark may still trail
        // records its predecessor committed, until its followers report).
        let end = part.log_end_offset();
        while offset < end {
            let p = part.clone();
            let info = blocking(
                move || p.read_replica(offset, REPLAY_READ_BYTES),
                "replay offsets",
            )
            .await
            .map_err(|e| err(e.to_string()))?;
            let before = offset;
            for batch in BatchIter::new(&info.records, true) {
                let (header, bytes) = batch.map_err(|e| err(e.to_string()))?;
                let recs = decode_records(bytes).map_err(|e| err(e.to_string()))?;
                for r in recs.into_iter().filter(|r| r.offset >= offset) {
                    match records::decode(r.key.as_deref(), r.value.as_deref()) {
                        Ok(rec) => apply(&mut groups, rec, config, now),
                        // One unreadable record must not lose every other group.
                        Err(e) => {
                            tracing::warn!(offset = r.offset, error = %e, "skipping group record")
                        }
                    }
                }
                offset = offset.max(header.next_offset());
            }
            if offset == before {
                break;
            }
        }
    }
    groups.retain(|_, g| g.state() != GroupState::Dead);
    Ok(groups)
}

fn apply(groups: &mut HashMap<String, Group>, rec: GroupRecord, config: &GroupConfig, now: Millis) {
    match rec {
        GroupRecord::Offset { group, tp, value } => {
            let g = groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(group, config.clone(), now));
            match value {
                Some(v) => g.offsets_mut().put(tp, v),
                None => {
                    g.offsets_mut().remove(&tp);
                }
            }
        }
        GroupRecord::Group { group, value } => match value {
            Some(v) => groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(group, config.clone(), now))
                .load_metadata(&v, now),
            None => {
                groups.remove(&group);
            }
        },
    }
}
