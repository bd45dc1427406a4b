//! Producer, consumer and admin against a real broker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{client_config, Broker};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{FramedRead, FramedWrite};
use weir_client::admin::{NewTopic, OffsetSpec};
use weir_client::{
    Acks, Admin, Compression, Consumer, ConsumerConfig, ConsumerRecord, Error, OffsetReset,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use weir_protocol::native::v1::response_envelope::Body;
use weir_protocol::native::{ClientCodec, ServerCodec};

async fn create(addr: &str, name: &str, partitions: i32) {
    Admin::new(client_config(addr))
        .unwrap()
        .create_topic(NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        })
        .await
        .unwrap();
}

/// Polls until `n` records arrived (bounded by count and time).
async fn read_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::new();
    for _ in 0..200 {
        if out.len() >= n {
            break;
        }
        out.extend(consumer.poll(Duration::from_millis(100)).await.unwrap());
    }
    out
}

/// A consumer of every partition of `topic`, from the beginning.
async fn from_the_beginning(addr: &str, topic: &str) -> Consumer {
    let mut c = Consumer::new(
        client_config(addr),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    let tps = c.assign_topic(topic).await.unwrap();
    c.seek_to_beginning(&tps).unwrap();
    c
}

async fn consume_all(addr: &str, topic: &str, n: usize) -> Vec<ConsumerRecord> {
    let mut c = from_the_beginning(addr, topic).await;
    let mut got = read_n(&mut c, n).await;
    // Nothing beyond n.
    got.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    got.sort_by_key(|r| (r.partition, r.offset));
    got
}

/// `consume_all` through `poll_each`: each visited view is checked against the owned
/// record it makes.
async fn consume_all_each(addr: &str, topic: &str, n: usize) -> Vec<ConsumerRecord> {
    let mut c = from_the_beginning(addr, topic).await;
    let mut got: Vec<ConsumerRecord> = Vec::new();
    let visit = |got: &mut Vec<ConsumerRecord>, v: &weir_client::RecordView<'_>| {
        let r = v.to_record();
        assert_eq!(
            (v.topic(), v.partition(), v.offset()),
            (&*r.topic, r.partition, r.offset)
        );
        assert_eq!(v.timestamp(), r.timestamp);
        assert_eq!((v.key(), v.value()), (r.key.as_deref(), r.value.as_deref()));
        let headers: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|h| (h.key.as_bytes(), h.value.as_deref()))
            .collect();
        assert_eq!(v.headers(), headers);
        got.push(r);
    };
    for _ in 0..200 {
        let before = got.len();
        if before >= n {
            break;
        }
        let visited = c
            .poll_each(Duration::from_millis(100), |v| visit(&mut got, v))
            .await
            .unwrap();
        assert_eq!(got.len() - before, visited);
    }
    c.poll_each(Duration::from_millis(200), |v| visit(&mut got, v))
        .await
        .unwrap();
    got.sort_by_key(|r| (r.partition, r.offset));
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips() {
    let broker = Broker::start();
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = format!("codec-{}", codec.name());
        create(&broker.addr, &topic, 3).await;
        let producer = Producer::new(
            client_config(&broker.addr),
            ProducerConfig {
                compression: codec,
                linger: Duration::from_millis(2),
                batch_size: 16 << 10,
                ..ProducerConfig::default()
            },
        )
        .await
        .unwrap();
        let mut futures = Vec::new();
        for i in 0..2000u32 {
            let value = format!("value {i} {}", "x".repeat((i % 50) as usize));
            let r = ProducerRecord::new(topic.clone(), value)
                .with_key(format!("k{}", i % 37))
                .with_header("i", i.to_string());
            futures.push(producer.enqueue(r).await.unwrap());
        }
        producer.flush().await;
        for f in futures {
            f.await.unwrap();
        }
        let got = consume_all(&broker.addr, &topic, 2000).await;
        assert_eq!(got.len(), 2000, "{codec:?}");
        // The borrowing poll sees exactly the same records.
        assert_eq!(consume_all_each(&broker.addr, &topic, 2000).await, got);
        let mut seen = vec![false; 2000];
        for r in &got {
            let i: usize = std::str::from_utf8(&r.headers[0].value.clone().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            let want = format!("value {i} {}", "x".repeat(i % 50));
            assert_eq!(r.value.as_deref(), Some(want.as_bytes()), "{codec:?}");
            assert_eq!(r.key.as_deref(), Some(format!("k{}", i % 37).as_bytes()));
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
        producer.close().await;
    }
}

/// A TCP proxy in front of the broker that rewrites metadata to point at itself and,
/// while `drop_produce_responses` > 0, swallows a produce response and cuts the
/// connection: the broker appended, the producer never hears about it.
async fn lossy_proxy(broker: String, drop_produce_responses: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = TcpStream::connect(&broker).await.unwrap();
            let (mut up_r, up_w) = upstream.into_split();
            let (cl_r, mut cl_w) = client.into_split();
            let _ = (&mut up_r, &mut cl_w);
            let mut requests_in = cl_r;
            let mut requests_out = up_w;
            let forward = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut requests_in, &mut requests_out).await;
            });
            let drop_count = drop_produce_responses.clone();
            let port = local.port();
            tokio::spawn(async move {
                let mut responses = FramedRead::new(up_r, ClientCodec::default());
                let mut sink = FramedWrite::new(cl_w, ServerCodec::default());
                while let Some(Ok(mut env)) = responses.next().await {
                    match &mut env.body {
                        Some(Body::Metadata(m)) => {
                            for b in &mut m.brokers {
                                b.host = "127.0.0.1".into();
                                b.port = i32::from(port);
                            }
                        }
                        Some(Body::Produce(_)) => {
                            let left = drop_count.load(Ordering::SeqCst);
                            if left > 0 {
                                drop_count.store(left - 1, Ordering::SeqCst);
                                forward.abort();
                                return; // drops both halves: connection closed
                            }
                        }
                        _ => {}
                    }
                    if sink.send(env).await.is_err() {
                        break;
                    }
                }
                forward.abort();
            });
        }
    });
    local.to_string()
}

