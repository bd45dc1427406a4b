//! One run end to end: set up the cluster, create the topic, start the workloads, follow
//! the schedule, heal, read everything back, compare replicas, scan the broker logs, check.
//! Everything lands in one folder: `seed.txt`, `schedule.json`, `faults.jsonl`,
//! `history.jsonl`, `broker-N/broker.log`, `summary.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use weir_client::admin::NewTopic;
use weir_client::{Consumer, ConsumerConfig, OffsetReset, TopicPartition};
use weir_protocol::batch::BatchIter;

use super::checker::{self, FaultSpan, Input, Report};
use super::cluster::{Cluster, ClusterError};
use super::faults::{self, Control, PartView};
use super::history::{Func, Recorder};
use super::rng::Rng;
use super::schedule::{self, FaultKind};
use super::workload::{self, Params};

/// Why a run could not complete (violations are not errors: they are in the report).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cluster could not be set up or started.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A file of the run folder could not be written.
    #[error("{what}: {source}")]
    Io {
        /// What.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The cluster never became ready for the workload.
    #[error("setup: {0}")]
    Setup(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seed of the schedule and every seeded choice.
    pub seed: u64,
    /// Length of the workload in seconds (the final checks come after).
    pub duration_s: u64,
    /// Faults the schedule draws from.
    pub faults: BTreeSet<FaultKind>,
    /// Records to send at most.
    pub records: u64,
    /// Target send rate, records per second.
    pub rate: u64,
    /// Partitions of the topic.
    pub partitions: i32,
    /// The run folder.
    pub dir: PathBuf,
    /// The broker binary.
    pub broker: PathBuf,
    /// Mount a capped tmpfs per broker (needs root; F8 needs it).
    pub tmpfs: bool,
    /// Acknowledged writes required while a single-node fault is held.
    pub min_progress: usize,
}

const TOPIC: &str = "chaos";

fn log(msg: &str) {
    eprintln!("[weir-chaos] {msg}");
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The checker's report.
    pub report: Report,
    /// Faults that could not be injected, and why.
    pub notes: Vec<String>,
}

/// Runs and checks; the report's violations say whether the run passed.
pub async fn run(opts: &Options, interrupted: CancellationToken) -> Result<Outcome, RunError> {
    std::fs::create_dir_all(&opts.dir).map_err(io(format!("create {}", opts.dir.display())))?;
    let dir = &opts.dir;
    std::fs::write(dir.join("seed.txt"), format!("{}\n", opts.seed))
        .map_err(io("write seed.txt"))?;
    let plan = schedule::generate(opts.seed, opts.duration_s, &opts.faults);
    let plan_json: Vec<_> = plan
        .steps
        .iter()
        .map(|s| json!({"at_ms": s.at_ms, "kind": s.kind.to_string(), "hold_ms": s.hold_ms, "pick": s.pick, "in_mix": s.in_mix}))
        .collect();
    std::fs::write(
        dir.join("schedule.json"),
        serde_json::to_string_pretty(&json!({"seed": opts.seed, "duration_s": opts.duration_s, "faults_from_ms": plan.faults_from_ms, "faults_until_ms": plan.faults_until_ms, "steps": plan_json}))
            .unwrap_or_default(),
    )
    .map_err(io("write schedule.json"))?;
    log(&format!(
        "seed {} duration {} s: {} planned injections; run folder {}",
        opts.seed,
        opts.duration_s,
        plan.steps.len(),
        dir.display()
    ));

    let mut cluster = Cluster::new(&opts.broker, dir, opts.tmpfs).await?;
    if let Some(note) = &cluster.tmpfs_note {
        log(&format!(
            "no capped tmpfs: {note}; F8 (disk full) will not be injected"
        ));
    }
    cluster.start_all().await?;
    let control = Control::new().map_err(|e| RunError::Setup(e.to_string()))?;
    create_topic(&cluster, &control, opts.partitions).await?;

    let rec =
        Recorder::new(Some(&dir.join("history.jsonl"))).map_err(io("create history.jsonl"))?;
    let params = Params {
        bootstrap: cluster.bootstrap(),
        topic: TOPIC.into(),
        partitions: opts.partitions,
        producers: 4,
        rate: opts.rate,
        records: opts.records,
        consumers: 2,
        members: 3,
    };
    let stop_producers = CancellationToken::new();
    let stop_consumers = CancellationToken::new();
    let mut rng = Rng::new(opts.seed ^ 0x5eed);
    let producer_params = Params {
        consumers: 0,
        members: 0,
        ..params.clone()
    };
    let consumer_params = Params {
        producers: 0,
        ..params.clone()
    };
    let mut tasks = workload::start(&producer_params, &rec, &stop_producers, &mut rng);
    tasks.extend(workload::start(
        &consumer_params,
        &rec,
        &stop_consumers,
        &mut rng,
    ));

    // The schedule.
    let mut fault_log =
        std::fs::File::create(dir.join("faults.jsonl")).map_err(io("create faults.jsonl"))?;
    let mut spans: Vec<FaultSpan> = Vec::new();
    let mut health: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut last_status = Instant::now();
    for step in &plan.steps {
        if !sleep_until(started, step.at_ms, &interrupted).await {
            break;
        }
        status(&rec, started, &mut last_status);
        let (active, what) =
            faults::inject(&mut cluster, &control, step, TOPIC, rec.now_us()).await?;
        let Some(active) = active else {
            notes.push(what.clone());
            log(&what);
            continue;
        };
        log(&format!(
            "t={:>4}s inject {}: {what}",
            started.elapsed().as_secs(),
            step.kind
        ));
        if step.kind == FaultKind::F12 {
            // The phase is a marker; its switches follow as their own steps.
            let (mut span, _) = faults::heal(&mut cluster, active, rec.now_us()).await;
            span.end_us = span.start_us + step.hold_ms * 1000;
            write_span(&mut fault_log, &span);
            spans.push(span);
            continue;
        }
        let held = sleep_until(started, step.at_ms + step.hold_ms, &interrupted).await;
        let (span, found) = faults::heal(&mut cluster, active, rec.now_us()).await;
        log(&format!(
            "t={:>4}s healed {} after {} ms",
            started.elapsed().as_secs(),
            span.kind,
            (span.end_us - span.start_us) / 1000
        ));
        write_span(&mut fault_log, &span);
        spans.push(span);
        health.extend(found);
        health.extend(revive(&mut cluster).await);
        if !held {
            break;
        }
    }
    // The healed tail: producers continue until the duration ends.
    heal_all(&mut cluster).await;
    health.extend(revive(&mut cluster).await);
    sleep_until(started, opts.duration_s * 1000, &interrupted).await;
    status(&rec, started, &mut last_status);
    log("stopping producers");
    stop_producers.cancel();

    // Final phase.
    let mut liveness = Vec::new();
    let settled = wait_settled(&cluster, &control, opts.partitions, Duration::from_secs(60)).await;
    let hws: BTreeMap<i32, i64> = match &settled {
        Ok(h) => h.clone(),
        Err((why, h)) => {
            liveness.push(format!(
                "replicas did not converge within 60 s after healing: {why}"
            ));
            h.clone()
        }
    };
    let admin = workload::admin(&params.bootstrap).map_err(|e| RunError::Setup(e.to_string()))?;
    if let Err(why) = wait_consumers(&rec, &admin, &params, &hws, Duration::from_secs(60)).await {
        liveness.push(format!(
            "consumers did not catch up within 60 s of the final heal: {why}"
        ));
    }
    stop_consumers.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(80), t).await;
    }
    // Positions the producers finished at may have moved the high watermarks.
    let hws = match wait_settled(&cluster, &control, opts.partitions, Duration::from_secs(30)).await
    {
        Ok(h) => h,
        Err((why, h)) => {
            liveness.push(format!(
                "replicas did not converge after the producers stopped: {why}"
            ));
            h
        }
    };
    let final_log = final_read(&params, &hws).await;
    for (p, hw) in &hws {
        let got = final_log.get(p).map_or(0, Vec::len);
        if i64::try_from(got).unwrap_or(0) < *hw {
            liveness.push(format!(
                "final read of p{p} got {got} records below hw {hw}"
            ));
        }
    }
    let divergence = compare_replicas(&cluster, opts.partitions, &hws);
    let _ = workload::fetch_committed(&admin, &params, &rec).await;
    rec.flush().map_err(io("write history.jsonl"))?;
    let injected_f9: BTreeSet<i32> = spans
        .iter()
        .filter(|s| s.kind == "F9")
        .filter_map(|s| {
            s.what
                .split_whitespace()
                .nth(3)
                .and_then(|b| b.parse().ok())
        })
        .collect();
    let mut log_findings = scan_logs(&cluster, &injected_f9);
    log_findings.extend(health);
    keep_data(&cluster);
    drop(cluster);

    let input = Input {
        events: rec.events(),
        final_log,
        high_watermarks: hws,
        faults: spans,
        divergence,
        log_findings,
        liveness,
        min_progress: opts.min_progress,
        group_ran: params.members > 0,
    };
    let report = checker::check(&input);
    let summary = summary_json(opts, &report, &notes);
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )
    .map_err(io("write summary.json"))?;
    Ok(Outcome { report, notes })
}

