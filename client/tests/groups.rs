//! Group consumers against the real broker: sharing partitions, exactly one owner per
//! record, an incremental join that does not stop the others (pauses measured and
//! printed), and a dead member's partitions moving within the session timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client_config, Broker};
use weir_client::admin::NewTopic;
use weir_client::{
    Admin, ConsumerConfig, GroupConfig, GroupConsumer, OffsetReset, Producer, ProducerConfig,
    ProducerRecord,
};

const BROKER_CONFIG: &str = "[groups]\noffsets_topic_partitions = 4\nmin_session_timeout_ms = 500\ninitial_rebalance_delay_ms = 300\n";

type Seen = Arc<Mutex<Vec<(Instant, (String, i32), i64)>>>;

struct Running {
    seen: Seen,
    owned: Arc<Mutex<Vec<(String, i32)>>>,
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

async fn group_consumer(addr: &str, group: &str, session_ms: u64) -> GroupConsumer {
    let mut cfg = GroupConfig::new(group);
    cfg.session_timeout = Duration::from_millis(session_ms);
    cfg.heartbeat_interval = Duration::from_millis(100);
    cfg.auto_commit_interval = Some(Duration::from_millis(200));
    let cc = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(50),
        ..ConsumerConfig::default()
    };
    let mut c = GroupConsumer::new(client_config(addr), cc, cfg)
        .await
        .unwrap();
    c.subscribe(&["t"]);
    c
}