async fn produce_through_lossy_proxy(idempotence: bool) -> (Vec<i64>, usize) {
    let broker = Broker::start();
    let topic = "lossy";
    create(&broker.addr, topic, 1).await;
    let drops = Arc::new(AtomicUsize::new(1));
    let proxy = lossy_proxy(broker.addr.clone(), drops.clone()).await;
    let producer = Producer::new(
        client_config(&proxy),
        ProducerConfig {
            idempotence,
            acks: Acks::All,
            // flush() sends: the 10 records form exactly one batch however slow the box.
            linger: Duration::from_secs(30),
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..10 {
        futures.push(
            producer
                .enqueue(ProducerRecord::new(topic, format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    producer.flush().await;
    let mut offsets = Vec::new();
    for f in futures {
        offsets.push(f.await.unwrap().offset);
    }
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the proxy swallowed a response"
    );
    producer.close().await;
    let expected = if idempotence { 10 } else { 20 };
    let stored = consume_all(&broker.addr, topic, expected).await.len();
    (offsets, stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_after_lost_response_does_not_duplicate() {
    let (offsets, stored) = produce_through_lossy_proxy(true).await;
    assert_eq!(
        offsets,
        (0..10).collect::<Vec<i64>>(),
        "original offsets returned"
    );
    assert_eq!(stored, 10, "no duplicate appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idempotence_the_same_loss_duplicates() {
    // The control experiment: proves the proxy really loses an appended response.
    let (offsets, stored) = produce_through_lossy_proxy(false).await;
    assert_eq!(offsets, (10..20).collect::<Vec<i64>>());
    assert_eq!(stored, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeks_resets_and_admin_offsets() {
    let broker = Broker::start();
    let a = &broker.addr;
    create(a, "seek", 1).await;
    let producer = Producer::new(client_config(a), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..100i64 {
        let mut r = ProducerRecord::new("seek", format!("v{i}"));
        r.timestamp = Some(1_000_000 + i * 10);
        r.key = if i % 2 == 0 {
            None
        } else {
            Some(Bytes::from("k"))
        };
        r.partition = Some(0);
        producer.enqueue(r).await.unwrap();
    }
    producer.flush().await;
    let admin = Admin::new(client_config(a)).unwrap();
    assert_eq!(
        admin
            .list_offsets("seek", &[], OffsetSpec::Latest)
            .await
            .unwrap()[&0],
        100
    );
    // The exact record, as Kafka answers, even though all 100 records share a few batches.
    let at = admin
        .list_offsets("seek", &[0], OffsetSpec::Timestamp(1_000_500))
        .await
        .unwrap()[&0];
    assert_eq!(at, 50);
    let between = admin
        .list_offsets("seek", &[0], OffsetSpec::Timestamp(1_000_501))
        .await
        .unwrap()[&0];
    assert_eq!(between, 51);

    let tp = TopicPartition::new("seek", 0);
    let mut c = Consumer::new(
        client_config(a),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Error,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    c.assign([&tp]).await.unwrap();
    c.seek(&tp, 42).unwrap();
    let got = read_n(&mut c, 58).await;
    assert_eq!(
        got.first().map(|r| r.offset),
        Some(42),
        "records below the seek are skipped"
    );
    assert_eq!(got.len(), 58);
    assert_eq!(got[0].value.as_deref(), Some(&b"v42"[..]));

    c.seek_to_timestamp([&tp], 1_000_905).unwrap();
    let got = read_n(&mut c, 9).await;
    assert_eq!(got.first().map(|r| r.offset), Some(91));

    c.seek_to_end([&tp]).unwrap();
    assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());

    // Delete the first 30, then ask for offset 10: policy "error" reports it.
    let lw = admin.delete_records("seek", &[(0, 30)]).await.unwrap();
    assert_eq!(lw[&0], 30);
    c.seek(&tp, 10).unwrap();
    let mut err = None;
    for _ in 0..50 {
        match c.poll(Duration::from_millis(100)).await {
            Err(e) => {
                err = Some(e);
                break;
            }
            Ok(r) => assert!(r.is_empty()),
        }
    }
    assert!(
        matches!(err, Some(Error::OffsetOutOfRange { offset: 10, .. })),
        "{err:?}"
    );

    // Policy "earliest" resets to the new log start instead.
    let mut c2 = Consumer::new(
        client_config(a),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    c2.assign([&tp]).await.unwrap();
    c2.seek(&tp, 5).unwrap();
    let got = read_n(&mut c2, 70).await;
    assert_eq!(got.first().map(|r| r.offset), Some(30));
    assert_eq!(got.len(), 70);

    let d = admin.describe_topic("seek").await.unwrap();
    assert_eq!(d.partitions[0].log_start_offset, 30);
    assert_eq!(d.partitions[0].high_watermark, 100);
    assert_eq!(d.partitions[0].log_end_offset, 100);
    assert!(d.partitions[0].size_bytes.is_some_and(|b| b > 0), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_errors_are_clear() {
    let broker = Broker::start();
    let producer = Producer::new(client_config(&broker.addr), ProducerConfig::default())
        .await
        .unwrap();
    let e = producer
        .send(ProducerRecord::new("missing-topic", "x"))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::UnknownTopic(_)), "{e}");
    assert!(e.to_string().contains("weir topic create"));
    create(&broker.addr, "small", 2).await;
    let e = producer
        .send(ProducerRecord::new("small", "x").with_partition(5))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::UnknownPartition { count: 2, .. }), "{e}");
    let m = producer
        .send(ProducerRecord::new("small", "x").with_partition(1))
        .await
        .unwrap();
    assert_eq!((m.partition, m.offset), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_buffer_applies_backpressure_and_acks_zero_delivers() {
    let broker = Broker::start();
    create(&broker.addr, "bp", 2).await;
    // 32 KiB of buffer for ~1.3 MB of records: enqueue must wait for acknowledgements
    // instead of growing, and still deliver everything.
    let producer = Producer::new(
        client_config(&broker.addr),
        ProducerConfig {
            buffer_memory: 32 << 10,
            batch_size: 8 << 10,
            linger: Duration::from_millis(1),
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..10_000u32 {
        let r = ProducerRecord::new("bp", vec![b'v'; 100]).with_key(i.to_string());
        futures.push(producer.enqueue(r).await.unwrap());
    }
    producer.flush().await;
    for f in futures {
        f.await.unwrap();
    }
    producer.close().await;

    let fire_and_forget = Producer::new(
        client_config(&broker.addr),
        ProducerConfig {
            acks: Acks::None,
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    for _ in 0..100 {
        let m = fire_and_forget
            .enqueue(ProducerRecord::new("bp", "z").with_partition(0))
            .await
            .unwrap();
        drop(m);
    }
    fire_and_forget.flush().await;
    fire_and_forget.close().await;
    let got = consume_all(&broker.addr, "bp", 10_100).await;
    assert_eq!(got.len(), 10_100);
}

struct LastPartition;

impl weir_client::partitioner::Partitioner for LastPartition {
    fn partition(&self, _: &str, _: Option<&[u8]>, _: usize, partition_count: i32) -> i32 {
        partition_count - 1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_partitioner_is_used() {
    let broker = Broker::start();
    create(&broker.addr, "custom", 3).await;
    let producer = Producer::new(
        client_config(&broker.addr),
        ProducerConfig {
            partitioner: Some(Arc::new(LastPartition)),
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    for i in 0..20 {
        let m = producer
            .send(ProducerRecord::new("custom", "v").with_key(format!("k{i}")))
            .await
            .unwrap();
        assert_eq!((m.partition, m.offset), (2, i));
    }
    producer.close().await;
}

/// Prefetching stops at `max_buffered_bytes`: after a long pause without `poll`, one poll
/// (which drains everything buffered) returns about that much, not the whole backlog; the
/// rest still arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_is_bounded_by_max_buffered_bytes() {
    let broker = Broker::start();
    create(&broker.addr, "big", 1).await;
    let producer = Producer::new(
        client_config(&broker.addr),
        ProducerConfig {
            batch_size: 8 << 10,
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    let total = 10_000;
    let mut futures = Vec::with_capacity(total);
    for i in 0..total {
        let value = format!("{i:0>100}");
        futures.push(
            producer
                .enqueue(ProducerRecord::new("big", value))
                .await
                .unwrap(),
        );
    }
    producer.flush().await;
    for f in futures {
        f.await.unwrap();
    }
    let mut c = Consumer::new(
        client_config(&broker.addr),
        ConsumerConfig {
            max_buffered_bytes: 64 << 10,
            fetch_max_bytes: 64 << 10,
            partition_max_bytes: 16 << 10,
            fetch_max_wait: Duration::from_millis(50),
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    c.set_max_poll_records(usize::MAX);
    let tps = c.assign_topic("big").await.unwrap();
    c.seek_to_beginning(&tps).unwrap();
    let mut got = c.poll(Duration::from_secs(5)).await.unwrap();
    // Plenty of time to prefetch everything if nothing held it back.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let burst = c.poll(Duration::from_secs(5)).await.unwrap();
    // 64 KiB of ~130-byte records is ~500; allow one extra fetch of slack.
    assert!(
        burst.len() < 1_500,
        "{} of {total} records were buffered",
        burst.len()
    );
    got.extend(burst);
    got.extend(read_n(&mut c, total - got.len()).await);
    assert_eq!(got.len(), total);
    assert!(got.iter().enumerate().all(|(i, r)| r.offset == i as i64));
}

/// Issue 11, defect 7: a flush cut short (here by a timeout while the broker is frozen)
/// must not leave the producer in "flushing" mode, which silently disables `linger`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_flush_does_not_disable_linger() {
    let broker = Broker::start();
    let a = broker.addr.clone();
    create(&a, "fl", 1).await;
    let producer = Producer::new(
        client_config(&a),
        ProducerConfig {
            linger: Duration::from_secs(3600),
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    // Warm up: metadata and producer id are in place before the broker freezes.
    let warm = producer
        .enqueue(ProducerRecord::new("fl", "warm"))
        .await
        .unwrap();
    producer.flush().await;
    warm.await.unwrap();

    broker.signal("STOP");
    let a_rec = producer
        .enqueue(ProducerRecord::new("fl", "a"))
        .await
        .unwrap();
    // flush_timeout drops the inner flush when its time is up: a cancelled flush.
    let cut = producer.flush_timeout(Duration::from_millis(200)).await;
    broker.signal("CONT");
    assert!(
        matches!(
            cut,
            Err(Error::FlushTimeout {
                pending_batches: 1,
                ..
            })
        ),
        "a frozen broker cannot acknowledge: {cut:?}"
    );
    tokio::time::timeout(Duration::from_secs(30), a_rec)
        .await
        .expect("the flushed record is acknowledged once the broker runs again")
        .unwrap();

    // Linger (an hour) holds the next record until a flush asks for it.
    let b_rec = producer
        .enqueue(ProducerRecord::new("fl", "b"))
        .await
        .unwrap();
    tokio::pin!(b_rec);
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), &mut b_rec)
            .await
            .is_err(),
        "sent without a flush: the cancelled flush left linger disabled"
    );
    producer.flush().await;
    b_rec.await.unwrap();
}

/// Issue 17: `Consumer::stream()` yields every record once, in order, and a dropped or
/// cancelled stream loses nothing it did not yield; positions count only yielded records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_or_cancelled_stream_loses_nothing() {
    let broker = Broker::start();
    let a = broker.addr.clone();
    create(&a, "st", 1).await;
    let producer = Producer::new(client_config(&a), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..20 {
        producer
            .enqueue(ProducerRecord::new("st", format!("v{i}")))
            .await
            .unwrap();
    }
    producer.flush().await;
    let mut c = Consumer::new(
        client_config(&a),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    let tps = c.assign_topic("st").await.unwrap();
    c.seek_to_beginning(&tps).unwrap();
    let mut got = Vec::new();
    {
        let mut s = c.stream();
        while got.len() < 5 {
            got.push(s.next().await.unwrap().unwrap().offset);
        }
    }
    // One fetch brought all 20; 15 wait unread, so the position is right after the 5th.
    assert_eq!(c.position(TopicPartition::new("st", 0)), Some(5));
    while got.len() < 20 {
        let mut s = c.stream();
        // A next() cut short by a timeout, as in a select! loop, loses nothing.
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(1), s.next()).await {
            got.push(r.unwrap().unwrap().offset);
        }
    }
    assert_eq!(got, (0..20).collect::<Vec<i64>>());
    let rest = c.poll(Duration::from_millis(200)).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");

    // Records a dropped stream left decoded are visited by poll_each too, first.
    c.seek_to_beginning(&tps).unwrap();
    let mut again = Vec::new();
    {
        let mut s = c.stream();
        while again.len() < 5 {
            again.push(s.next().await.unwrap().unwrap().offset);
        }
    }
    for _ in 0..50 {
        if again.len() >= 20 {
            break;
        }
        c.poll_each(Duration::from_millis(100), |v| again.push(v.offset()))
            .await
            .unwrap();
    }
    assert_eq!(again, (0..20).collect::<Vec<i64>>());
}

/// Issue 17: backpressure when buffer memory is used up (the broker is frozen, so nothing
/// frees it): fail at once, or fail after `max_block`; blocking without a bound stays the
/// default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_fails_at_once_or_after_max_block_as_configured() {
    use weir_client::BufferFull;
    let broker = Broker::start();
    let a = broker.addr.clone();
    create(&a, "bp", 1).await;
    let make = |buffer_full, max_block| {
        Producer::new(
            client_config(&a),
            ProducerConfig {
                buffer_memory: 4096,
                batch_size: 1024,
                linger: Duration::ZERO,
                buffer_full,
                max_block,
                ..ProducerConfig::default()
            },
        )
    };
    let fail = make(BufferFull::Fail, None).await.unwrap();
    let block = make(BufferFull::Block, Some(Duration::from_millis(300)))
        .await
        .unwrap();
    for p in [&fail, &block] {
        p.send(ProducerRecord::new("bp", "warm")).await.unwrap();
    }
    broker.signal("STOP");
    let e = fill(&fail).await;
    assert!(matches!(e, Error::BufferFull { waited_ms: 0, .. }), "{e}");
    let e = fill(&block).await;
    assert!(matches!(e, Error::BufferFull { waited_ms: 300, .. }), "{e}");
    broker.signal("CONT");
    fail.flush().await;
    block.flush().await;
}

/// Enqueues 1000-byte records until one fails; returns that error.
async fn fill(p: &Producer) -> Error {
    for _ in 0..100 {
        if let Err(e) = p.enqueue(ProducerRecord::new("bp", vec![b'x'; 1000])).await {
            return e;
        }
    }
    panic!("100 KB went into a 4 KB buffer");
}

/// Issue 17: with acks=0 (no responses) buffer memory still bounds what is queued: against
/// a frozen broker the sends hit the limit instead of queueing without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_stays_within_buffer_memory() {
    use weir_client::BufferFull;
    let broker = Broker::start();
    let a = broker.addr.clone();
    create(&a, "a0", 1).await;
    let p = Producer::new(
        client_config(&a),
        ProducerConfig {
            acks: Acks::None,
            buffer_memory: 64 << 10,
            batch_size: 16 << 10,
            linger: Duration::ZERO,
            // Waits for the sender to free memory, so only memory that is never freed
            // (bytes the frozen broker does not read) can make a send fail.
            buffer_full: BufferFull::Block,
            max_block: Some(Duration::from_secs(2)),
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    p.send(ProducerRecord::new("a0", "warm")).await.unwrap();
    broker.signal("STOP");
    // Far more than the socket buffers can take while the broker does not read.
    let mut full = None;
    for _ in 0..30_000 {
        match p.enqueue(ProducerRecord::new("a0", vec![b'x'; 1000])).await {
            Ok(_) => {}
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    broker.signal("CONT");
    assert!(
        matches!(full, Some(Error::BufferFull { .. })),
        "30 MB queued for a frozen broker: {full:?}"
    );
}

/// Calls written for the old `(String, i32)` partitions still compile (never run).
#[allow(dead_code)]
async fn tuple_partitions_still_compile(c: &mut Consumer) -> weir_client::Result<()> {
    let tp = ("t".to_string(), 0);
    c.assign(&[("t".to_string(), 1)]).await?;
    c.assign(vec![("t", 0), ("t", 1)]).await?;
    c.seek(&tp, 5)?;
    c.seek(("t", 1), 5)?;
    c.seek_to_beginning(std::slice::from_ref(&tp))?;
    let _: Option<i64> = c.position(&tp);
    let _: (String, i32) = c.assignment().remove(0).into();
    Ok(())
}
