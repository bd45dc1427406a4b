//! The cluster under test: three `weir-broker` processes on 127.0.0.1, each with its own
//! data directory (a size-capped tmpfs where the harness may mount one, for the disk-full
//! fault), log file, ports, and every link through a [`Link`] proxy:
//!
//! - clients → broker i: `client[i]`, which is also broker i's advertised address;
//! - broker j → broker i, Raft and broker-to-broker traffic apart: `raft[(j, i)]` and
//!   `data[(j, i)]`, wired in with broker j's `[cluster] dial_overrides`.
//!
//! Processes are ours alone: killed by PID, on drop too (and by the kernel if the harness
//! dies: PR_SET_PDEATHSIG).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::proxy::Link;

/// Why the cluster could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A broker exited or did not serve in time.
    #[error("broker {id}: {why} (log: {log})")]
    Start {
        /// Broker id.
        id: i32,
        /// What happened.
        why: String,
        /// Its log file.
        log: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// Raft and election timings short enough for failover in about 1.5 s (those of
/// broker/tests/cluster.rs), a 1.5 s broker session (so F3/F4's 4–8 s pauses outlive it),
/// a 2 s ISR lag, fast group sessions.
const BASE_CONFIG: &str = "[server]\nkafka_listen = \"\"\n\
[cluster]\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\nheartbeat_interval_ms = 50\n\
broker_heartbeat_interval_ms = 100\nbroker_session_timeout_ms = 1500\n\
leader_imbalance_check_interval_ms = 2000\nmetadata_snapshot_after_entries = 200\n\
replica_lag_time_max_ms = 2000\n\
[groups]\noffsets_topic_partitions = 4\nmin_session_timeout_ms = 1000\ninitial_rebalance_delay_ms = 0\n";

/// Size of each broker's tmpfs (the disk-full fault fills what is left of it).
pub const TMPFS_MB: u64 = 512;

/// One broker.
pub struct Node {
    /// Broker id (1..=3).
    pub id: i32,
    /// Data directory.
    pub data: PathBuf,
    /// Log file (stdout and stderr, appended across restarts).
    pub log: PathBuf,
    /// The broker's own listener (the harness's control client uses it, bypassing the
    /// proxies so faults never blind the harness).
    pub listen: String,
    controller: String,
    metrics: String,
    config: PathBuf,
    /// Whether `data` is a tmpfs the harness mounted.
    pub mounted: bool,
    child: Option<Child>,
    /// SIGSTOPped.
    pub paused: bool,
}

impl Node {
    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs (paused or not).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: a signal to our own child's PID, which we have not reaped.
            unsafe { libc::kill(pid as i32, sig) };
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP.
    pub fn pause(&mut self) {
        self.signal(libc::SIGSTOP);
        self.paused = true;
    }

    /// SIGCONT.
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.paused = false;
    }

    /// Whether it exited by itself; reaps it then.
    pub fn exited(&mut self) -> Option<String> {
        let status = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())?;
        self.child = None;
        Some(status.to_string())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.paused {
            self.resume();
        }
        self.kill9();
        if self.mounted {
            let _ = Command::new("umount").arg("-l").arg(&self.data).status();
        }
    }
}

/// Three brokers and their links.
pub struct Cluster {
    /// Brokers, index = id - 1.
    pub nodes: Vec<Node>,
    /// clients → broker i (the advertised address).
    pub client: Vec<Link>,
    /// (from, to) index pairs → Raft link.
    pub raft: BTreeMap<(usize, usize), Link>,
    /// (from, to) → broker-to-broker (replication, ISR changes) link.
    pub data: BTreeMap<(usize, usize), Link>,
    bin: PathBuf,
    voters: String,
    /// Why no tmpfs is used, if it is not.
    pub tmpfs_note: Option<String>,
}

/// `n` distinct free loopback ports (held together while picking).
fn free_ports(n: usize) -> Result<Vec<u16>, ClusterError> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("pick free ports"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("pick free ports"))
}

