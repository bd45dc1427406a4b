//! The flush coordinator: fsyncs the partitions whose producers wait for durability from
//! a few dedicated threads, many partitions per pass, instead of a Tokio task plus a
//! blocking section (and its thread hand-offs) per partition per request.
//!
//! A partition that needs a flush is queued at most once (its flush queue's `running`
//! flag). A worker takes everything queued and, for each partition, takes a flush handle
//! under its log lock; it then starts the writeback of every handle's file
//! (`sync_file_range`), so the block allocations of all of them land in one journal
//! transaction, and fdatasyncs them one after the other: the first commit covers the
//! others' metadata, which then mostly wait only for their own data. Each partition's
//! result is recorded and its waiters woken right after its own fdatasync; a partition
//! asked for more meanwhile is queued again for the next pass. The promise is unchanged:
//! nothing is reported durable before the fdatasync of its file returned.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};

use crate::partition::PartitionRef;

/// Worker threads. Two passes may overlap, so one slow fsync (a large partition, a
/// congested disk) does not hold up every other partition's waiters.
const THREADS: usize = 2;

/// Partitions waiting for a worker.
#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<PartitionRef>>,
    ready: Condvar,
}

static QUEUE: OnceLock<Option<&'static Queue>> = OnceLock::new();

/// Queues `p` for a flush. Returns `false` (nothing queued) if no worker thread could be
/// started, so the caller can fail its waiters instead of leaving them hanging.
pub(crate) fn submit(p: PartitionRef) -> bool {
    let Some(queue) = QUEUE.get_or_init(start) else {
        return false;
    };
    match queue.waiting.lock() {
        Ok(mut w) => w.push_back(p),
        Err(poisoned) => poisoned.into_inner().push_back(p),
    }
    queue.ready.notify_one();
    true
}

/// Starts the workers once per process; `None` when not even one could be spawned.
fn start() -> Option<&'static Queue> {
    // Lives as long as the process, like the threads that serve it.
    let queue: &'static Queue = Box::leak(Box::default());
    let mut started = 0;
    for i in 0..THREADS {
        let spawned = std::thread::Builder::new()
            .name(format!("weir-flush-{i}"))
            .spawn(move || work(queue));
        match spawned {
            Ok(_) => started += 1,
            Err(e) => tracing::error!(error = %e, "cannot start a flush thread"),
        }
    }
    (started > 0).then_some(queue)
}

fn work(queue: &'static Queue) {
    loop {
        let batch: Vec<PartitionRef> = {
            let mut w = match queue.waiting.lock() {
                Ok(w) => w,
                Err(poisoned) => poisoned.into_inner(),
            };
            while w.is_empty() {
                w = match queue.ready.wait(w) {
                    Ok(w) => w,
                    Err(poisoned) => poisoned.into_inner(),
                };
            }
            w.drain(..).collect()
        };
        let again = pass(batch);
        if !again.is_empty() {
            match queue.waiting.lock() {
                Ok(mut w) => w.extend(again),
                Err(poisoned) => poisoned.into_inner().extend(again),
            }
            queue.ready.notify_one();
        }
    }
}

/// One pass over `batch`; returns the partitions that want another flush.
fn pass(batch: Vec<PartitionRef>) -> Vec<PartitionRef> {
    let taken: Vec<_> = batch
        .into_iter()
        .map(|p| {
            let t = p.take_flush();
            (p, t)
        })
        .collect();
    for (_, t) in &taken {
        if let Ok(t) = t {
            t.start_writeback();
        }
    }
    let mut again = Vec::new();
    for (p, t) in taken {
        let outcome = t.and_then(|t| p.finish_flush(t));
        if p.flushed(outcome) {
            again.push(p);
        }
    }
    again
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::sync::Arc;

    use crate::partition::{DurableWait, Partition, PartitionError};
    use crate::storage::{LogConfig, Shutdown};
    use weir_storage::testkit;

    /// Many partitions flushed in the same passes, one of whose fsyncs fails: every other
    /// append is acknowledged with its data fsynced (the log's recovery point covers it),
    /// and only the failed partition's producer gets the error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_fails_only_its_own_partition() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            flush_messages: 1,
            ..LogConfig::default()
        };
        let parts: Vec<_> = (0..64)
            .map(|i| {
                let path = dir.path().join(format!("t-{i}"));
                let p = Partition::open("t", i, &path, config.clone(), 0, Shutdown::Unmarked);
                Arc::new(p.unwrap())
            })
            .collect();
        let bad = 17;
        parts[bad]
            .with_log_mut(|log| {
                log.inject_fsync_failure();
                Ok(())
            })
            .unwrap();
        let mut producers = Vec::new();
        for round in 0..5 {
            for p in &parts {
                let p = Arc::clone(p);
                producers.push(tokio::spawn(async move {
                    let b = testkit::simple_batch(2, 20, round);
                    let r = p
                        .append_durable(
                            bytes::BytesMut::from(&b[..]),
                            0,
                            DurableWait::Within { timeout_ms: 0 },
                            |_, _| {},
                        )
                        .await;
                    (p.index(), r.map(|a| a.info.last_offset + 1))
                }));
            }
        }
        let mut bad_failed = false;
        for t in producers {
            let (i, r) = t.await.unwrap();
            match r {
                Ok(end) => {
                    assert_ne!(i as usize, bad, "acknowledged after a failed fsync");
                    let p = &parts[i as usize];
                    let fsynced = p.with_log(|l| Ok(l.recovery_point())).unwrap();
                    assert!(fsynced >= end, "partition {i}: {fsynced} < {end}");
                }
                Err(e) => {
                    assert_eq!(i as usize, bad, "partition {i}: {e}");
                    assert!(!matches!(e, PartitionError::TimedOut(..)), "{e}");
                    bad_failed = true;
                }
            }
        }
        assert!(bad_failed);
        for (i, p) in parts.iter().enumerate() {
            let end = p.with_log(|l| Ok(l.log_end_offset())).unwrap();
            if i != bad {
                assert_eq!((p.durable_offset(), end), (10, 10), "partition {i}");
            }
        }
    }
}
