//! Produce (0). Every batch of every partition is validated (length, magic, CRC, record
//! count, size limit) before anything is appended; then valid partitions are appended.
//! On one node acks=1 and acks=-1 both answer after the append and, when the log's flush
//! policy asks for it (`flush.messages = 1`, the default), once it is fsynced; acks=0
//! answers nothing. A flush that outlasts the request's `timeout_ms` is answered with
//! REQUEST_TIMED_OUT (the data may still become durable; an idempotent retry is answered
//! with its original offsets). acks=-1 on a topic with `min.insync.replicas` above 1 is refused with
//! NOT_ENOUGH_REPLICAS before anything is appended. A request of a connection appends only
//! in its append turn (after the connection's earlier produces appended, as Kafka orders
//! them) and gives the turn up as soon as its appends are in the log, before any fsync
//! wait, so pipelined requests still share fsyncs.

use std::sync::Arc;

use bytes::BytesMut;
use weir_protocol::batch::{validate_records, BatchIter};
use weir_protocol::native::v1::{
    PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
};
use weir_protocol::ErrorCode;

use crate::clock::now_ms;
use crate::ctx::BrokerCtx;
use crate::error::{batch_error_code, partition_error_code};
use crate::log_throttle::Throttle;
use crate::names::is_internal_topic;
use crate::partition::{Appended, DurableWait, PartitionRef};
use crate::server::AppendTurn;
use crate::topics::TopicCounters;

/// Append failures are logged at most this often; the rest are counted.
static APPEND_FAILED: Throttle = Throttle::new(std::time::Duration::from_secs(10));

/// Most bytes one batch may decompress to (bounds a compression bomb).
fn max_decompressed(max_message_bytes: u32) -> usize {
    (max_message_bytes as usize)
        .saturating_mul(64)
        .clamp(16 << 20, 256 << 20)
}

/// Checks concatenated batches as a producer sent them: framing, magic, CRC, size limit,
/// then every record (count, lengths, offset deltas; keys on compacted topics), without
/// keeping anything decoded. Returns the number of batches.
pub fn validate_produce_records(
    records: &[u8],
    max_message_bytes: u32,
    require_keys: bool,
) -> Result<usize, (ErrorCode, String)> {
    if records.is_empty() {
        return Err((ErrorCode::InvalidRecord, "no record batch".into()));
    }
    let mut count = 0;
    for item in BatchIter::new(records, true) {
        let (h, bytes) = item.map_err(|e| (batch_error_code(&e), e.to_string()))?;
        if bytes.len() > max_message_bytes as usize {
            return Err((
                ErrorCode::MessageTooLarge,
                format!(
                    "batch of {} bytes exceeds max.message.bytes {max_message_bytes}",
                    bytes.len()
                ),
            ));
        }
        if h.records_count <= 0 {
            return Err((ErrorCode::InvalidRecord, "batch without records".into()));
        }
        if h.is_control() {
            return Err((
                ErrorCode::InvalidRecord,
                "clients cannot write control batches".into(),
            ));
        }
        validate_records(bytes, require_keys, max_decompressed(max_message_bytes))
            .map_err(|e| (batch_error_code(&e), e.to_string()))?;
        count += 1;
    }
    Ok(count)
}

struct Pending {
    topic: usize,
    slot: usize,
    partition: PartitionRef,
    counters: Arc<TopicCounters>,
    batches: BytesMut,
    /// The topic's min.insync.replicas (checked again once acks=all is satisfied).
    min_isr: i32,
}

fn error_response(index: i32, code: ErrorCode, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code.as_i32(),
        base_offset: -1,
        log_append_time_ms: -1,
        log_start_offset: -1,
        error_message: message,
    }
}

/// Validates, appends once `turn` comes (no turn: at once), answers (or not, for acks=0).
/// Three steps: admit each partition's records (checks that need no I/O), append the
/// admitted ones in the connection's turn and wait as `acks` asks, fill in the answers.
pub async fn handle(
    ctx: &BrokerCtx,
    req: ProduceRequest,
    turn: Option<AppendTurn>,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut pending = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (ti, topic) in req.topic_data.into_iter().enumerate() {
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for (slot, pd) in topic.partition_data.into_iter().enumerate() {
            let index = pd.index;
            match admit(ctx, &topic.name, pd, acks, &mut seen) {
                Ok(admitted) => {
                    // Placeholder until the append fills it in.
                    parts.push(error_response(index, ErrorCode::None, String::new()));
                    pending.push(Pending {
                        topic: ti,
                        slot,
                        ..admitted
                    });
                }
                Err(refused) => parts.push(refused),
            }
        }
        responses.push(TopicProduceResponse {
            name: topic.name,
            partition_responses: parts,
        });
    }
    for (ti, slot, outcome) in append_all(pending, acks, req.timeout_ms, turn).await {
        if let Some(resp) = responses
            .get_mut(ti)
            .and_then(|t| t.partition_responses.get_mut(slot))
        {
            answer(resp, outcome);
        }
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse {
        responses,
        throttle_time_ms: 0,
    })
}

