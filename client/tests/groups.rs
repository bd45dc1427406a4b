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
    ProducerRecord, TopicPartition,
};

const BROKER_CONFIG: &str = "[groups]\noffsets_topic_partitions = 4\nmin_session_timeout_ms = 500\ninitial_rebalance_delay_ms = 300\n";

type Seen = Arc<Mutex<Vec<(Instant, TopicPartition, i64)>>>;

struct Running {
    seen: Seen,
    owned: Arc<Mutex<Vec<TopicPartition>>>,
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
                    s.push((now, r.topic_partition(), r.offset));
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
async fn three_members_share_six_partitions_and_a_fourth_joins_with_every_record_consumed_once() {
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
    // Timings are printed for whoever reads the log, never asserted (speed belongs in
    // benches); what is asserted is that no record is lost or processed twice.
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
    let mut counts: BTreeMap<(TopicPartition, i64), usize> = BTreeMap::new();
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
async fn a_dead_members_partitions_move_to_the_survivor_after_its_session_expires() {
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
async fn a_killed_cli_consumers_partitions_move_to_the_survivor_after_its_session_expires() {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_subscription_matches_whole_names_and_picks_up_new_topics() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let admin = Admin::new(client_config(&broker.addr)).unwrap();
    let create = |name: &'static str| {
        let admin = &admin;
        async move {
            admin
                .create_topic(NewTopic {
                    name: name.into(),
                    partitions: 2,
                    replication_factor: -1,
                    configs: vec![],
                })
                .await
                .unwrap();
        }
    };
    for t in ["rx-a", "rx-b", "old-rx-c"] {
        create(t).await;
    }
    let mut cc = client_config(&broker.addr);
    // The pattern is re-matched at this age: short, so the new topic shows up quickly.
    cc.metadata_max_age = Duration::from_millis(200);
    let mut cfg = GroupConfig::new("rx");
    cfg.heartbeat_interval = Duration::from_millis(100);
    cfg.session_timeout = Duration::from_millis(3000);
    let mut c = GroupConsumer::new(cc, ConsumerConfig::default(), cfg)
        .await
        .unwrap();
    assert!(c.subscribe_regex("rx-(").await.is_err(), "bad pattern");
    c.subscribe_regex("rx-.*").await.unwrap();

    let topics = |c: &GroupConsumer| -> BTreeSet<String> {
        c.assignment().into_iter().map(|tp| tp.topic).collect()
    };
    let mut got = BTreeSet::new();
    for _ in 0..100 {
        c.poll(Duration::from_millis(50)).await.unwrap();
        got = topics(&c);
        if got.len() >= 2 {
            break;
        }
    }
    let want: BTreeSet<String> = ["rx-a", "rx-b"].map(String::from).into();
    assert_eq!(got, want, "whole-name match: old-rx-c is not subscribed");

    create("rx-new").await;
    for _ in 0..100 {
        c.poll(Duration::from_millis(50)).await.unwrap();
        got = topics(&c);
        if got.contains("rx-new") {
            break;
        }
    }
    assert!(
        got.contains("rx-new"),
        "new matching topic picked up: {got:?}"
    );
    assert_eq!(c.assignment().len(), 6);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_offsets_is_refused_while_the_group_has_members() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    common::weir_ok(&a, &["topic", "create", "t", "--partitions", "2"], b"");
    common::weir_ok(&a, &["produce", "t"], b"a\nb\nc\nd\n");
    let lib = spawn(group_consumer(&a, "busy", 3000).await);
    wait_for("the member owns both partitions", || {
        lib.owned.lock().unwrap().len() == 2
    })
    .await;
    let reset = [
        "group",
        "reset-offsets",
        "busy",
        "--topic",
        "t",
        "--to-earliest",
    ];
    // A dry run only reads, so it is allowed.
    let plan = common::weir_ok(&a, &reset, b"");
    assert!(plan.contains("CURRENT"), "{plan}");
    let out = common::weir(&a, &[&reset[..], &["--execute"]].concat(), b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused with a member: {stderr}");
    assert!(
        stderr.contains("active member") && stderr.contains("stop its consumers"),
        "{stderr}"
    );
    // The member's shape in `group describe`.
    let d: serde_json::Value = serde_json::from_str(&common::weir_ok(
        &a,
        &["--output", "json", "group", "describe", "busy"],
        b"",
    ))
    .unwrap();
    assert_eq!(d["state"], "Stable", "{d}");
    assert!(d["generation"].as_i64().unwrap() >= 1, "{d}");
    assert_eq!(d["protocol"], "sticky", "{d}");
    let m = &d["members"][0];
    assert!(!m["member_id"].as_str().unwrap().is_empty(), "{d}");
    assert!(m["client_id"].is_string() && m["host"].is_string(), "{d}");
    let mut parts: Vec<(String, i64)> = m["assignment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["topic"].as_str().unwrap().to_owned(),
                x["partition"].as_i64().unwrap(),
            )
        })
        .collect();
    parts.sort();
    assert_eq!(parts, vec![("t".into(), 0), ("t".into(), 1)], "{d}");
    lib.stop.store(true, Ordering::Release);
    lib.handle.await.unwrap();
    // Once the member left, the same command applies.
    common::weir_ok(&a, &[&reset[..], &["--execute"]].concat(), b"");
}

/// `--timeout-ms` counts time without records once partitions are owned: the join itself
/// (the broker's initial rebalance delay, 3 s by default) must not use it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_group_consume_timeout_does_not_count_the_join() {
    let broker = Broker::start_with_config(
        "[groups]\noffsets_topic_partitions = 2\ninitial_rebalance_delay_ms = 1500\n",
    );
    let a = broker.addr.clone();
    common::weir_ok(&a, &["topic", "create", "t", "--partitions", "2"], b"");
    common::weir_ok(&a, &["produce", "t"], b"a\nb\nc\nd\ne\n");
    let out = common::weir_ok(
        &a,
        &[
            "consume",
            "t",
            "--group",
            "slow-join",
            "--from-beginning",
            "--timeout-ms",
            "700",
        ],
        b"",
    );
    assert_eq!(out.lines().count(), 5, "{out}");
    // Without --from-beginning a new group starts at the end.
    let out = common::weir_ok(
        &a,
        &["consume", "t", "--group", "late", "--timeout-ms", "700"],
        b"",
    );
    assert_eq!(out.lines().count(), 0, "{out}");
}

