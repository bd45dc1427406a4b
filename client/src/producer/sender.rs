//! The sender task: drains ready batches from the accumulator, groups them into one
//! produce request per leader (at most `max_in_flight` outstanding per broker), and turns
//! responses into completed futures, retries or failures.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use weir_protocol::native::v1::{
    PartitionProduceData, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceData,
};
use weir_protocol::ErrorCode;

use super::accumulator::ProducerBatch;
use super::Inner;
use crate::config::Acks;
use crate::error::{Error, Result};

type Outcome = (i32, Vec<ProducerBatch>, Result<ProduceResponse>);

pub(super) async fn run(inner: Arc<Inner>) {
    let mut in_flight = FuturesUnordered::new();
    let mut per_node: HashMap<i32, usize> = HashMap::new();
    let max_in_flight = inner.config.max_in_flight.max(1);
    let mut refreshing: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        let now = Instant::now();
        let force =
            inner.flushing.load(Ordering::SeqCst) > 0 || inner.closing.load(Ordering::SeqCst);
        let view = inner.client.view();
        // A topic invalidated after NOT_LEADER_OR_FOLLOWER and the like counts as
        // leaderless: its batches wait for the refresh below instead of going back to the
        // stale leader until the delivery timeout.
        let drained = inner.acc().drain(
            now,
            force,
            |t, p| {
                if !view.fetched_at.contains_key(t) {
                    return None;
                }
                view.topics.get(t).and_then(|m| m.leader(p))
            },
            |n| per_node.get(&n).copied().unwrap_or(0) < max_in_flight,
        );
        if !drained.no_leader.is_empty() {
            let expired = inner.acc().expire(now, inner.config.delivery_timeout);
            for mut b in expired {
                let last = b.last_error.take().unwrap_or_else(|| Error::NoLeader {
                    topic: b.topic.to_string(),
                    partition: b.partition,
                });
                let e = Error::DeliveryTimeout {
                    ms: inner.config.delivery_timeout.as_millis() as u64,
                    last: Box::new(last),
                };
                finish_failed(&inner, b, &e, false);
            }
        }
        if !drained.no_leader.is_empty() && refreshing.as_ref().is_none_or(|h| h.is_finished()) {
            let topics: Vec<String> = drained.no_leader.iter().map(|t| t.to_string()).collect();
            let inner2 = inner.clone();
            refreshing = Some(tokio::spawn(async move {
                if let Err(e) = inner2.client.refresh_metadata(&topics).await {
                    tracing::debug!(error = %e, "metadata refresh failed");
                }
                // Paced: a leaderless partition must not turn into a metadata request loop.
                tokio::time::sleep(inner2.client.config().retry_backoff).await;
                inner2.wake.notify_one();
            }));
        }
        for (node, batches) in drained.by_node {
            if batches.is_empty() {
                continue;
            }
            *per_node.entry(node).or_default() += 1;
            in_flight.push(send(inner.clone(), node, batches));
        }
        if inner.closing.load(Ordering::SeqCst) && in_flight.is_empty() && inner.acc().is_empty() {
            return;
        }
        let deadline = inner
            .acc()
            .next_deadline(Instant::now())
            .unwrap_or_else(|| now + Duration::from_secs(3600));
        tokio::select! {
            _ = inner.wake.notified() => {}
            Some((node, batches, result)) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(n) = per_node.get_mut(&node) {
                    *n = n.saturating_sub(1);
                }
                handle(&inner, batches, result);
            }
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// Encodes (compressed batches: waits for the build started when they were sealed), then
/// sends. Waiting here, inside the in-flight future, keeps the sender loop free to drain
/// other partitions and handle responses meanwhile.
async fn send(inner: Arc<Inner>, node: i32, batches: Vec<ProducerBatch>) -> Outcome {
    let mut ok = Vec::with_capacity(batches.len());
    for mut b in batches {
        match b.encode_sealed().await {
            Ok(_) => ok.push(b),
            Err(e) => finish_failed(&inner, b, &e, false),
        }
    }
    if ok.is_empty() {
        return (node, ok, Ok(ProduceResponse::default()));
    }
    let result = send_request(&inner, node, &ok).await;
    (node, ok, result)
}

async fn send_request(
    inner: &Inner,
    node: i32,
    batches: &[ProducerBatch],
) -> Result<ProduceResponse> {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for b in batches {
        let data = PartitionProduceData {
            index: b.partition,
            records: b.bytes.clone().unwrap_or_default(),
        };
        match topics.iter_mut().find(|t| *t.name == *b.topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(TopicProduceData {
                name: b.topic.to_string(),
                partition_data: vec![data],
            }),
        }
    }
    let timeout = inner.client.config().request_timeout;
    let request = ProduceRequest {
        transactional_id: None,
        acks: inner.config.acks.as_i32(),
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        topic_data: topics,
    };
    let conn = inner.client.node_connection(node).await?;
    if inner.config.acks == Acks::None {
        // Its memory is freed once this returns: wait for the socket writer to take the
        // bytes, so acks=0 stays within buffer_memory however slow the network is.
        conn.send_oneway_written(request).await?;
        return Ok(ProduceResponse::default());
    }
    conn.request(request, timeout).await
}

fn handle(inner: &Inner, batches: Vec<ProducerBatch>, result: Result<ProduceResponse>) {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            for b in batches {
                retry_or_fail(inner, b, e.clone());
            }
            inner.wake.notify_one();
            return;
        }
    };
    let mut by_tp: HashMap<(&str, i32), &PartitionProduceResponse> = HashMap::new();
    for t in &response.responses {
        for p in &t.partition_responses {
            by_tp.insert((t.name.as_str(), p.index), p);
        }
    }
    for b in batches {
        if inner.config.acks == Acks::None {
            finish_ok(inner, b, -1, -1);
            continue;
        }
        let Some(p) = by_tp.get(&(&*b.topic, b.partition)).copied() else {
            let e = Error::Protocol {
                addr: "produce".into(),
                reason: format!("no response for {}-{}", b.topic, b.partition),
            };
            retry_or_fail(inner, b, e);
            continue;
        };
        let code = ErrorCode::from_i32(p.error_code);
        if code.is_ok() {
            finish_ok(inner, b, p.base_offset, p.log_append_time_ms);
        } else {
            let e = Error::Broker {
                code,
                context: format!("produce to {}-{}", b.topic, b.partition),
                message: p.error_message.clone(),
            };
            retry_or_fail(inner, b, e);
        }
    }
    inner.wake.notify_one();
}

