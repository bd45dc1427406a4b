//! Crash-safe replacement of segments by a cleaned one.
//!
//! Protocol for replacing old segments `b1 < b2 < ... < bk` by a cleaned segment with base
//! `b1` that ends at the old group's end offset `N` (the cleaner keeps the group's last
//! batch, possibly empty, so `N` is preserved):
//!
//! 1. The cleaned files are written as `<b1>.{index,timeindex,log}.cleaned` and fsynced.
//! 2. Rename them to `.swap`, indexes first, `.log` last, then fsync the directory. The
//!    existence of `<b1>.log.swap` is the commit point.
//! 3. Delete the old segments `b2..bk`.
//! 4. Rename the `.swap` files to their final names (replacing `b1`'s old files), indexes
//!    first, `.log` last; fsync the directory.
//!
//! On open, [`recover_dir`] rolls back before the commit point (deletes `.cleaned` files and
//! a stray index `.swap` without a `.log.swap`) and completes after it (deletes every
//! segment with base in `(b1, N)` and performs step 4).

use std::fs::File;
use std::path::Path;

use super::super::log::checkpoint::sync_dir;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::segment::{file_stem, segment_path, Segment};

/// Replaces the segments `old_bases` of `log` by `new_seg` (written with `.cleaned` names).
pub(crate) fn commit(log: &mut Log, old_bases: &[i64], mut new_seg: Segment) -> Result<()> {
    log.ensure_writable()?;
    let dir = log.dir().to_path_buf();
    new_seg.rename_all(&dir, ".swap")?;
    sync_dir(&dir)?;
    // Past the commit point: a failure leaves memory and disk apart, and only the open-time
    // recovery below can finish the job, so the log refuses further writes.
    let finish = |log: &mut Log, new_seg: &mut Segment| -> Result<()> {
        for old in log.take_segments(old_bases) {
            if old.base_offset() == new_seg.base_offset() {
                drop(old); // its files are replaced by the renames below
            } else {
                old.delete()?;
            }
        }
        new_seg.rename_all(&dir, "")?;
        sync_dir(&dir)
    };
    if let Err(e) = finish(log, &mut new_seg) {
        log.poison();
        return Err(e);
    }
    log.insert_segment(new_seg);
    Ok(())
}

/// Completes or rolls back an interrupted swap found in `dir` (run before loading).
pub fn recover_dir(dir: &Path) -> Result<()> {
    let mut changed = false;
    let mut log_swaps = Vec::new();
    let mut other = Vec::new();
    let mut logs = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(Error::io_at("list directory", dir))?;
    for entry in rd {
        let entry = entry.map_err(Error::io_at("list directory", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let base = name.get(..20).and_then(|s| s.parse::<i64>().ok());
        let Some(base) = base else { continue };
        if name.ends_with(".log.swap") {
            log_swaps.push(base);
        } else if name.ends_with(".swap") || name.ends_with(".cleaned") {
            other.push((base, entry.path()));
        } else if name.ends_with(".log") {
            logs.push(base);
        }
    }
    for (base, path) in other {
        if !log_swaps.contains(&base) || path.to_string_lossy().ends_with(".cleaned") {
            tracing::info!(path = %path.display(), "rolling back an unfinished clean");
            changed = true;
            std::fs::remove_file(&path).map_err(Error::io_at("remove leftover", &path))?;
        }
    }
    for base in log_swaps {
        changed = true;
        let stem = file_stem(base);
        let swap_log = dir.join(format!("{stem}.log.swap"));
        let end = end_offset(&swap_log, base)?;
        tracing::info!(path = %swap_log.display(), end, "completing an interrupted segment swap");
        for old in logs.iter().copied().filter(|b| *b > base && *b < end) {
            for ext in ["log", "index", "timeindex"] {
                let p = segment_path(dir, old, ext);
                if p.exists() {
                    std::fs::remove_file(&p)
                        .map_err(Error::io_at("remove replaced segment", &p))?;
                }
            }
        }
        for ext in ["index", "timeindex", "log"] {
            let from = dir.join(format!("{stem}.{ext}.swap"));
            if from.exists() {
                let to = segment_path(dir, base, ext);
                std::fs::rename(&from, &to).map_err(Error::io_at("complete swap", &from))?;
            }
        }
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Offset after the last valid batch of a `.log` file.
fn end_offset(path: &Path, base: i64) -> Result<i64> {
    let file = File::open(path).map_err(Error::io_at("open swap segment", path))?;
    let len = file
        .metadata()
        .map_err(Error::io_at("stat swap segment", path))?
        .len();
    let mut end = base;
    crate::segment::scan_file(&file, path, base, len, |_, h| end = h.next_offset())?;
    Ok(end)
}
