//! The Raft log and vote, durable.
//!
//! Files in the quorum directory:
//! - `raft.log`: frames `u32 length | u32 CRC-32C | Entry protobuf`, appended and fsynced
//!   before openraft's `LogFlushed` callback runs. Open reads every intact frame and cuts
//!   the file at the first torn or corrupt one (only the unflushed tail can be torn).
//! - `vote`: the last vote, replaced atomically (write temp, fsync, rename, fsync dir)
//!   before `save_vote` returns: a lost vote could let this node vote twice in a term.
//! - `purged`: the last purged log id, replaced atomically before entries are dropped.
//! - `committed`: a hint of the last committed id (not fsynced: losing it only means
//!   re-applying less at start).
//!
//! Disk work runs on the blocking pool, never on openraft's core task. The entries are also
//! kept in memory (a metadata log is small and purged after each snapshot), where the
//! readers handed to replication tasks read them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use prost::Message;
use weir_protocol::native::raft as pb;

use super::codec::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb,
};
use super::{Entry, NodeId, StorageError, TypeConfig};
use crate::metadata::{decode_frames, encode_frames};

/// Rewrite `raft.log` without its purged prefix once that prefix is this large.
const COMPACT_AFTER_BYTES: u64 = 4 << 20;

/// The entries in memory, shared with readers.
#[derive(Debug, Default)]
struct Mem {
    entries: BTreeMap<u64, Entry>,
    purged: Option<LogId<NodeId>>,
}

/// The file side, touched only from blocking sections, one at a time.
#[derive(Debug)]
struct Disk {
    dir: PathBuf,
    log: File,
    /// Frame start offset of every entry in `raft.log`.
    offsets: BTreeMap<u64, u64>,
    len: u64,
}

/// The log store handed to openraft.
#[derive(Debug, Clone)]
pub struct LogStore {
    mem: Arc<RwLock<Mem>>,
    disk: Arc<Mutex<Disk>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

/// A reader over the in-memory entries.
#[derive(Debug, Clone)]
pub struct LogReader {
    mem: Arc<RwLock<Mem>>,
}

/// A file operation of the quorum's storage failed.
#[derive(Debug, thiserror::Error)]
#[error("raft storage: {op} {}: {reason}", path.display())]
pub struct DiskError {
    op: &'static str,
    path: PathBuf,
    reason: String,
}

impl From<DiskError> for StorageError {
    fn from(e: DiskError) -> Self {
        StorageIOError::write_logs(&std::io::Error::other(e.to_string())).into()
    }
}

pub(super) fn io_err(op: &'static str, path: &Path, e: impl std::fmt::Display) -> DiskError {
    DiskError {
        op,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// A small file holding one framed message; `Ok(None)` when absent.
fn read_framed<M: Message + Default>(path: &Path) -> std::io::Result<Option<M>> {
    let mut buf = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut buf)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (mut items, valid) = decode_frames::<M>(&buf);
    if valid != buf.len() || items.len() != 1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is corrupt", path.display()),
        ));
    }
    Ok(items.pop().map(|(m, _)| m))
}

fn write_framed<M: Message>(path: &Path, m: &M, durable: bool) -> std::io::Result<()> {
    write_atomic(path, &encode_frames(std::slice::from_ref(m)), durable)
}

/// Runs disk work off openraft's core task.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, DiskError> + Send + 'static,
) -> Result<R, StorageError> {
    let r = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io_err("blocking task", Path::new("raft"), e))?;
    Ok(r?)
}

