//! Cluster measurements on real `weir-broker` processes (127.0.0.1 only):
//!
//! 1. **Controller failover**: kill -9 the active controller of 3 brokers, then run
//!    `weir --bootstrap A,B,C topic create NAME --partitions 1` (the `weir` CLI, a fresh
//!    process and topic name per attempt) until one succeeds; time from the kill to that
//!    success. The killed broker is restarted and the cluster settles (3 brokers listed
//!    everywhere, one controller, equal metadata image digests) before the next try.
//!    Short Raft timings (`--tries` runs) and the shipped defaults (`--default-tries`).
//! 2. **Metadata throughput**: `--topics` one-partition topics created by `--concurrency`
//!    tasks, each its own weir-client `Admin`, on 3 brokers and on 1 (no quorum peers).
//! 3. **Re-election**: a topic of `--partitions` partitions, replication factor 2, on 3
//!    brokers (short timings); kill -9 the non-controller broker leading the most of them
//!    and poll Metadata on each survivor every 25 ms until none names it as leader.
//! 4. **Replication** (only with `--only replication`): on one 3-broker cluster with the
//!    shipped defaults, `weir-perf` (a subprocess, bootstrap = all three brokers) produces
//!    `--records` records to a fresh topic per workload, RF 1 acks=1 / RF 3 acks=1 / RF 3
//!    acks=all, each with 1 and 8 partitions, then runs end-to-end at `--e2e-rate` on one
//!    partition with RF 3 acks=all and RF 1 acks=1. CPU = utime+stime of all three brokers
//!    from the start of a run until every replica has caught up.
//!
//! `cargo build --release -p weir-broker -p weir-client -p weir-benches`, then
//! `cargo run --release -p weir-benches --bin cluster_bench -- --tries 10 [--output json]`.
//! The `weir-broker`, `weir` and `weir-perf` binaries are taken from this binary's
//! directory unless `--broker` / `--weir` / `--perf` say otherwise. Every wait has a deadline; only the processes
//! started here are stopped (kill -9 by their handle, also when the run fails or panics,
//! and the kernel kills the brokers if this process dies: PR_SET_PDEATHSIG).

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_client::admin::NewTopic;
use weir_client::{Admin, Client, ClientConfig};
use weir_protocol::native::v1;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Raft/broker timings used by the failover and re-election runs.
const SHORT_TIMINGS: &str =
    "[cluster]\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\n\
                             heartbeat_interval_ms = 50\nbroker_heartbeat_interval_ms = 100\n\
                             broker_session_timeout_ms = 1500\n";
/// The session timeout in [`SHORT_TIMINGS`].
const SHORT_SESSION_MS: f64 = 1500.0;
/// Longest a broker may take to start serving.
const START_LIMIT: Duration = Duration::from_secs(120);
/// Longest the cluster may take to settle (one controller, every broker listed).
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// Longest one failover (kill → first accepted CreateTopics) may take.
const FAILOVER_LIMIT: Duration = Duration::from_secs(90);
/// Longest one `weir` CLI invocation may run before it is killed.
const CLI_LIMIT: Duration = Duration::from_secs(20);
/// Longest the re-election may take before the run gives up.
const REELECT_LIMIT: Duration = Duration::from_secs(120);
/// Longest the throughput phase may run.
const THROUGHPUT_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Failover,
    Throughput,
    Reelection,
    /// Produce throughput and end-to-end latency through weir-perf, RF 1 vs 3 (opt-in).
    Replication,
}

/// Controller failover, metadata throughput and partition re-election on real brokers.
#[derive(Debug, Parser)]
#[command(name = "cluster_bench")]
struct Args {
    /// Failover tries with the short timings.
    #[arg(long, default_value_t = 10)]
    tries: usize,
    /// Failover tries with the shipped default timings (election 1000-2000 ms).
    #[arg(long, default_value_t = 1)]
    default_tries: usize,
    /// Topics created in the throughput phase (per setup).
    #[arg(long, default_value_t = 500)]
    topics: usize,
    /// Concurrent creating tasks in the throughput phase.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Partitions of the re-election topic (replication factor 2).
    #[arg(long, default_value_t = 1000)]
    partitions: i32,
    /// Records per produce workload of the replication phase.
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Value size in bytes in the replication phase.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// weir-perf producers (each its own connection) in the replication phase.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// End-to-end rate in records/s in the replication phase.
    #[arg(long, default_value_t = 50_000.0)]
    e2e_rate: f64,
    /// Seconds of each end-to-end run in the replication phase.
    #[arg(long, default_value_t = 30.0)]
    e2e_seconds: f64,
    /// Producer linger in ms of the end-to-end runs (compare.sh's w4 uses 0).
    #[arg(long, default_value_t = 0)]
    e2e_linger_ms: u64,
    /// Replication runs to do: those whose label contains one of these (default: all;
    /// labels like produce-rf3-acksall-p8, e2e-rf1-acks1-p1; `idle` for the cost of
    /// 1,000 idle replicated partitions).
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// After each replication run, save every broker's /metrics text here as
    /// LABEL-broker-N.prom.
    #[arg(long)]
    metrics_dir: Option<PathBuf>,
    /// Extra broker config (TOML text, e.g. "[cluster]\nreplica_fetch_wait_max_ms = 50")
    /// for the replication cluster; default none: shipped defaults.
    #[arg(long, default_value = "")]
    broker_config: String,
    /// Upper bound in seconds on each produce run (weir-perf --duration; the process is
    /// killed a minute after that).
    #[arg(long, default_value_t = 180.0)]
    run_limit: f64,
    /// Phases to run (`replication` only when named).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Phase::Failover, Phase::Throughput, Phase::Reelection])]
    only: Vec<Phase>,
    /// The broker binary (default: weir-broker next to this binary).
    #[arg(long)]
    broker: Option<PathBuf>,
    /// The `weir` CLI binary (default: weir next to this binary).
    #[arg(long)]
    weir: Option<PathBuf>,
    /// The `weir-perf` binary (default: weir-perf next to this binary).
    #[arg(long)]
    perf: Option<PathBuf>,
    /// text or json (one object on stdout; progress goes to stderr either way).
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

// ---------------------------------------------------------------------------------------
// Processes

/// A broker process; kill -9 on drop if still running.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Node {
    id: i32,
    dir: PathBuf,
    log: PathBuf,
    listen: String,
    controller: String,
    metrics: String,
    proc: Option<Proc>,
}

/// Brokers on loopback with their temp dirs. `nodes` is declared first so the processes
/// are killed before the directory is removed.
struct Setup {
    nodes: Vec<Node>,
    bin: PathBuf,
    config: PathBuf,
    voters: Option<String>,
    _root: tempfile::TempDir,
}