/// Ctrl-C (SIGINT) stops `weir consume --group` cleanly: what it printed is committed and
/// it leaves the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_group_consume_on_ctrl_c_commits_what_it_printed_and_leaves() {
    use std::io::BufRead;
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    common::weir_ok(&a, &["topic", "create", "t", "--partitions", "3"], b"");
    let input: String = (0..12).map(|i| format!("k{i}:v{i}\n")).collect();
    common::weir_ok(
        &a,
        &["produce", "t", "--key-separator", ":"],
        input.as_bytes(),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["consume", "t", "--group", "sig", "--from-beginning"])
        .env("WEIR_BOOTSTRAP", &a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut n = 0;
        while n < 12 && lines.next().is_some() {
            n += 1;
        }
        (n, lines)
    });
    let (printed, rest) = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert_eq!(printed, 12);
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(rest.count(), 0, "nothing printed after the last record");
    let d: serde_json::Value = serde_json::from_str(&common::weir_ok(
        &a,
        &["--output", "json", "group", "describe", "sig"],
        b"",
    ))
    .unwrap();
    assert_eq!(d["state"], "Empty", "left the group: {d}");
    let committed: i64 = d["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, 12, "{d}");
}

#[derive(Default)]
struct Events {
    assigned: Vec<TopicPartition>,
    revoked: Vec<TopicPartition>,
}

struct Recorder(Arc<Mutex<Events>>);

impl weir_client::RebalanceListener for Recorder {
    fn on_revoked(&mut self, partitions: &[TopicPartition]) {
        self.0.lock().unwrap().revoked.extend_from_slice(partitions);
    }
    fn on_assigned(&mut self, partitions: &[TopicPartition]) {
        self.0
            .lock()
            .unwrap()
            .assigned
            .extend_from_slice(partitions);
    }
}

