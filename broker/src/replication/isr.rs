//! ISR changes, leader side: for every partition this broker leads, followers that have
//! not caught up for `replica_lag_time_max_ms` are proposed out of the ISR and followers
//! outside it that have reached the high watermark are proposed in, through the active
//! controller (AlterPartition with the leader's epochs; the controller refuses stale
//! ones). The new ISR takes effect when the image says so, on every broker alike.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

use super::conn::Conn;
use crate::controller::Controller;
use crate::log_throttle::Throttle;

static ISR_FAILED: Throttle = Throttle::new(Duration::from_secs(10));

/// Longest wait for the controller's answer to one AlterPartition. Short: a controller
/// that stopped answering (paused, cut off) must not hold every later ISR change back
/// for the connection's 30 s, because the next controller needs them (weir-chaos seed 7:
/// with the controller SIGSTOPped, no follower left any ISR and acks=all stalled on
/// every partition until it resumed). A slow answer is simply proposed again.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Proposes ISR changes every `interval`, until `shutdown`.
pub async fn run(
    controller: Arc<Controller>,
    lag_max: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let me = controller.node_id();
    let lag_ms = i64::try_from(lag_max.as_millis()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<(i32, Conn)> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let Some(req) = proposals(&controller, me, lag_ms) else {
            continue;
        };
        let ctl = controller.controller_id();
        if ctl == me {
            if let Err(e) = controller.alter_partitions(req).await {
                log_failure(&e.message);
            }
            continue;
        }
        let image = controller.image();
        let Some(b) = image.brokers.get(&ctl) else {
            continue;
        };
        if conn.as_ref().is_none_or(|(id, _)| *id != ctl) {
            match Conn::connect(&format!("{}:{}", b.host, b.port)).await {
                Ok(c) => conn = Some((ctl, c)),
                Err(e) => {
                    log_failure(&e);
                    continue;
                }
            }
        }
        let Some((_, c)) = conn.as_mut() else {
            continue;
        };
        // Given up as soon as another broker leads the quorum: the old controller may be
        // paused, and the new one should get the proposal without waiting out the call.
        let answer = tokio::select! {
            r = tokio::time::timeout(CALL_TIMEOUT, c.call(req)) => {
                r.unwrap_or_else(|_| Err("the controller did not answer in time".into()))
            }
            _ = controller_moved(&controller, ctl) => {
                Err("the controller moved while the proposal waited".into())
            }
        };
        match answer {
            Ok(r) if r.error_code != 0 => {
                log_failure(&format!(
                    "controller answered {:?}",
                    ErrorCode::from_i32(r.error_code)
                ));
            }
            Ok(_) => {}
            Err(e) => {
                log_failure(&e);
                conn = None;
            }
        }
    }
}

/// Returns once the quorum's leader is no longer `ctl`.
async fn controller_moved(controller: &Controller, ctl: i32) {
    while controller.controller_id() == ctl {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn log_failure(what: &str) {
    if ISR_FAILED.allow(std::time::Instant::now()).is_some() {
        tracing::warn!(error = what, "ISR change not applied");
    }
}

/// The ISR changes this broker's led partitions need, as one request (`None`: none).
fn proposals(
    controller: &Controller,
    me: i32,
    lag_ms_max: i64,
) -> Option<v1::AlterPartitionRequest> {
    let image = controller.image();
    let now = crate::clock::now_ms();
    let mut by_topic: std::collections::BTreeMap<String, Vec<v1::AlterPartitionItem>> =
        Default::default();
    let (mut lag_records, mut lag_ms) = (0i64, 0i64);
    for (p, at) in controller.topics().hosted_placed(&image) {
        if !p.is_leader() || at.leader != me || at.replicas.len() < 2 {
            continue;
        }
        let (records, ms) = p.follower_lag(now);
        lag_records = lag_records.max(records);
        lag_ms = lag_ms.max(ms);
        let (out, join) = p.isr_changes(now, lag_ms_max);
        // Fenced followers stay out until they are back.
        let join: Vec<i32> = join
            .into_iter()
            .filter(|id| image.brokers.get(id).is_some_and(|b| !b.fenced))
            .collect();
        if out.is_empty() && join.is_empty() {
            continue;
        }
        // Before the proposal leaves: the controller may apply it (and elect a joiner)
        // before this broker's image shows it.
        p.mark_joining(&join);
        let mut new_isr: Vec<i32> = at
            .isr
            .iter()
            .copied()
            .filter(|id| !out.contains(id))
            .collect();
        new_isr.extend(join);
        by_topic
            .entry(p.topic().to_string())
            .or_default()
            .push(v1::AlterPartitionItem {
                partition_index: p.index(),
                leader_epoch: at.leader_epoch,
                partition_epoch: at.partition_epoch,
                new_isr,
            });
    }
    let topics: Vec<v1::AlterPartitionTopic> = by_topic
        .into_iter()
        .map(|(name, partitions)| v1::AlterPartitionTopic { name, partitions })
        .collect();
    crate::instruments::recorders::follower_lag(lag_records, lag_ms);
    (!topics.is_empty()).then_some(v1::AlterPartitionRequest {
        broker_id: me,
        topics,
    })
}