/// `n` distinct free loopback ports (all held open together while picking).
fn free_ports(n: usize) -> Res<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()?)
}

impl Setup {
    /// `n` brokers (a quorum of all of them when n > 1) with `config` merged over the
    /// defaults; nothing started yet.
    fn new(bin: &Path, n: usize, config: &str) -> Res<Setup> {
        let root = tempfile::tempdir()?;
        let cfg = root.path().join("bench.toml");
        // The Kafka listener is not measured; off, so it takes no port.
        std::fs::write(&cfg, format!("[server]\nkafka_listen = \"\"\n{config}"))?;
        let ports = free_ports(3 * n)?;
        let addr = |i: usize| -> Res<String> {
            Ok(format!(
                "127.0.0.1:{}",
                ports.get(i).ok_or("not enough free ports")?
            ))
        };
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let id = i32::try_from(i + 1)?;
            let dir = root.path().join(format!("data-{id}"));
            std::fs::create_dir_all(&dir)?;
            nodes.push(Node {
                id,
                dir,
                log: root.path().join(format!("broker-{id}.log")),
                listen: addr(3 * i)?,
                controller: addr(3 * i + 1)?,
                metrics: addr(3 * i + 2)?,
                proc: None,
            });
        }
        let voters = (n > 1).then(|| {
            nodes
                .iter()
                .map(|m| format!("{}@{}", m.id, m.controller))
                .collect::<Vec<_>>()
                .join(",")
        });
        Ok(Setup {
            nodes,
            bin: bin.to_path_buf(),
            config: cfg,
            voters,
            _root: root,
        })
    }

    fn node(&self, i: usize) -> Res<&Node> {
        Ok(self.nodes.get(i).ok_or("no such node")?)
    }

    fn spawn(&mut self, i: usize) -> Res<()> {
        let node = self.nodes.get_mut(i).ok_or("no such node")?;
        let _ = std::fs::remove_file(node.dir.join("broker.addr"));
        let log = File::options().create(true).append(true).open(&node.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&node.dir)
            .args(["--node-id", &node.id.to_string()])
            .args(["--listen", &node.listen])
            .args(["--metrics-listen", &node.metrics]);
        if let Some(v) = &self.voters {
            cmd.args(["--voters", v])
                .args(["--controller-listen", &node.controller]);
        }
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL the child
        // when the thread that spawned it (always the main thread here) exits.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        node.proc = Some(Proc {
            child: cmd.spawn()?,
        });
        Ok(())
    }

    /// Waits (bounded) until broker `i` writes its address file, i.e. serves.
    fn wait_ready(&mut self, i: usize) -> Res<()> {
        let node = self.nodes.get_mut(i).ok_or("no such node")?;
        let file = node.dir.join("broker.addr");
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if let Some(p) = node.proc.as_mut() {
                if let Some(status) = p.child.try_wait()? {
                    return Err(format!(
                        "broker {} exited during start: {status}; log {}",
                        node.id,
                        node.log.display()
                    )
                    .into());
                }
            }
            if std::fs::read_to_string(&file).is_ok_and(|a| !a.trim().is_empty()) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("broker {} did not start within {START_LIMIT:?}", node.id).into())
    }

    fn start_all(&mut self) -> Res<()> {
        for i in 0..self.nodes.len() {
            self.spawn(i)?;
        }
        for i in 0..self.nodes.len() {
            self.wait_ready(i)?;
        }
        Ok(())
    }

    /// SIGKILL broker `i` and reap it; returns the instant just before the signal.
    fn kill9(&mut self, i: usize) -> Res<Instant> {
        let node = self.nodes.get_mut(i).ok_or("no such node")?;
        let mut p = node.proc.take().ok_or("broker not running")?;
        let t0 = Instant::now();
        p.child.kill()?; // SIGKILL on Unix
        p.child.wait()?;
        Ok(t0)
    }

    fn live(&self) -> Vec<&Node> {
        self.nodes.iter().filter(|n| n.proc.is_some()).collect()
    }

    fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.listen.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    fn index_of(&self, id: i32) -> Res<usize> {
        Ok(self
            .nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| format!("no broker {id}"))?)
    }
}

// ---------------------------------------------------------------------------------------
// Requests

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.client_id = "cluster-bench".into();
    c.request_timeout = Duration::from_secs(10);
    c.connect_timeout = Duration::from_secs(2);
    c
}

async fn metadata(client: &Client, addr: &str, topics: &[&str]) -> Res<v1::MetadataResponse> {
    let req = v1::MetadataRequest {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        all_topics: false,
        allow_auto_topic_creation: false,
    };
    match tokio::time::timeout(Duration::from_secs(5), client.request_addr(addr, req)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(format!("metadata from {addr} timed out").into()),
    }
}

/// The broker's /metrics text (plain HTTP/1.0 on loopback; headers included).
async fn metrics_text(addr: &str) -> Res<String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    Ok(tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| format!("metrics of {addr} timed out"))??)
}

/// A metric's value from the broker's /metrics.
async fn metric(addr: &str, name: &str) -> Res<Option<f64>> {
    let body = metrics_text(addr).await?;
    Ok(body.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        if !rest.starts_with(' ') {
            return None;
        }
        rest.trim().parse().ok()
    }))
}

/// Waits (bounded) until every live broker lists every live broker in Metadata, all name
/// the same live controller, and all report the same metadata image digest and applied
/// index. Returns the controller's node id (0 for a single node without a quorum).
async fn settle(setup: &Setup, client: &Client) -> Res<i32> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    let live = setup.live();
    let mut want: Vec<i32> = live.iter().map(|n| n.id).collect();
    want.sort_unstable();
    let mut last = String::new();
    while Instant::now() < deadline {
        match settled_once(&live, &want, client).await {
            Ok(Some(ctl)) => return Ok(ctl),
            Ok(None) => {}
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("cluster did not settle within {SETTLE_LIMIT:?} (last error: {last})").into())
}

async fn settled_once(live: &[&Node], want: &[i32], client: &Client) -> Res<Option<i32>> {
    let mut controllers = Vec::new();
    let mut images = Vec::new();
    for n in live {
        let m = metadata(client, &n.listen, &[]).await?;
        let mut ids: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
        ids.sort_unstable();
        if ids != want {
            return Ok(None);
        }
        controllers.push(m.controller_id);
        if live.len() > 1 {
            images.push((
                metric(&n.metrics, "weir_metadata_image_digest").await?,
                metric(&n.metrics, "weir_metadata_image_digest_index").await?,
            ));
        }
    }
    let ctl = controllers.first().copied().unwrap_or(-1);
    let agreed = controllers.iter().all(|c| *c == ctl)
        && (live.len() == 1 || want.contains(&ctl))
        && images
            .iter()
            .all(|i| i.0.is_some() && Some(i) == images.first());
    Ok(agreed.then_some(ctl))
}