fn spawn(mut c: GroupConsumer) -> Running {
    let seen: Seen = Arc::default();
    let owned = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (s, o, st) = (seen.clone(), owned.clone(), stop.clone());
    let handle = tokio::spawn(async move {
        while !st.load(Ordering::Acquire) {
            let records = c.poll(Duration::from_millis(50)).await.unwrap();
            let now = Instant::now();
            {
                let mut s = s.lock().unwrap();
                for r in &records {
                    s.push((now, (r.topic.to_string(), r.partition), r.offset));
                }
            }
            *o.lock().unwrap() = c.assignment();
        }
        c.close().await.unwrap();
    });
    Running {
        seen,
        owned,
        stop,
        handle,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn owned_counts(members: &[Running]) -> Vec<usize> {
    members
        .iter()
        .map(|m| m.owned.lock().unwrap().len())
        .collect()
}

/// Longest gap between consecutive records a member received inside [from, to].
fn longest_pause(seen: &Seen, from: Instant, to: Instant) -> Duration {
    let s = seen.lock().unwrap();
    let mut times: Vec<Instant> = s
        .iter()
        .map(|e| e.0)
        .filter(|t| *t >= from && *t <= to)
        .collect();
    times.dedup();
    let mut prev = from;
    let mut max = Duration::ZERO;
    for t in times {
        max = max.max(t - prev);
        prev = t;
    }
    max.max(to.saturating_duration_since(prev))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_members_share_six_partitions_and_a_fourth_joins_without_stopping_them() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let admin = Admin::new(client_config(&broker.addr)).unwrap();
    admin
        .create_topic(NewTopic {
            name: "t".into(),
            partitions: 6,
            replication_factor: -1,
            configs: vec![],
        })
        .await
        .unwrap();

    // A steady trickle of records into every partition for the whole test.
    let producer = Producer::new(client_config(&broker.addr), ProducerConfig::default())
        .await
        .unwrap();
    let producing = Arc::new(AtomicBool::new(true));
    let p_flag = producing.clone();
    let prod = tokio::spawn(async move {
        let mut n = 0i64;
        while p_flag.load(Ordering::Acquire) {
            for p in 0..6 {
                // Not awaiting delivery keeps the trickle steady (~1 record per partition
                // per 5 ms), so gaps in consumption measure the consumers, not the producer.
                drop(
                    producer
                        .enqueue(ProducerRecord::new("t", format!("{n}")).with_partition(p))
                        .await
                        .unwrap(),
                );
                n += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        producer.flush().await;
        producer.close().await;
        n
    });

    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(spawn(group_consumer(&broker.addr, "g", 3000).await));
    }
    wait_for("2 partitions each", || {
        owned_counts(&members) == vec![2, 2, 2]
    })
    .await;
    let mut all = BTreeSet::new();
    for m in &members {
        for tp in m.owned.lock().unwrap().iter() {
            assert!(all.insert(tp.clone()), "{tp:?} owned twice");
        }
    }
    assert_eq!(all.len(), 6);

    // The fourth member.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let join_started = Instant::now();
    members.push(spawn(group_consumer(&broker.addr, "g", 3000).await));
    wait_for("the fourth member owns a partition", || {
        let c = owned_counts(&members);
        c[3] >= 1 && c.iter().sum::<usize>() == 6
    })
    .await;
    let settled = Instant::now();
    println!(
        "fourth member owned its partition {:?} after joining",
        settled - join_started
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (i, m) in members[..3].iter().enumerate() {
        let pause = longest_pause(&m.seen, join_started, settled);
        println!("member {i}: longest pause in fetching during the rebalance: {pause:?}");
    }

    producing.store(false, Ordering::Release);
    let produced = prod.await.unwrap();
    // Everything produced is consumed exactly once across the group.
    wait_for("every record consumed", || {
        let mut distinct = BTreeSet::new();
        for m in &members {
            for (_, tp, o) in m.seen.lock().unwrap().iter() {
                distinct.insert((tp.clone(), *o));
            }
        }
        distinct.len() as i64 == produced
    })
    .await;
    let mut counts: BTreeMap<((String, i32), i64), usize> = BTreeMap::new();
    for m in &members {
        for (_, tp, o) in m.seen.lock().unwrap().iter() {
            *counts.entry((tp.clone(), *o)).or_default() += 1;
        }
    }
    let dupes = counts.values().filter(|c| **c > 1).count();
    println!("{produced} records, {dupes} delivered twice");
    assert_eq!(dupes, 0, "no member died, so no record is processed twice");
    for m in members {
        m.stop.store(true, Ordering::Release);
        m.handle.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_members_partitions_move_within_the_session_timeout() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let admin = Admin::new(client_config(&broker.addr)).unwrap();
    admin
        .create_topic(NewTopic {
            name: "t".into(),
            partitions: 6,
            replication_factor: -1,
            configs: vec![],
        })
        .await
        .unwrap();
    let a = spawn(group_consumer(&broker.addr, "d", 1000).await);
    let b = spawn(group_consumer(&broker.addr, "d", 1000).await);
    let members = [a, b];
    wait_for("3 partitions each", || owned_counts(&members) == vec![3, 3]).await;
    let [a, b] = members;
    // "Kill" b: abort its task; the consumer is dropped without leaving.
    b.handle.abort();
    let killed = Instant::now();
    wait_for("a owns everything", || a.owned.lock().unwrap().len() == 6).await;
    println!(
        "partitions of the dead member moved after {:?} (session 1000 ms)",
        killed.elapsed()
    );
    a.stop.store(true, Ordering::Release);
    a.handle.await.unwrap();
}

fn values(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_group_consume_commits_what_it_printed_and_group_commands_work() {
    use common::{weir, weir_ok};
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    weir_ok(&a, &["topic", "create", "t", "--partitions", "3"], b"");
    let input: String = (0..30).map(|i| format!("k{i}:v{i}\n")).collect();
    weir_ok(
        &a,
        &["produce", "t", "--key-separator", ":"],
        input.as_bytes(),
    );

    let first = weir_ok(
        &a,
        &[
            "consume",
            "t",
            "--group",
            "cg",
            "--from-beginning",
            "--max-messages",
            "10",
            "--session-timeout-ms",
            "2000",
        ],
        b"",
    );
    let first = values(&first);
    assert_eq!(first.len(), 10);
    let d: serde_json::Value = serde_json::from_str(&weir_ok(
        &a,
        &["--output", "json", "group", "describe", "cg"],
        b"",
    ))
    .unwrap();
    assert_eq!(d["group"], "cg");
    assert_eq!(d["state"], "Empty", "left cleanly: {d}");
    assert!(d["members"].as_array().unwrap().is_empty());
    let committed: i64 = d["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, 10, "commits exactly what it printed: {d}");
    let lag: i64 = d["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(
        committed + lag,
        30 - untouched(&d, 30),
        "lag = log end - committed"
    );

    // Resumes where it stopped (--from-beginning only affects uncommitted partitions).
    let second = weir_ok(
        &a,
        &[
            "consume",
            "t",
            "--group",
            "cg",
            "--from-beginning",
            "--timeout-ms",
            "1500",
            "--session-timeout-ms",
            "2000",
        ],
        b"",
    );
    let mut all: Vec<String> = first.into_iter().chain(values(&second)).collect();
    all.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(
        all, expected,
        "every record printed exactly once across the two runs"
    );

    let list = weir_ok(&a, &["group", "list"], b"");
    assert!(list.contains("cg\tEmpty"), "{list}");
    let plan = weir_ok(
        &a,
        &[
            "group",
            "reset-offsets",
            "cg",
            "--topic",
            "t",
            "--to-earliest",
        ],
        b"",
    );
    assert!(plan.contains("CURRENT"), "{plan}");
    weir_ok(
        &a,
        &[
            "group",
            "reset-offsets",
            "cg",
            "--topic",
            "t",
            "--shift-by",
            "-2",
            "--execute",
        ],
        b"",
    );
    let d: serde_json::Value = serde_json::from_str(&weir_ok(
        &a,
        &["--output", "json", "group", "describe", "cg"],
        b"",
    ))
    .unwrap();
    let lag: i64 = d["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 6, "shifted back by 2 in each of 3 partitions: {d}");
    weir_ok(&a, &["group", "delete", "cg"], b"");
    let out = weir(&a, &["group", "describe", "cg"], b"");
    assert!(!out.status.success());
}

/// Partitions never committed contribute their whole length to "untouched".
fn untouched(d: &serde_json::Value, total: i64) -> i64 {
    let covered: i64 = d["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["log_end_offset"].as_i64().unwrap())
        .sum();
    total - covered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_cli_consumers_partitions_move_within_the_session_timeout() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    common::weir_ok(&a, &["topic", "create", "t", "--partitions", "6"], b"");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "consume",
            "t",
            "--group",
            "kg",
            "--session-timeout-ms",
            "1000",
        ])
        .env("WEIR_BOOTSTRAP", &a)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin = Admin::new(client_config(&a)).unwrap();
    wait_for_async_member(&admin, "kg", 1).await;
    let lib = spawn(group_consumer(&a, "kg", 3000).await);
    wait_for("the library member shares the partitions", || {
        let n = lib.owned.lock().unwrap().len();
        n > 0 && n < 6
    })
    .await;
    // std's Child::kill is SIGKILL on Unix: no leave, no final commit.
    child.kill().unwrap();
    let _ = child.wait();
    let killed = Instant::now();
    wait_for("the survivor owns everything", || {
        lib.owned.lock().unwrap().len() == 6
    })
    .await;
    println!(
        "kill -9 of a CLI consumer: partitions moved after {:?} (session 1000 ms)",
        killed.elapsed()
    );
    lib.stop.store(true, Ordering::Release);
    lib.handle.await.unwrap();
}

async fn wait_for_async_member(admin: &Admin, group: &str, n: usize) {
    for _ in 0..200 {
        if let Ok(d) = admin.describe_group(group).await {
            if d.members.len() >= n && d.state == "Stable" {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("group {group} never reached {n} members");
}
