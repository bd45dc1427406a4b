//! The metadata image as openraft's state machine.
//!
//! `apply` changes the in-memory image only; durability comes from the log plus snapshots:
//! every snapshot is written to `snapshot` (atomically, fsynced) before it counts, and at
//! start the image is rebuilt from it, after which openraft re-applies the committed log
//! above it. Appliers publish each new image on a watch channel, so the broker reacts to
//! metadata changes without polling.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, StorageIOError, StoredMembership,
};
use prost::Message;
use tokio::sync::watch;
use weir_protocol::native::raft as pb;

use super::codec::{opt_log_id_to_pb, stored_membership_from_pb, stored_membership_to_pb};
use super::log_store::{io_err, write_atomic, DiskError};
use super::{Entry, NodeId, StorageError, TypeConfig};
use crate::metadata::MetadataImage;

/// What has been applied, as the broker sees it.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Index of the last applied entry (0 before any).
    pub index: u64,
    /// The image after it.
    pub image: Arc<MetadataImage>,
}

#[derive(Debug)]
struct Inner {
    image: MetadataImage,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// The last snapshot, encoded, with its meta.
    snapshot: Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>,
    built: u64,
}

/// The state machine handed to openraft (clones share state).
#[derive(Debug, Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
    path: PathBuf,
    default_leader: i32,
    applied: Arc<watch::Sender<Applied>>,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

/// Decodes a snapshot into its meta and image.
fn decode_snapshot(
    bytes: &[u8],
    default_leader: i32,
) -> Result<(SnapshotMeta<NodeId, BasicNode>, MetadataImage), DiskError> {
    let s = pb::Snapshot::decode(bytes).map_err(|e| io_err("decode", Path::new("snapshot"), e))?;
    let meta = SnapshotMeta {
        last_log_id: super::codec::opt_log_id_from_pb(&s.last_log_id),
        last_membership: stored_membership_from_pb(&s.membership_log_id, &s.membership),
        snapshot_id: s.snapshot_id.clone(),
    };
    Ok((meta, MetadataImage::replay(default_leader, &s.records)))
}

impl StateMachine {
    /// Opens the state machine of the quorum directory `dir`: the image of the last saved
    /// snapshot, or empty. Blocking.
    pub fn open(dir: &Path, default_leader: i32) -> Result<StateMachine, DiskError> {
        let path = dir.join("snapshot");
        let mut inner = Inner {
            image: MetadataImage::new(default_leader),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot: None,
            built: 0,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                // Written atomically, so anything unreadable is damage, not a crash: refuse.
                let (meta, image) = decode_snapshot(&bytes, default_leader)?;
                inner.image = image;
                inner.last_applied = meta.last_log_id;
                inner.membership = meta.last_membership.clone();
                inner.snapshot = Some((meta, bytes));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &path, e)),
        }
        let (applied, _) = watch::channel(Applied {
            index: inner.last_applied.map_or(0, |l| l.index),
            image: Arc::new(inner.image.clone()),
        });
        Ok(StateMachine {
            inner: Arc::new(Mutex::new(inner)),
            path,
            default_leader,
            applied: Arc::new(applied),
        })
    }

    /// Follows the applied image.
    pub fn subscribe(&self) -> watch::Receiver<Applied> {
        self.applied.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, inner: &Inner) {
        self.applied.send_replace(Applied {
            index: inner.last_applied.map_or(0, |l| l.index),
            image: Arc::new(inner.image.clone()),
        });
    }
}

/// Builds snapshots from a copy of the image taken when the builder was made.
#[derive(Debug)]
pub struct SnapshotBuilder {
    sm: StateMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (msg, meta) = {
            let mut inner = self.sm.lock();
            inner.built += 1;
            let id = match inner.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, inner.built),
                None => format!("0-0-{}", inner.built),
            };
            let (membership_log_id, membership) = stored_membership_to_pb(&inner.membership);
            let msg = pb::Snapshot {
                last_log_id: opt_log_id_to_pb(&inner.last_applied),
                membership_log_id,
                membership: Some(membership),
                snapshot_id: id.clone(),
                records: inner.image.to_records(),
            };
            let meta = SnapshotMeta {
                last_log_id: inner.last_applied,
                last_membership: inner.membership.clone(),
                snapshot_id: id,
            };
            (msg, meta)
        };
        let bytes = msg.encode_to_vec();
        let path = self.sm.path.clone();
        let data = bytes.clone();
        tokio::task::spawn_blocking(move || write_atomic(&path, &data, true))
            .await
            .map_err(sm_err)?
            .map_err(sm_err)?;
        let mut inner = self.sm.lock();
        // Only ever move forward: a concurrent install may have saved a newer one.
        let newer = inner
            .snapshot
            .as_ref()
            .is_none_or(|(m, _)| m.last_log_id <= meta.last_log_id);
        if newer {
            inner.snapshot = Some((meta.clone(), bytes.clone()));
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut out = Vec::new();
        let mut inner = self.lock();
        for e in entries {
            inner.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => {
                    for r in &batch.records {
                        inner.image.apply(r);
                    }
                }
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(e.log_id), m);
                }
            }
            out.push(());
        }
        self.publish(&inner);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { sm: self.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let (_, image) = decode_snapshot(&bytes, self.default_leader)?;
        let path = self.path.clone();
        let data = bytes.clone();
        // Saved before it replaces the image: a crash right after still starts from it.
        tokio::task::spawn_blocking(move || write_atomic(&path, &data, true))
            .await
            .map_err(sm_err)?
            .map_err(sm_err)?;
        let mut inner = self.lock();
        inner.image = image;
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner.snapshot = Some((meta.clone(), bytes));
        self.publish(&inner);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let inner = self.lock();
        Ok(inner.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}