/// The one-line JSON summary (`--output json`).
pub fn summary_json(opts: &Options, r: &Report, notes: &[String]) -> serde_json::Value {
    json!({
        "seed": opts.seed,
        "duration_s": opts.duration_s,
        "acknowledged": r.acknowledged,
        "lost": r.lost,
        "duplicated": r.duplicated,
        "divergent": r.divergent,
        "violations": r.violations.iter().map(|v| format!("{}: {}", v.rule, v.what)).collect::<Vec<_>>(),
        "faults": r.faults,
        "failover_ms": {"p50": r.failover.p50, "max": r.failover.max},
        "operations": r.operations,
        "polled": r.polled,
        "notes": notes,
        "dir": opts.dir.display().to_string(),
    })
}

/// Prints the result table.
pub fn print_table(opts: &Options, r: &Report) {
    println!(
        "weir-chaos seed {} duration {} s ({})",
        opts.seed,
        opts.duration_s,
        opts.dir.display()
    );
    println!("  operations      {:>10}", r.operations);
    println!("  acknowledged    {:>10}", r.acknowledged);
    println!("  polled records  {:>10}", r.polled);
    println!("  lost            {:>10}", r.lost);
    println!("  duplicated      {:>10}", r.duplicated);
    println!("  divergent       {:>10}", r.divergent);
    let total: u64 = r.faults.values().sum();
    println!("  faults injected {total:>10}");
    for (k, n) in &r.faults {
        println!("    {k:<4} {n:>6}");
    }
    let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v} ms"));
    println!(
        "  failover        p50 {}  max {}  ({} samples)",
        ms(r.failover.p50),
        ms(r.failover.max),
        r.failover.samples.len()
    );
    if r.violations.is_empty() {
        println!("  violations      none");
    } else {
        println!("  violations      {}", r.violations.len());
        for v in &r.violations {
            println!("    {}: {}", v.rule, v.what);
        }
    }
}

