//! The high-watermark checkpoint (Kafka's `replication-offset-checkpoint`): every hosted
//! partition's high watermark, written to the data directory every few seconds and at
//! shutdown, read back when partitions open.
//!
//! Why: in a cluster a partition's high watermark is what the ISR had, not what this log
//! has. A broker that restarts and at once leads would otherwise offer consumers its whole
//! log, records that no other replica may have; if it then died, a record already read
//! would be lost. Opened at its checkpointed value (lower is safe: a leader's watermark
//! only rises, as its followers fetch), nothing past the last known commit is served.
//!
//! Format (Kafka's): a version line `0`, a count line, then `topic partition offset` per
//! line. Topic names cannot hold spaces, so the lines split unambiguously.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::controller::Controller;

/// File name in the data directory.
pub const FILE: &str = "replication-offset-checkpoint";

/// Partition → high watermark.
pub type Checkpoint = BTreeMap<(String, i32), i64>;

/// The file's text for `entries`.
pub fn encode(entries: &Checkpoint) -> String {
    let mut out = format!("0\n{}\n", entries.len());
    for ((topic, p), hw) in entries {
        out.push_str(&format!("{topic} {p} {hw}\n"));
    }
    out
}

/// The entries in `text`, or what is wrong with it.
pub fn decode(text: &str) -> Result<Checkpoint, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        other => return Err(format!("unknown version line {other:?}")),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing or bad count line")?;
    let mut out = Checkpoint::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (Some(topic), Some(p), Some(hw), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("bad entry {line:?}"));
        };
        let p: i32 = p
            .parse()
            .map_err(|_| format!("bad partition in {line:?}"))?;
        let hw: i64 = hw.parse().map_err(|_| format!("bad offset in {line:?}"))?;
        out.insert((topic.to_string(), p), hw);
    }
    if out.len() != count || lines.next().is_some() {
        return Err(format!("count line says {count} entries, file differs"));
    }
    Ok(out)
}

/// The checkpoint in `data_dir`; empty when there is none, or when it cannot be read (then
/// partitions open at their log start, which is safe, and the cause is logged).
pub fn read(data_dir: &Path) -> Checkpoint {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "high-watermark checkpoint unreadable; watermarks start at the log start");
            Checkpoint::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Checkpoint::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "high-watermark checkpoint unreadable; watermarks start at the log start");
            Checkpoint::new()
        }
    }
}

/// Writes `entries` atomically: a temporary file, fsynced, renamed over the old one, and
/// the directory fsynced, so a crash leaves the old or the new checkpoint whole.
pub fn write(data_dir: &Path, entries: &Checkpoint) -> std::io::Result<()> {
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(encode(entries).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, data_dir.join(FILE))?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// Every hosted partition's high watermark now.
fn snapshot(controller: &Controller) -> Checkpoint {
    let mut out = Checkpoint::new();
    for t in controller.topics().all() {
        for p in t.hosted() {
            out.insert((p.topic().to_string(), p.index()), p.high_watermark());
        }
    }
    out
}

/// Writes the checkpoint every `interval` (Kafka's rhythm: unconditionally, one small file
/// per data directory), and once more at shutdown.
pub async fn run(
    controller: Arc<Controller>,
    data_dir: std::path::PathBuf,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        let (dir, entries) = (data_dir.clone(), snapshot(&controller));
        match tokio::task::spawn_blocking(move || write(&dir, &entries)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not write the high-watermark checkpoint")
            }
            Err(e) => tracing::warn!(error = %e, "high-watermark checkpoint task failed"),
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damaged_files_are_refused() {
        let mut c = Checkpoint::new();
        c.insert(("orders".into(), 0), 42);
        c.insert(("__consumer_offsets".into(), 7), 0);
        let text = encode(&c);
        assert_eq!(text, "0\n2\n__consumer_offsets 7 0\norders 0 42\n");
        assert_eq!(decode(&text).unwrap(), c);
        assert_eq!(decode("0\n0\n").unwrap(), Checkpoint::new());
        for bad in [
            "",
            "1\n0\n",
            "0\nx\n",
            "0\n2\norders 0 42\n",
            "0\n1\norders 0\n",
            "0\n1\norders zero 1\n",
            "0\n1\norders 0 1\nextra 1 1\n",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_written_checkpoint_is_read_back_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_empty());
        let mut c = Checkpoint::new();
        c.insert(("t".into(), 3), 9);
        write(dir.path(), &c).unwrap();
        assert_eq!(read(dir.path()), c);
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert!(read(dir.path()).is_empty());
    }
}
