//! End to end with a real Prometheus server (Debian package `prometheus`, installed by
//! ./test.sh): it scrapes the broker's /metrics with the scrape config from
//! configs/prometheus.yml, and consumer lag is read back through Prometheus's HTTP query
//! API while a group consumes and commits over native frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{batch, temp_dir, Broker, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const GROUP: &str = "lag-watchers";
const TOPIC: &str = "lagged";

/// A Prometheus process, killed by PID when dropped.
struct Prometheus {
    child: Child,
    addr: String,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, from configs/prometheus.yml.
    fn start(dir: &Path, target: &str) -> Prometheus {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} is missing: install the Debian package `prometheus` (./test.sh does)"
        );
        let shipped = include_str!("../../configs/prometheus.yml");
        assert!(shipped.contains("127.0.0.1:9293") && shipped.contains("scrape_interval: 15s"));
        let config = shipped
            .replace("127.0.0.1:9293", target)
            .replace("scrape_interval: 15s", "scrape_interval: 1s");
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr = common::free_port_addr();
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus");
        Prometheus { child, addr }
    }

    /// The value of the single series `query` selects, if Prometheus has one.
    async fn query_one(&self, query: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", percent_encode(query));
        let body = http_get(&self.addr, &path).await?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }

    /// Polls (bounded) until the query returns `want`; returns the last value seen.
    async fn wait_for(&mut self, query: &str, want: f64) -> Option<f64> {
        self.wait_until(query, |v| v == Some(want)).await
    }

    /// Polls (bounded) until the query returns any value.
    async fn wait_for_some(&mut self, query: &str) -> Option<f64> {
        self.wait_until(query, |v| v.is_some()).await
    }

    async fn wait_until(&mut self, query: &str, done: impl Fn(Option<f64>) -> bool) -> Option<f64> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("prometheus exited: {status}");
            }
            last = self.query_one(query).await;
            if done(last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        last
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET over HTTP/1.0 (the server closes after the body); `None` until it answers 200.
async fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// Joins the group as its only member and syncs; returns (member id, generation).
async fn join_and_sync(c: &mut Client) -> (String, i32) {
    let mut member_id = String::new();
    for _ in 0..5 {
        let r = c
            .call(v1::JoinGroupRequest {
                group_id: GROUP.into(),
                session_timeout_ms: 60_000,
                rebalance_timeout_ms: 10_000,
                member_id: member_id.clone(),
                group_instance_id: None,
                protocol_type: "consumer".into(),
                protocols: vec![v1::JoinGroupProtocol {
                    name: "range".into(),
                    metadata: Default::default(),
                }],
                topics: vec![TOPIC.into()],
                owned_partitions: vec![],
                reason: String::new(),
            })
            .await;
        member_id = r.member_id.clone();
        match ErrorCode::from_i32(r.error_code) {
            // First join of a new member: rejoin with the id the broker assigned.
            ErrorCode::MemberIdRequired => continue,
            ErrorCode::None => {}
            e => panic!("join: {e:?} {r:?}"),
        }
        let s = c
            .call(v1::SyncGroupRequest {
                group_id: GROUP.into(),
                generation_id: r.generation_id,
                member_id: member_id.clone(),
                protocol_type: "consumer".into(),
                ..Default::default()
            })
            .await;
        assert_eq!(ErrorCode::from_i32(s.error_code), ErrorCode::None, "{s:?}");
        let owned: Vec<i32> = s
            .assigned_partitions
            .iter()
            .filter(|t| t.topic == TOPIC)
            .flat_map(|t| t.partitions.clone())
            .collect();
        assert_eq!(owned, vec![0], "{s:?}");
        return (member_id, r.generation_id);
    }
    panic!("could not join");
}

async fn commit(c: &mut Client, member: &(String, i32), offset: i64) {
    let r = c
        .call(common::offset_commit_req(
            GROUP, member.1, &member.0, TOPIC, 0, offset,
        ))
        .await;
    let code = ErrorCode::from_i32(r.topics[0].partitions[0].error_code);
    assert_eq!(code, ErrorCode::None, "{r:?}");
}

/// Fetches from `from` until at least `upto` is covered; returns how many records were
/// read below `upto`.
async fn consume(c: &mut Client, from: i64, upto: i64) -> i64 {
    let mut next = from;
    for _ in 0..100 {
        if next >= upto {
            break;
        }
        let f = c.fetch(TOPIC, 0, next, 500, 1).await;
        assert_eq!(f.error_code, 0, "{f:?}");
        for (offset, _) in common::records(&f.records) {
            if offset == next && offset < upto {
                next += 1;
            }
        }
    }
    next - from
}

#[tokio::test]
async fn prometheus_sees_consumer_lag() {
    let dir = temp_dir();
    let cfg = dir.path().join("broker.toml");
    std::fs::write(
        &cfg,
        "[metrics]\nlag_refresh_interval_ms = 500\n\
         [groups]\noffsets_topic_partitions = 2\ninitial_rebalance_delay_ms = 0\n",
    )
    .unwrap();
    let broker = Broker::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let metrics_addr = std::fs::read_to_string(dir.path().join("metrics.addr")).unwrap();
    let prom_dir = temp_dir();
    let mut prom = Prometheus::start(prom_dir.path(), &metrics_addr);

    let mut c = broker.client().await;
    assert_eq!(c.create_topic(TOPIC, 1, &[]).await.error_code, 0);
    let values: Vec<Vec<u8>> = (0..1000).map(|i| format!("r{i}").into_bytes()).collect();
    for chunk in values.chunks(100) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        assert_eq!(c.produce(TOPIC, 0, batch(&refs, 1)).await.error_code, 0);
    }

    let member = join_and_sync(&mut c).await;
    assert_eq!(consume(&mut c, 0, 400).await, 400);
    commit(&mut c, &member, 400).await;

    let lag =
        format!("weir_consumer_group_lag{{group=\"{GROUP}\",topic=\"{TOPIC}\",partition=\"0\"}}");
    assert_eq!(
        prom.wait_for(&lag, 600.0).await,
        Some(600.0),
        "lag after 400 of 1000"
    );
    // Lag in time: the first uncommitted record was stamped at 1 ms after the epoch.
    let lag_s = format!(
        "weir_consumer_group_lag_seconds{{group=\"{GROUP}\",topic=\"{TOPIC}\",partition=\"0\"}}"
    );
    let seconds = prom.wait_for_some(&lag_s).await.expect("lag in seconds");
    assert!(
        seconds > 1.0e9,
        "records from 1970 are decades behind: {seconds}"
    );
    let members = format!("weir_consumer_group_members{{group=\"{GROUP}\"}}");
    assert_eq!(prom.wait_for(&members, 1.0).await, Some(1.0));
    let hw = format!("weir_partition_high_watermark{{topic=\"{TOPIC}\",partition=\"0\"}}");
    assert_eq!(prom.wait_for(&hw, 1000.0).await, Some(1000.0));

    assert_eq!(consume(&mut c, 400, 1000).await, 600);
    commit(&mut c, &member, 1000).await;
    assert_eq!(
        prom.wait_for(&lag, 0.0).await,
        Some(0.0),
        "lag after all 1000"
    );
    assert_eq!(prom.wait_for(&lag_s, 0.0).await, Some(0.0), "caught up");
    drop(prom);
    drop(broker);
}

/// The shipped alert rules are valid and behave as documented (promtool's rule unit tests
/// in configs/prometheus/alerts.test.yml: lag in time above 5 minutes for 5 minutes, a
/// group with lag and no members, a broker that cannot be scraped).
#[test]
fn shipped_alert_rules_pass_promtool() {
    const PROMTOOL: &str = "/usr/bin/promtool";
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: install the Debian package `prometheus` (./test.sh does)"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts.test.yml"][..],
    ] {
        let out = Command::new(PROMTOOL)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
