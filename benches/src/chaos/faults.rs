//! Carries out a planned [`Step`] on live targets: reads the metadata to find the leader,
//! follower or controller the step's `pick` selects, injects, and later heals. Every action
//! is logged in words for the run's fault log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weir_client::{Client, ClientConfig};
use weir_protocol::batch::BatchIter;
use weir_protocol::native::v1;

use super::checker::FaultSpan;
use super::cluster::{Cluster, ClusterError};
use super::rng::Rng;
use super::schedule::{FaultKind, Step};

/// One partition as the metadata describes it.
#[derive(Debug, Clone)]
pub struct PartView {
    /// Index.
    pub partition: i32,
    /// Leader id (-1: none).
    pub leader: i32,
    /// Replica ids.
    pub replicas: Vec<i32>,
    /// In-sync replica ids.
    pub isr: Vec<i32>,
    /// The answering broker's high watermark and log end, if it hosts the partition.
    pub hw: Option<i64>,
    /// Log end offset.
    pub leo: Option<i64>,
}

/// Reads live metadata straight from the brokers' own listeners (not through the proxies:
/// faults must never blind the harness).
pub struct Control {
    client: Arc<Client>,
}

impl Control {
    /// A control client with short timeouts.
    pub fn new() -> Result<Control, weir_client::Error> {
        let mut c = ClientConfig::new("127.0.0.1:1");
        c.client_id = "weir-chaos-control".into();
        c.request_timeout = Duration::from_secs(2);
        c.connect_timeout = Duration::from_secs(1);
        Ok(Control {
            client: Client::new(c)?,
        })
    }

    /// Metadata of `topic` as broker at `addr` sees it.
    pub async fn metadata_at(&self, addr: &str, topic: &str) -> Option<v1::MetadataResponse> {
        let req = v1::MetadataRequest {
            topics: vec![topic.to_string()],
            all_topics: false,
            allow_auto_topic_creation: false,
        };
        self.client.request_addr(addr, req).await.ok()
    }

    /// (controller id, partitions) from the first running, unpaused broker that answers.
    pub async fn view(&self, cluster: &Cluster, topic: &str) -> Option<(i32, Vec<PartView>)> {
        for n in cluster.nodes.iter().filter(|n| n.running() && !n.paused) {
            if let Some(m) = self.metadata_at(&n.listen, topic).await {
                return Some((m.controller_id, parts(&m, topic)));
            }
        }
        None
    }
}

/// The partitions of `topic` in a metadata answer.
pub fn parts(m: &v1::MetadataResponse, topic: &str) -> Vec<PartView> {
    m.topics
        .iter()
        .filter(|t| t.name == topic && t.error_code == 0)
        .flat_map(|t| &t.partitions)
        .map(|p| PartView {
            partition: p.partition_index,
            leader: p.leader_id,
            replicas: p.replica_nodes.clone(),
            isr: p.isr_nodes.clone(),
            hw: p.high_watermark,
            leo: p.log_end_offset,
        })
        .collect()
}

/// What healing a fault must undo.
#[derive(Debug)]
enum Undo {
    Nothing,
    Restart(Vec<usize>),
    Resume(usize),
    Links,
    /// The ballast file and the broker whose disk it fills.
    Ballast(PathBuf, usize),
}

/// An injected fault, until healed.
#[derive(Debug)]
pub struct Active {
    undo: Undo,
    /// The span, `end_us` set at healing.
    pub span: FaultSpan,
}

/// Findings while injecting or healing that the checker reports under rule 12.
pub type Health = Vec<String>;

fn idx(id: i32) -> usize {
    usize::try_from(id - 1).unwrap_or(0).min(2)
}