fn write_span(out: &mut std::fs::File, span: &FaultSpan) {
    if let Ok(line) = serde_json::to_string(span) {
        let _ = writeln!(out, "{line}");
    }
}

fn status(rec: &Recorder, started: Instant, last: &mut Instant) {
    if last.elapsed() < Duration::from_secs(10) {
        return;
    }
    *last = Instant::now();
    log(&format!(
        "t={:>4}s acknowledged so far: {}",
        started.elapsed().as_secs(),
        rec.acked_since(0)
    ));
}

/// Sleeps until `at_ms` after `started`; false when interrupted.
async fn sleep_until(started: Instant, at_ms: u64, interrupted: &CancellationToken) -> bool {
    let at = started + Duration::from_millis(at_ms);
    tokio::select! {
        _ = tokio::time::sleep_until(at.into()) => true,
        _ = interrupted.cancelled() => false,
    }
}

/// Heals every link and resumes every paused broker.
async fn heal_all(cluster: &mut Cluster) {
    cluster.heal_links();
    for n in &mut cluster.nodes {
        if n.paused {
            n.resume();
        }
    }
}

/// Restarts brokers that are not running (a broker that exited by itself is a finding).
async fn revive(cluster: &mut Cluster) -> Vec<String> {
    let mut found = Vec::new();
    for i in 0..cluster.nodes.len() {
        if let Some(status) = cluster.nodes[i].exited() {
            found.push(format!("broker {} exited by itself ({status})", i + 1));
        }
        if !cluster.nodes[i].running() {
            if let Err(e) = cluster.restart(i).await {
                found.push(format!("restart of broker {}: {e}", i + 1));
            }
        }
    }
    found
}