async fn static_member(addr: &str, instance: &str) -> GroupConsumer {
    let mut cfg = GroupConfig::new("st");
    cfg.session_timeout = Duration::from_millis(5000);
    cfg.heartbeat_interval = Duration::from_millis(100);
    cfg.auto_commit_interval = None;
    cfg.instance_id = Some(instance.into());
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

/// A member polled in its own task (a rebalance needs every member to poll), exposing
/// its assignment and generation.
/// (assignment, generation)
type Owned = Arc<Mutex<(Vec<TopicPartition>, i32)>>;

struct Background {
    owned: Owned,
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

fn background(mut c: GroupConsumer) -> Background {
    let owned: Owned = Arc::new(Mutex::new((Vec::new(), -1)));
    let stop = Arc::new(AtomicBool::new(false));
    let (o, st) = (owned.clone(), stop.clone());
    let handle = tokio::spawn(async move {
        while !st.load(Ordering::Acquire) {
            c.poll(Duration::from_millis(20)).await.unwrap();
            *o.lock().unwrap() = (c.assignment(), c.membership().1);
        }
        c.leave().await.unwrap();
    });
    Background {
        owned,
        stop,
        handle,
    }
}

/// Callbacks, commit_async/committed, and static membership: a static member that closes
/// and comes back with the same instance id gets its partitions back without a rebalance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_commits_and_a_static_member_restarting_without_a_rebalance() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    common::weir_ok(&a, &["topic", "create", "t", "--partitions", "2"], b"");
    let input: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    common::weir_ok(
        &a,
        &["produce", "t", "--key-separator", ":"],
        input.as_bytes(),
    );

    let events = Arc::new(Mutex::new(Events::default()));
    let mut m1 = static_member(&a, "one").await;
    m1.set_listener(Box::new(Recorder(events.clone())));
    let m2 = background(static_member(&a, "two").await);
    for _ in 0..200 {
        m1.poll(Duration::from_millis(20)).await.unwrap();
        if m1.assignment().len() == 1 && m2.owned.lock().unwrap().0.len() == 1 {
            break;
        }
    }
    let mine = m1.assignment();
    assert_eq!(mine.len(), 1, "each of two members owns one partition");
    {
        let e = events.lock().unwrap();
        assert!(e.assigned.contains(&mine[0]), "on_assigned called");
        // Whatever it owned before the second member joined was revoked through the
        // callback.
        assert!(e
            .assigned
            .iter()
            .all(|p| *p == mine[0] || e.revoked.contains(p)));
    }
    // Read its partition to the end (it may have done so already), then commit in the
    // background.
    for _ in 0..100 {
        if m1
            .poll(Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
    }
    m1.commit_async().await.unwrap().unwrap();
    let committed = m1.committed(&mine).await.unwrap();
    assert_eq!(committed.len(), 1);
    assert!(committed[0].1.is_some_and(|o| o > 0), "{committed:?}");

    let (theirs, generation) = m2.owned.lock().unwrap().clone();
    m1.close().await.unwrap();
    let mut back = static_member(&a, "one").await;
    for _ in 0..100 {
        back.poll(Duration::from_millis(20)).await.unwrap();
        if !back.assignment().is_empty() {
            break;
        }
    }
    assert_eq!(
        back.assignment(),
        mine,
        "the restarted instance gets its partition back"
    );
    // Resumes at the commit: nothing of its partition is read again.
    assert!(back
        .poll(Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        *m2.owned.lock().unwrap(),
        (theirs, generation),
        "no rebalance for the other member"
    );
    back.leave().await.unwrap();
    m2.stop.store(true, Ordering::Release);
    m2.handle.await.unwrap();
}

/// Heartbeats run in the background: a member that does not poll for longer than its
/// session timeout (slow processing) stays in the group with its partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_heartbeats_keep_a_slow_member_in_the_group() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    common::weir_ok(
        &broker.addr,
        &["topic", "create", "t", "--partitions", "2"],
        b"",
    );
    let mut c = group_consumer(&broker.addr, "slow", 800).await;
    for _ in 0..100 {
        c.poll(Duration::from_millis(20)).await.unwrap();
        if c.assignment().len() == 2 {
            break;
        }
    }
    assert_eq!(c.assignment().len(), 2);
    let before = c.membership();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    c.poll(Duration::from_millis(50)).await.unwrap();
    assert_eq!(c.membership(), before, "no rejoin needed");
    assert_eq!(c.assignment().len(), 2);
    let admin = Admin::new(client_config(&broker.addr)).unwrap();
    let d = admin.describe_group("slow").await.unwrap();
    assert_eq!((d.members.len(), d.state.as_str()), (1, "Stable"));
    c.close().await.unwrap();
}

/// Members of `group` as the coordinator lists them.
async fn member_count(admin: &Admin, group: &str) -> usize {
    admin
        .describe_group(group)
        .await
        .map(|d| d.members.len())
        .unwrap_or(0)
}

/// Issue 11, defect 2: a member whose `poll` is cancelled while its join is parked, and
/// which is then closed, leaves the group. Before the two-step join it did not know its
/// member id, sent no LeaveGroup, and the group waited for it and gave it partitions until
/// its session timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_closed_while_its_join_is_parked_leaves_no_phantom() {
    // The first rebalance of an empty group waits 2 s: long enough to catch the join parked.
    let broker = Broker::start_with_config(
        "[groups]\noffsets_topic_partitions = 1\nmin_session_timeout_ms = 500\ninitial_rebalance_delay_ms = 2000\n",
    );
    let a = broker.addr.clone();
    let admin = Admin::new(client_config(&a)).unwrap();
    admin.create_topic(NewTopic::new("t", 4)).await.unwrap();

    // Session far beyond the test's deadlines: only a LeaveGroup can remove it in time.
    let mut ghost = group_consumer(&a, "ph", 60_000).await;
    {
        let parked = async {
            while member_count(&admin, "ph").await == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            r = ghost.poll(Duration::from_secs(30)) => panic!("the join cannot finish during the initial delay: {r:?}"),
            () = parked => {}
        }
    }
    assert!(ghost.assignment().is_empty());
    ghost.close().await.unwrap();

    let mut survivor = group_consumer(&a, "ph", 60_000).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while survivor.assignment().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the survivor got {:?}: a phantom holds the rest",
            survivor.assignment()
        );
        survivor.poll(Duration::from_millis(100)).await.unwrap();
    }
    let d = admin.describe_group("ph").await.unwrap();
    assert_eq!(d.members.len(), 1, "{d:?}");
    survivor.close().await.unwrap();
}