/// Injects `step`; `None` when it could not be (e.g. disk full without a tmpfs), with the
/// reason in the returned note.
pub async fn inject(
    cluster: &mut Cluster,
    control: &Control,
    step: &Step,
    topic: &str,
    now_us: u64,
) -> Result<(Option<Active>, String), ClusterError> {
    let mut rng = Rng::new(step.pick);
    let view = control.view(cluster, topic).await;
    let (controller, partitions) = view.unwrap_or((-1, Vec::new()));
    let p = partitions.get(rng.index(partitions.len().max(1))).cloned();
    let leader = p
        .as_ref()
        .map(|p| p.leader)
        .filter(|l| *l > 0)
        .unwrap_or(rng.index(3) as i32 + 1);
    let follower = p
        .as_ref()
        .and_then(|p| {
            let f: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|r| *r != p.leader)
                .collect();
            f.get(rng.index(f.len())).copied()
        })
        .unwrap_or((leader % 3) + 1);
    let led_by = |id: i32| -> Vec<i32> {
        partitions
            .iter()
            .filter(|p| p.leader == id)
            .map(|p| p.partition)
            .collect()
    };
    let pname = p
        .as_ref()
        .map_or("?".to_string(), |p| p.partition.to_string());
    let mut span = FaultSpan {
        kind: step.kind.to_string(),
        start_us: now_us,
        end_us: now_us,
        single_node: step.kind.single_node(),
        leader_fault: step.kind.is_leader_fault(),
        partitions: Vec::new(),
        in_mix: step.in_mix,
        what: String::new(),
    };
    let undo = match step.kind {
        FaultKind::F1 => {
            span.partitions = led_by(leader);
            cluster.nodes[idx(leader)].kill9();
            span.what = format!("kill -9 broker {leader} (leader of p{pname})");
            Undo::Restart(vec![idx(leader)])
        }
        FaultKind::F2 => {
            let target = if controller > 0 { controller } else { leader };
            cluster.nodes[idx(target)].kill9();
            span.what = format!("kill -9 broker {target} (Raft metadata leader)");
            Undo::Restart(vec![idx(target)])
        }
        FaultKind::F3 => {
            span.partitions = led_by(leader);
            cluster.nodes[idx(leader)].pause();
            span.what = format!("SIGSTOP broker {leader} (leader of p{pname})");
            Undo::Resume(idx(leader))
        }
        FaultKind::F4 => {
            cluster.nodes[idx(follower)].pause();
            span.what = format!("SIGSTOP broker {follower} (follower of p{pname})");
            Undo::Resume(idx(follower))
        }
        FaultKind::F5 => {
            span.partitions = led_by(leader);
            let cut = cluster.isolate(idx(leader));
            span.what = format!(
                "isolate broker {leader} (leader of p{pname}) from its peers: {}",
                cut.join(", ")
            );
            Undo::Links
        }
        FaultKind::F6 => {
            let a = rng.index(3);
            let b = (a + 1 + rng.index(2)) % 3;
            let cut = cluster.one_way(a, b);
            span.what = format!(
                "one-way loss broker {} -> broker {}: {}",
                a + 1,
                b + 1,
                cut.join(", ")
            );
            Undo::Links
        }
        FaultKind::F7 => {
            let mut order = vec![0usize, 1, 2];
            for i in (1..order.len()).rev() {
                order.swap(i, rng.index(i + 1));
            }
            for (k, i) in order.iter().enumerate() {
                if k > 0 {
                    // All three within a second, in a seeded order and spacing.
                    tokio::time::sleep(Duration::from_millis(rng.range(0, 400))).await;
                }
                cluster.nodes[*i].kill9();
            }
            span.what = format!(
                "kill -9 brokers {:?} within a second",
                order.iter().map(|i| i + 1).collect::<Vec<_>>()
            );
            Undo::Restart(order)
        }
        FaultKind::F8 => {
            let n = &cluster.nodes[idx(follower)];
            if !n.mounted {
                let why = cluster.tmpfs_note.clone().unwrap_or_default();
                return Ok((None, format!("F8 not injected: no capped tmpfs ({why})")));
            }
            let ballast = n.data.join("chaos-ballast");
            let written = fill(&ballast);
            span.what = format!(
                "disk full on broker {follower} (follower of p{pname}): {} MiB ballast",
                written >> 20
            );
            Undo::Ballast(ballast, idx(follower))
        }
        FaultKind::F9 => {
            let f = idx(follower);
            cluster.nodes[f].kill9();
            let dir = cluster.nodes[f].data.join(format!("{topic}-{pname}"));
            let done = damage(&dir, &mut rng);
            span.what = format!("kill -9 broker {follower} (follower of p{pname}), then {done}");
            Undo::Restart(vec![f])
        }
        FaultKind::F12 => {
            span.single_node = false;
            span.what = format!("mixed phase for {} ms", step.hold_ms);
            Undo::Nothing
        }
    };
    let what = span.what.clone();
    Ok((Some(Active { undo, span }), what))
}