/// `weir --bootstrap B topic create NAME --partitions 1`; Ok(true) when it exits 0.
fn weir_create(weir: &Path, bootstrap: &str, name: &str) -> Res<bool> {
    let mut child = Command::new(weir)
        .args(["--bootstrap", bootstrap, "topic", "create", name])
        .args(["--partitions", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + CLI_LIMIT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status.success());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------------------
// Statistics and reporting

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s.get(n / 2).copied().unwrap_or(f64::NAN),
        n => {
            let a = s.get(n / 2 - 1).copied().unwrap_or(f64::NAN);
            let b = s.get(n / 2).copied().unwrap_or(f64::NAN);
            (a + b) / 2.0
        }
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let i = ((s.len() - 1) as f64 * q).round() as usize;
    s.get(i).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------
// 1. Controller failover

async fn failover(bin: &Path, weir: &Path, timings: &str, label: &str, tries: usize) -> Res<Value> {
    let load_start = load_avg();
    let mut setup = Setup::new(bin, 3, timings)?;
    setup.start_all()?;
    let client = Client::new(client_config(&setup.bootstrap()))?;
    let bootstrap = setup.bootstrap();
    let mut runs = Vec::new();
    for t in 0..tries {
        let ctl = settle(&setup, &client).await?;
        let idx = setup.index_of(ctl)?;
        // A healthy create first: the resolution of one CLI attempt.
        let probe = Instant::now();
        if !weir_create(weir, &bootstrap, &format!("ok-{label}-{t}"))? {
            return Err("weir topic create failed on a settled cluster".into());
        }
        let healthy_ms = ms(probe.elapsed());
        let t0 = setup.kill9(idx)?;
        let deadline = t0 + FAILOVER_LIMIT;
        let survivors: Vec<String> = setup.live().iter().map(|n| n.listen.clone()).collect();
        let mut attempts = 0u32;
        let mut done = None;
        // First time a survivor's Metadata names a new controller (checked before each
        // attempt, so as fine-grained as the attempts).
        let mut elected: Option<Duration> = None;
        while Instant::now() < deadline {
            if elected.is_none() {
                for s in &survivors {
                    if let Ok(m) = metadata(&client, s, &[]).await {
                        if m.controller_id > 0 && m.controller_id != ctl {
                            elected = Some(t0.elapsed());
                            break;
                        }
                    }
                }
            }
            attempts += 1;
            let name = format!("fo-{label}-{t}-{attempts}");
            if weir_create(weir, &bootstrap, &name)? {
                done = Some(t0.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = done.ok_or_else(|| {
            format!("no CreateTopics accepted within {FAILOVER_LIMIT:?} of killing broker {ctl}")
        })?;
        // Elected between the last Metadata check and the accepted create: the create's
        // time is the bound.
        let elected_ms = ms(elected.unwrap_or(took));
        eprintln!(
            "failover {label} try {}: killed controller {ctl}, new controller named after \
             {:.0} ms, first create accepted after {:.0} ms ({attempts} attempts; healthy \
             create {healthy_ms:.0} ms)",
            t + 1,
            elected_ms,
            ms(took)
        );
        runs.push(json!({
            "killed": ctl,
            "ms": ms(took),
            "elected_ms": elected_ms,
            "attempts": attempts,
            "healthy_create_ms": healthy_ms,
        }));
        setup.spawn(idx)?;
        setup.wait_ready(idx)?;
    }
    settle(&setup, &client).await?;
    let times: Vec<f64> = runs.iter().filter_map(|r| r["ms"].as_f64()).collect();
    let elected: Vec<f64> = runs
        .iter()
        .filter_map(|r| r["elected_ms"].as_f64())
        .collect();
    let healthy: Vec<f64> = runs
        .iter()
        .filter_map(|r| r["healthy_create_ms"].as_f64())
        .collect();
    Ok(json!({
        "timings": label,
        "tries": tries,
        "median_ms": median(&times),
        "max_ms": max(&times),
        "min_ms": times.iter().copied().fold(f64::NAN, f64::min),
        "elected_median_ms": median(&elected),
        "elected_max_ms": max(&elected),
        "healthy_create_median_ms": median(&healthy),
        "runs": runs,
        "client": "weir CLI: weir --bootstrap A,B,C topic create NAME --partitions 1",
        "load_start": load_start,
        "load_end": load_avg(),
    }))
}

// ---------------------------------------------------------------------------------------
// 2. Metadata throughput

async fn throughput(bin: &Path, brokers: usize, topics: usize, concurrency: usize) -> Res<Value> {
    let load_start = load_avg();
    let mut setup = Setup::new(bin, brokers, "")?;
    setup.start_all()?;
    let bootstrap = setup.bootstrap();
    let client = Client::new(client_config(&bootstrap))?;
    settle(&setup, &client).await?;
    // In a cluster the controller also creates __consumer_offsets once every voter has
    // registered; let that land first so it is not timed.
    if brokers > 1 {
        let deadline = Instant::now() + SETTLE_LIMIT;
        loop {
            let m = metadata(&client, &setup.node(0)?.listen, &["__consumer_offsets"]).await?;
            if m.topics.first().is_some_and(|t| t.error_code == 0) {
                break;
            }
            if Instant::now() >= deadline {
                return Err("__consumer_offsets never appeared".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        settle(&setup, &client).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(topics)));
    let errors = Arc::new(Mutex::new((0usize, String::new())));
    let t0 = Instant::now();
    let deadline = t0 + THROUGHPUT_LIMIT;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let admin = Admin::new(client_config(&bootstrap))?;
        let (next, lat, errors) = (next.clone(), lat.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= topics || Instant::now() >= deadline {
                    break;
                }
                let s = Instant::now();
                let r = tokio::time::timeout(
                    Duration::from_secs(30),
                    admin.create_topic(NewTopic::new(format!("mt-{i}"), 1)),
                )
                .await;
                let err = match r {
                    Ok(Ok(_)) => {
                        if let Ok(mut l) = lat.lock() {
                            l.push(ms(s.elapsed()));
                        }
                        continue;
                    }
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "timed out after 30 s".to_string(),
                };
                if let Ok(mut e) = errors.lock() {
                    e.0 += 1;
                    if e.1.is_empty() {
                        e.1 = err;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let lat = lat.lock().map_err(|_| "poisoned")?.clone();
    let (errs, first_error) = errors.lock().map_err(|_| "poisoned")?.clone();
    let created = lat.len();
    eprintln!(
        "throughput {brokers} broker(s): {created} topics in {wall:.2} s = {:.0}/s ({errs} errors)",
        created as f64 / wall
    );
    Ok(json!({
        "brokers": brokers,
        "topics": created,
        "concurrency": concurrency,
        "seconds": wall,
        "topics_per_sec": created as f64 / wall,
        "latency_ms": {"p50": median(&lat), "p99": quantile(&lat, 0.99), "max": max(&lat)},
        "errors": errs,
        "first_error": first_error,
        "client": "weir-client Admin::create_topic (one Admin per task)",
        "load_start": load_start,
        "load_end": load_avg(),
    }))
}

// ---------------------------------------------------------------------------------------
// 3. Re-election of many partitions

/// Leader of each partition of `topic` as `addr` describes it (None: topic not ready).
async fn leaders(client: &Client, addr: &str, topic: &str) -> Res<Option<Vec<i32>>> {
    let m = metadata(client, addr, &[topic]).await?;
    let Some(t) = m.topics.iter().find(|t| t.name == topic) else {
        return Ok(None);
    };
    if t.error_code != 0 {
        return Ok(None);
    }
    let mut p: Vec<(i32, i32)> = t
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id))
        .collect();
    p.sort_unstable();
    Ok(Some(p.into_iter().map(|(_, l)| l).collect()))
}

async fn reelection(bin: &Path, partitions: i32) -> Res<Value> {
    const TOPIC: &str = "reelect";
    let load_start = load_avg();
    let mut setup = Setup::new(bin, 3, SHORT_TIMINGS)?;
    setup.start_all()?;
    let client = Client::new(client_config(&setup.bootstrap()))?;
    settle(&setup, &client).await?;
    let admin = Admin::new(client_config(&setup.bootstrap()))?;
    let c0 = Instant::now();
    admin
        .create_topic(NewTopic::new(TOPIC, partitions).replication_factor(2))
        .await?;
    let create_ms = ms(c0.elapsed());
    // Every broker shows the same leader for every partition, all led.
    let deadline = Instant::now() + SETTLE_LIMIT;
    let placed = loop {
        let mut views = Vec::new();
        for n in setup.live() {
            views.push(leaders(&client, &n.listen, TOPIC).await?);
        }
        if let Some(Some(first)) = views.first() {
            if first.len() == partitions as usize
                && first.iter().all(|l| *l > 0)
                && views.iter().all(|v| v.as_ref() == Some(first))
            {
                break first.clone();
            }
        }
        if Instant::now() >= deadline {
            return Err("partitions never got leaders on every broker".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let placed_ms = ms(c0.elapsed());
    let ctl = settle(&setup, &client).await?;
    let victim = setup
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| *id != ctl)
        .max_by_key(|id| placed.iter().filter(|l| *l == id).count())
        .ok_or("no non-controller broker")?;
    let led = placed.iter().filter(|l| **l == victim).count();
    let survivors: Vec<(i32, String)> = setup
        .nodes
        .iter()
        .filter(|n| n.id != victim)
        .map(|n| (n.id, n.listen.clone()))
        .collect();
    let idx = setup.index_of(victim)?;
    eprintln!(
        "reelection: {partitions} partitions (RF 2) created in {create_ms:.0} ms, all led \
         everywhere after {placed_ms:.0} ms; killing broker {victim} (leads {led}; controller {ctl})"
    );
    let t0 = setup.kill9(idx)?;
    let deadline = t0 + REELECT_LIMIT;
    let tick = Duration::from_millis(25);
    // Per survivor: first poll showing any partition moved, and the poll showing none left.
    let mut first_move: Vec<Option<f64>> = vec![None; survivors.len()];
    let mut all_moved: Vec<Option<(f64, Vec<i32>)>> = vec![None; survivors.len()];
    let mut polls = 0u32;
    let mut poll_errors = 0u32;
    while Instant::now() < deadline && all_moved.iter().any(Option::is_none) {
        let next = Instant::now() + tick;
        for (k, (_, addr)) in survivors.iter().enumerate() {
            if matches!(all_moved.get(k), Some(Some(_))) {
                continue;
            }
            polls += 1;
            let now = match leaders(&client, addr, TOPIC).await {
                Ok(Some(l)) => l,
                _ => {
                    poll_errors += 1;
                    continue;
                }
            };
            let at = ms(t0.elapsed());
            let left = now.iter().filter(|l| **l == victim).count();
            if left < led {
                if let Some(f @ None) = first_move.get_mut(k) {
                    *f = Some(at);
                }
            }
            if left == 0 {
                if let Some(a) = all_moved.get_mut(k) {
                    *a = Some((at, now));
                }
            }
        }
        tokio::time::sleep_until(next.into()).await;
    }
    let mut per_survivor = Vec::new();
    for (k, (id, _)) in survivors.iter().enumerate() {
        let Some(Some((at, now))) = all_moved.get(k) else {
            return Err(format!(
                "broker {id} still named {victim} as a leader {REELECT_LIMIT:?} after the kill"
            )
            .into());
        };
        let moved = placed
            .iter()
            .zip(now)
            .filter(|(before, after)| **before == victim && **after > 0)
            .count();
        let offline = placed
            .iter()
            .zip(now)
            .filter(|(before, after)| **before == victim && **after <= 0)
            .count();
        let first = first_move.get(k).copied().flatten();
        eprintln!(
            "reelection: broker {id} saw the first move after {:.0} ms, none left on {victim} \
             after {at:.0} ms ({moved} moved, {offline} offline)",
            first.unwrap_or(f64::NAN)
        );
        per_survivor.push(json!({
            "broker": id,
            "is_controller": *id == ctl,
            "first_move_ms": first,
            "all_moved_ms": at,
            "all_moved_minus_session_ms": at - SHORT_SESSION_MS,
            "moved": moved,
            "offline": offline,
        }));
    }
    let worst = per_survivor
        .iter()
        .filter_map(|s| s["all_moved_ms"].as_f64())
        .fold(f64::NAN, f64::max);
    Ok(json!({
        "partitions": partitions,
        "replication_factor": 2,
        "create_ms": create_ms,
        "all_led_everywhere_ms": placed_ms,
        "controller": ctl,
        "killed": victim,
        "led_by_killed": led,
        "session_timeout_ms": SHORT_SESSION_MS,
        "all_moved_ms": worst,
        "all_moved_minus_session_ms": worst - SHORT_SESSION_MS,
        "survivors": per_survivor,
        "polls": polls,
        "poll_errors": poll_errors,
        "poll_interval_ms": ms(tick),
        "load_start": load_start,
        "load_end": load_avg(),
    }))
}

// ---------------------------------------------------------------------------------------
// 4. Replication throughput and latency (weir-perf against one 3-broker cluster)

/// One weir-perf run of the replication phase.
struct RepWorkload {
    /// `produce` or `end-to-end`.
    kind: &'static str,
    rf: i32,
    acks: &'static str,
    partitions: i32,
    records: u64,
    /// Records/s over all producers (end-to-end only).
    rate: Option<f64>,
}

impl RepWorkload {
    fn label(&self) -> String {
        let kind = if self.kind == "produce" {
            "produce"
        } else {
            "e2e"
        };
        format!(
            "{kind}-rf{}-acks{}-p{}",
            self.rf, self.acks, self.partitions
        )
    }
}

/// The replication phase's settings (from the command line).
struct RepOptions {
    perf: PathBuf,
    records: u64,
    record_size: usize,
    producers: usize,
    e2e_rate: f64,
    e2e_seconds: f64,
    e2e_linger_ms: u64,
    workloads: Vec<String>,
    metrics_dir: Option<PathBuf>,
    broker_config: String,
    run_limit_s: f64,
}

/// utime+stime of each running broker, in seconds, in node order.
fn brokers_cpu(setup: &Setup) -> Res<Vec<f64>> {
    let mut v = Vec::new();
    for n in &setup.nodes {
        let p = n.proc.as_ref().ok_or("broker not running")?;
        v.push(weir_benches::perf::cpu::cpu_seconds(p.child.id())?);
    }
    Ok(v)
}

/// Per partition (by index) of `topic` as broker `addr` describes it: leader, replicas,
/// ISR, and this broker's own log end offset and high watermark (None: no local log).
type PartView = (i32, Vec<i32>, Vec<i32>, Option<i64>, Option<i64>);

async fn partitions_view(client: &Client, addr: &str, topic: &str) -> Res<Option<Vec<PartView>>> {
    let m = metadata(client, addr, &[topic]).await?;
    let Some(t) = m.topics.iter().find(|t| t.name == topic) else {
        return Ok(None);
    };
    if t.error_code != 0 {
        return Ok(None);
    }
    let mut p: Vec<(i32, PartView)> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                (
                    p.leader_id,
                    p.replica_nodes.clone(),
                    p.isr_nodes.clone(),
                    p.log_end_offset,
                    p.high_watermark,
                ),
            )
        })
        .collect();
    p.sort_by_key(|(i, _)| *i);
    Ok(Some(p.into_iter().map(|(_, v)| v).collect()))
}

/// Every broker's view of `topic`, in node order.
async fn all_views(setup: &Setup, client: &Client, topic: &str) -> Res<Vec<Option<Vec<PartView>>>> {
    let mut views = Vec::new();
    for n in &setup.nodes {
        views.push(partitions_view(client, &n.listen, topic).await?);
    }
    Ok(views)
}

/// Waits (bounded) until every broker shows every partition of `topic` led, with `rf`
/// replicas all in the ISR, and every replica holds a log for it.
async fn wait_topic_ready(
    setup: &Setup,
    client: &Client,
    topic: &str,
    partitions: i32,
    rf: i32,
) -> Res<()> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let views = all_views(setup, client, topic).await?;
        let ready = views.iter().all(|v| {
            v.as_ref().is_some_and(|ps| {
                ps.len() == partitions as usize
                    && ps.iter().all(|(leader, replicas, isr, _, _)| {
                        *leader > 0 && replicas.len() == rf as usize && isr.len() == rf as usize
                    })
            })
        }) && views.windows(2).all(|w| {
            let leaders = |v: &Option<Vec<PartView>>| {
                v.as_ref()
                    .map(|ps| ps.iter().map(|p| p.0).collect::<Vec<_>>())
            };
            leaders(&w[0]) == leaders(&w[1])
        }) && setup.nodes.iter().zip(&views).all(|(n, v)| {
            // Each replica has opened its log (reports a log end offset).
            v.iter()
                .flatten()
                .filter(|p| p.1.contains(&n.id))
                .all(|p| p.3.is_some())
        });
        if ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "topic {topic} not led with a full ISR everywhere within {SETTLE_LIMIT:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After a run: waits (bounded) until every replica's log end offset and the leader's
/// high watermark equal the leader's log end offset, so the followers' catch-up is
/// charged to the run that caused it. Returns (ms waited, or None when the limit passed;
/// records on the leaders; the smallest ISR seen).
async fn wait_caught_up(
    setup: &Setup,
    client: &Client,
    topic: &str,
) -> Res<(Option<f64>, i64, usize)> {
    let t0 = Instant::now();
    let deadline = t0 + SETTLE_LIMIT;
    loop {
        let views = all_views(setup, client, topic).await?;
        let mut done = true;
        let mut records = 0i64;
        let mut min_isr = usize::MAX;
        let first = views.iter().flatten().next().ok_or("topic vanished")?;
        for (i, (leader, replicas, isr, _, _)) in first.iter().enumerate() {
            min_isr = min_isr.min(isr.len());
            let li = setup.index_of(*leader)?;
            let Some(Some(lp)) = views.get(li).map(|v| v.as_ref().and_then(|ps| ps.get(i))) else {
                done = false;
                continue;
            };
            let (Some(leo), hw) = (lp.3, lp.4) else {
                done = false;
                continue;
            };
            records += leo;
            done &= hw == Some(leo);
            for r in replicas {
                let ri = setup.index_of(*r)?;
                let rleo = views
                    .get(ri)
                    .and_then(|v| v.as_ref())
                    .and_then(|ps| ps.get(i))
                    .and_then(|p| p.3);
                done &= rleo == Some(leo);
            }
        }
        if done {
            return Ok((Some(ms(t0.elapsed())), records, min_isr));
        }
        if Instant::now() >= deadline {
            return Ok((None, records, min_isr));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `weir-perf` with `args`, killed after `limit`; returns its JSON report.
fn run_perf(
    perf: &Path,
    args: &[String],
    out_dir: &Path,
    label: &str,
    limit: Duration,
) -> Res<Value> {
    let stdout_path = out_dir.join(format!("{label}.json"));
    let stderr_path = out_dir.join(format!("{label}.err"));
    let mut cmd = Command::new(perf);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path)?)
        .stderr(File::create(&stderr_path)?);
    // SAFETY: as in `Setup::spawn`.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut p = Proc {
        child: cmd.spawn()?,
    };
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = p.child.try_wait()? {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = p.child.kill();
            let _ = p.child.wait();
            return Err(format!("weir-perf {label} still running after {limit:?}; killed").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::fs::read_to_string(&stdout_path)?;
    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    // Exit 3 = some records failed; the report says how many.
    if !(status.success() || status.code() == Some(3)) {
        return Err(format!("weir-perf {label} failed ({status}): {}", err.trim()).into());
    }
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("weir-perf {label} printed no JSON: {}", err.trim()))?;
    Ok(serde_json::from_str(line)?)
}

async fn replication(bin: &Path, o: &RepOptions) -> Res<Value> {
    let load_start = load_avg();
    // Shipped default timings and log settings (flush_messages = 1: every append fsynced
    // before it counts, on leaders and followers alike).
    let mut setup = Setup::new(bin, 3, &o.broker_config)?;
    setup.start_all()?;
    let bootstrap = setup.bootstrap();
    let client = Client::new(client_config(&bootstrap))?;
    settle(&setup, &client).await?;
    // The controller creates __consumer_offsets (50 partitions, RF 3) once every voter
    // has registered; let that land before anything is measured.
    wait_topic_ready(&setup, &client, "__consumer_offsets", 50, 3).await?;
    settle(&setup, &client).await?;
    let admin = Admin::new(client_config(&bootstrap))?;
    let e2e_records = (o.e2e_rate * o.e2e_seconds).round() as u64;
    let mut workloads = Vec::new();
    for (rf, acks) in [(1, "1"), (3, "1"), (3, "all")] {
        for partitions in [1, 8] {
            workloads.push(RepWorkload {
                kind: "produce",
                rf,
                acks,
                partitions,
                records: o.records,
                rate: None,
            });
        }
    }
    for (rf, acks) in [(3, "all"), (1, "1")] {
        workloads.push(RepWorkload {
            kind: "end-to-end",
            rf,
            acks,
            partitions: 1,
            records: e2e_records,
            rate: Some(o.e2e_rate),
        });
    }
    workloads.retain(|w| {
        let label = w.label();
        o.workloads.is_empty() || o.workloads.iter().any(|x| label.contains(x.as_str()))
    });
    let want_idle = o.workloads.is_empty() || o.workloads.iter().any(|x| x == "idle");
    if workloads.is_empty() && !want_idle {
        return Err("--workloads matches no replication run".into());
    }
    let idle = if want_idle {
        Some(idle_cost(&setup, &client, &admin).await?)
    } else {
        None
    };
    if let Some(d) = &o.metrics_dir {
        std::fs::create_dir_all(d)?;
    }
    let out_dir = setup._root.path().join("perf");
    std::fs::create_dir_all(&out_dir)?;
    let mut results = Vec::new();
    for w in &workloads {
        let label = w.label();
        let topic = format!("rep-{label}");
        admin
            .create_topic(NewTopic::new(topic.clone(), w.partitions).replication_factor(w.rf))
            .await?;
        wait_topic_ready(&setup, &client, &topic, w.partitions, w.rf).await?;
        let views = all_views(&setup, &client, &topic).await?;
        let leaders: Vec<i32> = views
            .iter()
            .flatten()
            .next()
            .map(|ps| ps.iter().map(|p| p.0).collect())
            .unwrap_or_default();
        // The run's own bound: weir-perf's --duration; end-to-end also waits up to 5 s for
        // stragglers, and start-up takes a moment: the hard limit adds a minute.
        let duration = match w.rate {
            Some(_) => o.e2e_seconds + 30.0,
            None => o.run_limit_s,
        };
        let mut args: Vec<String> = vec![
            w.kind.into(),
            "--bootstrap".into(),
            bootstrap.clone(),
            "--topic".into(),
            topic.clone(),
            "--records".into(),
            w.records.to_string(),
            "--record-size".into(),
            o.record_size.to_string(),
            "--producers".into(),
            o.producers.to_string(),
            "--partitions".into(),
            w.partitions.to_string(),
            "--replication-factor".into(),
            w.rf.to_string(),
            "--acks".into(),
            w.acks.into(),
            "--duration".into(),
            duration.to_string(),
            "--output".into(),
            "json".into(),
            "--workload".into(),
            label.clone(),
        ];
        if let Some(r) = w.rate {
            args.extend(["--rate".into(), r.to_string()]);
            args.extend(["--linger-ms".into(), o.e2e_linger_ms.to_string()]);
        }
        let load_before = load_avg();
        eprintln!(
            "replication: {label} ({} records, leaders {leaders:?}; load {load_before})",
            w.records
        );
        let cpu_before = brokers_cpu(&setup)?;
        let perf = run_perf(
            &o.perf,
            &args,
            &out_dir,
            &label,
            Duration::from_secs_f64(duration + 60.0),
        )?;
        let (catch_up_ms, on_leaders, min_isr) = wait_caught_up(&setup, &client, &topic).await?;
        let cpu_after = brokers_cpu(&setup)?;
        if let Some(d) = &o.metrics_dir {
            for n in &setup.nodes {
                let text = metrics_text(&n.metrics).await?;
                std::fs::write(d.join(format!("{label}-broker-{}.prom", n.id)), text)?;
            }
        }
        let cpu: Vec<f64> = cpu_after
            .iter()
            .zip(&cpu_before)
            .map(|(a, b)| a - b)
            .collect();
        let cpu_total: f64 = cpu.iter().sum();
        let records = perf["records"].as_u64().unwrap_or(0);
        let per_million = if records > 0 {
            cpu_total / (records as f64 / 1e6)
        } else {
            f64::NAN
        };
        eprintln!(
            "replication: {label}: {:.0} records/s, p50/p99/p999 {}/{}/{} ms, errors {}, \
             broker CPU {cpu_total:.2} s ({per_million:.3}/M), replicas caught up after {} ms, \
             min ISR {min_isr}",
            perf["records_per_sec"].as_f64().unwrap_or(f64::NAN),
            perf["latency_ms"]["p50"],
            perf["latency_ms"]["p99"],
            perf["latency_ms"]["p999"],
            perf["errors"],
            catch_up_ms.map_or("-".into(), |m| format!("{m:.0}")),
        );
        results.push(json!({
            "workload": label,
            "kind": w.kind,
            "topic": topic,
            "replication_factor": w.rf,
            "acks": w.acks,
            "partitions": w.partitions,
            "producers": o.producers,
            "records_asked": w.records,
            "rate": w.rate,
            "linger_ms": if w.rate.is_some() { json!(o.e2e_linger_ms) } else { json!(5) },
            "leaders": leaders,
            "records": records,
            "records_per_sec": perf["records_per_sec"],
            "mb_per_sec": perf["mb_per_sec"],
            "seconds": perf["seconds"],
            "latency_ms": perf["latency_ms"],
            "produce_p99_ms": perf["produce_p99_ms"],
            "errors": perf["errors"],
            "first_error": perf["first_error"],
            "client_cpu_s": perf["client_cpu_s"],
            "broker_cpu_s": cpu,
            "server_cpu_s": cpu_total,
            "server_cpu_s_per_million": per_million,
            "replicas_caught_up_ms": catch_up_ms,
            "records_on_leaders": on_leaders,
            "min_isr_after": min_isr,
            "load_start": load_before,
            "load_end": load_avg(),
        }));
    }
    let rate_of = |label: &str| {
        results
            .iter()
            .find(|r| r["workload"] == label)
            .and_then(|r| r["records_per_sec"].as_f64())
    };
    let mut ratios = serde_json::Map::new();
    for p in [1, 8] {
        if let (Some(all), Some(one)) = (
            rate_of(&format!("produce-rf3-acksall-p{p}")),
            rate_of(&format!("produce-rf1-acks1-p{p}")),
        ) {
            ratios.insert(format!("rf3_all_vs_rf1_p{p}"), json!(all / one));
        }
    }
    Ok(json!({
        "brokers": 3,
        "timings": "shipped defaults",
        "broker_config": o.broker_config,
        "record_size": o.record_size,
        "producers": o.producers,
        "e2e_rate": o.e2e_rate,
        "e2e_seconds": o.e2e_seconds,
        "e2e_linger_ms": o.e2e_linger_ms,
        "runs": results,
        "idle": idle,
        "throughput_ratio": ratios,
        "client": "weir-perf (subprocess), bootstrap = the three brokers",
        "load_start": load_start,
        "load_end": load_avg(),
    }))
}

/// What followers cost when nothing is produced: 1,000 more partitions with 3 replicas
/// (besides `__consumer_offsets`), then the three brokers' CPU over 20 s of silence. The
/// followers long-poll their leaders (no fetch sessions), so this is their floor.
async fn idle_cost(setup: &Setup, client: &Client, admin: &Admin) -> Res<Value> {
    const PARTITIONS: i32 = 1000;
    const SECONDS: f64 = 20.0;
    let quiet = |from: Vec<f64>| -> Res<f64> {
        let to = brokers_cpu(setup)?;
        Ok(to.iter().zip(&from).map(|(a, b)| a - b).sum::<f64>() * 60.0 / SECONDS)
    };
    // Baseline: only __consumer_offsets' 50 partitions.
    let before = brokers_cpu(setup)?;
    tokio::time::sleep(Duration::from_secs_f64(SECONDS)).await;
    let baseline = quiet(before)?;
    admin
        .create_topic(NewTopic::new("idle", PARTITIONS).replication_factor(3))
        .await?;
    wait_topic_ready(setup, client, "idle", PARTITIONS, 3).await?;
    // Let the followers' first fetches (which open every partition's position) pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = brokers_cpu(setup)?;
    tokio::time::sleep(Duration::from_secs_f64(SECONDS)).await;
    let per_minute = quiet(before)?;
    eprintln!(
        "replication: idle, {} partitions with 3 replicas: {per_minute:.2} CPU-s per minute over all three brokers (50 partitions: {baseline:.2})",
        PARTITIONS + 50
    );
    Ok(json!({
        "partitions_rf3": PARTITIONS + 50,
        "seconds": SECONDS,
        "cpu_s_per_minute": per_minute,
        "baseline_partitions_rf3": 50,
        "baseline_cpu_s_per_minute": baseline,
    }))
}

// ---------------------------------------------------------------------------------------

/// A JSON value as plain text (strings without quotes), for fixed-width columns.
fn t(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn print_text(report: &Value) {
    println!(
        "cluster_bench  (nproc {}, load average at start: {})",
        t(&report["nproc"]),
        t(&report["load_start"])
    );
    if let Some(f) = report["failover"].as_array() {
        println!("\n1. Controller failover: kill -9 of the controller -> first `weir topic create` accepted");
        println!(
            "{:<9} {:>5} {:>10} {:>7} {:>7} {:>14} {:>12} {:>10}  load start -> end",
            "timings",
            "tries",
            "median ms",
            "max ms",
            "min ms",
            "elected med ms",
            "elected max",
            "cli ms"
        );
        for r in f {
            println!(
                "{:<9} {:>5} {:>10} {:>7} {:>7} {:>14} {:>12} {:>10}  {} -> {}",
                t(&r["timings"]),
                t(&r["tries"]),
                t(&r["median_ms"]),
                t(&r["max_ms"]),
                t(&r["min_ms"]),
                t(&r["elected_median_ms"]),
                t(&r["elected_max_ms"]),
                t(&r["healthy_create_median_ms"]),
                t(&r["load_start"]),
                t(&r["load_end"]),
            );
        }
        println!("  per try (ms to first accepted create / to a new controller named):");
        for r in f {
            let per: Vec<String> = r["runs"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| format!("{}/{}", t(&x["ms"]), t(&x["elected_ms"])))
                .collect();
            println!("  {:<9} {}", t(&r["timings"]), per.join(" "));
        }
    }
    if let Some(tp) = report["throughput"].as_array() {
        println!("\n2. Metadata throughput: CreateTopics (1 partition each) via weir-client Admin");
        println!(
            "{:<7} {:>6} {:>5} {:>7} {:>8} {:>7} {:>7} {:>7} {:>6}  load start -> end",
            "brokers",
            "topics",
            "tasks",
            "secs",
            "topics/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors"
        );
        for r in tp {
            println!(
                "{:<7} {:>6} {:>5} {:>7.2} {:>8.1} {:>7.1} {:>7.1} {:>7.1} {:>6}  {} -> {}",
                t(&r["brokers"]),
                t(&r["topics"]),
                t(&r["concurrency"]),
                r["seconds"].as_f64().unwrap_or(f64::NAN),
                r["topics_per_sec"].as_f64().unwrap_or(f64::NAN),
                r["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
                r["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
                r["latency_ms"]["max"].as_f64().unwrap_or(f64::NAN),
                t(&r["errors"]),
                t(&r["load_start"]),
                t(&r["load_end"]),
            );
            if r["errors"].as_u64().unwrap_or(0) > 0 {
                println!("  first error: {}", t(&r["first_error"]));
            }
        }
    }
    let r = &report["reelection"];
    if r.is_object() {
        println!(
            "\n3. Re-election: {} partitions, RF 2 (CreateTopics {} ms); kill -9 of broker {} \
             (leads {}; controller is {}); session timeout {} ms; Metadata polled every {} ms",
            t(&r["partitions"]),
            t(&r["create_ms"]),
            t(&r["killed"]),
            t(&r["led_by_killed"]),
            t(&r["controller"]),
            t(&r["session_timeout_ms"]),
            t(&r["poll_interval_ms"]),
        );
        println!(
            "{:<8} {:>10} {:>13} {:>12} {:>16} {:>6} {:>7}",
            "survivor",
            "controller",
            "first move ms",
            "all moved ms",
            "minus session ms",
            "moved",
            "offline"
        );
        for s in r["survivors"].as_array().into_iter().flatten() {
            println!(
                "{:<8} {:>10} {:>13} {:>12} {:>16} {:>6} {:>7}",
                t(&s["broker"]),
                t(&s["is_controller"]),
                t(&s["first_move_ms"]),
                t(&s["all_moved_ms"]),
                t(&s["all_moved_minus_session_ms"]),
                t(&s["moved"]),
                t(&s["offline"]),
            );
        }
        println!("  load {} -> {}", t(&r["load_start"]), t(&r["load_end"]));
    }
    let r = &report["replication"];
    if r.is_object() {
        print_replication(r);
    }
    println!("\nload average at end: {}", t(&report["load_end"]));
}

/// The 1-minute figure of a `load_avg()` string.
fn one_minute(v: &Value) -> String {
    t(v).split_whitespace().next().unwrap_or("-").to_owned()
}

fn print_replication(r: &Value) {
    let f = |v: &Value, d: usize| v.as_f64().map_or("-".into(), |x| format!("{x:.d$}"));
    println!(
        "\n4. Replication: 3 brokers (shipped default timings), weir-perf, {}-byte records, {} \
         producer(s); produce runs unpaced (linger 5 ms), end-to-end at {} records/s (linger {} ms)",
        t(&r["record_size"]),
        t(&r["producers"]),
        t(&r["e2e_rate"]),
        t(&r["e2e_linger_ms"]),
    );
    println!(
        "{:<24} {:>3} {:>4} {:>5} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7} {:>6}  load 1m start -> end",
        "workload",
        "rf",
        "acks",
        "parts",
        "records",
        "records/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "cpu-s/M",
        "catchup",
        "minISR",
        "errors"
    );
    if r["broker_config"].as_str().is_some_and(|c| !c.is_empty()) {
        println!("  extra broker config: {:?}", t(&r["broker_config"]));
    }
    for x in r["runs"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>3} {:>4} {:>5} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7} {:>6}  {} -> {}",
            t(&x["workload"]),
            t(&x["replication_factor"]),
            t(&x["acks"]),
            t(&x["partitions"]),
            t(&x["records"]),
            f(&x["records_per_sec"], 0),
            f(&x["latency_ms"]["p50"], 2),
            f(&x["latency_ms"]["p99"], 2),
            f(&x["latency_ms"]["p999"], 2),
            f(&x["server_cpu_s_per_million"], 3),
            f(&x["replicas_caught_up_ms"], 0),
            t(&x["min_isr_after"]),
            t(&x["errors"]),
            one_minute(&x["load_start"]),
            one_minute(&x["load_end"]),
        );
        if x["errors"].as_u64().unwrap_or(0) > 0 {
            println!("  first error: {}", t(&x["first_error"]));
        }
    }
    for (k, v) in r["throughput_ratio"].as_object().into_iter().flatten() {
        println!("  {k}: {}", f(v, 2));
    }
    if r["idle"].is_object() {
        println!(
            "  idle: {} partitions with 3 replicas, no traffic: {} CPU-s per minute (all three brokers; {} with {} partitions)",
            t(&r["idle"]["partitions_rf3"]),
            f(&r["idle"]["cpu_s_per_minute"], 2),
            f(&r["idle"]["baseline_cpu_s_per_minute"], 2),
            t(&r["idle"]["baseline_partitions_rf3"]),
        );
    }
    println!(
        "  latency: produce = intended send -> ack; end-to-end = intended send -> consumed. \
         cpu-s/M: utime+stime of all three brokers per million records, until every replica \
         caught up (catchup ms after the run)."
    );
    println!("  load {} -> {}", t(&r["load_start"]), t(&r["load_end"]));
}

fn sibling(name: &str) -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().ok_or("no exe dir")?.join(name))
}

fn main() -> Res<()> {
    let args = Args::parse();
    let bin = match args.broker {
        Some(b) => b,
        None => sibling("weir-broker")?,
    };
    let weir = match args.weir {
        Some(w) => w,
        None => sibling("weir")?,
    };
    let perf = match args.perf {
        Some(p) => p,
        None => sibling("weir-perf")?,
    };
    let mut needed = vec![&bin];
    if args.only.contains(&Phase::Failover) {
        needed.push(&weir);
    }
    if args.only.contains(&Phase::Replication) {
        needed.push(&perf);
        if args.records == 0 || args.e2e_rate <= 0.0 || args.e2e_seconds <= 0.0 {
            return Err("--records, --e2e-rate and --e2e-seconds must be positive".into());
        }
        if !(1..=256).contains(&args.producers) || args.record_size < 8 {
            return Err("--producers must be 1..=256 and --record-size at least 8".into());
        }
    }
    for b in needed {
        if !b.exists() {
            return Err(format!(
                "{} not found; cargo build --release -p weir-broker -p weir-client -p weir-benches",
                b.display()
            )
            .into());
        }
    }
    // Spawning happens on this (main) thread only: block_on runs the top-level future here,
    // so PR_SET_PDEATHSIG ties the brokers to this thread's life.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut report = json!({"load_start": load_avg(), "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)});
    rt.block_on(async {
        if args.only.contains(&Phase::Failover) {
            let mut runs = Vec::new();
            if args.tries > 0 {
                runs.push(failover(&bin, &weir, SHORT_TIMINGS, "short", args.tries).await?);
            }
            if args.default_tries > 0 {
                runs.push(failover(&bin, &weir, "", "defaults", args.default_tries).await?);
            }
            report["failover"] = Value::Array(runs);
        }
        if args.only.contains(&Phase::Throughput) {
            let mut runs = Vec::new();
            for brokers in [3, 1] {
                runs.push(throughput(&bin, brokers, args.topics, args.concurrency).await?);
            }
            report["throughput"] = Value::Array(runs);
        }
        if args.only.contains(&Phase::Reelection) {
            report["reelection"] = reelection(&bin, args.partitions).await?;
        }
        if args.only.contains(&Phase::Replication) {
            let o = RepOptions {
                perf: perf.clone(),
                records: args.records,
                record_size: args.record_size,
                producers: args.producers,
                e2e_rate: args.e2e_rate,
                e2e_seconds: args.e2e_seconds,
                e2e_linger_ms: args.e2e_linger_ms,
                workloads: args.workloads.clone(),
                metrics_dir: args.metrics_dir.clone(),
                broker_config: args.broker_config.replace("\\n", "\n"),
                run_limit_s: args.run_limit.clamp(1.0, 3600.0),
            };
            report["replication"] = replication(&bin, &o).await?;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    report["load_end"] = json!(load_avg());
    match args.output {
        Output::Json => println!("{report}"),
        Output::Text => print_text(&report),
    }
    Ok(())
}
