//! `cleaner.checkpoint`: where the last clean stopped (the first dirty offset).
//!
//! Layout: magic `WCLN` | u16 version (1) | u32 CRC-32C of the next 8 bytes | i64 offset.
//! Missing or damaged means "nothing is known clean": the next clean starts at the log
//! start, which is always safe (cleaning is idempotent).

use std::path::Path;

use crate::error::Result;
use crate::log::checkpoint::write_atomic;

/// File name inside the partition directory.
pub const FILE: &str = "cleaner.checkpoint";

/// Reads the first dirty offset, if a valid file exists.
pub fn read(dir: &Path) -> Option<i64> {
    let b = std::fs::read(dir.join(FILE)).ok()?;
    if b.len() != 18 || b.get(..4)? != b"WCLN" || b.get(4..6)? != [0, 1] {
        return None;
    }
    let crc = u32::from_be_bytes(b.get(6..10)?.try_into().ok()?);
    let body = b.get(10..18)?;
    (crc == crc32c::crc32c(body)).then(|| i64::from_be_bytes(body.try_into().unwrap_or([0; 8])))
}

/// Atomically records the first dirty offset.
pub fn write(dir: &Path, offset: i64) -> Result<()> {
    let mut b = Vec::with_capacity(18);
    b.extend_from_slice(b"WCLN");
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&crc32c::crc32c(&offset.to_be_bytes()).to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    write_atomic(dir, FILE, &b)
}
