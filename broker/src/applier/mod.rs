//! The applier: every broker, controller or not, follows the applied metadata image and
//! opens, closes, deletes and reconfigures its partition logs to match it — the replicas
//! placed on this broker and nothing else. The controller only writes records; it waits
//! for its own broker's applier when it must answer with partitions open (a single node).
//!
//! Planning is pure (`plan`); this module runs the plan on a blocking thread (file I/O)
//! and publishes the metadata index it has caught up to.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clean_shutdown::Taint;
use crate::metadata::MetadataImage;
use crate::names::partition_dir_name;
use crate::partition::{blocking, Partition, PartitionRef};
use crate::raft::state_machine::Applied;
use crate::topic_config::{with_overrides, TopicConfig};
use crate::topics::{TopicState, Topics};

pub mod plan;

use plan::{LocalTopic, TopicPlan};

/// Threads opening the partitions of one change (a topic created with many partitions).
const OPEN_THREADS: usize = 8;

/// Follows the image for one broker.
#[derive(Debug)]
pub struct Applier {
    me: i32,
    /// One broker among several: high watermarks come from the ISR, not the log end.
    cluster: bool,
    data_dir: PathBuf,
    defaults: TopicConfig,
    topics: Topics,
    /// The metadata index whose image the local partitions match.
    done: watch::Sender<u64>,
    /// Set when a partition directory is left unclosed (a failed open or deletion).
    taint: Arc<Taint>,
}

impl Applier {
    /// An applier over `topics`, which already match the image at `index` (opened at
    /// start).
    pub fn new(
        me: i32,
        data_dir: PathBuf,
        defaults: TopicConfig,
        topics: Topics,
        index: u64,
        cluster: bool,
        taint: Arc<Taint>,
    ) -> Arc<Applier> {
        Arc::new(Applier {
            me,
            cluster,
            data_dir,
            defaults,
            topics,
            done: watch::Sender::new(index),
            taint,
        })
    }

