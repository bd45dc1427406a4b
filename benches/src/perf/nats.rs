//! The NATS JetStream driver, through NATS's own Rust client (async-nats): one file-storage
//! stream `<topic>` over subjects `<topic>.<n>` (partitions), async publish with acks
//! awaited later (the client's default limit of 5,000 acks in flight), and an
//! unacknowledged pull consumer for reads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;

use super::args::Args;
use super::collect::{self, Collected, CHUNK};
use super::error::{PerfError, Result};
use super::pace::{split, Pacer, Payloads, CLOCK_EVERY};
use super::report::{record, Report};
use super::stamp;

const IDLE_END: Duration = Duration::from_secs(5);

fn nats_err(e: impl std::fmt::Display) -> PerfError {
    PerfError::Nats(e.to_string())
}

/// Stream names may not contain `.`, spaces or wildcards.
pub fn stream_name(topic: &str) -> String {
    topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn context(args: &Args) -> Result<jetstream::Context> {
    let client = async_nats::connect(args.bootstrap.as_str())
        .await
        .map_err(nats_err)?;
    Ok(jetstream::new(client))
}

async fn ensure_stream(js: &jetstream::Context, args: &Args) -> Result<stream::Stream> {
    let name = stream_name(&args.topic);
    js.get_or_create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{name}.*")],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(nats_err)
}

type AckFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = std::result::Result<
                    jetstream::publish::PublishAck,
                    jetstream::context::PublishError,
                >,
            > + Send,
    >,
>;

async fn run_producers(args: &Args, stamped: bool) -> Result<(Collected, Instant)> {
    let payloads = Arc::new(Payloads::new(args.record_size));
    let name = stream_name(&args.topic);
    let subjects: Arc<Vec<String>> = Arc::new(
        (0..args.partitions)
            .map(|p| format!("{name}.{p}"))
            .collect(),
    );
    let rate = args.rate.map(|r| r / args.producers as f64);
    let mut contexts = Vec::new();
    for _ in 0..args.producers {
        contexts.push(context(args).await?);
    }
    let start = Instant::now();
    let deadline = start + args.time_limit();
    let mut tasks = Vec::new();
    for (n, (js, share)) in contexts
        .into_iter()
        .zip(split(args.records, args.producers))
        .enumerate()
    {
        let (tx, collector) = collect::spawn::<AckFuture, _, _>();
        let payloads = payloads.clone();
        let subjects = subjects.clone();
        let offset = rate.map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64(n as f64 / (r * args.producers as f64))
        });
        let task = tokio::spawn(async move {
            let mut pacer = Pacer::new(start + offset, rate);
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut failed = None;
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
                let subject = subjects
                    .get(i as usize % subjects.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                match js.publish(subject, value).await {
                    Ok(ack) => chunk.push((due, std::future::IntoFuture::into_future(ack))),
                    Err(e) => {
                        failed = Some(e.to_string());
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
            // The connection (in `js`) must outlive the acks still in flight.
            let collected = collector.await;
            drop(js);
            (failed, collected)
        });
        tasks.push(task);
    }
    let mut total: Option<Collected> = None;
    for task in tasks {
        let (failed, collected) = task.await.map_err(nats_err)?;
        let mut c = collected.map_err(nats_err)?;
        if let Some(e) = failed {
            c.errors += 1;
            c.first_error.get_or_insert(e);
        }
        match &mut total {
            Some(t) => t.merge(c),
            None => total = Some(c),
        }
    }
    Ok((
        total.ok_or_else(|| PerfError::Config("no producers".into()))?,
        start,
    ))
}

/// `produce`: async publish; latency = intended send to PubAck.
pub async fn produce(args: &Args, report: &mut Report) -> Result<()> {
    ensure_stream(&context(args).await?, args).await?;
    let (c, start) = run_producers(args, false).await?;
    report.records = c.ok;
    report.bytes = c.ok * args.record_size as u64;
    report.seconds = c.last.unwrap_or(start).duration_since(start).as_secs_f64();
    report.errors = c.errors;
    report.latency = c.latency;
    if let Some(e) = c.first_error {
        report.extra.insert("first_error".into(), e.into());
    }
    Ok(())
}

async fn read_loop(
    args: &Args,
    report: &mut Report,
    policy: consumer::DeliverPolicy,
    stamped: bool,
    start_producers: impl FnOnce() -> tokio::task::JoinHandle<Result<(Collected, Instant)>>,
) -> Result<Option<tokio::task::JoinHandle<Result<(Collected, Instant)>>>> {
    let js = context(args).await?;
    let stream = ensure_stream(&js, args).await?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: policy,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .map_err(nats_err)?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(10_000)
        .messages()
        .await
        .map_err(nats_err)?;
    let producers = stamped.then(start_producers);
    let start = Instant::now();
    let deadline = start + args.time_limit() + if stamped { IDLE_END } else { Duration::ZERO };
    let mut last = start;
    let mut poll_start = start;
    while report.records < args.records {
        let now = Instant::now();
        let done = producers.as_ref().is_none_or(|p| p.is_finished());
        if now >= deadline || (now.duration_since(last) >= IDLE_END && done) {
            break;
        }
        let next = tokio::time::timeout(Duration::from_millis(100), messages.next()).await;
        let m = match next {
            Err(_) => continue,
            Ok(None) => break,
            Ok(Some(m)) => m.map_err(nats_err)?,
        };
        last = Instant::now();
        let v = &m.payload;
        if stamped {
            if let Some(s) = stamp::read(v) {
                record(&mut report.latency, stamp::age_micros(s, last));
            }
        } else if report.records.is_multiple_of(10_000) {
            // Messages arrive one by one: sample the wait per 10,000 (a "poll") instead.
            record(
                &mut report.latency,
                last.duration_since(poll_start).as_micros() as u64,
            );
            poll_start = last;
        }
        report.records += 1;
        report.bytes += v.len() as u64;
    }
    report.seconds = last.duration_since(start).as_secs_f64();
    Ok(producers)
}

/// `consume`: a pull consumer from the first message, without acks.
pub async fn consume(args: &Args, report: &mut Report) -> Result<()> {
    read_loop(args, report, consumer::DeliverPolicy::All, false, || {
        tokio::spawn(async { Err(PerfError::Config("unused".into())) })
    })
    .await?;
    Ok(())
}

/// `end-to-end`: a fresh stream, a pull consumer of new messages, paced stamped publishes.
pub async fn end_to_end(args: &Args, report: &mut Report) -> Result<()> {
    let js = context(args).await?;
    // A fresh stream, so the consumer sees only this run's messages.
    let _ = js.delete_stream(stream_name(&args.topic)).await;
    let args2 = args.clone();
    let producers = read_loop(
        args,
        report,
        consumer::DeliverPolicy::New,
        true,
        move || tokio::spawn(async move { run_producers(&args2, true).await }),
    )
    .await?;
    if let Some(p) = producers {
        let (acks, _) = p.await.map_err(nats_err)??;
        report.errors = acks.errors;
        report.extra.insert(
            "produce_p99_ms".into(),
            (acks.latency.value_at_quantile(0.99) as f64 / 1000.0).into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_sanitised() {
        assert_eq!(stream_name("w1.bench x"), "w1_bench_x");
        assert_eq!(stream_name("ok-name_1"), "ok-name_1");
    }
}