/// Mounts a tmpfs of `mb` MiB on `dir`; the error text says why not.
fn mount_tmpfs(dir: &Path, mb: u64) -> Result<(), String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "mount -t tmpfs failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Cluster {
    /// Sets up directories, ports, proxies and configs under `root`; starts nothing.
    pub async fn new(bin: &Path, root: &Path, tmpfs: bool) -> Result<Cluster, ClusterError> {
        let ports = free_ports(9)?;
        let addr = |i: usize| format!("127.0.0.1:{}", ports.get(i).copied().unwrap_or(0));
        let mut nodes = Vec::new();
        let mut tmpfs_note = (!tmpfs).then(|| "tmpfs turned off (--no-tmpfs)".to_string());
        for i in 0..3 {
            let id = i as i32 + 1;
            let dir = root.join(format!("broker-{id}"));
            let data = dir.join("data");
            std::fs::create_dir_all(&data).map_err(io(format!("create {}", data.display())))?;
            let mut mounted = false;
            if tmpfs_note.is_none() {
                match mount_tmpfs(&data, TMPFS_MB) {
                    Ok(()) => mounted = true,
                    Err(e) => tmpfs_note = Some(e),
                }
            }
            nodes.push(Node {
                id,
                data,
                log: dir.join("broker.log"),
                listen: addr(3 * i),
                controller: addr(3 * i + 1),
                metrics: addr(3 * i + 2),
                config: dir.join("broker.toml"),
                mounted,
                child: None,
                paused: false,
            });
        }
        let voters = nodes
            .iter()
            .map(|n| format!("{}@{}", n.id, n.controller))
            .collect::<Vec<_>>()
            .join(",");
        let mut client = Vec::new();
        for n in &nodes {
            let link = Link::start(&format!("client->{}", n.id), n.listen.clone())
                .await
                .map_err(io("start a proxy"))?;
            client.push(link);
        }
        let mut raft = BTreeMap::new();
        let mut data = BTreeMap::new();
        for from in 0..3 {
            for to in (0..3).filter(|t| *t != from) {
                let (f, t) = (&nodes[from], &nodes[to]);
                let r = Link::start(&format!("raft {}->{}", f.id, t.id), t.controller.clone())
                    .await
                    .map_err(io("start a proxy"))?;
                let d = Link::start(&format!("data {}->{}", f.id, t.id), t.listen.clone())
                    .await
                    .map_err(io("start a proxy"))?;
                raft.insert((from, to), r);
                data.insert((from, to), d);
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            // Broker i reaches voter j's controller port through raft[(i, j)] and broker
            // j's advertised (client proxy) address through data[(i, j)].
            let mut overrides = Vec::new();
            for j in (0..3).filter(|j| *j != i) {
                overrides.push(format!("{}={}", nodes[j].controller, raft[&(i, j)].addr));
                overrides.push(format!("{}={}", client[j].addr, data[&(i, j)].addr));
            }
            // Both keys belong to [cluster], the section open just before [groups].
            let text = BASE_CONFIG.replacen(
                "[groups]",
                &format!(
                    "advertised_listen = \"{}\"\ndial_overrides = \"{}\"\n[groups]",
                    client[i].addr,
                    overrides.join(",")
                ),
                1,
            );
            std::fs::write(&n.config, text).map_err(io(format!("write {}", n.config.display())))?;
        }
        Ok(Cluster {
            nodes,
            client,
            raft,
            data,
            bin: bin.to_path_buf(),
            voters,
            tmpfs_note,
        })
    }

    /// Starts broker `i` (not waiting for it to serve).
    pub fn spawn(&mut self, i: usize) -> Result<(), ClusterError> {
        let voters = self.voters.clone();
        let bin = self.bin.clone();
        let Some(n) = self.nodes.get_mut(i) else {
            return Ok(());
        };
        if n.child.is_some() {
            return Ok(());
        }
        let _ = std::fs::remove_file(n.data.join("broker.addr"));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&n.log)
            .map_err(io(format!("open {}", n.log.display())))?;
        let log2 = log.try_clone().map_err(io("clone log handle"))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(&n.config)
            .arg("--data-dir")
            .arg(&n.data)
            .args(["--node-id", &n.id.to_string()])
            .args(["--listen", &n.listen])
            .args(["--metrics-listen", &n.metrics])
            .args(["--voters", &voters])
            .args(["--controller-listen", &n.controller])
            .env(
                "RUST_LOG",
                std::env::var("WEIR_CHAOS_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: prctl is async-signal-safe; it asks the kernel to SIGKILL the broker when
        // the harness thread that spawned it exits (a tokio worker, alive for the run), so
        // a crashed harness leaves no brokers behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        n.child = Some(
            cmd.spawn()
                .map_err(io(format!("start {}", bin.display())))?,
        );
        n.paused = false;
        Ok(())
    }

    /// Waits (bounded) until broker `i` serves (writes its address file).
    pub async fn wait_ready(&mut self, i: usize, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        loop {
            let Some(n) = self.nodes.get_mut(i) else {
                return Ok(());
            };
            if let Some(status) = n.exited() {
                return Err(ClusterError::Start {
                    id: n.id,
                    why: format!("exited during start: {status}"),
                    log: n.log.display().to_string(),
                });
            }
            if std::fs::read_to_string(n.data.join("broker.addr"))
                .is_ok_and(|a| !a.trim().is_empty())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ClusterError::Start {
                    id: n.id,
                    why: format!("did not serve within {within:?}"),
                    log: n.log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts broker `i` and waits for it.
    pub async fn restart(&mut self, i: usize) -> Result<(), ClusterError> {
        self.spawn(i)?;
        self.wait_ready(i, Duration::from_secs(60)).await
    }

    /// Starts all three and waits for them.
    pub async fn start_all(&mut self) -> Result<(), ClusterError> {
        for i in 0..3 {
            self.spawn(i)?;
        }
        for i in 0..3 {
            self.wait_ready(i, Duration::from_secs(60)).await?;
        }
        Ok(())
    }

    /// Bootstrap through the client proxies.
    pub fn bootstrap(&self) -> String {
        self.client
            .iter()
            .map(|l| l.addr.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Cuts broker `i` off from both peers (both directions, Raft and data); clients still
    /// reach it.
    pub fn isolate(&self, i: usize) -> Vec<String> {
        let mut cut = Vec::new();
        for ((f, t), l) in self.raft.iter().chain(self.data.iter()) {
            if *f == i || *t == i {
                l.hold(true, true);
                cut.push(l.name.clone());
            }
        }
        cut
    }

    /// Drops everything broker `a` sends to broker `b` (Raft and data, requests on a's
    /// connections and answers on b's); b → a still flows.
    pub fn one_way(&self, a: usize, b: usize) -> Vec<String> {
        let mut cut = Vec::new();
        for links in [&self.raft, &self.data] {
            if let Some(l) = links.get(&(a, b)) {
                l.hold(true, false);
                cut.push(format!("{} (requests)", l.name));
            }
            if let Some(l) = links.get(&(b, a)) {
                l.hold(false, true);
                cut.push(format!("{} (answers)", l.name));
            }
        }
        cut
    }

    /// Heals every link.
    pub fn heal_links(&self) {
        for l in self
            .raft
            .values()
            .chain(self.data.values())
            .chain(self.client.iter())
        {
            l.heal();
        }
    }
}
