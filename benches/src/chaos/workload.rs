//! The workloads (§4.3 W1, W2): idempotent acks=all producers writing unique values
//! `p{producer}-{seq}` round-robin over the partitions, `assign` consumers reading every
//! partition from offset 0, a consumer group whose members process, commit synchronously
//! and are killed and restarted, and an OffsetFetch of the group every 2 s. Every loop ends
//! on `stop` and is bounded in count (the record budget) and time (the run's length).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, Error, GroupConfig, GroupConsumer, OffsetReset,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};

use super::history::{Func, Kind, Recorder};
use super::rng::Rng;

/// The consumer group under test.
pub const GROUP: &str = "chaos-group";

/// Workload parameters.
#[derive(Debug, Clone)]
pub struct Params {
    /// Bootstrap (the client proxies).
    pub bootstrap: String,
    /// Topic under test.
    pub topic: String,
    /// Its partition count.
    pub partitions: i32,
    /// Producers.
    pub producers: usize,
    /// Target acknowledged records per second, all producers together.
    pub rate: u64,
    /// Records to send at most, all producers together.
    pub records: u64,
    /// Assign consumers.
    pub consumers: usize,
    /// Group members.
    pub members: usize,
}

fn client_config(bootstrap: &str, id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.client_id = id.to_string();
    // Short, so a request to a paused or cut-off broker fails over within the faults'
    // holds instead of waiting the default 30 s.
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c.metadata_max_age = Duration::from_secs(5);
    c
}

/// Classifies a failed operation: a non-retriable broker code is a definite failure;
/// anything else (timeouts, lost connections, retriable codes) leaves the outcome unknown.
pub fn outcome(e: &Error) -> Kind {
    match e.code() {
        Some(code) if !code.is_retriable() => Kind::Fail,
        _ => Kind::Info,
    }
}

/// Starts every workload task.
pub fn start(
    params: &Params,
    rec: &Recorder,
    stop: &CancellationToken,
    rng: &mut Rng,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let budget = Arc::new(AtomicU64::new(params.records));
    for i in 0..params.producers {
        tasks.push(tokio::spawn(producer(
            i,
            params.clone(),
            rec.clone(),
            stop.clone(),
            budget.clone(),
        )));
    }
    for i in 0..params.consumers {
        tasks.push(tokio::spawn(assign_consumer(
            i,
            params.clone(),
            rec.clone(),
            stop.clone(),
            rng.fork(),
        )));
    }
    if params.members > 0 {
        tasks.push(tokio::spawn(group(
            params.clone(),
            rec.clone(),
            stop.clone(),
            rng.fork(),
        )));
        tasks.push(tokio::spawn(offset_fetcher(
            params.clone(),
            rec.clone(),
            stop.clone(),
        )));
    }
    tasks
}

/// One producer: sends at its share of the rate with at most `WINDOW` unacknowledged,
/// records invoke before each enqueue and the outcome when its delivery resolves.
async fn producer(
    i: usize,
    p: Params,
    rec: Recorder,
    stop: CancellationToken,
    budget: Arc<AtomicU64>,
) {
    const WINDOW: usize = 2_000;
    const TICK: Duration = Duration::from_millis(10);
    let per_tick = (p.rate / p.producers.max(1) as u64 / 100).max(1);
    let mut seq = 0u64;
    let mut incarnation = 0u32;
    while !stop.is_cancelled() {
        incarnation += 1;
        let name = format!("p{i}.{incarnation}");
        let config = ProducerConfig {
            delivery_timeout: Duration::from_secs(60),
            ..ProducerConfig::default()
        };
        let producer = match Producer::new(client_config(&p.bootstrap, &name), config).await {
            Ok(pr) => pr,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut pending = FuturesUnordered::new();
        let mut outstanding = vec![0usize; usize::try_from(p.partitions).unwrap_or(0).max(1)];
        let mut tick = tokio::time::interval(TICK);
        let mut broken = false;
        while !stop.is_cancelled() && !broken {
            tokio::select! {
                Some((id, part, value, result)) = pending.next(), if !pending.is_empty() => {
                    if let Some(n) = usize::try_from(part).ok().and_then(|q| outstanding.get_mut(q)) {
                        *n = n.saturating_sub(1);
                    }
                    complete(&rec, &name, id, part, value, result);
                }
                _ = tick.tick() => {
                    for _ in 0..per_tick {
                        let part = (seq % p.partitions.max(1) as u64) as i32;
                        let slot = usize::try_from(part).unwrap_or(0);
                        if outstanding.get(slot).is_some_and(|n| *n >= WINDOW) {
                            // This partition is stalled: its turn passes to the next.
                            seq += 1;
                            continue;
                        }
                        if budget.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1)).is_err() {
                            break;
                        }
                        let value = format!("p{i}-{seq}");
                        seq += 1;
                        let id = rec.invoke(&name, Func::Send, part, Some(value.clone()), None);
                        let record = ProducerRecord::new(p.topic.as_str(), value.clone()).with_partition(part);
                        match producer.enqueue(record).await {
                            Ok(fut) => {
                                if let Some(n) = outstanding.get_mut(slot) {
                                    *n += 1;
                                }
                                pending.push(async move { (id, part, value, fut.await) });
                            }
                            Err(e) => {
                                let kind = outcome(&e);
                                rec.complete(&name, id, kind, Func::Send, part, Some(value), None, Some(e.to_string()));
                                // A producer that refuses sends is replaced by a new one
                                // (a new producer id), as an application would.
                                broken = !e.is_retriable();
                                break;
                            }
                        }
                    }
                }
            }
        }
        // Drain (bounded by the delivery timeout): outcomes still unknown stay invoke-only.
        let drain = async {
            while let Some((id, part, value, result)) = pending.next().await {
                complete(&rec, &name, id, part, value, result);
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(70), drain).await;
        let _ = producer.close_timeout(Duration::from_secs(5)).await;
    }
}

