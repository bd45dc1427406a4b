//! The per-partition checkpoint file `partition.checkpoint`.
//!
//! Layout (big-endian, 31 bytes):
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 4 | magic `WCKP` |
//! | 4 | 2 | version (1) |
//! | 6 | 4 | CRC-32C of bytes 10..31 |
//! | 10 | 8 | recovery point: every byte below this offset is known to be fsynced |
//! | 18 | 8 | log start offset |
//! | 26 | 1 | clean-shutdown flag (1 = closed cleanly, indexes trimmed, no scan needed) |
//! | 27 | 4 | reserved (0) |
//!
//! Written as temp file + fsync + rename + directory fsync, so a reader sees the old or the
//! new version, never a mix. Anything that does not parse is reported as corrupt and the
//! caller falls back to a full scan.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// File name inside the partition directory.
pub const CHECKPOINT_FILE: &str = "partition.checkpoint";
const MAGIC: &[u8; 4] = b"WCKP";
const VERSION: u16 = 1;
const LEN: usize = 31;

/// Contents of the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Offset below which the log is known durable.
    pub recovery_point: i64,
    /// First offset readers may see.
    pub log_start_offset: i64,
    /// The log was closed cleanly.
    pub clean: bool,
}

impl Checkpoint {
    fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_be_bytes());
        b[10..18].copy_from_slice(&self.recovery_point.to_be_bytes());
        b[18..26].copy_from_slice(&self.log_start_offset.to_be_bytes());
        b[26] = u8::from(self.clean);
        let crc = crc32c::crc32c(&b[10..]);
        b[6..10].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> std::result::Result<Checkpoint, String> {
        if b.len() != LEN {
            return Err(format!("length {} instead of {LEN}", b.len()));
        }
        let field = |r: std::ops::Range<usize>| b.get(r).unwrap_or(&[]);
        if field(0..4) != MAGIC {
            return Err("bad magic".into());
        }
        let version = u16::from_be_bytes(field(4..6).try_into().map_err(|_| "short")?);
        if version != VERSION {
            return Err(format!("unknown version {version}"));
        }
        let crc = u32::from_be_bytes(field(6..10).try_into().map_err(|_| "short")?);
        if crc != crc32c::crc32c(field(10..LEN)) {
            return Err("CRC mismatch".into());
        }
        let rp = i64::from_be_bytes(field(10..18).try_into().map_err(|_| "short")?);
        let lso = i64::from_be_bytes(field(18..26).try_into().map_err(|_| "short")?);
        if rp < 0 || lso < 0 {
            return Err("negative offsets".into());
        }
        Ok(Checkpoint {
            recovery_point: rp,
            log_start_offset: lso,
            clean: field(26..27) == [1],
        })
    }

    /// Reads the checkpoint: `Ok(None)` if absent, `Err(Corrupt)` if damaged.
    pub fn read(dir: &Path) -> Result<Option<Checkpoint>> {
        let path = dir.join(CHECKPOINT_FILE);
        match std::fs::read(&path) {
            Ok(b) => Checkpoint::decode(&b)
                .map(Some)
                .map_err(|d| Error::corrupt(&path, d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read checkpoint", &path, e)),
        }
    }

    /// Atomically replaces the checkpoint.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(dir, CHECKPOINT_FILE, &self.encode())
    }
}

/// Writes `name` in `dir` via a temp file, fsync, rename and directory fsync.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(Error::io_at("create temp file", &tmp))?;
        f.write_all(bytes)
            .map_err(Error::io_at("write temp file", &tmp))?;
        f.sync_all()
            .map_err(Error::io_at("fsync temp file", &tmp))?;
    }
    std::fs::rename(&tmp, &target).map_err(Error::io_at("rename temp file", &tmp))?;
    sync_dir(dir)
}

/// fsync of a directory, so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io_at("fsync directory", dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::read(dir.path()).unwrap(), None);
        let c = Checkpoint {
            recovery_point: 42,
            log_start_offset: 7,
            clean: true,
        };
        c.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()).unwrap(), Some(c));
        let path = dir.path().join(CHECKPOINT_FILE);
        let mut b = std::fs::read(&path).unwrap();
        b[12] ^= 1;
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(
            Checkpoint::read(dir.path()),
            Err(Error::Corrupt { .. })
        ));
        std::fs::write(&path, &b[..10]).unwrap();
        assert!(Checkpoint::read(dir.path()).is_err());
    }
}