/// Issue 11, defect 7: a `poll` cancelled anywhere in a rejoin (join parked, between the
/// assignment and the seek to committed offsets, ...) must not leave the new partitions
/// at the reset policy (Latest here, where nothing new arrives): the next polls still
/// start at the committed offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_polls_never_start_new_partitions_at_the_reset_policy() {
    let broker = Broker::start_with_config(
        "[groups]\noffsets_topic_partitions = 1\nmin_session_timeout_ms = 500\ninitial_rebalance_delay_ms = 0\n",
    );
    let a = broker.addr.clone();
    let admin = Admin::new(client_config(&a)).unwrap();
    admin.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let producer = Producer::new(client_config(&a), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..10 {
        producer
            .send(ProducerRecord::new("t", format!("v{i}")))
            .await
            .unwrap();
    }
    let member = |addr: String| async move {
        let mut cfg = GroupConfig::new("cx");
        cfg.session_timeout = Duration::from_millis(5000);
        cfg.heartbeat_interval = Duration::from_millis(100);
        cfg.auto_commit_interval = None;
        let cc = ConsumerConfig {
            auto_offset_reset: OffsetReset::Latest,
            fetch_max_wait: Duration::from_millis(50),
            ..ConsumerConfig::default()
        };
        let mut c = GroupConsumer::new(client_config(&addr), cc, cfg)
            .await
            .unwrap();
        c.subscribe(&["t"]);
        c
    };
    let first = member(a.clone()).await;
    first
        .commit_offsets(&[(TopicPartition::new("t", 0), 5)])
        .await
        .unwrap();
    drop(first);

    // Cut the first poll short at 0, 1, 2, ... ms: the cut lands in every step of the
    // rejoin in turn (first join, second join, sync, offset fetch, assign).
    for cut_ms in 0..25u64 {
        let mut c = member(a.clone()).await;
        let cut = tokio::time::timeout(
            Duration::from_millis(cut_ms),
            c.poll(Duration::from_secs(10)),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(15);
        let records = loop {
            // The whole rejoin and a fetch can fit in the cut: those records count.
            if let Ok(Ok(r)) = &cut {
                if !r.is_empty() {
                    break r.clone();
                }
            }
            let r = c.poll(Duration::from_millis(200)).await.unwrap();
            if !r.is_empty() {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "cut at {cut_ms} ms: nothing from the committed offset 5 (left at Latest?); owns {:?} as {:?}; group {:?}",
                c.assignment(),
                c.membership(),
                admin.describe_group("cx").await
            );
        };
        assert_eq!(records[0].offset, 5, "cut at {cut_ms} ms");
        c.close().await.unwrap();
    }
}

/// Issue 11, defect 7, end to end: `weir consume --group` keeps its membership through a
/// broker restart (SIGTERM, same address and data dir), consumes everything produced
/// before and after, its commits succeed, and the group ends at lag 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_group_member_survives_a_broker_restart() {
    use std::io::BufRead;
    let mut broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    common::weir_ok(&a, &["topic", "create", "t", "--partitions", "2"], b"");
    let batch =
        |from: usize| -> String { (from..from + 50).map(|i| format!("k{i}:v{i}\n")).collect() };
    common::weir_ok(
        &a,
        &["produce", "t", "--key-separator", ":"],
        batch(0).as_bytes(),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "consume",
            "t",
            "--group",
            "rs",
            "--from-beginning",
            "--session-timeout-ms",
            "6000",
        ])
        .env("WEIR_BOOTSTRAP", &a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            if let Some(v) = line.split('\t').nth(1) {
                let _ = tx.send(v.to_owned());
            }
        }
    });
    let mut seen = BTreeSet::new();
    wait_values(&mut rx, &mut seen, 50).await;

    tokio::task::block_in_place(|| broker.restart());
    common::weir_ok(
        &a,
        &["produce", "t", "--key-separator", ":"],
        batch(50).as_bytes(),
    );
    wait_values(&mut rx, &mut seen, 100).await;
    let expected: BTreeSet<String> = (0..100).map(|i| format!("v{i}")).collect();
    assert_eq!(seen, expected);

    // Everything printed is committed before the group shows lag 0 (the CLI commits after
    // each printed batch, retrying commits that failed while the broker was down).
    let deadline = Instant::now() + Duration::from_secs(30);
    let d = loop {
        let d: serde_json::Value = serde_json::from_str(&common::weir_ok(
            &a,
            &["--output", "json", "group", "describe", "rs"],
            b"",
        ))
        .unwrap();
        let offsets = d["offsets"].as_array().unwrap();
        let lag: i64 = offsets.iter().map(|o| o["lag"].as_i64().unwrap()).sum();
        if offsets.len() == 2 && lag == 0 {
            break d;
        }
        assert!(Instant::now() < deadline, "lag stays above 0: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        d["state"], "Stable",
        "the member is still in the group: {d}"
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(!stderr.contains("leaving group"), "left cleanly: {stderr}");
}

/// Collects printed values from `rx` until `want` distinct ones were seen (60 s at most).
async fn wait_values(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: &mut BTreeSet<String>,
    want: usize,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < want {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(v)) => {
                seen.insert(v);
            }
            other => panic!("only {} of {want} values printed: {other:?}", seen.len()),
        }
    }
}