/// Heals `active`; returns its span and anything unhealthy seen while healing.
pub async fn heal(cluster: &mut Cluster, active: Active, now_us: u64) -> (FaultSpan, Health) {
    let mut health = Vec::new();
    let mut span = active.span;
    span.end_us = now_us;
    match active.undo {
        Undo::Nothing => {}
        Undo::Restart(nodes) => {
            for i in &nodes {
                if let Err(e) = cluster.spawn(*i) {
                    health.push(format!("restart after {}: {e}", span.kind));
                }
            }
            for i in nodes {
                if let Err(e) = cluster.wait_ready(i, Duration::from_secs(60)).await {
                    health.push(format!("restart after {} ({}): {e}", span.kind, span.what));
                }
            }
        }
        Undo::Resume(i) => cluster.nodes[i].resume(),
        Undo::Links => cluster.heal_links(),
        Undo::Ballast(path, i) => {
            if let Err(e) = std::fs::remove_file(&path) {
                health.push(format!("remove ballast {}: {e}", path.display()));
            }
            // A broker that cannot write its metadata log halts, as Kafka does when its
            // metadata log directory fails; that is the designed answer to a full disk,
            // not a finding. It is restarted once there is space again (what an operator
            // or a supervisor does), and must then catch up without losing anything.
            if let Some(status) = cluster.nodes[i].exited() {
                // The halt exits with 1; anything else (a panic's 101, a signal) is a crash.
                if status != "exit status: 1" {
                    health.push(format!("broker {} exited by itself ({status})", i + 1));
                }
                span.what
                    .push_str(&format!("; broker {} halted ({status}), restarted", i + 1));
                if let Err(e) = cluster.restart(i).await {
                    health.push(format!("restart after {} ({}): {e}", span.kind, span.what));
                }
            }
        }
    }
    (span, health)
}

/// Writes zeros to `path` until the file system is full (bounded by the tmpfs size);
/// returns the bytes written.
fn fill(path: &Path) -> u64 {
    let Ok(mut f) = std::fs::File::create(path) else {
        return 0;
    };
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let limit = (super::cluster::TMPFS_MB + 1) << 20;
    while written < limit {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    written
}

/// Damages the active segment of a killed broker's partition directory the way a crash
/// mid-write can (§4.4 F9): truncate at a random byte in the last 64 KiB, flip a random
/// byte in the last batch, or delete or zero the index. Returns what was done.
fn damage(dir: &Path, rng: &mut Rng) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return format!("no damage ({} missing)", dir.display());
    };
    let mut logs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let Some(log) = logs.last().cloned() else {
        return "no damage (no segment)".into();
    };
    let Ok(mut bytes) = std::fs::read(&log) else {
        return "no damage (unreadable segment)".into();
    };
    let name = log
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match rng.index(3) {
        0 if !bytes.is_empty() => {
            let from = bytes.len().saturating_sub(64 << 10);
            let at = from + rng.index(bytes.len() - from);
            bytes.truncate(at);
            let _ = std::fs::write(&log, &bytes);
            format!("truncated {name} to {at} bytes")
        }
        1 => {
            // The last valid batch, as recovery would find it.
            let mut start = 0usize;
            let mut end = 0usize;
            for item in BatchIter::new(&bytes, true) {
                let Ok((_, b)) = item else { break };
                start = end;
                end += b.len();
            }
            if end == 0 {
                return format!("no damage ({name} holds no batch)");
            }
            let at = start + rng.index(end - start);
            if let Some(b) = bytes.get_mut(at) {
                *b ^= 1 << rng.index(8);
            }
            let _ = std::fs::write(&log, &bytes);
            format!("flipped a bit at byte {at} of {name} (last batch {start}..{end})")
        }
        _ => {
            let index = log.with_extension("index");
            if rng.index(2) == 0 {
                let _ = std::fs::remove_file(&index);
                format!("deleted the index of {name}")
            } else {
                let len = std::fs::metadata(&index).map(|m| m.len()).unwrap_or(0);
                let _ = std::fs::write(&index, vec![0u8; usize::try_from(len).unwrap_or(0)]);
                format!("zeroed the index of {name} ({len} bytes)")
            }
        }
    }
}