    /// Applies every image the quorum publishes, until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        mut applied: watch::Receiver<Applied>,
        stop: CancellationToken,
    ) {
        loop {
            let a = applied.borrow_and_update().clone();
            self.apply(a.image).await;
            self.done.send_if_modified(|d| {
                let moved = a.index > *d;
                *d = (*d).max(a.index);
                moved
            });
            tokio::select! {
                r = applied.changed() => if r.is_err() { return },
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Follows the metadata index the local partitions match.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.done.subscribe()
    }

    /// Waits until the local partitions match the image at `index` or later; false when
    /// `limit` passed first.
    pub async fn caught_up(&self, index: u64, limit: Duration) -> bool {
        let mut rx = self.done.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|d| *d >= index))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// What is open here, per topic.
    fn summary(&self) -> BTreeMap<String, LocalTopic> {
        self.topics
            .all()
            .into_iter()
            .map(|t| {
                let open = t.hosted().map(|p| (p.index(), p.leader_epoch())).collect();
                (
                    t.name.clone(),
                    LocalTopic {
                        id: t.id.clone(),
                        overrides: t.overrides.clone(),
                        open,
                    },
                )
            })
            .collect()
    }

    async fn apply(self: &Arc<Self>, image: Arc<MetadataImage>) {
        let plans = plan::plan(&image, &self.summary(), self.me);
        if !plans.is_empty() {
            let this = self.clone();
            let img = image.clone();
            let done = blocking(
                move || {
                    for p in &plans {
                        this.execute(p, &img);
                    }
                    Ok(())
                },
                "apply metadata",
            )
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "applying metadata failed");
            }
        }
        self.sync_replication(&image);
    }

    /// Hands every open partition its replicas, ISR and leader from the image (no I/O:
    /// it updates the leader's replica view, which may move the high watermark).
    fn sync_replication(&self, image: &MetadataImage) {
        let now = crate::clock::now_ms();
        for (p, at) in self.topics.hosted_placed(image) {
            p.set_replication(self.me, &at.replicas, &at.isr, at.leader, now);
        }
    }

    /// Carries out one topic's plan (blocking I/O).
    fn execute(&self, p: &TopicPlan, image: &MetadataImage) {
        let mut current = self.topics.get(&p.name);
        if p.drop_local {
            if let Some(t) = self.topics.remove(&p.name) {
                for part in t.hosted() {
                    if let Err(e) = part.delete() {
                        // The image says deleted; leftovers go at the next start.
                        tracing::warn!(partition = %part.name(), error = %e, "could not remove partition data");
                    }
                }
                tracing::info!(topic = %p.name, "removed local partitions of a deleted topic");
            }
            current = None;
        }
        let Some(placed) = image.topics.get(&p.name) else {
            return;
        };
        let config = with_overrides(&self.defaults, &placed.configs).unwrap_or_else(|e| {
            tracing::warn!(topic = %p.name, error = %e, "stored topic config invalid; using defaults");
            self.defaults.clone()
        });
        let mut parts: Vec<Option<PartitionRef>> = vec![None; placed.partitions.len()];
        if let Some(cur) = &current {
            for part in cur.hosted() {
                if let Some(slot) = usize::try_from(part.index())
                    .ok()
                    .and_then(|i| parts.get_mut(i))
                {
                    *slot = Some(part.clone());
                }
            }
        }
        for i in &p.remove {
            let slot = usize::try_from(*i).ok().and_then(|i| parts.get_mut(i));
            if let Some(part) = slot.and_then(Option::take) {
                match part.delete() {
                    Ok(()) => {
                        tracing::info!(partition = %part.name(), "no longer a replica here; deleted")
                    }
                    // Leftovers go at the next start (`remove_orphans`).
                    Err(e) => {
                        tracing::warn!(partition = %part.name(), error = %e, "could not delete");
                        self.taint.set("a partition directory could not be deleted");
                    }
                }
            }
        }
        let jobs: Vec<(i32, i32)> = p.open.iter().map(|(i, e)| (*i, *e)).collect();
        let opened = crate::parallel::run_each(&jobs, OPEN_THREADS, |&(i, epoch)| {
            let dir = self.data_dir.join(partition_dir_name(&p.name, i));
            // The marker was removed at start: whatever is on disk here recovers.
            let part = Partition::open(
                &p.name,
                i,
                &dir,
                config.log.clone(),
                epoch,
                crate::storage::Shutdown::Unmarked,
            )?;
            if self.cluster {
                // A replica that is new here: nothing in it is known committed yet.
                part.restore_high_watermark(None);
            }
            Ok::<_, weir_storage::Error>(Arc::new(part))
        });
        for ((i, _), r) in jobs.iter().zip(opened) {
            match r {
                Ok(part) => {
                    if let Some(slot) = usize::try_from(*i).ok().and_then(|i| parts.get_mut(i)) {
                        *slot = Some(part);
                    }
                }
                // Retried with the next image change; until then requests for it get a
                // retriable error.
                Err(e) => {
                    tracing::error!(topic = %p.name, partition = i, error = %e, "cannot open partition");
                    self.taint.set("a partition could not be opened");
                }
            }
        }
        for (i, epoch) in &p.epochs {
            let slot = usize::try_from(*i).ok().and_then(|i| parts.get(i));
            if let Some(Some(part)) = slot {
                part.set_leader_epoch(*epoch);
            }
        }
        if p.reconfigure {
            for part in parts.iter().flatten() {
                if let Err(e) = part.update_config(config.log.clone()) {
                    tracing::warn!(partition = %part.name(), error = %e, "config change failed");
                }
            }
        }
        if parts.iter().all(Option::is_none) {
            self.topics.remove(&p.name);
            return;
        }
        if !p.open.is_empty() {
            tracing::info!(topic = %p.name, partitions = p.open.len(), "opened partitions");
        }
        self.topics.put(TopicState {
            name: p.name.clone(),
            id: placed.id.clone(),
            config,
            overrides: placed.configs.clone(),
            partitions: parts,
            counters: current.map(|c| c.counters.clone()).unwrap_or_default(),
        });
    }
}
