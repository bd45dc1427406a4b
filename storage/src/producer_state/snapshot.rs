//! Producer-state snapshot files: `<20-digit offset>.snapshot`.
//!
//! Layout (big-endian): `u16 version (1) | u32 CRC-32C of everything after it |
//! i32 entry count | entries`. Entry: `i64 producer id | i16 epoch | i64 last timestamp |
//! u8 batch count | batches`, batch: `i32 first seq | i32 last seq | i64 base offset |
//! i64 last offset | i64 max timestamp`. The file name is the offset up to which (exclusive)
//! the snapshot reflects the log. Written atomically (temp + fsync + rename).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::{BatchMetadata, ProducerEntry, ProducerStateManager, BATCHES_TO_RETAIN};
use crate::error::{Error, Result};
use crate::log::checkpoint::write_atomic;
use crate::segment::file_stem;

const VERSION: u16 = 1;
const SUFFIX: &str = ".snapshot";

/// Path of the snapshot for `offset`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}{SUFFIX}", file_stem(offset)))
}

/// Serialises the state.
pub fn encode(state: &ProducerStateManager) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + state.len() * 64);
    body.extend_from_slice(&(state.len() as i32).to_be_bytes());
    let mut entries: Vec<&ProducerEntry> = state.entries().collect();
    entries.sort_by_key(|e| e.producer_id);
    for e in entries {
        body.extend_from_slice(&e.producer_id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.to_be_bytes());
        body.push(e.batches.len() as u8);
        for b in &e.batches {
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.base_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.max_timestamp.to_be_bytes());
        }
    }
    let mut out = Vec::with_capacity(body.len() + 6);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let (head, rest) = self.0.split_at_checked(N).ok_or("truncated snapshot")?;
        self.0 = rest;
        let mut a = [0u8; N];
        a.copy_from_slice(head);
        Ok(a)
    }
    fn i64(&mut self) -> std::result::Result<i64, String> {
        self.take::<8>().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        self.take::<4>().map(i32::from_be_bytes)
    }
}

/// Parses a snapshot; any damage is an error (the caller then replays from an older one).
pub fn decode(b: &[u8]) -> std::result::Result<ProducerStateManager, String> {
    let mut r = Reader(b);
    let version = u16::from_be_bytes(r.take::<2>()?);
    if version != VERSION {
        return Err(format!("unknown snapshot version {version}"));
    }
    let crc = u32::from_be_bytes(r.take::<4>()?);
    if crc != crc32c::crc32c(r.0) {
        return Err("snapshot CRC mismatch".into());
    }
    let count = r.i32()?;
    if count < 0 {
        return Err("negative entry count".into());
    }
    let mut state = ProducerStateManager::new();
    for _ in 0..count {
        let producer_id = r.i64()?;
        let epoch = i16::from_be_bytes(r.take::<2>()?);
        let last_timestamp = r.i64()?;
        let n = r.take::<1>()?[0] as usize;
        if n > BATCHES_TO_RETAIN {
            return Err("too many batches in snapshot entry".into());
        }
        let mut batches = VecDeque::with_capacity(n);
        for _ in 0..n {
            batches.push_back(BatchMetadata {
                first_seq: r.i32()?,
                last_seq: r.i32()?,
                base_offset: r.i64()?,
                last_offset: r.i64()?,
                max_timestamp: r.i64()?,
            });
        }
        state.insert(ProducerEntry {
            producer_id,
            epoch,
            batches,
            last_timestamp,
        });
    }
    if !r.0.is_empty() {
        return Err("trailing bytes in snapshot".into());
    }
    Ok(state)
}

/// Writes the snapshot for `offset` atomically.
pub fn write(dir: &Path, offset: i64, state: &ProducerStateManager) -> Result<()> {
    write_atomic(
        dir,
        &format!("{}{SUFFIX}", file_stem(offset)),
        &encode(state),
    )
}

/// Offsets of all snapshot files, ascending.
pub fn list(dir: &Path) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(Error::io_at("list directory", dir))?;
    for entry in rd {
        let entry = entry.map_err(Error::io_at("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SUFFIX) {
            if stem.len() == 20 {
                if let Ok(o) = stem.parse::<i64>() {
                    out.push(o);
                }
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Loads the newest readable snapshot with offset in `[min, max]`; damaged ones are deleted.
pub fn load_latest(dir: &Path, min: i64, max: i64) -> Result<Option<(i64, ProducerStateManager)>> {
    for offset in list(dir)?.into_iter().rev() {
        if offset > max || offset < min {
            continue;
        }
        let path = snapshot_path(dir, offset);
        let bytes = std::fs::read(&path).map_err(Error::io_at("read snapshot", &path))?;
        match decode(&bytes) {
            Ok(state) => return Ok(Some((offset, state))),
            Err(detail) => {
                tracing::warn!(path = %path.display(), %detail, "ignoring damaged producer snapshot");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(None)
}

/// Deletes snapshots outside `[min, max]`, keeping at most `keep` of the newest inside.
pub fn prune(dir: &Path, min: i64, max: i64, keep: usize) -> Result<()> {
    let all = list(dir)?;
    let inside: Vec<i64> = all
        .iter()
        .copied()
        .filter(|o| *o >= min && *o <= max)
        .collect();
    let drop_inside = inside.len().saturating_sub(keep);
    for o in all {
        let outside = o < min || o > max;
        let old = inside.iter().take(drop_inside).any(|x| *x == o);
        if outside || old {
            let p = snapshot_path(dir, o);
            std::fs::remove_file(&p).map_err(Error::io_at("delete snapshot", &p))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use weir_protocol::batch::BatchHeader;

    #[test]
    fn round_trip_and_damage() {
        let mut s = ProducerStateManager::new();
        for pid in 0..3 {
            for seq in 0..7 {
                s.record(&BatchHeader {
                    base_offset: i64::from(seq) * 10 + pid,
                    batch_length: 49,
                    partition_leader_epoch: 0,
                    magic: 2,
                    crc: 0,
                    attributes: 0,
                    last_offset_delta: 0,
                    base_timestamp: 0,
                    max_timestamp: 5,
                    producer_id: pid,
                    producer_epoch: 1,
                    base_sequence: seq,
                    records_count: 1,
                });
            }
        }
        let bytes = encode(&s);
        assert_eq!(decode(&bytes).unwrap(), s);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b).is_err(), "flip at {i} not detected");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 10, &s).unwrap();
        write(dir.path(), 20, &ProducerStateManager::new()).unwrap();
        std::fs::write(snapshot_path(dir.path(), 30), b"junk").unwrap();
        let (o, loaded) = load_latest(dir.path(), 0, 100).unwrap().unwrap();
        assert_eq!((o, loaded.len()), (20, 0));
        assert_eq!(list(dir.path()).unwrap(), vec![10, 20]);
        let (o, loaded) = load_latest(dir.path(), 0, 15).unwrap().unwrap();
        assert_eq!((o, loaded), (10, s));
        prune(dir.path(), 0, 100, 1).unwrap();
        assert_eq!(list(dir.path()).unwrap(), vec![20]);
    }
}
