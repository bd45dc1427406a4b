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
pub async fn handle(
    ctx: &BrokerCtx,
    req: ProduceRequest,
    turn: Option<AppendTurn>,
) -> Option<ProduceResponse> {
    let acks = req.acks;
    let timeout_ms = req.timeout_ms;
    let acks_ok = matches!(acks, -1..=1);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut pending = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (ti, topic) in req.topic_data.into_iter().enumerate() {
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for (slot, pd) in topic.partition_data.into_iter().enumerate() {
            if !acks_ok {
                parts.push(error_response(
                    pd.index,
                    ErrorCode::InvalidRequiredAcks,
                    format!("acks must be -1, 0 or 1, got {acks}"),
                ));
                continue;
            }
            // Partitions append in parallel, so one named twice would have no defined order.
            if !seen.insert((topic.name.clone(), pd.index)) {
                parts.push(error_response(
                    pd.index,
                    ErrorCode::InvalidRequest,
                    "partition named twice in one request".into(),
                ));
                continue;
            }
            if is_internal_topic(&topic.name) {
                parts.push(error_response(
                    pd.index,
                    ErrorCode::InvalidTopicException,
                    format!("cannot produce to internal topic {}", topic.name),
                ));
                continue;
            }
            let partition = match ctx.partition(&topic.name, pd.index) {
                Ok(p) => p,
                Err(code) => {
                    parts.push(error_response(pd.index, code, String::new()));
                    continue;
                }
            };
            let Some(state) = ctx.topics.get(&topic.name) else {
                parts.push(error_response(
                    pd.index,
                    ErrorCode::UnknownTopicOrPartition,
                    String::new(),
                ));
                continue;
            };
            // acks=all with fewer in-sync replicas than min.insync.replicas is refused
            // before anything is appended (Kafka's NOT_ENOUGH_REPLICAS).
            let min_isr = state.config.min_insync_replicas;
            let in_sync = i32::try_from(partition.isr_size()).unwrap_or(i32::MAX);
            if acks == -1 && min_isr > in_sync {
                parts.push(error_response(
                    pd.index,
                    ErrorCode::NotEnoughReplicas,
                    format!("min.insync.replicas is {min_isr} but {in_sync} replica(s) in sync"),
                ));
                continue;
            }
            let (max, compacted) = (
                state.config.log.max_message_bytes,
                state.config.log.cleanup_policy.compact,
            );
            match validate_produce_records(&pd.records, max, compacted) {
                Ok(_) => {
                    // Placeholder until the append fills it in.
                    parts.push(error_response(pd.index, ErrorCode::None, String::new()));
                    pending.push(Pending {
                        topic: ti,
                        slot,
                        partition,
                        counters: state.counters.clone(),
                        min_isr,
                        // The log patches offsets in place, so it needs its own copy.
                        batches: BytesMut::from(&pd.records[..]),
                    });
                }
                Err((code, message)) => {
                    tracing::debug!(topic = %topic.name, partition = pd.index, %message, "rejected produce");
                    parts.push(error_response(pd.index, code, message));
                }
            }
        }
        responses.push(TopicProduceResponse {
            name: topic.name,
            partition_responses: parts,
        });
    }

    // Validation above ran concurrently with the connection's other requests; appending
    // waits for the turn. A request with nothing to append just drops its turn, which
    // still keeps the later ones behind the earlier ones.
    let mut turn = if pending.is_empty() { None } else { turn };
    if let Some(t) = turn.as_mut() {
        t.wait().await;
    }
    // Every partition's append holds a share of the turn; the last one to be in the log
    // (or to fail) gives it up.
    let turn = turn.map(Arc::new);

    // Partitions append in parallel; each then waits for its own fsync when the flush
    // policy asks for one (group commit: the fsync runs outside the partition lock and
    // covers every append made before it started). acks=0 answers nothing, so it need not
    // wait; the flush still runs.
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
                let short = acks == -1 && r.is_ok() && in_sync < p.min_isr;
                (p.topic, p.slot, r, short)
            }
        })
        .collect();
    // Only the appends may hold the turn, or it would last until the slowest fsync.
    drop(turn);
    for (ti, slot, r, short) in futures::future::join_all(appends).await {
        let Some(resp) = responses
            .get_mut(ti)
            .and_then(|t| t.partition_responses.get_mut(slot))
        else {
            continue;
        };
        match r {
            Ok(_) if short => {
                *resp = error_response(
                    resp.index,
                    ErrorCode::NotEnoughReplicasAfterAppend,
                    "appended, but the ISR fell below min.insync.replicas".into(),
                );
            }
            Ok(Appended {
                info,
                log_start_offset,
            }) => {
                resp.base_offset = info.base_offset;
                resp.log_append_time_ms = info.log_append_time_ms;
                resp.log_start_offset = log_start_offset;
            }
            Err(e) => {
                // A full disk fails every retry of every producer: say so once in a while.
                if let Some(suppressed) = APPEND_FAILED.allow(std::time::Instant::now()) {
                    tracing::warn!(error = %e, suppressed, "append failed");
                }
                *resp = error_response(resp.index, partition_error_code(&e), e.to_string());
            }
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