fn complete(
    rec: &Recorder,
    name: &str,
    id: u64,
    part: i32,
    value: String,
    result: weir_client::Result<weir_client::RecordMetadata>,
) {
    match result {
        Ok(meta) if meta.partition == part => {
            rec.complete(
                name,
                id,
                Kind::Ok,
                Func::Send,
                part,
                Some(value),
                Some(meta.offset),
                None,
            );
        }
        Ok(meta) => rec.complete(
            name,
            id,
            Kind::Info,
            Func::Send,
            part,
            Some(value),
            None,
            Some(format!(
                "acknowledged on partition {} instead",
                meta.partition
            )),
        ),
        Err(e) => rec.complete(
            name,
            id,
            outcome(&e),
            Func::Send,
            part,
            Some(value),
            None,
            Some(e.to_string()),
        ),
    }
}

/// An assign consumer: reads every partition from 0; consumer 1 and above also re-seek a
/// random partition to a random earlier offset now and then (§4.3's re-assigning readers).
async fn assign_consumer(
    i: usize,
    p: Params,
    rec: Recorder,
    stop: CancellationToken,
    mut rng: Rng,
) {
    let name = format!("c{i}");
    let config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Error,
        fetch_max_wait: Duration::from_millis(200),
        ..Default::default()
    };
    let Ok(mut consumer) = Consumer::new(client_config(&p.bootstrap, &name), config) else {
        return;
    };
    let tps: Vec<TopicPartition> = (0..p.partitions)
        .map(|q| TopicPartition::new(p.topic.as_str(), q))
        .collect();
    while !stop.is_cancelled() {
        if consumer.assign(tps.clone()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut position = vec![0i64; tps.len()];
    for tp in &tps {
        if consumer.seek(tp.clone(), 0).is_ok() {
            rec.observe(&name, Func::Seek, tp.partition, 0, None);
        }
    }
    let mut next_reseek = tokio::time::Instant::now() + Duration::from_secs(rng.range(10, 20));
    while !stop.is_cancelled() {
        let polled = tokio::select! {
            r = consumer.poll(Duration::from_millis(500)) => r,
            _ = stop.cancelled() => break,
        };
        match polled {
            Ok(records) => {
                for r in records {
                    let value = r
                        .value
                        .as_ref()
                        .map(|v| String::from_utf8_lossy(v).into_owned());
                    rec.observe(&name, Func::Poll, r.partition, r.offset, value);
                    if let Some(slot) = usize::try_from(r.partition)
                        .ok()
                        .and_then(|q| position.get_mut(q))
                    {
                        *slot = r.offset + 1;
                    }
                }
            }
            Err(_) => {
                // Out of range or a failover: seek back to where this consumer was (no
                // seek event: the position does not move) and go on.
                for (q, tp) in tps.iter().enumerate() {
                    let _ = consumer.seek(tp.clone(), position.get(q).copied().unwrap_or(0));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if i > 0 && tokio::time::Instant::now() >= next_reseek {
            next_reseek = tokio::time::Instant::now() + Duration::from_secs(rng.range(10, 20));
            let q = rng.index(tps.len());
            let at = position.get(q).copied().unwrap_or(0);
            let to = i64::try_from(rng.range(0, u64::try_from(at).unwrap_or(0))).unwrap_or(0);
            if let Some(tp) = tps.get(q) {
                if consumer.seek(tp.clone(), to).is_ok() {
                    rec.observe(&name, Func::Seek, tp.partition, to, None);
                    if let Some(slot) = position.get_mut(q) {
                        *slot = to;
                    }
                }
            }
        }
    }
}

/// The group: `members` members; every 15–25 s one is killed (its task aborted, no leave,
/// as a crash) and a new incarnation starts.
async fn group(p: Params, rec: Recorder, stop: CancellationToken, mut rng: Rng) {
    let mut members: Vec<(u32, JoinHandle<()>)> = (0..p.members)
        .map(|m| {
            (
                1,
                tokio::spawn(member(m, 1, p.clone(), rec.clone(), stop.clone())),
            )
        })
        .collect();
    loop {
        let wait = Duration::from_secs(rng.range(15, 25));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.cancelled() => break,
        }
        let m = rng.index(members.len());
        if let Some((inc, task)) = members.get_mut(m) {
            task.abort();
            *inc += 1;
            *task = tokio::spawn(member(m, *inc, p.clone(), rec.clone(), stop.clone()));
        }
    }
    for (_, t) in members {
        let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
    }
}

/// One group member: poll, record what it processed, commit synchronously.
async fn member(m: usize, inc: u32, p: Params, rec: Recorder, stop: CancellationToken) {
    let name = format!("g{m}.{inc}");
    let mut group = GroupConfig::new(GROUP);
    group.session_timeout = Duration::from_secs(3);
    group.heartbeat_interval = Duration::from_millis(300);
    group.rebalance_timeout = Duration::from_secs(10);
    group.auto_commit_interval = None;
    let config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(200),
        ..Default::default()
    };
    let mut consumer = loop {
        match GroupConsumer::new(
            client_config(&p.bootstrap, &name),
            config.clone(),
            group.clone(),
        )
        .await
        {
            Ok(c) => break c,
            Err(_) if !stop.is_cancelled() => tokio::time::sleep(Duration::from_millis(300)).await,
            Err(_) => return,
        }
    };
    consumer.subscribe(&[p.topic.as_str()]);
    while !stop.is_cancelled() {
        let polled = tokio::select! {
            r = consumer.poll(Duration::from_millis(500)) => r,
            _ = stop.cancelled() => break,
        };
        let Ok(records) = polled else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut next: std::collections::BTreeMap<i32, i64> = std::collections::BTreeMap::new();
        for r in &records {
            let value = r
                .value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned());
            rec.observe(&name, Func::Poll, r.partition, r.offset, value);
            next.insert(r.partition, r.offset + 1);
        }
        if next.is_empty() {
            continue;
        }
        let ids: Vec<(i32, i64, u64)> = next
            .iter()
            .map(|(q, o)| (*q, *o, rec.invoke(&name, Func::Commit, *q, None, Some(*o))))
            .collect();
        let offsets: Vec<(TopicPartition, i64)> = next
            .iter()
            .map(|(q, o)| (TopicPartition::new(p.topic.as_str(), *q), *o))
            .collect();
        let result = consumer.commit_offsets(&offsets).await;
        for (q, o, id) in ids {
            match &result {
                Ok(()) => rec.complete(&name, id, Kind::Ok, Func::Commit, q, None, Some(o), None),
                Err(e) => rec.complete(
                    &name,
                    id,
                    outcome(e),
                    Func::Commit,
                    q,
                    None,
                    None,
                    Some(e.to_string()),
                ),
            }
        }
    }
    let _ = consumer.close_timeout(Duration::from_secs(5)).await;
}

/// OffsetFetch of the group every 2 s, each partition an operation.
async fn offset_fetcher(p: Params, rec: Recorder, stop: CancellationToken) {
    let Ok(admin) = Admin::new(client_config(&p.bootstrap, "admin")) else {
        return;
    };
    while !stop.is_cancelled() {
        fetch_committed(&admin, &p, &rec).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.cancelled() => break,
        }
    }
}

