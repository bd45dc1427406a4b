//! Producer and consumer throughput with 100-byte records.
//!
//! ```text
//! cargo build --release -p weir-broker -p weir-client --examples --bins
//! cargo run --release -p weir-client --example throughput -- [RECORDS] [BOOTSTRAP]
//! ```
//! `WEIR_PERF_TOPIC_CONFIG=k=v,k=v` adds topic configs (e.g. `flush.messages=...`).
//! Without BOOTSTRAP it starts `target/release/weir-broker` on a temp dir (killed at exit).
//! Scenarios: 1 and 8 partitions × acks=1 and acks=all, then one consumer reading the
//! 8-partition topic from the beginning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_client::admin::NewTopic;
use weir_client::{
    Acks, Admin, ClientConfig, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
    ProducerRecord,
};

// The TempDir is held so the data dir lives as long as the broker.
struct BrokerGuard(Child, #[allow(dead_code)] tempfile::TempDir);

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker() -> (BrokerGuard, String) {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("weir-broker");
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p weir-broker",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let addr_file = dir.path().join("broker.addr");
    for _ in 0..500 {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            if !a.is_empty() {
                return (BrokerGuard(child, dir), a.trim().to_owned());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("broker did not start");
}

async fn produce(addr: &str, topic: &str, records: usize, acks: Acks) -> f64 {
    let producer = Producer::new(
        ClientConfig::new(addr),
        ProducerConfig {
            acks,
            linger: Duration::from_millis(5),
            batch_size: 512 << 10,
            buffer_memory: 128 << 20,
            ..ProducerConfig::default()
        },
    )
    .await
    .unwrap();
    let value = Bytes::from(vec![b'x'; 100]);
    let start = Instant::now();
    let mut pending = VecDeque::new();
    for _ in 0..records {
        let r = ProducerRecord {
            topic: topic.to_owned(),
            value: Some(value.clone()),
            ..Default::default()
        };
        pending.push_back(producer.enqueue(r).await.unwrap());
        if pending.len() > 500_000 {
            pending.pop_front().unwrap().await.unwrap();
        }
    }
    producer.flush().await;
    for f in pending {
        f.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    producer.close().await;
    records as f64 / secs
}

async fn consume(addr: &str, topic: &str, records: usize) -> f64 {
    let mut c = Consumer::new(
        ClientConfig::new(addr),
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            partition_max_bytes: env_usize("WEIR_PERF_PARTITION_MAX_BYTES", 1 << 20),
            fetch_max_bytes: env_usize("WEIR_PERF_FETCH_MAX_BYTES", 8 << 20),
            ..ConsumerConfig::default()
        },
    )
    .unwrap();
    c.set_max_poll_records(100_000);
    let start = Instant::now();
    let tps = c.assign_topic(topic).await.unwrap();
    c.seek_to_beginning(&tps).unwrap();
    let mut n = 0;
    let mut bytes = 0usize;
    while n < records {
        let batch = c.poll(Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty(), "stalled at {n}");
        n += batch.len();
        bytes += batch
            .iter()
            .map(|r| r.value.as_ref().map_or(0, Bytes::len))
            .sum::<usize>();
    }
    assert!(bytes >= records * 100);
    n as f64 / start.elapsed().as_secs_f64()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map_or(2_000_000, |s| s.parse().unwrap());
    let (_guard, addr) = match args.next() {
        Some(a) => (None, a),
        None => {
            let (g, a) = start_broker();
            (Some(g), a)
        }
    };
    let admin = Admin::new(ClientConfig::new(&addr)).unwrap();
    // e.g. WEIR_PERF_TOPIC_CONFIG=flush.messages=9223372036854775807 (comma-separated)
    let topic_configs: Vec<(String, String)> = std::env::var("WEIR_PERF_TOPIC_CONFIG")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    println!("records per run: {records} x 100 B, topic configs {topic_configs:?}");
    for partitions in [1, 8] {
        for (acks, name) in [(Acks::Leader, "1"), (Acks::All, "all")] {
            let topic = format!("perf-p{partitions}-acks{name}");
            admin
                .create_topic(NewTopic {
                    name: topic.clone(),
                    partitions,
                    replication_factor: -1,
                    configs: topic_configs.clone(),
                })
                .await
                .unwrap();
            let rate = produce(&addr, &topic, records, acks).await;
            println!(
                "produce partitions={partitions} acks={name:<3}: {rate:>12.0} rec/s ({:.1} MB/s)",
                rate * 100.0 / 1e6
            );
        }
    }
    // Three reads of the same data: the first may pay for page-cache misses.
    for run in 1..=3 {
        let rate = consume(&addr, "perf-p8-acks1", records).await;
        println!(
            "consume partitions=8 run {run}    : {rate:>12.0} rec/s ({:.1} MB/s)",
            rate * 100.0 / 1e6
        );
    }
}