fn retry_or_fail(inner: &Inner, mut batch: ProducerBatch, error: Error) {
    if error.invalidates_metadata() {
        inner.client.invalidate(&batch.topic);
    }
    let backoff = inner.client.config().retry_backoff;
    let elapsed = batch.created.elapsed();
    if error.is_retriable() && elapsed + backoff < inner.config.delivery_timeout {
        batch.attempts += 1;
        tracing::debug!(topic = %batch.topic, partition = batch.partition, attempt = batch.attempts, error = %error, "retrying batch");
        // Exponential backoff capped at 1 s keeps a dead broker from being hammered.
        let factor = 1u32 << batch.attempts.min(4);
        batch.retry_at = Some(Instant::now() + (backoff * factor).min(Duration::from_secs(1)));
        batch.last_error = Some(error);
        inner.acc().requeue(batch);
        return;
    }
    let definite = error.code().is_some_and(|c| {
        !matches!(
            c,
            ErrorCode::OutOfOrderSequenceNumber
                | ErrorCode::InvalidProducerEpoch
                | ErrorCode::UnknownProducerId
                | ErrorCode::ProducerFenced
        )
    });
    let error = if error.is_retriable() {
        Error::DeliveryTimeout {
            ms: inner.config.delivery_timeout.as_millis() as u64,
            last: Box::new(error),
        }
    } else {
        error
    };
    finish_failed(inner, batch, &error, definite);
}

fn finish_ok(inner: &Inner, batch: ProducerBatch, base_offset: i64, log_append_time: i64) {
    let (topic, partition, memory) = (batch.topic.clone(), batch.partition, batch.memory);
    batch.complete(base_offset, log_append_time);
    release(inner, &topic, partition, memory, None);
}

/// `definite`: the broker certainly did not append the batch, so its sequence is reused.
fn finish_failed(inner: &Inner, batch: ProducerBatch, error: &Error, definite: bool) {
    let (topic, partition, memory) = (batch.topic.clone(), batch.partition, batch.memory);
    let seq = definite.then_some(batch.base_sequence);
    tracing::warn!(%topic, partition, records = batch.record_count(), %error, "batch failed");
    batch.fail(error);
    release(inner, &topic, partition, memory, seq);
}

fn release(inner: &Inner, topic: &str, partition: i32, memory: usize, seq: Option<i32>) {
    let empty = {
        let mut acc = inner.acc();
        acc.finished(topic, partition, seq);
        acc.is_empty()
    };
    inner.memory.add_permits(memory);
    if empty {
        inner.idle.notify_waiters();
    }
}
