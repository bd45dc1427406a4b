//! Startup helpers: open every partition of the replayed image (in parallel), remove data
//! of deleted ones.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::ControllerOpenError;
use crate::hw_checkpoint::Checkpoint;
use crate::metadata::MetadataImage;
use crate::names::{parse_partition_dir_name, partition_dir_name};
use crate::partition::Partition;
use crate::storage::Shutdown;
use crate::topic_config::{with_overrides, TopicConfig};
use crate::topics::{TopicState, Topics};

/// Threads opening partitions at start (Kafka's `num.recovery.threads.per.data.dir`).
/// Opening a partition is mostly waiting: file opens, mmaps and, after a crash, the fsync
/// of each recovered segment. Concurrent fsyncs share the filesystem's journal commits, so
/// more threads than cores pay off; past a few dozen they only queue on the same disk.
pub const OPEN_THREADS: usize = 32;

/// Opens every partition of every topic in `image` that has a replica on broker `me`,
/// `threads` at a time, as the data directory's clean-shutdown marker says (`shutdown`),
/// and returns the topic table. The first failure is returned (naming the partition) once the running
/// opens finish; no new opens start after it.
pub(super) fn open_topics(
    data_dir: &Path,
    image: &MetadataImage,
    defaults: &TopicConfig,
    me: i32,
    threads: usize,
    checkpoint: Option<&Checkpoint>,
    shutdown: Shutdown,
) -> Result<Topics, ControllerOpenError> {
    let configs: Vec<TopicConfig> = image
        .topics
        .iter()
        .map(|(name, t)| {
            with_overrides(defaults, &t.configs).unwrap_or_else(|e| {
                tracing::warn!(topic = name, error = %e, "stored topic config invalid; using defaults");
                defaults.clone()
            })
        })
        .collect();
    // One job per partition, topic by topic, so results come back in table order.
    let topics: Vec<_> = image.topics.iter().zip(&configs).collect();
    let jobs: Vec<(usize, i32)> = topics
        .iter()
        .enumerate()
        .flat_map(|(ti, ((_, t), _))| {
            t.partitions
                .iter()
                .enumerate()
                .filter(|(_, p)| p.replicas.contains(&me))
                .map(move |(p, _)| (ti, p as i32))
        })
        .collect();
    let opened = run_parallel(&jobs, threads, |&(ti, index)| {
        let ((name, t), config) = topics.get(ti).ok_or_else(|| {
            ControllerOpenError::Quorum("partition job for an unknown topic".into())
        })?;
        let epoch = t
            .partitions
            .get(index as usize)
            .map_or(0, |p| p.leader_epoch);
        let dir = data_dir.join(partition_dir_name(name, index));
        let part = Partition::open(name, index, &dir, config.log.clone(), epoch, shutdown)
            .map_err(|source| ControllerOpenError::Partition {
                partition: format!("{name}-{index}"),
                source,
            })?;
        report_recovery(&part);
        if let Some(cp) = checkpoint {
            let at = cp.get(&(name.to_string(), index)).copied();
            part.restore_high_watermark(at);
        }
        Ok::<_, ControllerOpenError>(Arc::new(part))
    })?;
    let mut slots: Vec<Vec<Option<crate::partition::PartitionRef>>> = topics
        .iter()
        .map(|((_, t), _)| vec![None; t.partitions.len()])
        .collect();
    for ((ti, index), part) in jobs.iter().zip(opened) {
        if let Some(slot) = slots
            .get_mut(*ti)
            .and_then(|s| s.get_mut(usize::try_from(*index).ok()?))
        {
            *slot = Some(part);
        }
    }
    let table = Topics::default();
    for (((name, t), config), partitions) in topics.into_iter().zip(slots) {
        if partitions.iter().all(Option::is_none) {
            continue;
        }
        table.put(TopicState {
            name: name.clone(),
            id: t.id.clone(),
            config: config.clone(),
            overrides: t.configs.clone(),
            partitions,
            counters: Default::default(),
        });
    }
    Ok(table)
}