/// Creates the topic (RF 3, min.insync.replicas 2, 128 KiB segments) and waits until
/// every partition has a leader and three in-sync replicas.
async fn create_topic(
    cluster: &Cluster,
    control: &Control,
    partitions: i32,
) -> Result<(), RunError> {
    let admin =
        workload::admin(&cluster.bootstrap()).map_err(|e| RunError::Setup(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let topic = NewTopic::new(TOPIC, partitions)
            .replication_factor(3)
            .config("min.insync.replicas", "2")
            .config("segment.bytes", "131072");
        match admin.create_topic(topic).await {
            Ok(_) => break,
            Err(e) if e.to_string().contains("already exists") => break,
            Err(e) if Instant::now() > deadline => {
                return Err(RunError::Setup(format!("create topic: {e}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    loop {
        if let Some((_, parts)) = control.view(cluster, TOPIC).await {
            if parts.len() == partitions as usize
                && parts.iter().all(|p| p.leader > 0 && p.isr.len() == 3)
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(RunError::Setup(
                "the topic never had 3 in-sync replicas everywhere".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until every partition has 3 in-sync replicas and all three brokers
/// report the same log end and high watermark; returns the high watermarks (or why not,
/// with the leaders' last known ones).
async fn wait_settled(
    cluster: &Cluster,
    control: &Control,
    partitions: i32,
    within: Duration,
) -> Result<BTreeMap<i32, i64>, (String, BTreeMap<i32, i64>)> {
    let deadline = Instant::now() + within;
    let mut last_hws = BTreeMap::new();
    loop {
        let mut views: Vec<Vec<PartView>> = Vec::new();
        for n in &cluster.nodes {
            if let Some(m) = control.metadata_at(&n.listen, TOPIC).await {
                views.push(faults::parts(&m, TOPIC));
            }
        }
        let mut why = None;
        if views.len() < 3 {
            why = Some(format!("{} of 3 brokers answered", views.len()));
        }
        for q in 0..partitions {
            let at: Vec<&PartView> = views
                .iter()
                .filter_map(|v| v.iter().find(|p| p.partition == q))
                .collect();
            let leader = at.first().map_or(-1, |p| p.leader);
            if let Some(hw) = at
                .iter()
                .zip(cluster.nodes.iter())
                .find(|(_, n)| n.id == leader)
                .and_then(|(p, _)| p.hw)
                .or_else(|| at.iter().filter_map(|p| p.hw).max())
            {
                last_hws.insert(q, hw);
            }
            let ends: BTreeSet<(Option<i64>, Option<i64>)> =
                at.iter().map(|p| (p.hw, p.leo)).collect();
            let isr_full = at.iter().all(|p| p.isr.len() == 3 && p.leader > 0);
            if why.is_none()
                && (!isr_full
                    || ends.len() != 1
                    || at.len() < 3
                    || at.iter().any(|p| p.hw != p.leo))
            {
                why = Some(format!(
                    "p{q}: leader {leader}, isr {:?}, (hw, leo) per broker {:?}",
                    at.first().map(|p| p.isr.clone()),
                    at.iter().map(|p| (p.hw, p.leo)).collect::<Vec<_>>()
                ));
            }
        }
        match why {
            None => return Ok(last_hws),
            Some(w) if Instant::now() > deadline => return Err((w, last_hws)),
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits (bounded) until the assign consumers have read to the high watermarks and the
/// group has committed them.
async fn wait_consumers(
    rec: &Recorder,
    admin: &weir_client::Admin,
    params: &Params,
    hws: &BTreeMap<i32, i64>,
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let events = rec.events();
        let mut read: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for e in events
            .iter()
            .filter(|e| e.f == Func::Poll && e.process.starts_with('c'))
        {
            let o = e.offset.unwrap_or(-1) + 1;
            let slot = read.entry((e.process.clone(), e.partition)).or_insert(0);
            *slot = (*slot).max(o);
        }
        let mut behind = Vec::new();
        for c in 0..params.consumers {
            for (q, hw) in hws {
                let at = read.get(&(format!("c{c}"), *q)).copied().unwrap_or(0);
                if at < *hw {
                    behind.push(format!("c{c} p{q} at {at} < {hw}"));
                }
            }
        }
        let committed = workload::fetch_committed(admin, params, rec)
            .await
            .unwrap_or_default();
        for (q, hw) in hws {
            let c = committed
                .iter()
                .find(|(p, _)| p == q)
                .map_or(-1, |(_, o)| *o);
            if c < *hw {
                behind.push(format!("group p{q} committed {c} < {hw}"));
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            behind.truncate(6);
            return Err(behind.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A fresh consumer reads every partition from 0 to its high watermark (bounded).
async fn final_read(
    params: &Params,
    hws: &BTreeMap<i32, i64>,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let mut out: BTreeMap<i32, Vec<(i64, String)>> = hws.keys().map(|q| (*q, Vec::new())).collect();
    let config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        fetch_max_wait: Duration::from_millis(100),
        ..Default::default()
    };
    let mut cc = weir_client::ClientConfig::new(&params.bootstrap);
    cc.client_id = "final-read".into();
    let Ok(mut consumer) = Consumer::new(cc, config) else {
        return out;
    };
    let tps: Vec<TopicPartition> = hws.keys().map(|q| TopicPartition::new(TOPIC, *q)).collect();
    if consumer.assign(tps.clone()).await.is_err() {
        return out;
    }
    for tp in &tps {
        let _ = consumer.seek(tp.clone(), 0);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = |out: &BTreeMap<i32, Vec<(i64, String)>>| {
        hws.iter().all(|(q, hw)| {
            out.get(q)
                .and_then(|v| v.last())
                .map_or(*hw == 0, |(o, _)| *o + 1 >= *hw)
        })
    };
    while !done(&out) && Instant::now() < deadline {
        let Ok(records) = consumer.poll(Duration::from_millis(500)).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        for r in records {
            let hw = hws.get(&r.partition).copied().unwrap_or(0);
            if r.offset < hw {
                let v = r
                    .value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                out.entry(r.partition).or_default().push((r.offset, v));
            }
        }
    }
    out
}

/// Rule 10: every broker's batches of each partition below the high watermark, byte for
/// byte; one line per partition where they differ.
fn compare_replicas(cluster: &Cluster, partitions: i32, hws: &BTreeMap<i32, i64>) -> Vec<String> {
    let mut out = Vec::new();
    for q in 0..partitions {
        let hw = hws.get(&q).copied().unwrap_or(0);
        let logs: Vec<(i32, Batches)> = cluster
            .nodes
            .iter()
            .map(|n| {
                (
                    n.id,
                    batches_below(&n.data.join(format!("{TOPIC}-{q}")), hw),
                )
            })
            .collect();
        let Some((first_id, first)) = logs.first() else {
            continue;
        };
        for (id, other) in logs.iter().skip(1) {
            if other != first {
                let at = first
                    .iter()
                    .zip(other.iter())
                    .find(|(a, b)| a != b)
                    .map(|(a, _)| a.0)
                    .unwrap_or_else(|| first.len().min(other.len()) as i64);
                out.push(format!(
                    "p{q}: broker {id} differs from broker {first_id} below hw {hw} (first difference at batch {at}; {} vs {} batches)",
                    other.len(),
                    first.len()
                ));
            }
        }
    }
    out
}

/// (base offset, bytes) of a partition's batches, in offset order.
type Batches = Vec<(i64, Vec<u8>)>;

/// (base offset, bytes) of every batch that starts below `hw` in a partition directory.
fn batches_below(dir: &Path, hw: i64) -> Batches {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for item in BatchIter::new(&bytes, true) {
            let Ok((h, b)) = item else { break };
            if h.base_offset < hw {
                out.push((h.base_offset, b.to_vec()));
            }
        }
    }
    out
}

/// Copies each broker's data directory into the run folder (`broker-N/data-final`), as
/// evidence: the tmpfs mounts go away with the cluster.
fn keep_data(cluster: &Cluster) {
    for n in &cluster.nodes {
        let Some(parent) = n.data.parent() else {
            continue;
        };
        let _ = std::process::Command::new("cp")
            .arg("-a")
            .arg(&n.data)
            .arg(parent.join("data-final"))
            .status();
    }
}

/// Rule 12: panics anywhere; corruption lines from brokers whose log nobody damaged.
fn scan_logs(cluster: &Cluster, damaged: &BTreeSet<i32>) -> Vec<String> {
    let mut out = Vec::new();
    for n in &cluster.nodes {
        let Ok(text) = std::fs::read_to_string(&n.log) else {
            continue;
        };
        for line in text.lines() {
            let l = line.to_ascii_lowercase();
            let panic = l.contains("panicked") || l.contains("stack backtrace");
            let corrupt = l.contains("corrupt") && !damaged.contains(&n.id);
            if panic || corrupt {
                out.push(format!(
                    "broker {}: {}",
                    n.id,
                    line.chars().take(300).collect::<String>()
                ));
            }
        }
    }
    out
}
