//! The leader-epoch cache: for each leader epoch that wrote to this log, the offset of its
//! first record (Kafka's `LeaderEpochFileCache`, KIP-101). A follower asks the leader where
//! its own latest epoch ends there and truncates what the leader never had, instead of
//! trusting its high watermark (which loses or keeps the wrong records when leaders
//! change twice in a row).
//!
//! Kept in `leader-epoch-checkpoint` in Kafka's text format (version `0`, the entry count,
//! then `epoch start_offset` per line), written to a temporary file, fsynced and renamed.
//! It changes only when a new epoch writes or the log's ends move, so each write is rare.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File name inside the partition directory.
pub const EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// Sorted (epoch, start offset) entries; both strictly increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Epochs {
    entries: Vec<(i32, i64)>,
}

impl Epochs {
    /// From entries (sorted and deduplicated by the same rules as `assign`).
    pub fn from_entries(entries: &[(i32, i64)]) -> Epochs {
        let mut e = Epochs::default();
        for (epoch, start) in entries {
            e.assign(*epoch, *start);
        }
        e
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// The latest epoch that wrote.
    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|(e, _)| *e)
    }

    /// Records that `epoch` starts at `start`. Ignored when it is the latest epoch already
    /// or older than it (a stale write cannot rewrite history); entries that the new one
    /// contradicts (same or later start) are dropped first. Returns whether anything
    /// changed.
    pub fn assign(&mut self, epoch: i32, start: i64) -> bool {
        if epoch < 0 {
            return false;
        }
        if let Some(&(latest, latest_start)) = self.entries.last() {
            if epoch < latest || (epoch == latest && start >= latest_start) {
                return false;
            }
        }
        self.entries.retain(|(e, s)| *e < epoch && *s < start);
        self.entries.push((epoch, start));
        true
    }

    /// The log now ends at `end`: forget epochs that start at or after it.
    pub fn truncate_from_end(&mut self, end: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(_, s)| *s < end);
        before != self.entries.len()
    }

    /// The log now starts at `start`: epochs that ended before it go; the one that covers
    /// it starts there.
    pub fn truncate_from_start(&mut self, start: i64) -> bool {
        let keep_from = self
            .entries
            .iter()
            .rposition(|(_, s)| *s <= start)
            .unwrap_or(0);
        let mut changed = keep_from > 0;
        self.entries.drain(..keep_from);
        if let Some(first) = self.entries.first_mut() {
            if first.1 < start {
                first.1 = start;
                changed = true;
            }
        }
        changed
    }

    /// Where the largest epoch ≤ `epoch` ends in this log (Kafka's `endOffsetFor`): the
    /// start of the next epoch, or `log_end` for the latest. `None` when `epoch` is
    /// unknown: above the latest, or nothing recorded.
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let &(latest, _) = self.entries.last()?;
        if epoch > latest {
            return None;
        }
        if epoch == latest {
            return Some((latest, log_end));
        }
        match self.entries.iter().rposition(|(e, _)| *e <= epoch) {
            Some(i) => {
                let found = self.entries.get(i).map(|(e, _)| *e)?;
                let end = self.entries.get(i + 1).map_or(log_end, |(_, s)| *s);
                Some((found, end))
            }
            // Below every epoch we know: it ended where the first one we know starts.
            None => self.entries.first().map(|(_, s)| (epoch, *s)),
        }
    }

    /// Kafka's checkpoint text.
    pub fn render(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for (e, s) in &self.entries {
            out.push_str(&format!("{e} {s}\n"));
        }
        out
    }

    /// Parses [`render`](Self::render)'s text.
    pub fn parse(text: &str) -> std::result::Result<Epochs, String> {
        let mut lines = text.lines();
        if lines.next() != Some("0") {
            return Err("unknown version".into());
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or("bad entry count")?;
        let mut entries = Vec::with_capacity(count.min(1024));
        for line in lines.by_ref().take(count) {
            let mut parts = line.split_whitespace();
            let (Some(e), Some(s), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("bad entry {line:?}"));
            };
            let e: i32 = e.parse().map_err(|_| format!("bad epoch {e:?}"))?;
            let s: i64 = s.parse().map_err(|_| format!("bad offset {s:?}"))?;
            entries.push((e, s));
        }
        if entries.len() != count {
            return Err("fewer entries than counted".into());
        }
        let sorted = entries.windows(2).all(|w| match w {
            [(e1, s1), (e2, s2)] => e1 < e2 && s1 < s2,
            _ => true,
        });
        if !sorted {
            return Err("entries out of order".into());
        }
        Ok(Epochs { entries })
    }
}