impl LogStore {
    /// Opens (creating) the log in `dir`, cutting a torn tail. Blocking.
    pub fn open(dir: &Path) -> Result<LogStore, DiskError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
        let path = dir.join("raft.log");
        let mut log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, e))?;
        let mut buf = Vec::new();
        log.read_to_end(&mut buf)
            .map_err(|e| io_err("read", &path, e))?;
        let (frames, mut valid) = decode_frames::<pb::Entry>(&buf);
        let purged = read_framed::<pb::LogId>(&dir.join("purged"))
            .map_err(|e| io_err("read", &dir.join("purged"), e))?
            .map(|id| log_id_from_pb(&id));
        let mut mem = Mem {
            entries: BTreeMap::new(),
            purged,
        };
        let mut offsets = BTreeMap::new();
        let mut next: Option<u64> = None;
        for (frame, pos) in frames {
            let entry = match entry_from_pb(&frame) {
                Ok(e) => e,
                Err(_) => {
                    valid = pos;
                    break;
                }
            };
            let index = entry.log_id.index;
            // Entries are contiguous; anything else means a damaged file: keep the prefix.
            if next.is_some_and(|n| n != index) {
                valid = pos;
                break;
            }
            next = Some(index + 1);
            offsets.insert(index, pos as u64);
            if purged.is_none_or(|p| index > p.index) {
                mem.entries.insert(index, entry);
            }
        }
        if valid < buf.len() {
            tracing::warn!(path = %path.display(), valid, len = buf.len(), "raft log has a torn or corrupt tail; truncating");
            log.set_len(valid as u64)
                .map_err(|e| io_err("truncate", &path, e))?;
            log.sync_all().map_err(|e| io_err("fsync", &path, e))?;
        }
        let vote = read_framed::<pb::Vote>(&dir.join("vote"))
            .map_err(|e| io_err("read", &dir.join("vote"), e))?
            .map(|v| vote_from_pb(&v));
        // A hint only: an unreadable one is ignored.
        let committed = read_framed::<pb::LogId>(&dir.join("committed"))
            .ok()
            .flatten()
            .map(|id| log_id_from_pb(&id));
        Ok(LogStore {
            mem: Arc::new(RwLock::new(mem)),
            disk: Arc::new(Mutex::new(Disk {
                dir: dir.to_path_buf(),
                log,
                offsets,
                len: valid as u64,
            })),
            vote,
            committed,
        })
    }

    fn mem_write(&self) -> std::sync::RwLockWriteGuard<'_, Mem> {
        self.mem.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Disk {
    fn path(&self) -> PathBuf {
        self.dir.join("raft.log")
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), DiskError> {
        let path = self.path();
        let mut buf = Vec::new();
        for e in entries {
            let start = self.len + buf.len() as u64;
            let framed = encode_frames(std::slice::from_ref(&entry_to_pb(e)));
            buf.extend_from_slice(&framed);
            self.offsets.insert(e.log_id.index, start);
        }
        self.log
            .write_all(&buf)
            .map_err(|e| io_err("append", &path, e))?;
        self.log
            .sync_data()
            .map_err(|e| io_err("fsync", &path, e))?;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Drops entries from `index` on.
    fn truncate(&mut self, index: u64) -> Result<(), DiskError> {
        let path = self.path();
        let Some(&pos) = self.offsets.range(index..).next().map(|(_, p)| p) else {
            return Ok(());
        };
        self.log
            .set_len(pos)
            .map_err(|e| io_err("truncate", &path, e))?;
        self.log.sync_all().map_err(|e| io_err("fsync", &path, e))?;
        self.offsets.retain(|i, _| *i < index);
        self.len = pos;
        Ok(())
    }

    /// Records the purge point durably, then drops the prefix from the file when it is big.
    fn purge(&mut self, id: &LogId<NodeId>, live: &[Entry]) -> Result<(), DiskError> {
        let purged = self.dir.join("purged");
        write_framed(&purged, &log_id_to_pb(id), true).map_err(|e| io_err("write", &purged, e))?;
        let prefix = self
            .offsets
            .range(id.index + 1..)
            .next()
            .map_or(self.len, |(_, p)| *p);
        if prefix < COMPACT_AFTER_BYTES {
            return Ok(());
        }
        // Rewrite with only the live entries; the rename makes the switch atomic.
        let path = self.path();
        let tmp = self.dir.join("raft.log.tmp");
        let frames: Vec<pb::Entry> = live.iter().map(entry_to_pb).collect();
        let bytes = encode_frames(&frames);
        write_atomic(&path, &bytes, true).map_err(|e| io_err("rewrite", &tmp, e))?;
        self.log = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err("reopen", &path, e))?;
        let (decoded, len) = decode_frames::<pb::Entry>(&bytes);
        self.offsets = decoded
            .into_iter()
            .filter_map(|(e, pos)| e.log_id.map(|id| (id.index, pos as u64)))
            .collect();
        self.len = len as u64;
        Ok(())
    }
}