/// Runs `f` on every item on up to `threads` scoped threads and returns the results in
/// item order, or the error of the lowest-numbered failed item. After a failure no new
/// item starts (items already running finish).
fn run_parallel<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R, E>>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while !failed.load(Ordering::Acquire) {
                    let i = next.fetch_add(1, Ordering::AcqRel);
                    let (Some(item), Some(slot)) = (items.get(i), slots.get(i)) else {
                        break;
                    };
                    let r = f(item);
                    if r.is_err() {
                        failed.store(true, Ordering::Release);
                    }
                    // Each slot is written once by the one thread that took its index.
                    match slot.lock() {
                        Ok(mut g) => *g = Some(r),
                        Err(p) => *p.into_inner() = Some(r),
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for slot in slots {
        let r = match slot.into_inner() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        match r {
            Some(Ok(v)) => out.push(v),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            // Only items after a failed one are never started.
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Removes `<topic>-<n>` directories of partitions the image does not place on broker `me`
/// (a deletion that crashed before removing its data, a replica moved away while this
/// broker was down). The image is the committed one, so no copy it counts is removed.
/// Returns whether every orphan is gone (one left behind was not recovered at this start).
pub(super) fn remove_orphans(data_dir: &Path, image: &MetadataImage, me: i32) -> bool {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return false;
    };
    let mut all_removed = true;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some((topic, p)) = parse_partition_dir_name(name) else {
            continue;
        };
        // A partition moved away while this broker was down is no longer ours either.
        let hosted = image.topics.get(topic).is_some_and(|t| {
            usize::try_from(p)
                .ok()
                .and_then(|p| t.partitions.get(p))
                .is_some_and(|part| part.replicas.contains(&me))
        });
        if !hosted && entry.path().is_dir() {
            tracing::warn!(dir = name, "removing data of a partition not placed here");
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(dir = name, error = %e, "could not remove orphan");
                all_removed = false;
            }
        }
    }
    all_removed
}

/// Logs and counts what opening an existing partition took: after a graceful shutdown the
/// data dir's clean-shutdown marker lets storage skip the scan; after a crash it validates
/// the tail.
fn report_recovery(part: &Partition) {
    let info = part.with_log(|log| Ok(log.recovery_info().clone()));
    let Ok(info) = info else { return };
    // An empty log that was never written has nothing to scan; count it as clean.
    let scanned = info.bytes_scanned > 0 || info.bytes_truncated > 0 || info.checkpoint_corrupt;
    if info.clean_shutdown || !scanned {
        metrics::counter!("weir_partitions_opened_clean_total").increment(1);
    } else {
        metrics::counter!("weir_partitions_recovered_total").increment(1);
        tracing::info!(
            partition = %part.name(),
            segments_scanned = info.segments_scanned,
            bytes_scanned = info.bytes_scanned,
            bytes_truncated = info.bytes_truncated,
            "recovered partition after an unclean shutdown"
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn run_parallel_keeps_item_order_with_any_thread_count() {
        let items: Vec<u32> = (0..500).collect();
        for threads in [0, 1, 3, 32, 1000] {
            let out = run_parallel(&items, threads, |&i| {
                // Uneven work so later items can finish before earlier ones.
                if i % 7 == 0 {
                    std::thread::yield_now();
                }
                Ok::<_, String>(i * 2)
            })
            .unwrap();
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        let none: Vec<u32> = Vec::new();
        assert!(run_parallel(&none, 8, |&i| Ok::<_, String>(i))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn run_parallel_returns_the_lowest_failed_item_and_stops_starting_new_ones() {
        let items: Vec<u32> = (0..10_000).collect();
        let started = AtomicUsize::new(0);
        let err = run_parallel(&items, 4, |&i| {
            started.fetch_add(1, Ordering::Relaxed);
            if i == 40 || i == 41 {
                Err(format!("item {i}"))
            } else {
                Ok(i)
            }
        })
        .unwrap_err();
        assert_eq!(err, "item 40");
        // At most one more item per thread starts after the failure is seen.
        assert!(started.load(Ordering::Relaxed) < 100, "{started:?}");
    }

    #[test]
    fn open_topics_gives_every_topic_its_own_partitions_in_order() {
        use crate::metadata::{PartitionImage, TopicImage};
        use crate::storage::{Log, LogConfig};
        use weir_storage::testkit;
        let dir = tempfile::tempdir().unwrap();
        let topics = [("a", 5usize), ("b", 1), ("c", 12)];
        let mut image = MetadataImage::new(1);
        for (t, n) in topics {
            let partition = PartitionImage {
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                leader_epoch: 3,
                partition_epoch: 0,
                adding: Vec::new(),
                removing: Vec::new(),
            };
            image.topics.insert(
                t.to_string(),
                TopicImage {
                    id: bytes::Bytes::from_static(&[7; 16]),
                    partitions: vec![partition; n],
                    configs: Default::default(),
                },
            );
            // Partition p of topic t holds a distinct number of records and is left
            // without a clean close, so opening it recovers it.
            for p in 0..n {
                let path = dir.path().join(partition_dir_name(t, p as i32));
                let mut log = Log::open(&path, LogConfig::default()).unwrap();
                for _ in 0..(p + usize::from(t.as_bytes()[0]) % 3) {
                    let mut b = testkit::simple_batch(1, 10, 1_700_000_000_000);
                    log.append_as_leader(&mut b, 0, 0).unwrap();
                }
            }
        }
        let defaults = TopicConfig {
            log: LogConfig::default(),
            min_insync_replicas: 1,
            unclean_leader_election: false,
            replication_throttled_rate: 0,
        };
        for threads in [1, 4] {
            let table = open_topics(
                dir.path(),
                &image,
                &defaults,
                1,
                threads,
                None,
                Shutdown::Unmarked,
            )
            .unwrap();
            for (t, n) in topics {
                let state = table.get(t).unwrap();
                assert_eq!(state.partitions.len(), n);
                for (p, part) in state.partitions.iter().enumerate() {
                    let part = part.as_ref().unwrap();
                    assert_eq!((part.topic(), part.index()), (t, p as i32));
                    assert_eq!(part.leader_epoch(), 3);
                    let records = p + usize::from(t.as_bytes()[0]) % 3;
                    assert_eq!(part.high_watermark(), records as i64, "{t}-{p}");
                }
            }
        }
        // A cluster member opens at its checkpointed watermarks (never past the log end),
        // and at the log start where it has none.
        let mut cp = crate::hw_checkpoint::Checkpoint::new();
        cp.insert(("c".into(), 11), 2);
        cp.insert(("c".into(), 5), 100);
        let table = open_topics(
            dir.path(),
            &image,
            &defaults,
            1,
            2,
            Some(&cp),
            Shutdown::Unmarked,
        )
        .unwrap();
        let c = table.get("c").unwrap();
        let hw = |p: usize| c.partitions[p].as_ref().unwrap().high_watermark();
        assert_eq!((hw(11), hw(5), hw(7)), (2, 5, 0));
    }

    #[test]
    fn open_topics_names_the_partition_that_failed() {
        use crate::metadata::{PartitionImage, TopicImage};
        use crate::storage::LogConfig;
        let dir = tempfile::tempdir().unwrap();
        let mut image = MetadataImage::new(1);
        let partition = PartitionImage {
            leader: 1,
            replicas: vec![1],
            isr: vec![1],
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        };
        image.topics.insert(
            "t".to_string(),
            TopicImage {
                id: bytes::Bytes::from_static(&[7; 16]),
                partitions: vec![partition; 8],
                configs: Default::default(),
            },
        );
        // A file where partition 5's directory should be.
        std::fs::write(dir.path().join(partition_dir_name("t", 5)), b"not a dir").unwrap();
        let defaults = TopicConfig {
            log: LogConfig::default(),
            min_insync_replicas: 1,
            unclean_leader_election: false,
            replication_throttled_rate: 0,
        };
        let err = open_topics(
            dir.path(),
            &image,
            &defaults,
            1,
            4,
            None,
            Shutdown::Unmarked,
        )
        .unwrap_err();
        assert!(
            matches!(&err, ControllerOpenError::Partition { partition, .. } if partition == "t-5"),
            "{err}"
        );
    }
}
