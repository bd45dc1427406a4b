//! The Weir driver, through weir-client: `Producer` per producer, one `Consumer`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_client::admin::NewTopic;
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, DeliveryFuture, OffsetReset, Producer,
    ProducerConfig, ProducerRecord,
};

use super::args::Args;
use super::collect::{self, Collected, CHUNK};
use super::error::{PerfError, Result};
use super::pace::{split, Pacer, Payloads, CLOCK_EVERY};
use super::report::{record, Report};
use super::stamp;
use super::timeline::{self, Timeline};

/// Consumers give up after this long without a record once something was read (or the
/// producers are done): the topic simply holds fewer records than asked for.
const IDLE_END: Duration = Duration::from_secs(5);

fn client_config(args: &Args, role: &str) -> ClientConfig {
    let mut c = ClientConfig::new(&args.bootstrap);
    c.client_id = format!("weir-perf-{role}");
    c
}

/// Creates the topic unless it exists.
pub async fn ensure_topic(args: &Args) -> Result<()> {
    let admin = Admin::new(client_config(args, "admin"))?;
    if admin.list_topics().await?.contains(&args.topic) {
        return Ok(());
    }
    let created = admin
        .create_topic(NewTopic {
            name: args.topic.clone(),
            partitions: args.partitions,
            replication_factor: args.replication_factor,
            configs: args.topic_configs.clone(),
        })
        .await;
    match created {
        Ok(_) => {}
        // Lost a race with another weir-perf: the topic is there, which is all we need.
        Err(e) if e.code() == Some(weir_protocol::ErrorCode::TopicAlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    admin.client().topic(&args.topic).await?;
    Ok(())
}

/// Runs `args.producers` producers; returns their merged acks and the start time.
async fn run_producers(args: &Args, stamped: bool) -> Result<(Collected, Instant)> {
    let payloads = Arc::new(Payloads::new(args.record_size));
    let shares = split(args.records, args.producers);
    let rate = args.rate.map(|r| r / args.producers as f64);
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        let config = ProducerConfig {
            acks: args.acks,
            compression: args.compression,
            zstd_level: args.zstd_level,
            linger: Duration::from_millis(args.linger_ms),
            batch_size: args
                .batch_size
                .unwrap_or(ProducerConfig::default().batch_size),
            idempotence: args.idempotence,
            ..ProducerConfig::default()
        };
        producers.push(Producer::new(client_config(args, "producer"), config).await?);
    }
    let start = Instant::now();
    let deadline = start + args.time_limit();
    let mut tasks = Vec::new();
    let mut collectors = Vec::new();
    for (n, (producer, share)) in producers.into_iter().zip(shares).enumerate() {
        let (tx, handle) = collect::spawn::<DeliveryFuture, _, _>();
        collectors.push(handle);
        let topic = args.topic.clone();
        let payloads = payloads.clone();
        // Producers start a fraction of an interval apart so paced sends interleave.
        let offset = rate.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(n as f64 / (r * args.producers as f64))
        });
        tasks.push(tokio::spawn(async move {
            let mut pacer = Pacer::new(start + offset, rate);
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut failed: Option<weir_client::Error> = None;
            let mut now = Instant::now();
            for i in 0..share {
                // Unpaced, the clock is read every CLOCK_EVERY records: a send time up to
                // a few microseconds early only overstates latency, and reading it per
                // record costs the client more than the rest of the loop.
                if pacer.is_paced() || i.is_multiple_of(CLOCK_EVERY) {
                    now = Instant::now();
                }
                let wait = pacer.wait(now);
                if !wait.is_zero() {
                    if !chunk.is_empty() && tx.send(std::mem::take(&mut chunk)).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
                if i.is_multiple_of(1024) && Instant::now() >= deadline {
                    break;
                }
                let due = pacer.next(now);
                let value = if stamped {
                    payloads.stamped(i, due)
                } else {
                    payloads.get(i)
                };
                let record = ProducerRecord {
                    topic: topic.clone(),
                    value: Some(value),
                    ..Default::default()
                };
                match producer.enqueue(record).await {
                    Ok(f) => chunk.push((due, f)),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                if chunk.len() >= CHUNK && tx.send(std::mem::take(&mut chunk)).await.is_err() {
                    break;
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk).await;
            }
            drop(tx);
            producer.close().await;
            failed
        }));
    }
    let mut total = None::<Collected>;
    for (task, collector) in tasks.into_iter().zip(collectors) {
        let failed = task
            .await
            .map_err(|e| PerfError::Config(format!("producer task failed: {e}")))?;
        let mut c = collector
            .await
            .map_err(|e| PerfError::Config(format!("collector task failed: {e}")))?;
        if let Some(e) = failed {
            c.errors += 1;
            c.first_error.get_or_insert(e.to_string());
        }
        match &mut total {
            Some(t) => t.merge(c),
            None => total = Some(c),
        }
    }
    let total = total.ok_or_else(|| PerfError::Config("no producers".into()))?;
    Ok((total, start))
}

/// `produce`: records/s until the last ack; latency = intended send to ack.
pub async fn produce(args: &Args, report: &mut Report) -> Result<()> {
    ensure_topic(args).await?;
    let (c, start) = run_producers(args, false).await?;
    fill_from_acks(args, report, c, start);
    Ok(())
}

fn fill_from_acks(args: &Args, report: &mut Report, c: Collected, start: Instant) {
    report.records = c.ok;
    report.bytes = c.ok * args.record_size as u64;
    report.seconds = c.last.unwrap_or(start).duration_since(start).as_secs_f64();
    report.errors = c.errors;
    report.latency = c.latency;
    if let Some(e) = c.first_error {
        report.extra.insert("first_error".into(), e.into());
    }
}

fn consumer(args: &Args, reset: OffsetReset) -> Result<Consumer> {
    let defaults = ConsumerConfig::default();
    let partition_max_bytes = args
        .fetch_partition_bytes
        .unwrap_or(defaults.partition_max_bytes);
    let config = ConsumerConfig {
        auto_offset_reset: reset,
        partition_max_bytes,
        // One partition's read must fit a request.
        fetch_max_bytes: defaults.fetch_max_bytes.max(partition_max_bytes),
        ..defaults
    };
    Ok(Consumer::new(client_config(args, "consumer"), config)?)
}

/// `consume`: one consumer from the beginning; latency = wait of each non-empty poll.
/// Records are read in place (`poll_each`): the tool only counts them and their value
/// bytes, as a consumer that processes records where they lie would.
pub async fn consume(args: &Args, report: &mut Report) -> Result<()> {
    let mut consumer = consumer(args, OffsetReset::Earliest)?;
    let start = Instant::now();
    let deadline = start + args.time_limit();
    consumer.assign_topic(&args.topic).await?;
    let mut last = start;
    while report.records < args.records {
        let now = Instant::now();
        if now >= deadline || now.duration_since(last) >= IDLE_END {
            break;
        }
        let mut bytes = 0u64;
        let n = consumer
            .poll_each(Duration::from_millis(100), |r| {
                bytes += r.value().map_or(0, |v| v.len() as u64);
            })
            .await?;
        if n == 0 {
            continue;
        }
        last = Instant::now();
        record(
            &mut report.latency,
            last.duration_since(now).as_micros() as u64,
        );
        report.records += n as u64;
        report.bytes += bytes;
    }
    report.seconds = last.duration_since(start).as_secs_f64();
    Ok(())
}

/// `end-to-end`: a consumer at the log end, then producers stamping send times.
pub async fn end_to_end(args: &Args, report: &mut Report) -> Result<()> {
    ensure_topic(args).await?;
    let mut consumer = consumer(args, OffsetReset::Latest)?;
    let tps = consumer.assign_topic(&args.topic).await?;
    // Producers must not start before the consumer knows where the log ends.
    let ready_by = Instant::now() + Duration::from_secs(10);
    while tps.iter().any(|tp| consumer.position(tp).is_none()) {
        if Instant::now() >= ready_by {
            return Err(PerfError::Config(
                "consumer did not find the log end".into(),
            ));
        }
        let _ = consumer.poll(Duration::from_millis(10)).await?;
    }
    let args2 = args.clone();
    let producers = tokio::spawn(async move { run_producers(&args2, true).await });
    let start = Instant::now();
    let deadline = start + args.time_limit() + IDLE_END;
    let mut last = start;
    let mut timeline = args.timeline.as_ref().map(|_| Timeline::new(start));
    let (stop_sampling, stop) = tokio::sync::oneshot::channel();
    let sampler = args
        .timeline
        .as_ref()
        .map(|_| tokio::spawn(timeline::sample_every_second(args.server_pid, stop)));
    while report.records < args.records {
        let now = Instant::now();
        let idle = now.duration_since(last) >= IDLE_END && producers.is_finished();
        if now >= deadline || idle {
            break;
        }
        let records = consumer.poll(Duration::from_millis(100)).await?;
        if records.is_empty() {
            continue;
        }
        last = Instant::now();
        for r in &records {
            if let Some(s) = r.value.as_deref().and_then(stamp::read) {
                let age = stamp::age_micros(s, last);
                record(&mut report.latency, age);
                if let Some(t) = timeline.as_mut() {
                    t.note(s, age);
                }
            }
            report.bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
        }
        report.records += records.len() as u64;
    }
    report.seconds = last.duration_since(start).as_secs_f64();
    let _ = stop_sampling.send(());
    if let (Some(mut t), Some(s), Some(path)) = (timeline, sampler, args.timeline.as_ref()) {
        for m in s.await.unwrap_or_default() {
            t.push_machine(m);
        }
        t.write(path)?;
    }
    let (acks, _) = producers
        .await
        .map_err(|e| PerfError::Config(format!("producers failed: {e}")))??;
    report.errors = acks.errors;
    report.extra.insert(
        "produce_p99_ms".into(),
        (acks.latency.value_at_quantile(0.99) as f64 / 1000.0).into(),
    );
    if let Some(e) = acks.first_error {
        report.extra.insert("first_error".into(), e.into());
    }
    Ok(())
}