/// Issue 11, defect 7: a member the coordinator cannot confirm for a whole session timeout
/// (here the broker is frozen) must assume it was expired and stop fetching its
/// partitions, rather than keep reading what a new owner may read too; once the broker is
/// back it rejoins and gets them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_cut_off_for_a_session_timeout_stops_fetching_and_rejoins() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let admin = Admin::new(client_config(&broker.addr)).unwrap();
    admin.create_topic(NewTopic::new("t", 2)).await.unwrap();
    let member = spawn(group_consumer(&broker.addr, "cut", 1000).await);
    wait_for("the member owns both partitions", || {
        member.owned.lock().unwrap().len() == 2
    })
    .await;
    broker.signal("STOP");
    let dropped = async {
        for _ in 0..300 {
            if member.owned.lock().unwrap().is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
    .await;
    broker.signal("CONT");
    assert!(
        dropped,
        "still fetching partitions nobody confirmed it owns"
    );
    wait_for("the member owns both partitions again", || {
        member.owned.lock().unwrap().len() == 2
    })
    .await;
    member.stop.store(true, Ordering::Release);
    member.handle.await.unwrap();
}

/// Issue 17: a group member reads with `stream()`, commits what it processed with
/// `commit_record`, and the next member resumes right after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_stream_and_commit_record_resume_after_the_processed_record() {
    use futures::StreamExt;
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    let admin = Admin::new(client_config(&a)).unwrap();
    admin.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let producer = Producer::new(client_config(&a), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..10 {
        producer
            .enqueue(ProducerRecord::new("t", format!("v{i}")))
            .await
            .unwrap();
    }
    producer.flush().await;
    let member = || async {
        let mut cfg = GroupConfig::new("sg");
        cfg.session_timeout = Duration::from_millis(3000);
        cfg.heartbeat_interval = Duration::from_millis(100);
        cfg.auto_commit_interval = None;
        let cc = ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        };
        let mut c = GroupConsumer::new(client_config(&a), cc, cfg)
            .await
            .unwrap();
        c.subscribe(&["t"]);
        c
    };
    let mut first = member().await;
    {
        let mut s = first.stream();
        for want in 0..4 {
            let r = tokio::time::timeout(Duration::from_secs(30), s.next())
                .await
                .expect("a record within 30 s")
                .unwrap()
                .unwrap();
            assert_eq!(r.offset, want);
            if want == 3 {
                drop(s);
                first.commit_record(&r).await.unwrap();
                break;
            }
        }
    }
    first.close().await.unwrap();
    let mut second = member().await;
    let r = tokio::time::timeout(Duration::from_secs(30), second.stream().next())
        .await
        .expect("a record within 30 s")
        .unwrap()
        .unwrap();
    assert_eq!(r.offset, 4, "resumes right after the committed record");
    second.close_timeout(Duration::from_secs(30)).await.unwrap();
}

