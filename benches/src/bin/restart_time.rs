//! Crash-restart time against the partition count (issue 16, item 6).
//!
//! `cargo build --release -p weir-broker -p weir-benches --bin weir-broker --bin restart_time`
//! then `target/release/restart_time [--broker PATH] [--clean] N [N...]`.
//!
//! For each N: start `weir-broker` on a loopback port with a fresh data dir, create one
//! topic with N partitions, produce one record to every partition (acks=all, so each is
//! on disk), `kill -9` the broker (or SIGTERM with `--clean`), start it again on the same
//! data dir and time how long until it serves: the listener address file appears (the
//! broker writes it only after every partition is open) and a produce to the last
//! partition is acknowledged at offset 1 (its recovered record kept offset 0).
//! Every wait is bounded; only the broker processes started here are stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_client::admin::NewTopic;
use weir_client::{Acks, Admin, ClientConfig, Producer, ProducerConfig, ProducerRecord};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const TOPIC: &str = "restart";
/// Longest any one broker start may take before the run is abandoned.
const START_LIMIT: Duration = Duration::from_secs(600);

struct Broker {
    child: Child,
}

impl Broker {
    fn start(bin: &Path, dir: &Path) -> Res<Broker> {
        let _ = std::fs::remove_file(dir.join("broker.addr"));
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Broker { child })
    }

    /// Waits for the address file the broker writes once it serves.
    fn wait_addr(&mut self, dir: &Path) -> Res<String> {
        let file = dir.join("broker.addr");
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(format!("broker exited during start: {status}").into());
            }
            if let Ok(a) = std::fs::read_to_string(&file) {
                let a = a.trim().to_string();
                if !a.is_empty() {
                    return Ok(a);
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Err("broker did not start in time".into())
    }

    fn kill9(mut self) -> Res<()> {
        // std's Child::kill is SIGKILL on Unix.
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    fn terminate(mut self) -> Res<()> {
        let pid = i32::try_from(self.child.id())?;
        // SAFETY: signals only the child this process spawned.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn producer_config() -> ProducerConfig {
    ProducerConfig {
        acks: Acks::All,
        ..ProducerConfig::default()
    }
}

async fn fill(addr: &str, n: i32) -> Res<()> {
    let admin = Admin::new(ClientConfig::new(addr))?;
    admin
        .create_topic(NewTopic {
            name: TOPIC.into(),
            partitions: n,
            replication_factor: -1,
            configs: Vec::new(),
        })
        .await?;
    let producer = Producer::new(ClientConfig::new(addr), producer_config()).await?;
    let mut pending = Vec::with_capacity(n as usize);
    for p in 0..n {
        let r = ProducerRecord::new(TOPIC, format!("record of partition {p}")).with_partition(p);
        pending.push(producer.enqueue(r).await?);
    }
    for f in pending {
        let m = f.await?;
        if m.offset != 0 {
            return Err(format!("partition {} got offset {}", m.partition, m.offset).into());
        }
    }
    producer.close().await;
    Ok(())
}

/// Acknowledged produce to the last partition, which must land after its one record.
async fn probe(addr: &str, n: i32) -> Res<()> {
    let producer = Producer::new(ClientConfig::new(addr), producer_config()).await?;
    let m = producer
        .send(ProducerRecord::new(TOPIC, "probe").with_partition(n - 1))
        .await?;
    producer.close().await;
    if m.offset != 1 {
        return Err(format!("probe landed at offset {}, expected 1", m.offset).into());
    }
    Ok(())
}

fn run(rt: &tokio::runtime::Runtime, bin: &Path, n: i32, clean: bool) -> Res<()> {
    let dir = tempfile::tempdir()?;
    let mut b = Broker::start(bin, dir.path())?;
    let addr = b.wait_addr(dir.path())?;
    let t = Instant::now();
    rt.block_on(fill(&addr, n))?;
    let fill_s = t.elapsed().as_secs_f64();
    if clean {
        b.terminate()?;
    } else {
        b.kill9()?;
    }
    let start = Instant::now();
    let mut b = Broker::start(bin, dir.path())?;
    let addr = b.wait_addr(dir.path())?;
    let listening = start.elapsed().as_secs_f64();
    rt.block_on(probe(&addr, n))?;
    let serving = start.elapsed().as_secs_f64();
    let cpu = child_cpu_s(b.child.id());
    b.terminate()?;
    println!(
        "partitions {n:>6}  {}  restart: listening {listening:.2} s, serving {serving:.2} s  \
         (broker CPU {cpu:.2} s; fill {fill_s:.1} s)",
        if clean { "clean  " } else { "kill -9" },
    );
    Ok(())
}

/// utime+stime of a process in seconds, from /proc/<pid>/stat (0 when unreadable).
fn child_cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

fn main() -> Res<()> {
    let mut bin = PathBuf::from("target/release/weir-broker");
    let mut clean = false;
    let mut counts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--broker" => bin = PathBuf::from(args.next().ok_or("--broker needs a path")?),
            "--clean" => clean = true,
            n => counts.push(n.parse::<i32>()?),
        }
    }
    if counts.is_empty() {
        counts = vec![1000, 5000, 10_000];
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for n in counts {
        run(&rt, &bin, n, clean)?;
    }
    Ok(())
}
