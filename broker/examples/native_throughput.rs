//! Produce and fetch throughput of 100-byte records through the native protocol over
//! loopback, against an in-process broker on a temp dir. A measurement, not a test.
//!
//! ```text
//! cargo run --release -p weir-broker --example native_throughput -- [RECORDS] [FSYNC] [METRICS]
//! ```
//! RECORDS (default 2,000,000) bounds each run, as does a 20 s time limit. FSYNC = `every`
//! uses the shipped default (fsync per append, flush_messages = 1); anything else leaves
//! flushing to the OS (Kafka's default). METRICS = `off` runs with `[metrics] enabled =
//! false` (to measure what metrics cost).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use weir_broker::config::{Config, Overrides};
use weir_protocol::batch::BatchIter;
use weir_protocol::native::v1::{self, response_envelope::Body, RequestEnvelope};
use weir_protocol::native::ClientCodec;

const RECORD_BYTES: usize = 100;
const RECORDS_PER_BATCH: usize = 100;
const WINDOW: usize = 32;
const TIME_LIMIT: Duration = Duration::from_secs(20);

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            buf.put_u8(b);
            return;
        }
        buf.put_u8(b | 0x80);
    }
}

/// One uncompressed RecordBatch v2 of `n` keyless 100-byte records.
fn batch(n: usize) -> Bytes {
    let value = [b'w'; RECORD_BYTES];
    let mut records = BytesMut::new();
    for i in 0..n {
        let mut r = BytesMut::new();
        r.put_u8(0);
        put_varint(&mut r, 0);
        put_varint(&mut r, i as i64);
        put_varint(&mut r, -1);
        put_varint(&mut r, RECORD_BYTES as i64);
        r.put_slice(&value);
        put_varint(&mut r, 0);
        put_varint(&mut records, r.len() as i64);
        records.put_slice(&r);
    }
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32(0);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(n as i32 - 1);
    b.put_i64(1);
    b.put_i64(1);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(n as i32);
    b.put_slice(&records);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

async fn produce(addr: &str, topic: &str, partitions: i32, total: usize) -> (usize, Duration) {
    let mut c = Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        ClientCodec::default(),
    );
    let payload = batch(RECORDS_PER_BATCH);
    let start = Instant::now();
    let mut sent = 0usize;
    let mut acked = 0usize;
    let mut in_flight = VecDeque::new();
    let mut id = 0;
    while acked < total && start.elapsed() < TIME_LIMIT {
        while in_flight.len() < WINDOW && sent < total {
            // One request carries a batch for every partition.
            let req = v1::ProduceRequest {
                transactional_id: None,
                acks: 1,
                timeout_ms: 30_000,
                topic_data: vec![v1::TopicProduceData {
                    name: topic.into(),
                    partition_data: (0..partitions)
                        .map(|p| v1::PartitionProduceData {
                            index: p,
                            records: payload.clone(),
                        })
                        .collect(),
                }],
            };
            id += 1;
            c.feed(RequestEnvelope::new(id, "bench", req))
                .await
                .unwrap();
            in_flight.push_back(id);
            sent += RECORDS_PER_BATCH * partitions as usize;
        }
        c.flush().await.unwrap();
        let resp = c.next().await.unwrap().unwrap();
        assert_eq!(Some(resp.correlation_id), in_flight.pop_front());
        let Some(Body::Produce(p)) = resp.body else {
            panic!("produce failed")
        };
        for pr in &p.responses[0].partition_responses {
            assert_eq!(pr.error_code, 0, "{}", pr.error_message);
        }
        acked += RECORDS_PER_BATCH * partitions as usize;
    }
    (acked, start.elapsed())
}

async fn fetch(addr: &str, topic: &str, partitions: i32, total: usize) -> (usize, Duration) {
    let mut c = Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        ClientCodec::default(),
    );
    let mut offsets = vec![0i64; partitions as usize];
    let mut got = 0usize;
    let mut id = 0;
    let start = Instant::now();
    while got < total && start.elapsed() < TIME_LIMIT {
        let req = v1::FetchRequest {
            replica_id: None,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 8 * 1024 * 1024,
            isolation_level: 0,
            topics: vec![v1::FetchTopic {
                topic: topic.into(),
                partitions: (0..partitions)
                    .map(|p| v1::FetchPartition {
                        partition: p,
                        current_leader_epoch: None,
                        fetch_offset: offsets[p as usize],
                        partition_max_bytes: 1024 * 1024,
                    })
                    .collect(),
            }],
        };
        id += 1;
        c.send(RequestEnvelope::new(id, "bench", req))
            .await
            .unwrap();
        let resp = c.next().await.unwrap().unwrap();
        let Some(Body::Fetch(f)) = resp.body else {
            panic!("fetch failed")
        };
        for pd in &f.responses[0].partitions {
            assert_eq!(pd.error_code, 0);
            for item in BatchIter::new(&pd.records, false) {
                let (h, _) = item.unwrap();
                if h.base_offset >= offsets[pd.partition_index as usize] {
                    got += h.records_count as usize;
                }
                offsets[pd.partition_index as usize] = h.next_offset();
            }
        }
    }
    (got, start.elapsed())
}

fn report(what: &str, partitions: i32, records: usize, took: Duration) {
    let secs = took.as_secs_f64();
    let rps = records as f64 / secs;
    println!(
        "{what:<7} partitions={partitions} records={records} time={secs:.2}s  {rps:>10.0} records/s  {:>7.1} MB/s (values)",
        rps * RECORD_BYTES as f64 / 1e6
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let fsync_every = args.get(2).is_some_and(|s| s == "every");
    let metrics_on = args.get(3).is_none_or(|s| s != "off");
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nkafka_listen = \"\"\nmetrics_listen = \"127.0.0.1:0\"\n[log]\nflush_messages = {}\n[metrics]\nenabled = {metrics_on}\n",
        if fsync_every { 1 } else { i64::MAX }
    );
    let overrides = Overrides {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let config = Config::from_toml_str(&toml, &overrides).unwrap();
    let shutdown = CancellationToken::new();
    let broker = tokio::spawn(weir_broker::run(config, shutdown.clone()));
    let addr_file = dir.path().join(weir_broker::ADDR_FILE);
    let mut addr = String::new();
    for _ in 0..500 {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            addr = a;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "native protocol over loopback, {RECORD_BYTES}-byte records, {RECORDS_PER_BATCH} per batch, {WINDOW} requests in flight, fsync {}, metrics {}",
        if fsync_every { "every append" } else { "left to the OS" },
        if metrics_on { "on" } else { "off" }
    );
    for partitions in [1, 8] {
        let topic = format!("bench-{partitions}");
        let mut admin = Framed::new(
            TcpStream::connect(&addr).await.unwrap(),
            ClientCodec::default(),
        );
        let create = v1::CreateTopicsRequest {
            topics: vec![v1::CreatableTopic {
                name: topic.clone(),
                num_partitions: partitions,
                replication_factor: -1,
                configs: vec![],
            }],
            timeout_ms: 1000,
            validate_only: false,
        };
        admin
            .send(RequestEnvelope::new(1, "bench", create))
            .await
            .unwrap();
        admin.next().await.unwrap().unwrap();
        let (n, t) = produce(&addr, &topic, partitions, total).await;
        report("produce", partitions, n, t);
        let (n, t) = fetch(&addr, &topic, partitions, n).await;
        report("fetch", partitions, n, t);
    }
    shutdown.cancel();
    let _ = broker.await;
}
