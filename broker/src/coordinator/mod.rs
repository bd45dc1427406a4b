//! The group coordinator service: owns every group, feeds the pure state machines in
//! `crate::group` with requests and the current time, parks JoinGroup calls until their
//! generation forms, and persists commits and group metadata as records of the internal
//! compacted topic `__consumer_offsets` (replayed at start).
//!
//! - `log.rs`: the writer task that appends records in order, and the replay.
//! - `timer.rs`: the task that expires sessions and ends rebalances (sleeps until the
//!   next deadline; woken early when something changes).
//! - `ops.rs`: the operations handlers call (join, sync, commit, describe, lag, ...);
//!   `consumer.rs`: KIP-848 consumer-group heartbeats and describe.
//!
//! Locking: one std `Mutex` over the group table, held only for state-machine calls (no
//! I/O, no await under it). Records are queued to the writer *under* that lock, so the
//! log order equals the order in which the state changed.

mod consumer;
mod lag_time;
mod log;
mod ops;
mod timer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use crate::group::{Group, GroupConfig, JoinResponse, PartitionCounts};
use crate::metadata::MetadataImage;
use crate::raft::state_machine::Applied;
use crate::topics::Topics;

pub use lag_time::fill_lag_ms;
pub use log::OffsetsLogError;
pub use ops::{CommitPartition, DescribedGroup, DescribedMember, ListedGroup};

/// Coordinator settings (`[groups]` in the broker config).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Partitions of `__consumer_offsets` when it is created.
    pub offsets_topic_partitions: i32,
    /// Limits handed to every group.
    pub group: GroupConfig,
}

/// What the coordinator reads from the metadata image: partition counts (a group may
/// subscribe to topics this broker holds no replica of) and who leads the partitions of
/// `__consumer_offsets` (their leaders coordinate the groups mapped to them).
#[derive(Debug, Clone)]
pub struct ImageView {
    node_id: i32,
    applied: tokio::sync::watch::Receiver<Applied>,
    lease: crate::controller::lease::Lease,
}

impl ImageView {
    /// The view of broker `node_id` over the images published on `applied`, trusted while
    /// `lease` holds.
    pub fn new(
        node_id: i32,
        applied: tokio::sync::watch::Receiver<Applied>,
        lease: crate::controller::lease::Lease,
    ) -> Self {
        ImageView {
            node_id,
            applied,
            lease,
        }
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.applied.borrow().image.clone()
    }

    /// Whether the image can still be trusted to say what this broker leads: the cluster
    /// has heard from this broker within a session and the image caught up since.
    fn current(&self) -> bool {
        let index = self.applied.borrow().index;
        self.lease.holds(index)
    }
}

/// The `__consumer_offsets` partitions this broker leads and has open, with their leader
/// epochs.
fn led_offsets_partitions(
    view: &ImageView,
    topics: &Topics,
) -> std::collections::BTreeMap<i32, i32> {
    let image = view.image();
    let Some(t) = image.topics.get(crate::group::records::OFFSETS_TOPIC) else {
        return Default::default();
    };
    let open = topics.get(crate::group::records::OFFSETS_TOPIC);
    t.partitions
        .iter()
        .enumerate()
        .filter(|(_, p)| p.leader == view.node_id)
        .filter_map(|(i, p)| Some((i32::try_from(i).ok()?, p.leader_epoch)))
        .filter(|(i, _)| {
            open.as_ref()
                .is_some_and(|o| o.partitions.get(*i as usize).is_some_and(Option::is_some))
        })
        .collect()
}

/// Between two views of the led partitions (partition → leader epoch): the partitions to
/// load (newly led, or led under a new epoch) and those to forget (no longer led, or led
/// under a new epoch: their groups are reloaded).
fn leadership_changes(
    before: &std::collections::BTreeMap<i32, i32>,
    now: &std::collections::BTreeMap<i32, i32>,
) -> (std::collections::BTreeMap<i32, i32>, Vec<i32>) {
    let gained = now
        .iter()
        .filter(|(p, e)| before.get(p) != Some(e))
        .map(|(p, e)| (*p, *e))
        .collect();
    let lost = before
        .iter()
        .filter(|(p, e)| now.get(p) != Some(e))
        .map(|(p, _)| *p)
        .collect();
    (gained, lost)
}

/// Partition counts from one image.
struct ImageCounts(Arc<MetadataImage>);

impl PartitionCounts for ImageCounts {
    fn partition_count(&self, topic: &str) -> Option<u32> {
        self.0
            .topics
            .get(topic)
            .map(|t| u32::try_from(t.partitions.len()).unwrap_or(u32::MAX))
    }
}

type Waiters = HashMap<(String, String), oneshot::Sender<JoinResponse>>;

/// A SyncGroup waiting for its leader's plan: the generation and instance id it asked
/// with, and where its answer goes.
type SyncWaiter = (
    i32,
    Option<String>,
    oneshot::Sender<crate::group::SyncResponse>,
);

struct Table {
    groups: HashMap<String, Group>,
    /// Parked JoinGroup calls by (group, member id).
    waiters: Waiters,
    /// Parked SyncGroup calls by (group, member id).
    sync_waiters: HashMap<(String, String), SyncWaiter>,
    /// The `__consumer_offsets` partitions whose groups are loaded, with the leader epoch
    /// they were loaded under. A group is served only while the image names this broker
    /// leader of its partition at that very epoch: under any other epoch another leader
    /// may have taken commits in between, which only a reload from the log picks up.
    loaded: HashMap<i32, i32>,
}

