//! Measures rebalance time: a group of 10 members on a 100-partition topic, then one
//! member joins, then one leaves; prints the time until every partition is owned again
//! (and, for the join, until the newcomer has its share).
//!
//! Starts its own broker from `target/<profile>/weir-broker` (build it first:
//! `cargo build -p weir-broker`), or uses `WEIR_BOOTSTRAP` if set.
//!
//! Run: `cargo run -p weir-client --example group_rebalance`

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_client::admin::NewTopic;
use weir_client::{
    Admin, ClientConfig, ConsumerConfig, GroupConfig, GroupConsumer, OffsetReset, TopicPartition,
};

const MEMBERS: usize = 10;
const PARTITIONS: i32 = 100;

struct Member {
    owned: Arc<Mutex<Vec<TopicPartition>>>,
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

async fn member(addr: &str) -> Member {
    let mut cfg = GroupConfig::new("bench");
    cfg.session_timeout = Duration::from_secs(3);
    cfg.heartbeat_interval = Duration::from_millis(100);
    let cc = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(50),
        ..ConsumerConfig::default()
    };
    let mut c = match GroupConsumer::new(ClientConfig::new(addr), cc, cfg).await {
        Ok(c) => c,
        Err(e) => panic!("consumer: {e}"),
    };
    c.subscribe(&["bench"]);
    let owned = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (o, s) = (owned.clone(), stop.clone());
    let handle = tokio::spawn(async move {
        while !s.load(Ordering::Acquire) {
            if let Err(e) = c.poll(Duration::from_millis(20)).await {
                eprintln!("poll: {e}");
            }
            if let Ok(mut g) = o.lock() {
                *g = c.assignment();
            }
        }
        let _ = c.close().await;
    });
    Member {
        owned,
        stop,
        handle,
    }
}

fn owned(members: &[Member]) -> (usize, bool, Vec<usize>) {
    let mut all = BTreeSet::new();
    let mut disjoint = true;
    let mut sizes = Vec::new();
    for m in members {
        let o = m.owned.lock().map(|g| g.clone()).unwrap_or_default();
        sizes.push(o.len());
        for tp in o {
            disjoint &= all.insert(tp);
        }
    }
    (all.len(), disjoint, sizes)
}

async fn wait(members: &[Member], cond: impl Fn(usize, &[usize]) -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let (n, disjoint, sizes) = owned(members);
        assert!(disjoint, "a partition had two owners");
        if cond(n, &sizes) {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("group did not settle: {:?}", owned(members));
}

fn start_broker() -> (Child, String, tempfile::TempDir) {
    let exe = std::env::current_exe().unwrap_or_default();
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("weir-broker"))
        .unwrap_or_default();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let cfg = dir.path().join("bench.toml");
    std::fs::write(
        &cfg,
        "[groups]\noffsets_topic_partitions = 4\nmin_session_timeout_ms = 500\n",
    )
    .unwrap_or_else(|e| panic!("config: {e}"));
    let mut child = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let addr_file = dir.path().join("broker.addr");
    for _ in 0..400 {
        if let Ok(a) = std::fs::read_to_string(&addr_file) {
            if !a.trim().is_empty() {
                return (child, a.trim().to_owned(), dir);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("broker did not start");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (mut child, addr, _dir) = match std::env::var("WEIR_BOOTSTRAP") {
        Ok(a) => (
            Command::new("true")
                .spawn()
                .unwrap_or_else(|e| panic!("{e}")),
            a,
            tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        ),
        Err(_) => start_broker(),
    };
    let admin = Admin::new(ClientConfig::new(&addr)).unwrap_or_else(|e| panic!("{e}"));
    let _ = admin
        .create_topic(NewTopic {
            name: "bench".into(),
            partitions: PARTITIONS,
            replication_factor: -1,
            configs: vec![],
        })
        .await;
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        members.push(member(&addr).await);
    }
    let formed = wait(&members, |n, s| n == 100 && s.iter().all(|x| *x == 10)).await;
    println!("{MEMBERS} members formed the group, 10 partitions each, after {formed:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    members.push(member(&addr).await);
    let join_owned = wait(&members, |n, s| {
        n == 100 && s.last().is_some_and(|x| *x >= 9)
    })
    .await;
    println!("join (11th member): every partition owned again and the newcomer has its share after {join_owned:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let leaving = members.remove(0);
    leaving.stop.store(true, Ordering::Release);
    let t0 = Instant::now();
    let _ = leaving.handle.await;
    let left = wait(&members, |n, s| n == 100 && s.iter().all(|x| *x >= 10)).await;
    println!(
        "leave (clean close of one member): every partition owned again after {:?} (close itself {:?})",
        left,
        t0.elapsed() - left
    );
    for m in &members {
        m.stop.store(true, Ordering::Release);
    }
    for m in members {
        let _ = m.handle.await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
