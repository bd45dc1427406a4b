//! A per-second timeline of an end-to-end run (`--timeline PATH`), to find periodic
//! stalls: for each second of intended send time, how many records and their latency
//! quantiles, next to what the machine was doing in that second (dirty and writeback
//! page cache, the server's CPU). A stall shows as a second whose max jumps; the columns
//! beside it say whether page-cache writeback or the server's own work lined up with it.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;

use super::cpu;
use super::error::{PerfError, Result};
use super::report::{new_histogram, record};
use super::stamp;

/// What the machine looked like at one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Machine {
    /// `Dirty:` of /proc/meminfo, KiB.
    pub dirty_kb: u64,
    /// `Writeback:` of /proc/meminfo, KiB.
    pub writeback_kb: u64,
    /// Server CPU seconds so far (with `--server-pid`).
    pub server_cpu_s: Option<f64>,
}

/// `Dirty` and `Writeback` (KiB) from the text of /proc/meminfo.
pub fn parse_meminfo(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_ascii_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Dirty:"), field("Writeback:"))
}

fn sample(server_pid: Option<u32>) -> Machine {
    let (dirty_kb, writeback_kb) = std::fs::read_to_string("/proc/meminfo")
        .map(|t| parse_meminfo(&t))
        .unwrap_or_default();
    Machine {
        dirty_kb,
        writeback_kb,
        server_cpu_s: server_pid.and_then(|p| cpu::cpu_seconds(p).ok()),
    }
}

/// Latencies by the second of their intended send time, plus one machine sample per
/// second of the run.
#[derive(Debug)]
pub struct Timeline {
    start_unix_ns: u64,
    seconds: Vec<Histogram<u64>>,
    machine: Vec<Machine>,
}

impl Timeline {
    /// A timeline whose second 0 starts at `start`.
    pub fn new(start: Instant) -> Self {
        Timeline {
            start_unix_ns: stamp::unix_nanos(start),
            seconds: Vec::new(),
            machine: Vec::new(),
        }
    }

    /// Records a latency of `micros` for a record stamped `stamp_ns`.
    pub fn note(&mut self, stamp_ns: u64, micros: u64) {
        // Bounded: a run is at most a day (`Args::time_limit`), so at most 86,400 slots.
        let second = (stamp_ns.saturating_sub(self.start_unix_ns) / 1_000_000_000).min(86_400);
        let i = second as usize;
        while self.seconds.len() <= i {
            self.seconds.push(new_histogram());
        }
        if let Some(h) = self.seconds.get_mut(i) {
            record(h, micros);
        }
    }

    /// Adds the machine sample taken at the start of the next second.
    pub fn push_machine(&mut self, m: Machine) {
        self.machine.push(m);
    }

    /// One JSON object per second.
    pub fn rows(&self) -> Vec<serde_json::Value> {
        let ms = |us: u64| us as f64 / 1000.0;
        (0..self.seconds.len().max(self.machine.len()))
            .map(|i| {
                let mut row = json!({ "second": i });
                if let Some(h) = self.seconds.get(i).filter(|h| !h.is_empty()) {
                    row["records"] = h.len().into();
                    row["p50_ms"] = ms(h.value_at_quantile(0.5)).into();
                    row["p99_ms"] = ms(h.value_at_quantile(0.99)).into();
                    row["max_ms"] = ms(h.max()).into();
                }
                if let Some(m) = self.machine.get(i) {
                    row["dirty_kb"] = m.dirty_kb.into();
                    row["writeback_kb"] = m.writeback_kb.into();
                    // CPU used during this second: the next sample minus this one.
                    let next = self.machine.get(i + 1).and_then(|n| n.server_cpu_s);
                    if let (Some(now), Some(next)) = (m.server_cpu_s, next) {
                        row["server_cpu_s"] = serde_json::Value::from(next - now);
                    }
                }
                row
            })
            .collect()
    }

    /// Writes the rows as JSON lines to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut out = Vec::new();
        for row in self.rows() {
            let _ = writeln!(out, "{row}");
        }
        std::fs::write(path, out).map_err(PerfError::io(format!("write {}", path.display())))
    }
}

/// Samples the machine once a second until `stop` fires; returns the samples.
pub async fn sample_every_second(
    server_pid: Option<u32>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Vec<Machine> {
    let mut out = vec![sample(server_pid)];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    // Bounded by the run: the caller fires `stop` (or drops it) when the run ends.
    loop {
        tokio::select! {
            _ = tick.tick() => out.push(sample(server_pid)),
            _ = &mut stop => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_fields_are_read() {
        let text = "MemTotal:  100 kB\nDirty:   1234 kB\nWriteback:    56 kB\n";
        assert_eq!(parse_meminfo(text), (1234, 56));
        assert_eq!(parse_meminfo("nothing"), (0, 0));
    }

    #[test]
    fn latencies_land_in_their_send_second() {
        let start = Instant::now();
        let mut t = Timeline::new(start);
        let s0 = stamp::unix_nanos(start);
        t.note(s0 + 100, 1_000);
        t.note(s0 + 2_500_000_000, 900_000);
        t.push_machine(Machine {
            dirty_kb: 1,
            writeback_kb: 2,
            server_cpu_s: Some(1.0),
        });
        t.push_machine(Machine {
            dirty_kb: 3,
            writeback_kb: 4,
            server_cpu_s: Some(1.5),
        });
        let rows = t.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["records"], 1);
        assert!(rows[1].get("records").is_none());
        assert_eq!(rows[0]["server_cpu_s"], 0.5);
        assert_eq!(rows[1]["dirty_kb"], 3);
        assert_eq!(rows[2]["records"], 1);
        assert!(rows[2]["max_ms"].as_f64().unwrap_or(0.0) >= 899.0);
    }
}