/// Issue 17: a handler that fails for some keys parks exactly those records in
/// `<topic>.dlq` (after its retries, with headers saying why and from where) and the
/// consumer commits past them; `weir dlq list` shows them; `weir dlq redrive` moves them
/// back once, so the fixed handler gets each exactly once and a second redrive moves
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_park_failing_records_and_a_redrive_delivers_them_once() {
    use futures::StreamExt;
    use weir_client::dlq::{DeadLetters, Outcome, Parked, RetryPolicy};
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    let admin = Admin::new(client_config(&a)).unwrap();
    admin
        .create_topic(NewTopic::new("orders", 2))
        .await
        .unwrap();
    let producer = Producer::new(client_config(&a), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..10 {
        producer
            .enqueue(ProducerRecord::new("orders", format!("v{i}")).with_key(format!("k{i}")))
            .await
            .unwrap();
    }
    producer.flush().await;
    let member = || async {
        let mut cfg = GroupConfig::new("dl");
        cfg.session_timeout = Duration::from_millis(3000);
        cfg.heartbeat_interval = Duration::from_millis(100);
        cfg.auto_commit_interval = None;
        let cc = ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..ConsumerConfig::default()
        };
        let mut c = GroupConsumer::new(client_config(&a), cc, cfg)
            .await
            .unwrap();
        c.subscribe(&["orders"]);
        c
    };
    let key = |r: &weir_client::ConsumerRecord| {
        String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned()
    };
    let policy = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        ..RetryPolicy::default()
    };
    let dead = DeadLetters::new(
        Producer::new(client_config(&a), ProducerConfig::default())
            .await
            .unwrap(),
        policy,
    );
    let tries: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();

    // A handler that fails for k3 and k7, every time.
    let mut c = member().await;
    let committer = c.committer();
    let mut parked = BTreeSet::new();
    {
        let mut s = c.stream();
        for _ in 0..10 {
            let r = tokio::time::timeout(Duration::from_secs(30), s.next())
                .await
                .expect("a record within 30 s")
                .unwrap()
                .unwrap();
            let tries = tries.clone();
            let outcome = dead
                .process(&r, |r| {
                    let k = key(r);
                    *tries.lock().unwrap().entry(k.clone()).or_default() += 1;
                    async move {
                        if k == "k3" || k == "k7" {
                            Err(format!("cannot bill {k}"))
                        } else {
                            Ok(())
                        }
                    }
                })
                .await
                .unwrap();
            if let Outcome::Parked { topic, .. } = outcome {
                assert_eq!(topic, "orders.dlq");
                parked.insert(key(&r));
            }
            committer.commit_record(&r).await.unwrap();
        }
    }
    c.close().await.unwrap();
    assert_eq!(parked, BTreeSet::from(["k3".to_string(), "k7".to_string()]));
    assert_eq!(tries.lock().unwrap()["k3"], 3, "retried up to max_attempts");
    assert_eq!(tries.lock().unwrap()["k1"], 1);

    let listed = common::weir_ok(&a, &["--output", "json", "dlq", "list", "orders"], b"");
    let listed: Vec<serde_json::Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut keys: Vec<&str> = listed.iter().map(|v| v["key"].as_str().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, vec!["k3", "k7"]);
    for v in &listed {
        assert_eq!(v["parked"]["attempts"], 3, "{v}");
        assert_eq!(v["parked"]["topic"], "orders", "{v}");
        assert!(v["parked"]["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot bill"));
    }

    let out = common::weir_ok(&a, &["dlq", "redrive", "orders"], b"");
    assert!(out.contains("redrove 2 records"), "{out}");
    let again = common::weir_ok(&a, &["dlq", "redrive", "orders"], b"");
    assert!(again.contains("redrove 0 records"), "{again}");
    assert_eq!(
        common::weir_ok(&a, &["dlq", "list", "orders"], b""),
        "",
        "nothing left parked"
    );

    // The fixed handler: the same group resumes after what it committed and gets the two
    // redriven records, once each.
    let mut c = member().await;
    let mut got = Vec::new();
    {
        let mut s = c.stream();
        while got.len() < 2 {
            let r = tokio::time::timeout(Duration::from_secs(30), s.next())
                .await
                .expect("the redriven records")
                .unwrap()
                .unwrap();
            assert!(Parked::from_record(&r).is_none(), "dlq headers stripped");
            got.push(key(&r));
        }
        let extra = tokio::time::timeout(Duration::from_millis(1500), s.next()).await;
        assert!(extra.is_err(), "a third record: {extra:?}");
    }
    got.sort();
    assert_eq!(got, vec!["k3", "k7"]);
    c.close().await.unwrap();
}