/// One OffsetFetch, recorded per partition; returns partition → committed offset.
pub async fn fetch_committed(admin: &Admin, p: &Params, rec: &Recorder) -> Option<Vec<(i32, i64)>> {
    let ids: Vec<u64> = (0..p.partitions)
        .map(|q| rec.invoke("admin", Func::Committed, q, None, None))
        .collect();
    let result = offset_fetch(admin, &p.topic).await;
    for (q, id) in (0..p.partitions).zip(ids) {
        match &result {
            Ok(list) => {
                let o = list
                    .iter()
                    .find(|(pq, _)| *pq == q)
                    .map(|(_, o)| *o)
                    .filter(|o| *o >= 0);
                rec.complete("admin", id, Kind::Ok, Func::Committed, q, None, o, None);
            }
            Err(e) => rec.complete(
                "admin",
                id,
                outcome(e),
                Func::Committed,
                q,
                None,
                None,
                Some(e.to_string()),
            ),
        }
    }
    result.ok()
}

/// The group's committed offsets of `topic`, asked of its coordinator.
async fn offset_fetch(admin: &Admin, topic: &str) -> Result<Vec<(i32, i64)>, Error> {
    admin.group_offsets(GROUP, topic).await
}

/// Admin over the client proxies (topic creation, final reads' high watermarks).
pub fn admin(bootstrap: &str) -> Result<Admin, Error> {
    Admin::new(client_config(bootstrap, "admin"))
}