/// The checks one partition's records must pass before anything is appended; `Err` is
/// the partition's answer. `topic`/`slot` of the result are filled in by the caller.
fn admit(
    ctx: &BrokerCtx,
    topic: &str,
    pd: weir_protocol::native::v1::PartitionProduceData,
    acks: i32,
    seen: &mut std::collections::HashSet<(String, i32)>,
) -> Result<Pending, PartitionProduceResponse> {
    let refuse = |code: ErrorCode, message: String| Err(error_response(pd.index, code, message));
    if !matches!(acks, -1..=1) {
        return refuse(
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1, 0 or 1, got {acks}"),
        );
    }
    // Partitions append in parallel, so one named twice would have no defined order.
    if !seen.insert((topic.to_string(), pd.index)) {
        return refuse(
            ErrorCode::InvalidRequest,
            "partition named twice in one request".into(),
        );
    }
    if is_internal_topic(topic) {
        return refuse(
            ErrorCode::InvalidTopicException,
            format!("cannot produce to internal topic {topic}"),
        );
    }
    let partition = match ctx.partition(topic, pd.index) {
        Ok(p) => p,
        Err(code) => return refuse(code, String::new()),
    };
    let Some(state) = ctx.topics.get(topic) else {
        return refuse(ErrorCode::UnknownTopicOrPartition, String::new());
    };
    // acks=all with fewer in-sync replicas than min.insync.replicas is refused before
    // anything is appended (Kafka's NOT_ENOUGH_REPLICAS).
    let min_isr = state.config.min_insync_replicas;
    let in_sync = i32::try_from(partition.isr_size()).unwrap_or(i32::MAX);
    if acks == -1 && min_isr > in_sync {
        return refuse(
            ErrorCode::NotEnoughReplicas,
            format!("min.insync.replicas is {min_isr} but {in_sync} replica(s) in sync"),
        );
    }
    let (max, compacted) = (
        state.config.log.max_message_bytes,
        state.config.log.cleanup_policy.compact,
    );
    if let Err((code, message)) = validate_produce_records(&pd.records, max, compacted) {
        tracing::debug!(topic, partition = pd.index, %message, "rejected produce");
        return refuse(code, message);
    }
    Ok(Pending {
        topic: 0,
        slot: 0,
        partition,
        counters: state.counters.clone(),
        min_isr,
        // The log patches offsets in place, so it needs the bytes to itself: taken over
        // when nothing else refers to the request's buffer (one partition in the request,
        // and the frame decoder gave the frame its own allocation), copied otherwise.
        batches: pd
            .records
            .try_into_mut()
            .unwrap_or_else(|shared| BytesMut::from(&shared[..])),
    })
}

/// How one admitted partition's append ended.
enum Outcome {
    /// In the log, as durable and replicated as `acks` asked.
    Done(Appended),
    /// In the log, but the ISR fell below min.insync.replicas while acks=all waited.
    Short,
    /// Not appended, or not acknowledged in time.
    Failed(crate::partition::PartitionError),
}

/// Appends every admitted partition once the connection's turn comes, in parallel, and
/// waits as `acks` asks. Returns (topic, slot, outcome) per partition.
async fn append_all(
    pending: Vec<Pending>,
    acks: i32,
    timeout_ms: i32,
    turn: Option<AppendTurn>,
) -> Vec<(usize, usize, Outcome)> {
    // Validation ran concurrently with the connection's other requests; appending waits
    // for the turn. A request with nothing to append just drops its turn, which still
    // keeps the later ones behind the earlier ones.
    let mut turn = if pending.is_empty() { None } else { turn };
    if let Some(t) = turn.as_mut() {
        t.wait().await;
    }
    // Every partition's append holds a share of the turn; the last one to be in the log
    // (or to fail) gives it up.
    let turn = turn.map(Arc::new);

    // Each partition then waits for its own fsync when the flush policy asks for one
    // (group commit: the fsync runs outside the partition lock and covers every append
    // made before it started), and for acks=all until its ISR has the records. acks=0
    // answers nothing, so it need not wait; the flush still runs.
    let now = now_ms();
    let wait = match acks {
        0 => DurableWait::NoAck,
        -1 => DurableWait::Replicated { timeout_ms },
        _ => DurableWait::Within { timeout_ms },
    };
    let appends: Vec<_> = pending
        .into_iter()
        .map(|p| {
            let turn = turn.clone();
            async move {
                let counters = p.counters;
                // A failed append drops the callback unrun, which gives the share up too.
                let r = p
                    .partition
                    .append_durable(p.batches, now, wait, move |info, bytes| {
                        // In the log: the connection's next produce may append while this
                        // one waits for its fsync.
                        drop(turn);
                        if !info.duplicate {
                            counters.produced(u64::from(info.record_count), bytes as u64);
                        }
                    })
                    .await;
                // The ISR may have shrunk below the minimum while this waited: the records
                // are in the log, but not as safe as asked (Kafka's error 20).
                let in_sync = i32::try_from(p.partition.isr_size()).unwrap_or(i32::MAX);
                let outcome = match r {
                    Ok(_) if acks == -1 && in_sync < p.min_isr => Outcome::Short,
                    Ok(a) => Outcome::Done(a),
                    Err(e) => Outcome::Failed(e),
                };
                (p.topic, p.slot, outcome)
            }
        })
        .collect();
    // Only the appends may hold the turn, or it would last until the slowest fsync.
    drop(turn);
    futures::future::join_all(appends).await
}

/// Fills in one partition's answer.
fn answer(resp: &mut PartitionProduceResponse, outcome: Outcome) {
    match outcome {
        Outcome::Done(Appended {
            info,
            log_start_offset,
        }) => {
            resp.base_offset = info.base_offset;
            resp.log_append_time_ms = info.log_append_time_ms;
            resp.log_start_offset = log_start_offset;
        }
        Outcome::Short => {
            *resp = error_response(
                resp.index,
                ErrorCode::NotEnoughReplicasAfterAppend,
                "appended, but the ISR fell below min.insync.replicas".into(),
            );
        }
        Outcome::Failed(e) => {
            // A full disk fails every retry of every producer: say so once in a while.
            if let Some(suppressed) = APPEND_FAILED.allow(std::time::Instant::now()) {
                tracing::warn!(error = %e, suppressed, "append failed");
            }
            *resp = error_response(resp.index, partition_error_code(&e), e.to_string());
        }
    }
}