/// Issue 17: with `auto_offset_store = false`, `commit()` and `close()` commit only what
/// was marked processed with `store_offset`, not everything `poll` handed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_offset_commits_only_what_was_marked_processed() {
    let broker = Broker::start_with_config(BROKER_CONFIG);
    let a = broker.addr.clone();
    let admin = Admin::new(client_config(&a)).unwrap();
    admin.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let producer = Producer::new(client_config(&a), ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..10 {
        producer
            .enqueue(ProducerRecord::new("t", format!("v{i}")))
            .await
            .unwrap();
    }
    producer.flush().await;
    let props = weir_client::Properties::from_map([
        ("bootstrap.servers", a.as_str()),
        ("group.id", "so"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.offset.store", "false"),
        ("auto.commit.interval.ms", "100"),
        ("session.timeout.ms", "3000"),
    ])
    .unwrap();
    let mut c = GroupConsumer::new(
        props.client().unwrap(),
        props.consumer().unwrap(),
        props.group().unwrap(),
    )
    .await
    .unwrap();
    c.subscribe(&["t"]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 10 {
        assert!(Instant::now() < deadline, "only {} records", seen.len());
        seen.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    for r in seen.iter().take(4) {
        c.store_offset(r).unwrap();
    }
    c.commit().await.unwrap();
    c.close().await.unwrap();
    let d = admin.describe_group("so").await.unwrap();
    assert_eq!(d.offsets.len(), 1, "{d:?}");
    assert_eq!(d.offsets[0].committed_offset, 4, "{d:?}");
}