fn entries_in(mem: &RwLock<Mem>, range: impl RangeBounds<u64>) -> Vec<Entry> {
    let mem = mem.read().unwrap_or_else(|p| p.into_inner());
    mem.entries.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(entries_in(&self.mem, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(entries_in(&self.mem, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.mem.read().unwrap_or_else(|p| p.into_inner());
        let last = mem
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(mem.purged);
        Ok(LogState {
            last_purged_log_id: mem.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            mem: Arc::clone(&self.mem),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let disk = Arc::clone(&self.disk);
        let v = vote_to_pb(vote);
        blocking(move || {
            let dir = disk.lock().unwrap_or_else(|p| p.into_inner()).dir.clone();
            let path = dir.join("vote");
            write_framed(&path, &v, true).map_err(|e| io_err("write", &path, e))
        })
        .await?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        self.committed = committed;
        let Some(id) = committed else { return Ok(()) };
        let disk = Arc::clone(&self.disk);
        blocking(move || {
            let dir = disk.lock().unwrap_or_else(|p| p.into_inner()).dir.clone();
            let path = dir.join("committed");
            write_framed(&path, &log_id_to_pb(&id), false).map_err(|e| io_err("write", &path, e))
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            // Readable at once (openraft's contract), durable before the callback.
            let mut mem = self.mem_write();
            for e in &entries {
                mem.entries.insert(e.log_id.index, e.clone());
            }
        }
        let disk = Arc::clone(&self.disk);
        let r = blocking(move || {
            disk.lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&entries)
        })
        .await;
        match r {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let disk = Arc::clone(&self.disk);
        let index = log_id.index;
        // On disk first: a crash in between must not resurrect truncated entries later.
        blocking(move || {
            disk.lock()
                .unwrap_or_else(|p| p.into_inner())
                .truncate(index)
        })
        .await?;
        self.mem_write().entries.retain(|i, _| *i < index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let live: Vec<Entry> = {
            let mut mem = self.mem_write();
            mem.entries.retain(|i, _| *i > log_id.index);
            mem.purged = Some(log_id);
            mem.entries.values().cloned().collect()
        };
        let disk = Arc::clone(&self.disk);
        blocking(move || {
            disk.lock()
                .unwrap_or_else(|p| p.into_inner())
                .purge(&log_id, &live)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn blank(term: u64, index: u64) -> Entry {
        openraft::Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn disk_append(s: &LogStore, entries: &[Entry]) {
        s.mem_write()
            .entries
            .extend(entries.iter().map(|e| (e.log_id.index, e.clone())));
        s.disk.lock().unwrap().append(entries).unwrap();
    }

    #[test]
    fn reopen_keeps_entries_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        disk_append(&s, &[blank(1, 1), blank(1, 2), blank(2, 3)]);
        drop(s);
        // A torn last frame: half of a fourth entry.
        let frame = encode_frames(&[entry_to_pb(&blank(2, 4))]);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("raft.log"))
            .unwrap();
        f.write_all(&frame[..frame.len() / 2]).unwrap();
        drop(f);
        let s = LogStore::open(dir.path()).unwrap();
        let mem = s.mem.read().unwrap();
        assert_eq!(
            mem.entries.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        drop(mem);
        // Appends continue right after the intact prefix.
        disk_append(&s, &[blank(2, 4)]);
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.mem.read().unwrap().entries.len(), 4);
    }

    #[test]
    fn truncate_and_purge_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        disk_append(&s, &(1..=6).map(|i| blank(1, i)).collect::<Vec<_>>());
        s.disk.lock().unwrap().truncate(5).unwrap();
        let purge_to = LogId::new(CommittedLeaderId::new(1, 1), 2);
        let live = vec![blank(1, 3), blank(1, 4)];
        s.disk.lock().unwrap().purge(&purge_to, &live).unwrap();
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        let mem = s.mem.read().unwrap();
        assert_eq!(mem.entries.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(mem.purged, Some(purge_to));
    }

    #[test]
    fn a_corrupt_vote_file_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        LogStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("vote"), b"garbage!garbage!").unwrap();
        assert!(LogStore::open(dir.path()).is_err());
    }
}