/// The cache with its file.
#[derive(Debug)]
pub struct EpochCache {
    path: PathBuf,
    epochs: Epochs,
}

impl EpochCache {
    /// Loads `dir`'s file. A missing or damaged one is rebuilt as `fallback` (a log
    /// written before the cache existed: every batch of a single node carries epoch 0).
    pub fn open(dir: &Path, fallback: impl FnOnce() -> Epochs) -> Result<EpochCache> {
        let path = dir.join(EPOCH_FILE);
        let epochs = match std::fs::read_to_string(&path) {
            Ok(text) => match Epochs::parse(&text) {
                Ok(e) => e,
                Err(reason) => {
                    tracing::warn!(file = %path.display(), %reason, "leader-epoch checkpoint damaged; rebuilt");
                    fallback()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fallback(),
            Err(e) => return Err(Error::io("read leader epochs", &path, e)),
        };
        Ok(EpochCache { path, epochs })
    }

    /// The entries.
    pub fn epochs(&self) -> &Epochs {
        &self.epochs
    }

    /// Applies `change` and writes the file when it changed something.
    pub fn update(&mut self, change: impl FnOnce(&mut Epochs) -> bool) -> Result<()> {
        if change(&mut self.epochs) {
            self.persist()?;
        }
        Ok(())
    }

    fn persist(&self) -> Result<()> {
        let tmp = self.path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.epochs.render().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| Error::io("write leader epochs", &self.path, e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut e = Epochs::default();
        assert!(e.assign(0, 0));
        assert!(!e.assign(0, 5), "same epoch later: nothing new");
        assert!(e.assign(2, 10));
        assert!(
            !e.assign(1, 20),
            "an older epoch cannot write after a newer one"
        );
        assert_eq!(e.entries(), &[(0, 0), (2, 10)]);
        // A new epoch starting at or below recorded starts replaces them.
        assert!(e.assign(3, 10));
        assert_eq!(e.entries(), &[(0, 0), (3, 10)]);
        assert!(!e.assign(-1, 40));
    }

    #[test]
    fn end_offsets_like_kafka() {
        let e = Epochs::from_entries(&[(1, 0), (3, 100), (6, 250)]);
        assert_eq!(
            e.end_offset_for(6, 300),
            Some((6, 300)),
            "latest: the log end"
        );
        assert_eq!(e.end_offset_for(3, 300), Some((3, 250)));
        assert_eq!(
            e.end_offset_for(4, 300),
            Some((3, 250)),
            "largest epoch <= 4"
        );
        assert_eq!(e.end_offset_for(1, 300), Some((1, 100)));
        assert_eq!(e.end_offset_for(0, 300), Some((0, 0)), "below all");
        assert_eq!(e.end_offset_for(7, 300), None, "above the latest");
        assert_eq!(Epochs::default().end_offset_for(0, 5), None);
    }

    #[test]
    fn truncation_at_both_ends() {
        let mut e = Epochs::from_entries(&[(1, 0), (3, 100), (6, 250)]);
        assert!(e.truncate_from_end(250));
        assert_eq!(e.entries(), &[(1, 0), (3, 100)]);
        assert!(!e.truncate_from_end(300));
        assert!(e.truncate_from_start(150));
        assert_eq!(e.entries(), &[(3, 150)]);
        let mut e = Epochs::from_entries(&[(1, 0), (3, 100)]);
        assert!(e.truncate_from_start(100));
        assert_eq!(e.entries(), &[(3, 100)]);
        assert!(!e.truncate_from_start(50));
    }

    #[test]
    fn checkpoint_text_round_trips_and_damage_is_refused() {
        let e = Epochs::from_entries(&[(1, 0), (3, 100)]);
        assert_eq!(e.render(), "0\n2\n1 0\n3 100\n");
        assert_eq!(Epochs::parse(&e.render()).unwrap(), e);
        for bad in [
            "",
            "1\n0\n",
            "0\n2\n1 0\n",
            "0\n1\nx 0\n",
            "0\n2\n3 0\n1 5\n",
            "0\n1\n1 0 7\n",
        ] {
            assert!(Epochs::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_survives_reopen_and_damage_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EpochCache::open(dir.path(), Epochs::default).unwrap();
        c.update(|e| e.assign(4, 7)).unwrap();
        let c = EpochCache::open(dir.path(), Epochs::default).unwrap();
        assert_eq!(c.epochs().entries(), &[(4, 7)]);
        std::fs::write(dir.path().join(EPOCH_FILE), "garbage").unwrap();
        let c = EpochCache::open(dir.path(), || Epochs::from_entries(&[(0, 0)])).unwrap();
        assert_eq!(c.epochs().entries(), &[(0, 0)]);
    }
}
