//! Three real broker processes on 127.0.0.1 forming the metadata quorum: placement and
//! leaders agree on every broker, admin changes go to the active controller, produce goes
//! to the partition's leader, and the quorum survives kill -9 of its leader with every
//! committed metadata record, the restarted broker catching up to an identical image.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{batch, temp_dir, Broker, Client};
use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

/// Short Raft timings so elections settle quickly in a test.
const CONFIG: &str = "[cluster]\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\nheartbeat_interval_ms = 50\n\
                      broker_heartbeat_interval_ms = 100\nbroker_session_timeout_ms = 1500\n\
                      leader_imbalance_check_interval_ms = 500\nmetadata_snapshot_after_entries = 20\n\
                      replica_lag_time_max_ms = 2000\n\
                      replica_high_watermark_checkpoint_interval_ms = 100\n\
                      [groups]\noffsets_topic_partitions = 2\n";

struct Member {
    dir: tempfile::TempDir,
    controller: String,
    metrics: String,
    broker: Option<Broker>,
}

struct Cluster {
    members: Vec<Member>,
    voters: String,
    config: String,
}

/// `--voters` for these members: node `i + 1` at its controller address.
fn voters_of(members: &[Member]) -> String {
    members
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{}@{}", i + 1, m.controller))
        .collect::<Vec<_>>()
        .join(",")
}