struct Inner {
    config: CoordinatorConfig,
    topics: Topics,
    view: ImageView,
    table: Mutex<Table>,
    writer: mpsc::UnboundedSender<log::WriteRequest>,
    /// Wakes the timer task when deadlines may have moved.
    wake: Notify,
}

/// Cloneable handle to the coordinator.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Creates `__consumer_offsets` if needed, replays it, and starts the writer and timer
    /// tasks (they stop when `shutdown` fires).
    pub async fn start(
        config: CoordinatorConfig,
        controller: &crate::controller::Controller,
        shutdown: CancellationToken,
    ) -> Result<Coordinator, OffsetsLogError> {
        log::ensure_topic(controller, config.offsets_topic_partitions).await?;
        let topics = controller.topics().clone();
        let view = ImageView::new(
            controller.node_id(),
            controller.subscribe(),
            controller.lease(),
        );
        let led = led_offsets_partitions(&view, &topics);
        let groups = log::replay(
            &topics,
            |p| led.contains_key(&p),
            &config.group,
            crate::clock::now_ms(),
        )
        .await?;
        tracing::info!(
            groups = groups.len(),
            "replayed {}",
            crate::group::records::OFFSETS_TOPIC
        );
        let c = Coordinator::new(config, topics, view, shutdown.clone());
        {
            let mut table = c.table();
            table.groups = groups;
            table.loaded = led.clone().into_iter().collect();
        }
        tokio::spawn(
            c.clone()
                .follow_leadership(controller.applier().subscribe(), led, shutdown),
        );
        Ok(c)
    }

    /// Loads the groups of every `__consumer_offsets` partition this broker comes to lead
    /// (a failover moved it here: the replica has the records), reloads those whose leader
    /// epoch changed (the watch can skip the epochs in between, when another broker led and
    /// took commits), and forgets those it stops leading, as the applier follows the
    /// metadata, until `shutdown`.
    async fn follow_leadership(
        self,
        mut applied: tokio::sync::watch::Receiver<u64>,
        mut led: std::collections::BTreeMap<i32, i32>,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                r = applied.changed() => if r.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
            let mut now_led = led_offsets_partitions(&self.inner.view, &self.inner.topics);
            let (gained, lost) = leadership_changes(&led, &now_led);
            if !lost.is_empty() {
                let n = self.partition_count();
                let mut table = self.table();
                for p in &lost {
                    table.loaded.remove(p);
                }
                table
                    .groups
                    .retain(|g, _| !lost.contains(&crate::group::records::partition_for(g, n)));
                tracing::info!(partitions = ?lost, "no longer coordinating these offsets partitions (or under a new epoch)");
            }
            if !gained.is_empty() {
                let loaded = log::replay(
                    &self.inner.topics,
                    |p| gained.contains_key(&p),
                    &self.inner.config.group,
                    crate::clock::now_ms(),
                )
                .await;
                match loaded {
                    Ok(groups) => {
                        tracing::info!(partitions = ?gained, groups = groups.len(), "took over group coordination");
                        let mut table = self.table();
                        table.groups.extend(groups);
                        table.loaded.extend(gained);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "could not load groups");
                        // Not loaded: tried again at the next metadata change.
                        for p in gained.keys() {
                            now_led.remove(p);
                        }
                    }
                }
            }
            led = now_led;
        }
    }

    /// Partitions of `__consumer_offsets` (by the image).
    fn partition_count(&self) -> u32 {
        self.inner
            .view
            .image()
            .topics
            .get(crate::group::records::OFFSETS_TOPIC)
            .map_or(1, |t| u32::try_from(t.partitions.len()).unwrap_or(1).max(1))
    }

    /// A coordinator with no groups over `topics` (no replay); spawns its tasks, so call it
    /// inside a tokio runtime.
    pub fn new(
        config: CoordinatorConfig,
        topics: Topics,
        view: ImageView,
        shutdown: CancellationToken,
    ) -> Coordinator {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            config,
            topics: topics.clone(),
            view,
            table: Mutex::new(Table {
                groups: HashMap::new(),
                waiters: HashMap::new(),
                sync_waiters: HashMap::new(),
                loaded: HashMap::new(),
            }),
            writer: tx,
            wake: Notify::new(),
        });
        tokio::spawn(log::run_writer(topics, rx));
        tokio::spawn(timer::run(Arc::downgrade(&inner), shutdown));
        Coordinator { inner }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic under the lock cannot leave a half-applied state-machine step that later
        // calls would trip over in unsafe ways; keep serving.
        match self.inner.table.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::leadership_changes;

    #[test]
    fn a_new_leader_epoch_reloads_the_partition() {
        let before: BTreeMap<i32, i32> = [(0, 5), (1, 3), (2, 7)].into();
        // 0: same epoch (kept); 1: led again under a later epoch (another broker led in
        // between); 2: no longer led; 4: newly led.
        let now: BTreeMap<i32, i32> = [(0, 5), (1, 6), (4, 2)].into();
        let (gained, lost) = leadership_changes(&before, &now);
        assert_eq!(gained, [(1, 6), (4, 2)].into());
        assert_eq!(lost, vec![1, 2]);
        let (gained, lost) = leadership_changes(&now, &now);
        assert!(gained.is_empty() && lost.is_empty());
    }
}
