//! Test harness: runs the real `weir-broker` binary on 127.0.0.1 with a free port and a
//! temp data dir, and talks to it over TCP with the native codec.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use weir_protocol::native::v1::{self, RequestEnvelope, ResponseEnvelope};
use weir_protocol::native::{ClientCodec, Request};

/// A running broker process; killed (by PID) when dropped.
pub struct Broker {
    child: Option<Child>,
    pub dir: PathBuf,
    pub addr: String,
    /// The Kafka listener's bound address (a free port unless the test chose one).
    pub kafka_addr: String,
}

impl Broker {
    /// Starts a broker on `dir` with extra flags (e.g. `--config FILE`).
    pub fn start(dir: &Path, extra: &[&str]) -> Broker {
        let mut broker = Broker::spawn(dir, extra);
        broker.wait_ready(Duration::from_secs(20));
        broker
    }

    /// Starts a broker without waiting for it to serve (cluster members wait for each
    /// other); [`Broker::wait_ready`] waits.
    pub fn spawn(dir: &Path, extra: &[&str]) -> Broker {
        let _ = std::fs::remove_file(dir.join("broker.addr"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir-broker"));
        cmd.arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"]);
        if !extra.contains(&"--metrics-listen") {
            cmd.args(["--metrics-listen", "127.0.0.1:0"]);
        }
        if !extra.contains(&"--kafka-listen") {
            cmd.args(["--kafka-listen", "127.0.0.1:0"]);
        }
        let child = cmd
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn weir-broker");
        Broker {
            child: Some(child),
            dir: dir.to_path_buf(),
            addr: String::new(),
            kafka_addr: String::new(),
        }
    }

    /// Waits (bounded) until the broker writes its address file, i.e. serves.
    pub fn wait_ready(&mut self, within: Duration) {
        if let Err(e) = self.try_wait_ready(within) {
            panic!("{e}");
        }
    }

    /// `wait_ready`, but an early exit is an `Err` (a port picked in advance may have been
    /// taken by another process meanwhile; the caller can pick others and retry).
    pub fn try_wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let addr_file = self.dir.join("broker.addr");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(a) = std::fs::read_to_string(&addr_file) {
                if !a.is_empty() {
                    self.addr = a;
                    self.kafka_addr =
                        std::fs::read_to_string(self.dir.join("kafka.addr")).unwrap_or_default();
                    return Ok(());
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!("broker exited early: {status}"));
            }
            assert!(Instant::now() < deadline, "broker did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGKILL, no cleanup.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM without waiting (graceful shutdown starts; `Drop` still reaps it).
    pub fn terminate(&self) {
        let pid = self.child.as_ref().unwrap().id();
        // SAFETY: sending a signal to our own child's PID.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }

    /// SIGTERM and wait for exit; returns whether it exited successfully.
    pub fn stop(mut self) -> bool {
        let mut c = self.child.take().unwrap();
        // SAFETY: sending a signal to our own child's PID.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.addr).await
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A native-protocol connection.
pub struct Client {
    pub framed: Framed<TcpStream, ClientCodec>,
    next_id: i32,
}

impl Client {
    pub async fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).unwrap();
        Client {
            framed: Framed::new(s, ClientCodec::default()),
            next_id: 1,
        }
    }

    pub async fn send_envelope(&mut self, env: RequestEnvelope) {
        self.framed.send(env).await.expect("send");
    }

    pub async fn recv(&mut self) -> ResponseEnvelope {
        tokio::time::timeout(Duration::from_secs(30), self.framed.next())
            .await
            .expect("response timeout")
            .expect("connection closed")
            .expect("decode response")
    }

    pub async fn send<R: Request>(&mut self, req: R) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        self.send_envelope(RequestEnvelope::new(id, "test", req))
            .await;
        id
    }

    /// Sends and waits for the typed response.
    pub async fn call<R: Request>(&mut self, req: R) -> R::Response
    where
        R::Response: std::fmt::Debug,
    {
        let id = self.send(req).await;
        let resp = self.recv().await;
        assert_eq!(resp.correlation_id, id);
        assert_eq!(resp.error_code, 0, "envelope error: {}", resp.error_message);
        R::response_from(resp.body.expect("body")).expect("matching response type")
    }

    /// Whether the broker closed the connection (EOF or reset) within a bounded wait.
    pub async fn is_closed_by_peer(&mut self) -> bool {
        use tokio::io::AsyncReadExt;
        let stream = self.framed.get_mut();
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    pub async fn write_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        let _ = self.framed.get_mut().write_all(bytes).await;
    }

    // ---- convenience wrappers

    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> v1::CreatableTopicResult {
        self.create_topic_rf(name, partitions, -1, configs).await
    }

    pub async fn create_topic_rf(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        configs: &[(&str, &str)],
    ) -> v1::CreatableTopicResult {
        let r = self
            .call(v1::CreateTopicsRequest {
                topics: vec![v1::CreatableTopic {
                    name: name.into(),
                    num_partitions: partitions,
                    replication_factor,
                    configs: configs
                        .iter()
                        .map(|(k, v)| v1::ConfigEntry {
                            name: (*k).into(),
                            value: (*v).into(),
                        })
                        .collect(),
                }],
                timeout_ms: 5000,
                validate_only: false,
            })
            .await;
        r.topics.into_iter().next().unwrap()
    }

    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: Bytes,
    ) -> v1::PartitionProduceResponse {
        let r = self.call(produce_req(topic, partition, records, -1)).await;
        r.responses[0].partition_responses[0].clone()
    }

    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> v1::FetchPartitionData {
        let r = self
            .call(fetch_req(topic, partition, offset, max_wait_ms, min_bytes))
            .await;
        r.responses[0].partitions[0].clone()
    }

    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        ts: i64,
    ) -> v1::ListOffsetsPartitionResponse {
        let r = self
            .call(v1::ListOffsetsRequest {
                isolation_level: 0,
                topics: vec![v1::ListOffsetsTopic {
                    name: topic.into(),
                    partitions: vec![v1::ListOffsetsPartition {
                        partition_index: partition,
                        current_leader_epoch: None,
                        timestamp: ts,
                    }],
                }],
            })
            .await;
        r.topics[0].partitions[0]
    }
}

/// An OffsetCommit of `offset` for partition `partition` of `topic`; generation -1 and an
/// empty member id make it a standalone commit (no group membership).
pub fn offset_commit_req(
    group: &str,
    generation_id: i32,
    member_id: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> v1::OffsetCommitRequest {
    v1::OffsetCommitRequest {
        group_id: group.into(),
        generation_id,
        member_id: member_id.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![v1::OffsetCommitTopic {
            name: topic.into(),
            partitions: vec![v1::OffsetCommitPartition {
                partition_index: partition,
                committed_offset: offset,
                committed_leader_epoch: None,
                committed_metadata: None,
            }],
        }],
    }
}

pub fn produce_req(topic: &str, partition: i32, records: Bytes, acks: i32) -> v1::ProduceRequest {
    v1::ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 5000,
        topic_data: vec![v1::TopicProduceData {
            name: topic.into(),
            partition_data: vec![v1::PartitionProduceData {
                index: partition,
                records,
            }],
        }],
    }
}

pub fn fetch_req(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
) -> v1::FetchRequest {
    v1::FetchRequest {
        replica_id: None,
        max_wait_ms,
        min_bytes,
        max_bytes: 50 * 1024 * 1024,
        isolation_level: 0,
        topics: vec![v1::FetchTopic {
            topic: topic.into(),
            partitions: vec![v1::FetchPartition {
                partition,
                current_leader_epoch: None,
                fetch_offset: offset,
                partition_max_bytes: 10 * 1024 * 1024,
            }],
        }],
    }
}

// ---- a minimal RecordBatch v2 writer/reader for tests (uncompressed)

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

fn get_varint(buf: &[u8], pos: &mut usize) -> i64 {
    let mut z = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// One uncompressed batch of `values` (no keys), CreateTime `ts`.
pub fn batch(values: &[&[u8]], ts: i64) -> Bytes {
    let mut records = BytesMut::new();
    for (i, v) in values.iter().enumerate() {
        let mut r = BytesMut::new();
        r.put_u8(0); // attributes
        put_varint(&mut r, 0); // timestamp delta
        put_varint(&mut r, i as i64); // offset delta
        put_varint(&mut r, -1); // null key
        put_varint(&mut r, v.len() as i64);
        r.put_slice(v);
        put_varint(&mut r, 0); // headers
        put_varint(&mut records, r.len() as i64);
        records.put_slice(&r);
    }
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32(0); // length, patched below
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0); // crc, patched below
    b.put_i16(0);
    b.put_i32(values.len() as i32 - 1);
    b.put_i64(ts);
    b.put_i64(ts);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(values.len() as i32);
    b.put_slice(&records);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// (offset, value) of every record in concatenated batches.
pub fn records(buf: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for item in weir_protocol::batch::BatchIter::new(buf, true) {
        let (h, bytes) = item.expect("valid batch from broker");
        let mut pos = 61;
        for _ in 0..h.records_count {
            let _len = get_varint(bytes, &mut pos);
            pos += 1; // attributes
            let _ts = get_varint(bytes, &mut pos);
            let od = get_varint(bytes, &mut pos);
            let kl = get_varint(bytes, &mut pos);
            if kl > 0 {
                pos += kl as usize;
            }
            let vl = get_varint(bytes, &mut pos);
            let v = bytes[pos..pos + vl as usize].to_vec();
            pos += vl as usize;
            let hc = get_varint(bytes, &mut pos);
            assert_eq!(hc, 0);
            out.push((h.base_offset + od, v));
        }
    }
    out
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("weir-e2e-")
        .tempdir()
        .unwrap()
}

/// A record as (key, value).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A batch built with the protocol crate's builder (keys, producer ids, compression).
pub fn built_batch(
    records: &[KeyValue<'_>],
    producer: Option<(i64, i16, i32)>,
    compression: weir_protocol::batch::Compression,
) -> Bytes {
    use weir_protocol::batch::{BatchBuilder, BatchOptions, NewRecord};
    let mut opts = BatchOptions::new(compression);
    if let Some((pid, epoch, seq)) = producer {
        opts.producer_id = pid;
        opts.producer_epoch = epoch;
        opts.base_sequence = seq;
    }
    let mut b = BatchBuilder::new(opts);
    for (k, v) in records {
        b.push(&NewRecord::new(1000, *k, *v)).unwrap();
    }
    Bytes::from(b.build().unwrap())
}

/// A port that was free a moment ago (for the metrics listener, whose address the
/// broker does not report).
pub fn free_port_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", l.local_addr().unwrap().port())
}

/// The value of a counter in the broker's Prometheus text, waiting (bounded) until
/// `ready` holds for the text.
pub async fn metrics_text(addr: &str, ready: impl Fn(&str) -> bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut body = String::new();
    for _ in 0..100 {
        if let Ok(mut s) = TcpStream::connect(addr).await {
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            body.clear();
            let _ = s.read_to_string(&mut body).await;
            if ready(&body) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    body
}

/// Waits (bounded) until exactly `n` fetches are parked in the broker's purgatory, so a
/// test knows a long poll is waiting before it acts.
pub async fn wait_parked_fetches(metrics_addr: &str, n: u32) {
    const GAUGE: &str = "weir_purgatory_size{kind=\"fetch\"}";
    let body = metrics_text(metrics_addr, |t| metric(t, GAUGE) == Some(f64::from(n))).await;
    assert_eq!(metric(&body, GAUGE), Some(f64::from(n)), "parked fetches");
}

/// A sample's value from Prometheus text.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Runs a command with a deadline; kills it (by its own PID) if it overruns.
pub fn run(cmd: &mut Command, stdin: &[u8], limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, stdin).unwrap();
    drop(input);
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish within {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