/// Removes every file under `dir`, keeping the directories (and whatever is mounted on
/// them), so a broker starts there as on an empty data directory.
fn remove_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            remove_files(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

impl Cluster {
    fn new() -> Cluster {
        let members: Vec<Member> = (0..3)
            .map(|_| Member {
                dir: temp_dir(),
                controller: common::free_port_addr(),
                metrics: common::free_port_addr(),
                broker: None,
            })
            .collect();
        let voters = voters_of(&members);
        Cluster {
            members,
            voters,
            config: CONFIG.to_string(),
        }
    }

    fn spawn(&mut self, i: usize) {
        let m = &self.members[i];
        let cfg = m.dir.path().join("cluster.toml");
        std::fs::write(&cfg, &self.config).unwrap();
        let id = (i + 1).to_string();
        let b = Broker::spawn(
            m.dir.path(),
            &[
                "--config",
                cfg.to_str().unwrap(),
                "--node-id",
                &id,
                "--voters",
                &self.voters,
                "--controller-listen",
                &m.controller,
                "--metrics-listen",
                &m.metrics,
            ],
        );
        self.members[i].broker = Some(b);
    }

    /// Starts all three. The controller and metrics ports are picked before the brokers
    /// bind them, so another process can take one meanwhile (tests run in parallel): a
    /// broker that exits at start gets the whole cluster restarted on fresh ports, a few
    /// times at most. The directories stay (a test may have mounted something in them,
    /// e.g. a small tmpfs under `meta/quorum`); the files the failed start wrote go.
    fn start_all(&mut self) {
        for attempt in 0..3 {
            for i in 0..3 {
                self.spawn(i);
            }
            let mut failed = None;
            for m in &mut self.members {
                if let Err(e) = m
                    .broker
                    .as_mut()
                    .unwrap()
                    .try_wait_ready(Duration::from_secs(60))
                {
                    failed = Some(e);
                }
            }
            let Some(e) = failed else { return };
            eprintln!("cluster start attempt {attempt} failed ({e}); retrying on fresh ports");
            for m in &mut self.members {
                m.broker = None; // stopped by its guard
                remove_files(m.dir.path());
                m.controller = common::free_port_addr();
                m.metrics = common::free_port_addr();
            }
            self.voters = voters_of(&self.members);
        }
        panic!("the cluster did not start in 3 attempts");
    }

    fn live(&self) -> impl Iterator<Item = (usize, &Broker)> {
        self.members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.broker.as_ref().map(|b| (i, b)))
    }

    async fn client(&self, i: usize) -> Client {
        self.members[i].broker.as_ref().unwrap().client().await
    }

    /// Waits (bounded) until every live broker names the same controller; returns its index.
    async fn controller(&self) -> usize {
        for _ in 0..300 {
            let mut seen = Vec::new();
            for (i, _) in self.live() {
                seen.push(metadata(&mut self.client(i).await, &[]).await.controller_id);
            }
            let first = seen[0];
            let live_ids: Vec<i32> = self.live().map(|(i, _)| i as i32 + 1).collect();
            if first > 0 && live_ids.contains(&first) && seen.iter().all(|c| *c == first) {
                return (first - 1) as usize;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("brokers never agreed on a controller");
    }

    /// Waits (bounded) until every live broker reports the same metadata image digest,
    /// computed on the image at its applied index, and the same applied index; returns the
    /// digest.
    async fn converged(&self) -> f64 {
        const DIGEST: &str = "weir_metadata_image_digest";
        // The index the digest was computed on (digests are reported coalesced).
        const DIGEST_AT: &str = "weir_metadata_image_digest_index";
        const APPLIED: &str = "weir_metadata_quorum_applied_index";
        for _ in 0..300 {
            let mut seen = Vec::new();
            let mut current = true;
            for (i, _) in self.live() {
                let text =
                    common::metrics_text(&self.members[i].metrics, |t| t.contains(DIGEST)).await;
                let at = common::metric(&text, DIGEST_AT);
                current &= at.is_some() && at == common::metric(&text, APPLIED);
                seen.push((common::metric(&text, DIGEST), at));
            }
            if current && seen[0].0.is_some() && seen.iter().all(|s| *s == seen[0]) {
                return seen[0].0.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("metadata images never converged");
    }
}

async fn metadata(c: &mut Client, topics: &[&str]) -> v1::MetadataResponse {
    c.call(v1::MetadataRequest {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        all_topics: topics.is_empty(),
        allow_auto_topic_creation: false,
    })
    .await
}

/// (partition, leader, epoch, replicas) of a topic as one broker describes it.
async fn placement(c: &mut Client, topic: &str) -> Vec<(i32, i32, i32, Vec<i32>)> {
    let m = metadata(c, &[topic]).await;
    let t = m
        .topics
        .iter()
        .find(|t| t.name == topic)
        .expect("topic listed");
    assert_eq!(t.error_code, 0, "{t:?}");
    t.partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.leader_id,
                p.leader_epoch,
                p.replica_nodes.clone(),
            )
        })
        .collect()
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_share_metadata_and_survive_kill_9_of_the_controller() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();

    // Every broker lists all three (once their registrations are applied everywhere),
    // with the same controller.
    let ctl = cluster.controller().await;
    for (i, _) in cluster.live() {
        let mut ids = Vec::new();
        for _ in 0..300 {
            let m = metadata(&mut cluster.client(i).await, &[]).await;
            ids = m.brokers.iter().map(|b| b.node_id).collect();
            ids.sort();
            if ids == [1, 2, 3] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(ids, vec![1, 2, 3], "broker {i} lists every broker");
    }

    // Admin changes are the controller's: elsewhere NOT_CONTROLLER.
    let other = (ctl + 1) % 3;
    let refused = cluster.client(other).await.create_topic("t", 3, &[]).await;
    assert_eq!(
        ErrorCode::from_i32(refused.error_code),
        ErrorCode::NotController
    );
    // More replicas than brokers: refused, nothing written.
    let too_many = cluster
        .client(ctl)
        .await
        .create_topic_rf("x", 1, 4, &[])
        .await;
    assert_eq!(
        ErrorCode::from_i32(too_many.error_code),
        ErrorCode::InvalidReplicationFactor,
        "{too_many:?}"
    );
    // t: one replica per partition; r: two.
    let created = cluster.client(ctl).await.create_topic("t", 3, &[]).await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("r", 6, 2, &[])
        .await;
    assert_eq!(
        (created.error_code, created.replication_factor),
        (0, 2),
        "{created:?}"
    );

    // The same placement and epochs on every broker; replicas and leaders spread evenly
    // (round-robin from a shifted start), and each broker holds exactly its replicas.
    cluster.converged().await;
    let want = placement(&mut cluster.client(ctl).await, "t").await;
    let r_want = placement(&mut cluster.client(ctl).await, "r").await;
    assert_eq!(want.len(), 3);
    for (i, _) in cluster.live() {
        let mut c = cluster.client(i).await;
        assert_eq!(placement(&mut c, "t").await, want, "broker {i}");
        assert_eq!(placement(&mut c, "r").await, r_want, "broker {i}");
    }
    let mut t_leaders: Vec<i32> = want.iter().map(|p| p.1).collect();
    t_leaders.sort();
    assert_eq!(t_leaders, [1, 2, 3], "{want:?}");
    for id in 1..=3 {
        let led = r_want.iter().filter(|p| p.1 == id).count();
        let held = r_want.iter().filter(|p| p.3.contains(&id)).count();
        assert_eq!((led, held), (2, 4), "broker {id} in {r_want:?}");
    }
    for p in &r_want {
        assert_eq!(p.3.len(), 2);
        assert_ne!(p.3[0], p.3[1]);
        assert_eq!(p.1, p.3[0], "led by the preferred replica");
    }
    for (i, m) in cluster.members.iter().enumerate() {
        let id = i as i32 + 1;
        for p in &want {
            let dir = m.dir.path().join(format!("t-{}", p.0));
            wait_until(|| exists(&dir) == p.3.contains(&id), &format!("{dir:?}")).await;
        }
        for p in &r_want {
            let dir = m.dir.path().join(format!("r-{}", p.0));
            wait_until(|| exists(&dir) == p.3.contains(&id), &format!("{dir:?}")).await;
        }
    }

    // The controller describes the quorum with every voter's replication progress (once
    // it has placed __consumer_offsets, which waits for every voter to register).
    for _ in 0..300 {
        let m = metadata(&mut cluster.client(ctl).await, &["__consumer_offsets"]).await;
        if m.topics[0].error_code == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.converged().await;
    let q = cluster
        .client(ctl)
        .await
        .call(v1::DescribeQuorumRequest {})
        .await;
    assert_eq!(q.leader_id, ctl as i32 + 1);
    assert_eq!(q.voters.len(), 3);
    assert!(q.voters.iter().all(|v| v.match_index.is_some()), "{q:?}");
    assert_eq!(q.brokers.len(), 3);
    let led: i32 = q.brokers.iter().map(|b| b.partitions_led).sum();
    assert_eq!(led, 3 + 6 + 2, "t, r and __consumer_offsets: {q:?}");
    assert!(q.brokers.iter().all(|b| b.partitions_led >= 3), "{q:?}");
    let digest = cluster.converged().await;
    assert_eq!(f64::from(q.image_digest), digest);

    // Groups are coordinated by the leader of their __consumer_offsets partition: every
    // broker names the same one, and the others refuse group calls.
    let mut coordinators = Vec::new();
    for (i, _) in cluster.live() {
        let fc = cluster
            .client(i)
            .await
            .call(v1::FindCoordinatorRequest {
                key: "g".into(),
                key_type: 0,
            })
            .await;
        assert_eq!(fc.error_code, 0, "{fc:?}");
        coordinators.push(fc.node_id);
    }
    assert!(coordinators.iter().all(|c| *c == coordinators[0]));
    for (i, _) in cluster.live() {
        let hb = cluster
            .client(i)
            .await
            .call(v1::HeartbeatRequest {
                group_id: "g".into(),
                generation_id: 1,
                member_id: "m".into(),
                group_instance_id: None,
            })
            .await;
        let code = ErrorCode::from_i32(hb.error_code);
        if i as i32 + 1 == coordinators[0] {
            assert_ne!(code, ErrorCode::NotCoordinator);
        } else {
            assert_eq!(code, ErrorCode::NotCoordinator);
        }
    }

    // Produce goes to the leader; another broker points the client there.
    let leader = want[0].1;
    let at_leader = cluster
        .client((leader - 1) as usize)
        .await
        .produce("t", 0, batch(&[b"x"], 1))
        .await;
    assert_eq!(at_leader.error_code, 0);
    let elsewhere = (leader as usize) % 3;
    let moved = cluster
        .client(elsewhere)
        .await
        .produce("t", 0, batch(&[b"y"], 1))
        .await;
    assert_eq!(
        ErrorCode::from_i32(moved.error_code),
        ErrorCode::NotLeaderOrFollower
    );

    // kill -9 the controller: the other two elect one and keep taking metadata changes.
    let before = cluster.converged().await;
    let killed = ctl;
    let killed_id = killed as i32 + 1;
    let r_led: Vec<i32> = r_want
        .iter()
        .filter(|p| p.1 == killed_id)
        .map(|p| p.0)
        .collect();
    let bootstrap: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
    let producer = weir_client::Producer::new(
        weir_client::ClientConfig::new(&bootstrap.join(",")),
        weir_client::ProducerConfig {
            // Plain retries are what this checks (the replication test below covers the
            // idempotent producer across a failover).
            idempotence: false,
            acks: weir_client::Acks::Leader,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    cluster.members[killed].broker.take().unwrap().kill9();
    // The client's admin call right after the kill finds the new controller by itself
    // (NOT_CONTROLLER and refused connections are retried within the request timeout).
    let survivors: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
    let admin =
        weir_client::Admin::new(weir_client::ClientConfig::new(&survivors.join(","))).unwrap();
    admin
        .create_topic(weir_client::admin::NewTopic::new("u", 2))
        .await
        .unwrap();
    let new_ctl = cluster.controller().await;
    assert_ne!(new_ctl, killed);
    let after = cluster.converged().await;
    assert_ne!(before, after, "the new topic changed the image");

    // Silent past its session timeout, the dead broker is fenced: it is no longer offered
    // to clients; its one-replica partitions are offline (never given to a replica outside
    // the ISR) and its two-replica partitions move to the other replica; each change
    // bumps the leader epoch.
    let t_killed = want.iter().find(|p| p.1 == killed_id).unwrap().0 as usize;
    let t0 = want[t_killed].2;
    let offline = wait_placement(&cluster, new_ctl, "t", |p| p[t_killed].1 == -1).await;
    assert_eq!(offline[t_killed].2, t0 + 1);
    let moved = wait_placement(&cluster, new_ctl, "r", |p| {
        r_led.iter().all(|i| p[*i as usize].1 != killed_id)
    })
    .await;
    for i in &r_led {
        let p = &moved[*i as usize];
        assert_eq!((p.1, p.2), (p.3[1], r_want[*i as usize].2 + 1), "{p:?}");
    }
    let m = metadata(&mut cluster.client(new_ctl).await, &[]).await;
    assert!(m.brokers.iter().all(|b| b.node_id != killed_id), "{m:?}");

    // The client follows: a record for a partition the dead broker led lands on its new
    // leader, and a consumer reads it there.
    let p = r_led[0];
    let meta = producer
        .send(weir_client::ProducerRecord::new("r", "after failover").with_partition(p))
        .await
        .unwrap();
    let mut consumer = weir_client::Consumer::new(
        weir_client::ClientConfig::new(&bootstrap.join(",")),
        weir_client::ConsumerConfig::default(),
    )
    .unwrap();
    consumer.assign([("r", p)]).await.unwrap();
    consumer.seek(("r", p), meta.offset).unwrap();
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(consumer.poll(Duration::from_millis(200)).await.unwrap());
        if !got.is_empty() {
            break;
        }
    }
    assert_eq!(got[0].value.as_deref(), Some(&b"after failover"[..]));
    producer
        .close_timeout(Duration::from_secs(10))
        .await
        .unwrap();

    // The killed broker restarts from its directory, catches up, heartbeats, is unfenced
    // and leads its one-replica partition again; preferred leaders come back for the
    // others (auto leader rebalance); three identical images holding every topic.
    cluster.spawn(killed);
    cluster.members[killed]
        .broker
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(60));
    // It serves only once it has applied what the quorum decided while it was away: its
    // very first answers know topic u and the epoch its partition of t went offline at,
    // instead of the image it crashed with (where it still led t at epoch t0).
    let mut c = cluster.client(killed).await;
    let first = placement(&mut c, "t").await;
    assert!(first[t_killed].2 > t0, "stale image served: {first:?}");
    assert_eq!(placement(&mut c, "u").await.len(), 2);
    drop(c);
    let back = wait_placement(&cluster, new_ctl, "t", |p| p[t_killed].1 == killed_id).await;
    assert_eq!(back[t_killed].2, t0 + 2);
    let r_back = wait_placement(&cluster, new_ctl, "r", |p| {
        r_led.iter().all(|i| p[*i as usize].1 == killed_id)
    })
    .await;
    for i in &r_led {
        assert_eq!(r_back[*i as usize].2, r_want[*i as usize].2 + 2);
    }
    cluster.converged().await;
    let mut c = cluster.client(killed).await;
    assert_eq!(placement(&mut c, "t").await, back);
    assert_eq!(placement(&mut c, "u").await.len(), 2);
    assert!(exists(
        &cluster.members[killed]
            .dir
            .path()
            .join("meta/quorum/raft.log")
    ));

    // Controlled shutdown: SIGTERM fences the broker and moves leadership of its
    // two-replica partitions before it exits (no session timeout to wait for).
    let ctl_now = cluster.controller().await;
    let leaving = (0..3).find(|i| *i != ctl_now).unwrap();
    let leaving_id = leaving as i32 + 1;
    assert!(
        cluster.members[leaving].broker.take().unwrap().stop(),
        "clean exit"
    );
    let q = cluster
        .client(ctl_now)
        .await
        .call(v1::DescribeQuorumRequest {})
        .await;
    let b = q.brokers.iter().find(|b| b.id == leaving_id).unwrap();
    assert!(b.fenced, "fenced by its controlled shutdown: {q:?}");
    let r_now = placement(&mut cluster.client(ctl_now).await, "r").await;
    assert!(
        r_now.iter().all(|p| p.1 != leaving_id),
        "leadership moved before exit: {r_now:?}"
    );
}

/// Polls (bounded) until `cond` holds.
async fn wait_until(cond: impl Fn() -> bool, what: &str) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never true: {what}");
}

/// Polls (bounded) one broker's view of `topic` until `done` holds; returns it.
async fn wait_placement(
    cluster: &Cluster,
    at: usize,
    topic: &str,
    done: impl Fn(&[(i32, i32, i32, Vec<i32>)]) -> bool,
) -> Vec<(i32, i32, i32, Vec<i32>)> {
    let mut last = Vec::new();
    for _ in 0..300 {
        last = placement(&mut cluster.client(at).await, topic).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("placement of {topic} never reached the expected state: {last:?}");
}

/// One multi-broker test at a time in this binary (two clusters at once on two cores only
/// slow each other down).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_broker_rejoins_and_a_foreign_directory_is_refused() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("w", 3, 3, &[])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    // Enough metadata changes that the quorum snapshots and compacts its log, so a broker
    // starting from nothing must be sent a snapshot.
    for i in 0..30 {
        let r = cluster
            .client(ctl)
            .await
            .call(v1::AlterConfigsRequest {
                resources: vec![v1::AlterConfigsResource {
                    resource_type: v1::ResourceType::Topic as i32,
                    resource_name: "w".into(),
                    configs: vec![v1::AlterableConfig {
                        name: "retention.ms".into(),
                        op: v1::AlterConfigOp::Set as i32,
                        value: format!("{}", 3_600_000 + i),
                    }],
                }],
                validate_only: false,
            })
            .await;
        assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    }
    let digest = cluster.converged().await;
    let text = common::metrics_text(&cluster.members[ctl].metrics, |t| {
        t.contains("weir_metadata_quorum_purged_index")
    })
    .await;
    let purged = common::metric(&text, "weir_metadata_quorum_purged_index");
    assert!(purged.unwrap_or(0.0) > 0.0, "log compacted: {purged:?}");
    let cluster_id = metadata(&mut cluster.client(ctl).await, &[])
        .await
        .cluster_id;
    for (i, _) in cluster.live() {
        let m = metadata(&mut cluster.client(i).await, &[]).await;
        assert_eq!(m.cluster_id, cluster_id, "one cluster id on every broker");
    }

    // A directory that belongs to another cluster is refused, naming the key.
    let x = (ctl + 1) % 3;
    let x_id = (x + 1).to_string();
    cluster.members[x].broker.take().unwrap().kill9();
    let foreign = temp_dir();
    std::fs::create_dir_all(foreign.path().join("meta")).unwrap();
    std::fs::write(
        foreign.path().join("meta/meta.properties"),
        format!("version=1\nnode.id={x_id}\ncluster.id=another-cluster\n"),
    )
    .unwrap();
    let cfg = cluster.members[x].dir.path().join("cluster.toml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir-broker"))
        .args(["--data-dir", foreign.path().to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap(), "--node-id", &x_id])
        .args(["--voters", &cluster.voters])
        .args(["--controller-listen", &cluster.members[x].controller])
        .args(["--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a broker on a foreign directory kept running");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("cluster.id") && stderr.contains("another-cluster"),
        "{stderr}"
    );

    // A broker whose disk was wiped starts empty and catches up: the same image, its
    // registration, its replicas opened again.
    let dir = cluster.members[x].dir.path().to_path_buf();
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        if entry.file_name() == "cluster.toml" {
            continue;
        }
        let p = entry.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    cluster.spawn(x);
    cluster.members[x]
        .broker
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(60));
    let after = cluster.converged().await;
    assert_ne!(after, digest, "its new registration is in the image");
    let m = metadata(&mut cluster.client(x).await, &["w"]).await;
    assert_eq!(m.cluster_id, cluster_id);
    assert_eq!(m.topics[0].partitions.len(), 3);
    for p in 0..3 {
        let d = dir.join(format!("w-{p}"));
        wait_until(|| exists(&d), &format!("{d:?}")).await;
    }
    let text = std::fs::read_to_string(dir.join("meta/meta.properties")).unwrap();
    assert!(text.contains(&format!("cluster.id={cluster_id}")), "{text}");
    let listing: Vec<_> = std::fs::read_dir(dir.join("meta/quorum"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        exists(&dir.join("meta/quorum/snapshot")),
        "caught up by snapshot: {listing:?}"
    );
}

/// kcat with one broker's Kafka address as its only bootstrap; fails the test on a
/// non-zero exit or a run past the deadline.
fn kcat(bootstrap: &str, args: &[&str], stdin: &str) -> String {
    let out = common::run(
        std::process::Command::new("kcat")
            .args(["-b", bootstrap])
            .args(args),
        stdin.as_bytes(),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "kcat {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Brokers as (id, "host:port"), by id.
type Addresses = Vec<(i64, String)>;

/// (brokers, (partition, leader) of `topic`) from kcat's metadata listing through
/// `bootstrap`.
fn kcat_metadata(bootstrap: &str, topic: &str) -> (Addresses, Vec<(i64, i64)>) {
    let out = kcat(bootstrap, &["-L", "-J", "-t", topic], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let mut brokers: Addresses = v["brokers"]
        .as_array()
        .unwrap_or_else(|| panic!("no brokers: {out}"))
        .iter()
        .map(|b| {
            (
                b["id"].as_i64().unwrap(),
                b["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    brokers.sort();
    let mut leaders: Vec<(i64, i64)> = v["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["topic"] == topic)
        .flat_map(|t| t["partitions"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            (
                p["partition"].as_i64().unwrap(),
                p["leader"].as_i64().unwrap(),
            )
        })
        .collect();
    leaders.sort();
    (brokers, leaders)
}

/// A DescribeCluster v0 request on a Kafka listener, by hand (the Kafka message crate is
/// built for the broker side only): (controller id, brokers as (id, "host:port")).
fn kafka_describe_cluster(addr: &str) -> (i32, Vec<(i32, String)>) {
    use std::io::{Read, Write};
    fn uvarint(b: &[u8], pos: &mut usize) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[*pos];
            *pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    fn take<'a>(b: &'a [u8], pos: &mut usize, n: usize) -> &'a [u8] {
        let s = &b[*pos..*pos + n];
        *pos += n;
        s
    }
    fn i32_at(b: &[u8], pos: &mut usize) -> i32 {
        i32::from_be_bytes(take(b, pos, 4).try_into().unwrap())
    }
    fn compact_str(b: &[u8], pos: &mut usize) -> Option<String> {
        let n = uvarint(b, pos);
        (n > 0).then(|| String::from_utf8(take(b, pos, n as usize - 1).to_vec()).unwrap())
    }
    fn skip_tags(b: &[u8], pos: &mut usize) {
        for _ in 0..uvarint(b, pos) {
            uvarint(b, pos);
            let size = uvarint(b, pos) as usize;
            take(b, pos, size);
        }
    }
    // Header v2 (api key 60, version 0, correlation id 7, client id "t", no tags), then
    // include_cluster_authorized_operations = false and no tags.
    let mut req = vec![0, 60, 0, 0, 0, 0, 0, 7, 0, 1, b't', 0];
    req.extend_from_slice(&[0, 0]);
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&(req.len() as u32).to_be_bytes()).unwrap();
    s.write_all(&req).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut b).unwrap();
    let mut pos = 0;
    assert_eq!(i32_at(&b, &mut pos), 7, "correlation id");
    skip_tags(&b, &mut pos);
    let _throttle = i32_at(&b, &mut pos);
    let error = i16::from_be_bytes(take(&b, &mut pos, 2).try_into().unwrap());
    let message = compact_str(&b, &mut pos);
    assert_eq!(error, 0, "DescribeCluster: {message:?}");
    let _cluster_id = compact_str(&b, &mut pos);
    let controller = i32_at(&b, &mut pos);
    let mut brokers = Vec::new();
    for _ in 0..uvarint(&b, &mut pos).saturating_sub(1) {
        let id = i32_at(&b, &mut pos);
        let host = compact_str(&b, &mut pos).unwrap();
        let port = i32_at(&b, &mut pos);
        let _rack = compact_str(&b, &mut pos);
        skip_tags(&b, &mut pos);
        brokers.push((id, format!("{host}:{port}")));
    }
    brokers.sort();
    (controller, brokers)
}

/// Kafka clients bootstrapped from ONE broker's Kafka listener reach the whole cluster:
/// Metadata lists every broker at its Kafka address, so kcat produces to and consumes
/// from partitions led by the other two; a group whose coordinator is another broker is
/// joined through FindCoordinator; DescribeCluster lists every broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_clients_reach_every_broker_from_one_bootstrap_address() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("k", 3, 1, &[])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let placed = placement(&mut cluster.client(ctl).await, "k").await;
    let mut leaders: Vec<i32> = placed.iter().map(|p| p.1).collect();
    leaders.sort();
    assert_eq!(
        leaders,
        [1, 2, 3],
        "one partition led by each broker: {placed:?}"
    );

    let kafka: Addresses = cluster
        .live()
        .map(|(i, b)| (i as i64 + 1, b.kafka_addr.clone()))
        .collect();
    assert!(kafka.iter().all(|(_, a)| !a.is_empty()), "{kafka:?}");
    let native: Vec<&str> = cluster.live().map(|(_, b)| b.addr.as_str()).collect();
    let bootstrap = kafka[0].1.clone();

    // Every broker at its Kafka port (none at its native one), and the placement the
    // native listener reports; polled until every registration is applied there.
    let want_leaders: Vec<(i64, i64)> = placed
        .iter()
        .map(|p| (i64::from(p.0), i64::from(p.1)))
        .collect();
    let mut seen = kcat_metadata(&bootstrap, "k");
    for _ in 0..100 {
        if seen.0 == kafka && seen.1 == want_leaders {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = kcat_metadata(&bootstrap, "k");
    }
    assert_eq!(seen.0, kafka, "every broker at its Kafka address");
    assert_eq!(seen.1, want_leaders);
    assert!(
        seen.0.iter().all(|(_, a)| !native.contains(&a.as_str())),
        "{seen:?} {native:?}"
    );

    // A record to each partition: two of them only reachable at the other brokers' Kafka
    // listeners. A bounded message timeout, so an unreachable leader fails kcat within
    // the command's deadline.
    for (p, leader) in &want_leaders {
        kcat(
            &bootstrap,
            &[
                "-P",
                "-t",
                "k",
                "-p",
                &p.to_string(),
                "-X",
                "message.timeout.ms=20000",
            ],
            &format!("to-{p}-at-{leader}\n"),
        );
    }
    for (p, leader) in &want_leaders {
        let got = kcat(
            &bootstrap,
            &[
                "-C",
                "-t",
                "k",
                "-p",
                &p.to_string(),
                "-o",
                "beginning",
                "-c",
                "1",
                "-e",
            ],
            "",
        );
        assert_eq!(got, format!("to-{p}-at-{leader}\n"), "partition {p}");
        // Stored at the leader itself.
        let mut c = cluster.client((*leader - 1) as usize).await;
        let f = c.fetch("k", *p as i32, 0, 0, 1).await;
        assert_eq!(f.error_code, 0, "{f:?}");
        assert_eq!(common::records(&f.records).len(), 1, "partition {p}");
    }

    // A group coordinated by another broker (the leader of its __consumer_offsets
    // partition, placed once every broker registered): kcat's group consumer is sent
    // there by FindCoordinator and reads all three records.
    let mut group = None;
    for _ in 0..300 {
        let m = metadata(&mut cluster.client(0).await, &["__consumer_offsets"]).await;
        if m.topics[0].error_code == 0 && m.topics[0].partitions.iter().all(|p| p.leader_id > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for n in 0..100 {
        let name = format!("kg-{n}");
        let fc = cluster
            .client(0)
            .await
            .call(v1::FindCoordinatorRequest {
                key: name.clone(),
                key_type: 0,
            })
            .await;
        assert_eq!(fc.error_code, 0, "{fc:?}");
        if fc.node_id != 1 {
            group = Some(name);
            break;
        }
    }
    let group = group.expect("a group coordinated by broker 2 or 3");
    let got = kcat(
        &bootstrap,
        &[
            "-G",
            &group,
            "-X",
            "auto.offset.reset=earliest",
            "-c",
            "3",
            "-f",
            "%p %s\n",
            "k",
        ],
        "",
    );
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort();
    let want: Vec<String> = want_leaders
        .iter()
        .map(|(p, l)| format!("{p} to-{p}-at-{l}"))
        .collect();
    assert_eq!(lines, want, "group {group}");

    // DescribeCluster: every broker at its Kafka address and the active controller.
    let ctl = cluster.controller().await;
    let (controller, brokers) = kafka_describe_cluster(&bootstrap);
    assert_eq!(controller, ctl as i32 + 1);
    let want: Vec<(i32, String)> = kafka.iter().map(|(i, a)| (*i as i32, a.clone())).collect();
    assert_eq!(brokers, want);
}

/// (leader, leader epoch, ISR) of partition `p` of `topic` as broker `at` sees it.
async fn isr_of(cluster: &Cluster, at: usize, topic: &str, p: usize) -> (i32, i32, Vec<i32>) {
    let m = metadata(&mut cluster.client(at).await, &[topic]).await;
    let part = &m.topics[0].partitions[p];
    let mut isr = part.isr_nodes.clone();
    isr.sort();
    (part.leader_id, part.leader_epoch, isr)
}

/// Polls (bounded) broker `at` until partition 0 of `topic` satisfies `done`.
async fn wait_isr(
    cluster: &Cluster,
    at: usize,
    topic: &str,
    done: impl Fn(&(i32, i32, Vec<i32>)) -> bool,
) -> (i32, i32, Vec<i32>) {
    let mut last = (0, 0, Vec::new());
    for _ in 0..600 {
        last = isr_of(cluster, at, topic, 0).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{topic}-0 never reached the expected state: {last:?}");
}

/// Sends `n` records (values `{tag}-{i}`) with acks=all and returns (offset, value) of
/// each acknowledged one.
async fn produce_acked(p: &weir_client::Producer, tag: &str, n: usize) -> Vec<(i64, String)> {
    produce_acked_to(p, "d", tag, n).await
}

/// `produce_acked` to partition 0 of `topic`.
async fn produce_acked_to(
    p: &weir_client::Producer,
    topic: &str,
    tag: &str,
    n: usize,
) -> Vec<(i64, String)> {
    let mut pending = Vec::new();
    for i in 0..n {
        let value = format!("{tag}-{i}");
        let ack = p
            .enqueue(weir_client::ProducerRecord::new(topic, value.clone()).with_partition(0))
            .await
            .unwrap();
        pending.push((value, ack));
    }
    let mut acked = Vec::new();
    for (value, ack) in pending {
        if let Ok(meta) = ack.await {
            acked.push((meta.offset, value));
        }
    }
    acked
}

/// Reads partition 0 of `d` from the start through `bootstrap` until `want` records came.
async fn read_all(bootstrap: &str, want: usize) -> Vec<(i64, String)> {
    read_all_from(bootstrap, "d", want).await
}

/// `read_all` for partition 0 of `topic`.
async fn read_all_from(bootstrap: &str, topic: &str, want: usize) -> Vec<(i64, String)> {
    let mut consumer = weir_client::Consumer::new(
        weir_client::ClientConfig::new(bootstrap),
        weir_client::ConsumerConfig::default(),
    )
    .unwrap();
    consumer.assign([(topic, 0)]).await.unwrap();
    consumer.seek((topic, 0), 0).unwrap();
    let mut got = Vec::new();
    for _ in 0..200 {
        for r in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            let v = String::from_utf8(r.value.unwrap_or_default().to_vec()).unwrap();
            got.push((r.offset, v));
        }
        if got.len() >= want {
            break;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9_of_their_leader() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("d", 1, 3, &[("min.insync.replicas", "2")])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let (leader, epoch, isr) = wait_isr(&cluster, ctl, "d", |s| s.0 > 0).await;
    assert_eq!(isr, [1, 2, 3]);
    // "m" asks for every replica in sync.
    let m = cluster
        .client(ctl)
        .await
        .create_topic_rf("m", 1, 3, &[("min.insync.replicas", "3")])
        .await;
    assert_eq!(m.error_code, 0, "{m:?}");

    let bootstrap: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
    let bootstrap = bootstrap.join(",");
    let producer = weir_client::Producer::new(
        weir_client::ClientConfig::new(&bootstrap),
        weir_client::ProducerConfig {
            acks: weir_client::Acks::All,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut acked = produce_acked(&producer, "before", 300).await;
    assert_eq!(
        acked.len(),
        300,
        "all acknowledged while every replica is in sync"
    );

    // One follower stops answering (SIGSTOP): acks=all waits for it until the leader
    // takes it out of the ISR, then counts the other follower alone.
    let victim = (leader - 1) as usize;
    let stopped = (victim + 1) % 3;
    let stopped_pid = cluster.members[stopped].broker.as_ref().unwrap().pid();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(stopped_pid as i32, libc::SIGSTOP) };
    acked.extend(produce_acked(&producer, "degraded", 200).await);
    assert_eq!(
        acked.len(),
        500,
        "acknowledged once the ISR dropped the stopped follower"
    );
    // With a replica out of sync, "m" refuses acks=all before appending anything.
    let stopped_id = stopped as i32 + 1;
    let (m_leader, _, _) = wait_isr(&cluster, (stopped + 1) % 3, "m", |s| {
        s.2.len() == 2 && s.0 > 0 && s.0 != stopped_id
    })
    .await;
    let refused = cluster
        .client((m_leader - 1) as usize)
        .await
        .call(common::produce_req("m", 0, batch(&[b"x"], 1), -1))
        .await;
    assert_eq!(
        ErrorCode::from_i32(refused.responses[0].partition_responses[0].error_code),
        ErrorCode::NotEnoughReplicas
    );

    // An idempotent producer's batch, acknowledged by the leader just before it dies: the
    // retry that reaches the new leader must come back with the same offset, not be
    // appended again (followers rebuilt the producer state from the replicated batches).
    let mut init = None;
    for _ in 0..200 {
        for i in [victim, (victim + 2) % 3] {
            let r = cluster
                .client(i)
                .await
                .call(v1::InitProducerIdRequest::default())
                .await;
            if r.error_code == 0 {
                init = Some((r.producer_id, r.producer_epoch as i16));
            }
        }
        if init.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (pid, pepoch) = init.expect("a producer id");
    let probe = common::built_batch(
        &[(None, Some(b"dedupe-probe"))],
        Some((pid, pepoch, 0)),
        weir_protocol::batch::Compression::None,
    );
    let first = cluster
        .client(victim)
        .await
        .call(common::produce_req("d", 0, probe.clone(), -1))
        .await;
    let first = first.responses[0].partition_responses[0].clone();
    assert_eq!(first.error_code, 0, "{first:?}");

    // kill -9 the leader right after the acknowledgements: the remaining in-sync follower
    // had every one of them (the high watermark only covered what the whole ISR had), takes
    // over, and the producer follows it.
    cluster.members[victim].broker.take().unwrap().kill9();
    // SAFETY: as above.
    unsafe { libc::kill(stopped_pid as i32, libc::SIGCONT) };
    let survivor = (victim + 2) % 3;
    let (new_leader, new_epoch, _) =
        wait_isr(&cluster, survivor, "d", |s| s.0 > 0 && s.0 != leader).await;
    assert!(new_epoch > epoch);
    let mut c = cluster.client((new_leader - 1) as usize).await;
    // A follower still on the old leader epoch is refused, as is one claiming an epoch the
    // new leader does not know yet.
    for (claimed, want) in [
        (epoch, ErrorCode::FencedLeaderEpoch),
        (new_epoch + 5, ErrorCode::UnknownLeaderEpoch),
    ] {
        let mut f = common::fetch_req("d", 0, 0, 0, 1);
        f.replica_id = Some(survivor as i32 + 1);
        f.topics[0].partitions[0].current_leader_epoch = Some(claimed);
        let r = c.call(f).await;
        assert_eq!(
            ErrorCode::from_i32(r.responses[0].partitions[0].error_code),
            want,
            "replica fetch with leader epoch {claimed} (current {new_epoch})"
        );
    }
    let retry = produce_one_batch(&mut c, "d", probe).await;
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, first.base_offset),
        "the retry was deduplicated by the new leader"
    );
    acked.extend(produce_acked(&producer, "after", 300).await);
    assert!(acked.len() > 500, "the new leader takes writes");
    producer
        .close_timeout(Duration::from_secs(10))
        .await
        .unwrap();

    // Every acknowledged record, at its offset, in order; nothing else in between.
    let got = read_all(&bootstrap, acked.len()).await;
    let mut want = acked.clone();
    want.sort();
    let stored: std::collections::BTreeMap<i64, String> = got.into_iter().collect();
    for (offset, value) in &want {
        assert_eq!(
            stored.get(offset),
            Some(value),
            "acknowledged record at offset {offset} (leader now {new_leader})"
        );
    }
    let probes = stored.values().filter(|v| *v == "dedupe-probe").count();
    assert_eq!(probes, 1, "the idempotent retry was appended again");
    let mut values: Vec<&String> = stored.values().collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), stored.len(), "a record is stored twice");
    let offsets: Vec<i64> = stored.keys().copied().collect();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "no gaps: {offsets:?}"
    );

    // The killed broker comes back, cuts what it had beyond the new leader's log, catches
    // up and rejoins the ISR.
    cluster.spawn(victim);
    cluster.members[victim]
        .broker
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(60));
    wait_isr(&cluster, survivor, "d", |s| s.2.len() == 3).await;

    // A group's committed offset survives its coordinator's kill -9: the new leader of the
    // group's __consumer_offsets partition has the record and loads the group.
    let mut fc = find_coordinator(&cluster, survivor).await;
    for _ in 0..300 {
        if fc.error_code == 0 && fc.node_id > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fc = find_coordinator(&cluster, survivor).await;
    }
    let first = (fc.node_id - 1) as usize;
    // Retriable answers (a slow replica still in the offsets partition's ISR makes the
    // commit time out) are retried, as a client would; the commit is idempotent.
    let mut committed = None;
    for _ in 0..100 {
        let r = cluster
            .client(first)
            .await
            .call(common::offset_commit_req("g", -1, "", "d", 0, 42))
            .await;
        let code = ErrorCode::from_i32(r.topics[0].partitions[0].error_code);
        if code == ErrorCode::None || !code.is_retriable() {
            committed = Some(code);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(committed, Some(ErrorCode::None));
    {
        let other_live = cluster
            .live()
            .map(|(i, _)| i)
            .find(|i| *i != first)
            .unwrap();
        cluster.members[first].broker.take().unwrap().kill9();
        let mut moved = find_coordinator(&cluster, other_live).await;
        for _ in 0..300 {
            if moved.error_code == 0 && moved.node_id > 0 && moved.node_id != fc.node_id {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            moved = find_coordinator(&cluster, other_live).await;
        }
        assert_ne!(
            moved.node_id, fc.node_id,
            "the coordinator moved: {moved:?}"
        );
        let mut fetched = -1;
        for _ in 0..300 {
            let r = cluster
                .client((moved.node_id - 1) as usize)
                .await
                .call(fetch_g_d0())
                .await;
            if r.error_code == 0 {
                if let Some(p) = r.topics.first().and_then(|t| t.partitions.first()) {
                    fetched = p.committed_offset;
                    if fetched == 42 {
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(fetched, 42, "the commit survived its coordinator");
        cluster.spawn(first);
        cluster.members[first]
            .broker
            .as_mut()
            .unwrap()
            .wait_ready(Duration::from_secs(60));

        // The admin client finds the coordinator itself: bootstrapped from any one broker
        // (two of the three do not coordinate "g"), it reads, describes and lists the group.
        let addrs: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
        assert_eq!(addrs.len(), 3);
        for addr in addrs {
            let admin = weir_client::Admin::new(weir_client::ClientConfig::new(&addr)).unwrap();
            let offsets = admin.group_offsets("g", "d").await;
            assert_eq!(offsets.unwrap(), vec![(0, 42)], "via {addr}");
            let described = admin.describe_group("g").await.unwrap();
            assert!(
                described
                    .offsets
                    .iter()
                    .any(|o| o.topic == "d" && o.partition == 0 && o.committed_offset == 42),
                "via {addr}: {described:?}"
            );
            let listed = admin.list_groups().await.unwrap();
            assert!(
                listed.iter().any(|g| g.group == "g"),
                "via {addr}: {listed:?}"
            );
        }

        // Cut off from the other two (both SIGSTOPped) past its session, the coordinator
        // stops answering for the group: the cluster could have moved it elsewhere, and an
        // answer from its cache could be older than commits taken there (weir-chaos seed 9).
        let coord = (find_coordinator(&cluster, 0).await.node_id - 1) as usize;
        let others: Vec<u32> = cluster
            .live()
            .filter(|(i, _)| *i != coord)
            .map(|(_, b)| b.pid())
            .collect();
        for pid in &others {
            // SAFETY: signalling our own child processes.
            unsafe { libc::kill(*pid as i32, libc::SIGSTOP) };
        }
        let mut code = ErrorCode::None;
        for _ in 0..300 {
            let r = cluster.client(coord).await.call(fetch_g_d0()).await;
            code = ErrorCode::from_i32(r.error_code);
            if code == ErrorCode::NotCoordinator {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for pid in &others {
            // SAFETY: as above.
            unsafe { libc::kill(*pid as i32, libc::SIGCONT) };
        }
        assert_eq!(
            code,
            ErrorCode::NotCoordinator,
            "an isolated coordinator kept answering"
        );
        // Back in touch, the group is served again with its commit.
        let all: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
        let admin =
            weir_client::Admin::new(weir_client::ClientConfig::new(&all.join(","))).unwrap();
        let mut back = Err("never asked".to_string());
        for _ in 0..100 {
            back = admin
                .group_offsets("g", "d")
                .await
                .map_err(|e| e.to_string());
            if back.as_ref().is_ok_and(|o| o == &vec![(0, 42)]) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(back, Ok(vec![(0, 42)]));
    }
}

/// OffsetFetch of group "g" for partition 0 of topic "d".
fn fetch_g_d0() -> v1::OffsetFetchRequest {
    v1::OffsetFetchRequest {
        group_id: "g".into(),
        topics: vec![v1::OffsetFetchTopic {
            name: "d".into(),
            partition_indexes: vec![0],
        }],
        all_topics: false,
        require_stable: false,
    }
}

/// Which broker coordinates group "g", as broker `at` says.
async fn find_coordinator(cluster: &Cluster, at: usize) -> v1::FindCoordinatorResponse {
    cluster
        .client(at)
        .await
        .call(v1::FindCoordinatorRequest {
            key: "g".into(),
            key_type: 0,
        })
        .await
}

/// (base offset, CRC) of every batch in `dir`'s segment files, in offset order.
fn batches_on_disk(dir: &Path) -> Vec<(i64, u32)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        // Preallocated space after the last batch reads as an invalid batch: stop there.
        for item in weir_protocol::batch::BatchIter::new(&bytes, true) {
            let Ok((h, _)) = item else { break };
            out.push((h.base_offset, h.crc));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_leader_cuts_what_nobody_else_has() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    // Long enough that followers paused for a moment are not fenced meanwhile.
    cluster.config = CONFIG.replace(
        "broker_session_timeout_ms = 1500",
        "broker_session_timeout_ms = 6000",
    );
    cluster.start_all();
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("v", 1, 3, &[])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let (leader, _, _) = wait_isr(&cluster, ctl, "v", |s| s.0 > 0 && s.2.len() == 3).await;
    let l = (leader - 1) as usize;
    let mut c = cluster.client(l).await;
    for i in 0..50 {
        let value = format!("committed-{i}");
        let r = produce_one(&mut c, "v", &value, -1).await;
        assert_eq!(r.error_code, 0, "{r:?}");
    }

    // The followers pause; the leader takes acks=1 writes nobody else gets, then dies.
    let followers: Vec<usize> = (0..3).filter(|i| *i != l).collect();
    let pids: Vec<u32> = followers
        .iter()
        .map(|i| cluster.members[*i].broker.as_ref().unwrap().pid())
        .collect();
    for pid in &pids {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(*pid as i32, libc::SIGSTOP) };
    }
    for i in 0..20 {
        let value = format!("lost-{i}");
        let r = produce_one(&mut c, "v", &value, 1).await;
        assert_eq!(r.error_code, 0, "{r:?}");
    }
    // A client claiming to be a replica (an id the metadata does not list) is served as a
    // consumer: nothing past the high watermark, so none of those uncommitted records.
    // Its high-watermark checkpoint, written after those records, holds what the ISR had,
    // not its log end: were it to restart and lead at once, it would serve none of them.
    let checkpoint = cluster.members[l]
        .dir
        .path()
        .join("replication-offset-checkpoint");
    let written_after = std::time::SystemTime::now();
    wait_until(
        || {
            std::fs::metadata(&checkpoint)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > written_after)
        },
        "the checkpoint is written again",
    )
    .await;
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    let hw: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("v 0 "))
        .expect("v-0 in the checkpoint")
        .parse()
        .unwrap();
    assert!((50..70).contains(&hw), "checkpointed high watermark {hw}");
    let mut spoof = common::fetch_req("v", 0, 50, 0, 1);
    spoof.replica_id = Some(99);
    let r = c.call(spoof).await;
    let part = &r.responses[0].partitions[0];
    assert_eq!(part.error_code, 0, "{part:?}");
    let served = common::records(&part.records);
    assert!(
        part.high_watermark < 70 && served.iter().all(|(o, _)| *o < part.high_watermark),
        "uncommitted records served to a non-replica: hw {}, offsets {:?}",
        part.high_watermark,
        served.iter().map(|(o, _)| o).collect::<Vec<_>>()
    );
    cluster.members[l].broker.take().unwrap().kill9();
    for pid in &pids {
        // SAFETY: as above.
        unsafe { libc::kill(*pid as i32, libc::SIGCONT) };
    }

    // A follower takes over (it had everything committed) and takes new writes at offsets
    // the dead leader had used for records that never left it (a fetch answered just
    // before the pause may have carried the first few).
    let (new_leader, _, _) =
        wait_isr(&cluster, followers[0], "v", |s| s.0 > 0 && s.0 != leader).await;
    let mut c = cluster.client((new_leader - 1) as usize).await;
    let mut first = None;
    for i in 0..30 {
        let value = format!("new-{i}");
        let r = produce_one(&mut c, "v", &value, -1).await;
        let p = &r;
        assert_eq!(p.error_code, 0, "{p:?}");
        let first = *first.get_or_insert(p.base_offset);
        assert_eq!(p.base_offset, first + i, "{p:?}");
    }
    let first = first.unwrap();
    assert!(
        (50..70).contains(&first),
        "offsets reused: new records from {first}"
    );

    // The old leader returns as a follower, cuts its 20 records (OffsetForLeaderEpoch),
    // fetches the new ones and rejoins the ISR: three byte-identical logs.
    cluster.spawn(l);
    cluster.members[l]
        .broker
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(60));
    wait_isr(&cluster, followers[0], "v", |s| s.2.len() == 3).await;
    let logs: Vec<Vec<(i64, u32)>> = cluster
        .members
        .iter()
        .map(|m| batches_on_disk(&m.dir.path().join("v-0")))
        .collect();
    assert_eq!(logs[0].len() as i64, first + 30, "{:?}", logs[0]);
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[1], logs[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_acknowledges_nothing_it_then_loses() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("z", 1, 3, &[("min.insync.replicas", "2")])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let (leader, _, _) = wait_isr(&cluster, ctl, "z", |s| s.0 > 0 && s.2.len() == 3).await;
    let bootstrap: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
    let bootstrap = bootstrap.join(",");
    // A short request timeout, so requests stuck at the paused leader are retried soon.
    let mut client_config = weir_client::ClientConfig::new(&bootstrap);
    client_config.request_timeout = Duration::from_secs(3);
    let producer = std::sync::Arc::new(
        weir_client::Producer::new(
            client_config,
            weir_client::ProducerConfig {
                acks: weir_client::Acks::All,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    let mut acked = produce_acked_to(&producer, "z", "before", 200).await;
    assert_eq!(acked.len(), 200);

    // SIGSTOP the leader with writes on their way to it, past the session timeout: the
    // others fence it and elect a leader; then it resumes as a zombie that still thinks
    // it leads, until the metadata tells it otherwise.
    let l = (leader - 1) as usize;
    let pid = cluster.members[l].broker.as_ref().unwrap().pid();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let p = producer.clone();
    let during = tokio::spawn(async move { produce_acked_to(&p, "z", "during", 200).await });
    let other = (l + 1) % 3;
    wait_isr(&cluster, other, "z", |s| s.0 > 0 && s.0 != leader).await;
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    let during = during.await.unwrap();
    eprintln!(
        "zombie test: {} of 200 written during the pause acknowledged",
        during.len()
    );
    acked.extend(during);
    acked.extend(produce_acked_to(&producer, "z", "after", 200).await);
    assert!(acked.len() > 200, "writes go on through the new leader");

    // Every acknowledged record is there once, at its offset; the zombie acknowledged
    // nothing that was then cut from its log (it would be missing here).
    let got = read_all_from(&bootstrap, "z", acked.len()).await;
    let stored: std::collections::BTreeMap<i64, String> = got.iter().cloned().collect();
    for (offset, value) in &acked {
        assert_eq!(stored.get(offset), Some(value), "acknowledged at {offset}");
    }
    let mut values: Vec<&String> = got.iter().map(|(_, v)| v).collect();
    let total = values.len();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), total, "no record stored twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_a_corrupt_tail_recovers_and_fetches_it_again() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("f", 1, 3, &[])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let (leader, _, _) = wait_isr(&cluster, ctl, "f", |s| s.0 > 0 && s.2.len() == 3).await;
    let mut c = cluster.client((leader - 1) as usize).await;
    for i in 0..100 {
        let value = format!("record-{i}");
        let r = produce_one(&mut c, "f", &value, -1).await;
        assert_eq!(r.error_code, 0, "{r:?}");
    }

    // kill -9 a follower, then damage the end of its log as a crash mid-write would: the
    // last batch gets a flipped byte and garbage follows it.
    let f = (0..3).find(|i| *i as i32 + 1 != leader).unwrap();
    cluster.members[f].broker.take().unwrap().kill9();
    let seg = cluster.members[f]
        .dir
        .path()
        .join("f-0/00000000000000000000.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut valid = 0usize;
    for item in weir_protocol::batch::BatchIter::new(&bytes, true) {
        let Ok((_, b)) = item else { break };
        valid += b.len();
    }
    assert!(valid > 20, "the follower had the records");
    bytes[valid - 10] ^= 0xff;
    bytes.truncate(valid);
    bytes.extend_from_slice(&[0xab; 64]);
    std::fs::write(&seg, &bytes).unwrap();

    // It restarts, cuts the damaged batch during recovery, fetches it again from the
    // leader and rejoins the ISR: three identical logs.
    cluster.spawn(f);
    cluster.members[f]
        .broker
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(60));
    let other = (f + 1) % 3;
    wait_isr(&cluster, other, "f", |s| s.2.len() == 3).await;
    let fdir = cluster.members[f].dir.path().join("f-0");
    wait_until(
        || batches_on_disk(&fdir).len() == 100,
        "the follower re-fetched",
    )
    .await;
    let logs: Vec<Vec<(i64, u32)>> = cluster
        .members
        .iter()
        .map(|m| batches_on_disk(&m.dir.path().join("f-0")))
        .collect();
    assert_eq!(logs[0].len(), 100, "{:?}", logs[0]);
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[1], logs[2]);
}

/// `batch` to partition 0 of `topic` with acks=all through `c`, retrying (bounded) while
/// the broker is not the partition's leader yet or its ISR is below min.insync.replicas
/// (refused before any append, so a retry cannot duplicate).
async fn produce_one_batch(
    c: &mut Client,
    topic: &str,
    batch: bytes::Bytes,
) -> v1::PartitionProduceResponse {
    let mut last = None;
    for _ in 0..200 {
        let r = c
            .call(common::produce_req(topic, 0, batch.clone(), -1))
            .await;
        let p = r.responses[0].partition_responses[0].clone();
        match ErrorCode::from_i32(p.error_code) {
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::NotLeaderOrFollower
            | ErrorCode::NotEnoughReplicas => {
                last = Some(p);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => return p,
        }
    }
    panic!("{topic}-0 never accepted the batch: {last:?}");
}

/// One record to partition 0 of `topic` through `c`, retrying (bounded) while the broker
/// does not know the partition yet or is not its leader yet (its metadata is a moment
/// behind the controller's): nothing was appended then, so a retry cannot duplicate.
async fn produce_one(
    c: &mut Client,
    topic: &str,
    value: &str,
    acks: i32,
) -> v1::PartitionProduceResponse {
    let mut last = None;
    for _ in 0..200 {
        let r = c
            .call(common::produce_req(
                topic,
                0,
                batch(&[value.as_bytes()], 1),
                acks,
            ))
            .await;
        let p = r.responses[0].partition_responses[0].clone();
        match ErrorCode::from_i32(p.error_code) {
            ErrorCode::UnknownTopicOrPartition | ErrorCode::NotLeaderOrFollower => {
                last = Some(p);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ => return p,
        }
    }
    panic!("{topic}-0 never accepted a record: {last:?}");
}

/// The ongoing moves of `r`, as the controller lists them.
async fn moves_of(admin: &weir_client::Admin) -> Vec<weir_client::reassign_admin::OngoingMove> {
    admin.list_reassignments(&["r".to_string()]).await.unwrap()
}

/// Polls (bounded) until `r`'s reassignment throttle reads `want` at the controller.
async fn wait_throttle(admin: &weir_client::Admin, want: &str) {
    let mut last = None;
    for _ in 0..600 {
        let d = admin.describe_topic("r").await.unwrap();
        last = d
            .configs
            .get("follower.replication.throttled.rate")
            .cloned();
        if last.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("throttle of r never became {want}: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_under_load_to_a_new_replica_set_without_losing_a_record() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("r", 1, 2, &[])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let (leader, _, isr) = wait_isr(&cluster, ctl, "r", |s| s.0 > 0 && s.2.len() == 2).await;
    let outside = (1..=3).find(|b| !isr.contains(b)).unwrap();
    let other = *isr.iter().find(|b| **b != leader).unwrap();

    let bootstrap: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
    let bootstrap = bootstrap.join(",");
    let producer = std::sync::Arc::new(
        weir_client::Producer::new(
            weir_client::ClientConfig::new(&bootstrap),
            weir_client::ProducerConfig {
                acks: weir_client::Acks::All,
                idempotence: true,
                ..Default::default()
            },
        )
        .await
        .unwrap(),
    );
    // 3,000 records of ~100 bytes before the move: at the 100 kB/s throttle the new
    // replica needs a few seconds to catch up, so the move is seen in progress.
    let pad = "x".repeat(90);
    let mut acked = produce_acked_to(&producer, "r", &format!("pre{pad}"), 3000).await;
    assert_eq!(acked.len(), 3000);

    // Load keeps coming while the partition moves (bounded in count and time).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (producer, stop) = (producer.clone(), stop.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            for round in 0..2000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed)
                    || std::time::Instant::now() > deadline
                {
                    break;
                }
                acked.extend(produce_acked_to(&producer, "r", &format!("load{round}"), 20).await);
            }
            acked
        })
    };

    // The leader leaves the replica set: `outside` joins, then takes over.
    let admin = weir_client::Admin::new(weir_client::ClientConfig::new(
        &cluster.members[ctl].broker.as_ref().unwrap().addr,
    ))
    .unwrap();
    let target = vec![outside, other];
    let refused = admin
        .reassign_partitions(
            &[weir_client::reassign_admin::Move {
                topic: "r".into(),
                partition: 0,
                replicas: target.clone(),
            }],
            Some(100_000),
        )
        .await
        .unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    let ongoing = moves_of(&admin).await;
    assert_eq!(ongoing.len(), 1, "the throttled move is still running");
    assert_eq!(
        (ongoing[0].adding.clone(), ongoing[0].removing.clone()),
        (vec![outside], vec![leader])
    );
    wait_throttle(&admin, "100000").await;
    let text = common::metrics_text(&cluster.members[ctl].metrics, |t| {
        t.contains("weir_cluster_reassigning_partitions 1")
    })
    .await;
    assert_eq!(
        common::metric(&text, "weir_cluster_reassigning_partitions"),
        Some(1.0)
    );

    // It completes: the new set, led by a member of it, and the throttle removed.
    for _ in 0..1200 {
        if moves_of(&admin).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        moves_of(&admin).await.is_empty(),
        "the move never completed"
    );
    let (new_leader, _, isr) = wait_isr(&cluster, ctl, "r", |s| s.0 > 0 && s.0 != leader).await;
    assert!(target.contains(&new_leader), "leader {new_leader}");
    let mut want = target.clone();
    want.sort();
    assert_eq!(isr, want);
    wait_throttle(&admin, "0").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = load.await.unwrap();
    assert!(!during.is_empty(), "nothing acknowledged during the move");
    acked.extend(during);

    // Every acknowledged record is there, once, at the offset it was acknowledged with.
    let mut by_offset = std::collections::BTreeMap::new();
    for (o, v) in &acked {
        assert!(
            by_offset.insert(*o, v.clone()).is_none(),
            "offset {o} acked twice"
        );
    }
    let read = read_all_from(&bootstrap, "r", acked.len()).await;
    let read_map: std::collections::BTreeMap<i64, String> = read.iter().cloned().collect();
    assert_eq!(read_map.len(), read.len(), "an offset was read twice");
    for (o, v) in &by_offset {
        assert_eq!(read_map.get(o), Some(v), "acknowledged record at {o} lost");
    }
    let mut values: Vec<&String> = read_map.values().collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), read_map.len(), "a record was appended twice");

    // The old leader deleted its copy; the two replicas hold byte-identical logs.
    let old_dir = cluster.members[(leader - 1) as usize]
        .dir
        .path()
        .join("r-0");
    wait_until(|| !exists(&old_dir), "the removed replica deletes its log").await;
    let dir_of = |b: i32| cluster.members[(b - 1) as usize].dir.path().join("r-0");
    wait_until(
        || batches_on_disk(&dir_of(outside)) == batches_on_disk(&dir_of(other)),
        "the two replicas hold the same batches",
    )
    .await;

    // A move that cannot finish (1 kB/s for ~400 kB) is cancelled: the partition goes back
    // to the replicas it had and the broker it was adding deletes what it fetched.
    let refused = admin
        .reassign_partitions(
            &[weir_client::reassign_admin::Move {
                topic: "r".into(),
                partition: 0,
                replicas: vec![leader, other],
            }],
            Some(1_000),
        )
        .await
        .unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(moves_of(&admin).await[0].adding, vec![leader]);
    wait_until(|| exists(&old_dir), "the added replica opens its log").await;
    let refused = admin
        .cancel_reassignments(&[("r".to_string(), 0)])
        .await
        .unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(moves_of(&admin).await.is_empty());
    let after = placement(&mut cluster.client(ctl).await, "r").await;
    let mut replicas = after[0].3.clone();
    replicas.sort();
    assert_eq!(replicas, want);
    wait_until(
        || !exists(&old_dir),
        "the cancelled replica deletes its log",
    )
    .await;
    wait_throttle(&admin, "0").await;
    let again = admin
        .cancel_reassignments(&[("r".to_string(), 0)])
        .await
        .unwrap();
    assert_eq!(again[0].code, ErrorCode::NoReassignmentInProgress);
}

/// A size-capped tmpfs mounted on a directory for the test's lifetime (needs root, as CI
/// has); unmounted on drop, even when the test fails.
struct Tmpfs {
    dir: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    fn resize(&self, size: &str) {
        let out = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the broker may still hold files open in it.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_takes_a_follower_out_of_the_isr_and_the_leader_keeps_going() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    cluster.start_all();
    let ctl = cluster.controller().await;
    // Two replicas first; the third broker joins through a reassignment, with the
    // partition's directory on a 512 kB tmpfs that it is about to outgrow.
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("full", 1, 2, &[("min.insync.replicas", "2")])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    let (leader, _, isr) = wait_isr(&cluster, ctl, "full", |s| s.0 > 0 && s.2.len() == 2).await;
    let x = (1..=3).find(|b| !isr.contains(b)).unwrap();
    let disk = Tmpfs::mount(
        &cluster.members[(x - 1) as usize].dir.path().join("full-0"),
        "512k",
    );

    let bootstrap: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
    let bootstrap = bootstrap.join(",");
    let producer = weir_client::Producer::new(
        weir_client::ClientConfig::new(&bootstrap),
        weir_client::ProducerConfig {
            acks: weir_client::Acks::All,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let pad = "x".repeat(190);
    let mut acked = produce_acked_to(&producer, "full", &format!("a{pad}"), 500).await;
    assert_eq!(acked.len(), 500);
    let admin = weir_client::Admin::new(weir_client::ClientConfig::new(&bootstrap)).unwrap();
    // The leader stays first, so the preferred-leader rebalance leaves it in place.
    let other = *isr.iter().find(|b| **b != leader).unwrap();
    let target = vec![leader, other, x];
    let refused = admin
        .reassign_partitions(
            &[weir_client::reassign_admin::Move {
                topic: "full".into(),
                partition: 0,
                replicas: target,
            }],
            None,
        )
        .await
        .unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    wait_isr(&cluster, ctl, "full", |s| s.2.len() == 3).await;

    // ~600 kB more: x's disk fills, its appends fail, the leader drops it from the ISR
    // and goes on acknowledging with the two replicas that remain.
    for round in 0..6 {
        let got = produce_acked_to(&producer, "full", &format!("b{round}{pad}"), 500).await;
        assert_eq!(got.len(), 500, "round {round} not all acknowledged");
        acked.extend(got);
    }
    let (l, _, isr) = wait_isr(&cluster, ctl, "full", |s| s.2.len() == 2).await;
    assert_eq!(l, leader, "the leader stayed");
    assert!(!isr.contains(&x), "{isr:?}");
    let x_broker = cluster.members[(x - 1) as usize].broker.as_mut().unwrap();
    assert!(x_broker.is_running(), "the full broker is still up");

    // Space comes back: x catches up and rejoins; the three logs end identical.
    disk.resize("16m");
    wait_isr(&cluster, ctl, "full", |s| s.2.len() == 3).await;
    let read = read_all_from(&bootstrap, "full", acked.len()).await;
    let read: std::collections::BTreeMap<i64, String> = read.into_iter().collect();
    for (o, v) in &acked {
        assert_eq!(read.get(o), Some(v), "acknowledged record at {o} lost");
    }
    let dir_of = |b: usize| cluster.members[b].dir.path().join("full-0");
    wait_until(
        || {
            let logs: Vec<_> = (0..3).map(|b| batches_on_disk(&dir_of(b))).collect();
            logs[0] == logs[1] && logs[1] == logs[2]
        },
        "the three replicas hold the same batches",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_metadata_log_cannot_be_written_halts_and_recovers_on_restart() {
    let _serial = SERIAL.lock().await;
    let mut cluster = Cluster::new();
    // Broker 3's metadata log lives on a 256 kB tmpfs that metadata changes will fill.
    let quorum = cluster.members[2].dir.path().join("meta").join("quorum");
    let disk = Tmpfs::mount(&quorum, "256k");
    cluster.start_all();
    cluster.controller().await;
    assert!(exists(&quorum.join("raft.log")), "the tmpfs holds the log");

    // Metadata changes until broker 3 cannot write its log: it halts (Kafka's behaviour),
    // instead of serving on a frozen image.
    let bootstrap: Vec<String> = cluster.live().map(|(_, b)| b.addr.clone()).collect();
    let mut config = weir_client::ClientConfig::new(&bootstrap.join(","));
    config.request_timeout = Duration::from_secs(5);
    let admin = weir_client::Admin::new(config).unwrap();
    let mut halted = None;
    for i in 0..3000 {
        if !cluster.members[2].broker.as_mut().unwrap().is_running() {
            halted = Some(i);
            break;
        }
        // Errors are expected once the controller is the broker that halts.
        let _ = admin
            .create_topic(weir_client::admin::NewTopic::new(
                format!("fill-{i}-{}", "x".repeat(100)),
                1,
            ))
            .await;
    }
    assert!(
        halted.is_some(),
        "broker 3 kept running with a full metadata disk"
    );
    cluster.members[2].broker.take();

    // The other two carry on as a quorum of two.
    let ctl = cluster.controller().await;
    let created = cluster
        .client(ctl)
        .await
        .create_topic_rf("after", 1, 2, &[])
        .await;
    assert_eq!(created.error_code, 0, "{created:?}");

    // With space back, it restarts from its log and catches up to an identical image.
    disk.resize("64m");
    cluster.spawn(2);
    cluster.members[2]
        .broker
        .as_mut()
        .unwrap()
        .wait_ready(Duration::from_secs(60));
    cluster.converged().await;
    drop(disk);
}
