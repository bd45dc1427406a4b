//! Partition replication, follower side: every broker follows the partitions it holds a
//! replica of but does not lead, one fetcher per leader broker (`fetcher`), as the
//! metadata image says. The leader side (follower positions, the high watermark, acks=all)
//! lives in `Partition` and `replica_set`; ISR changes in `isr`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::controller::Controller;
use crate::topic_config::THROTTLE_KEY;

pub mod conn;
pub mod fetcher;
pub mod isr;
pub mod throttle;

use fetcher::{FetcherSettings, Followed};

/// A running fetcher: where it fetches from and what.
struct Running {
    addr: String,
    parts: watch::Sender<Vec<Followed>>,
    task: JoinHandle<()>,
}

/// Keeps one fetcher per leader for what this broker follows, until `shutdown`. Reacts
/// when the applier has opened or closed partitions for a new image.
pub async fn run(
    controller: Arc<Controller>,
    settings: FetcherSettings,
    shutdown: CancellationToken,
) {
    let mut applied = controller.applier().subscribe();
    let mut running: BTreeMap<i32, Running> = BTreeMap::new();
    loop {
        let _ = applied.borrow_and_update();
        let image = controller.image();
        let mut wanted: BTreeMap<i32, Vec<Followed>> = BTreeMap::new();
        for (p, at) in controller.topics().hosted_placed(&image) {
            if at.leader < 0 || at.leader == settings.me || !at.replicas.contains(&settings.me) {
                continue;
            }
            // Only a replica a reassignment is adding is throttled: one already in the
            // ISR must keep up with producers.
            let throttle = if at.adding.contains(&settings.me) {
                image
                    .topics
                    .get(p.topic())
                    .and_then(|t| t.configs.get(THROTTLE_KEY))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            } else {
                0
            };
            wanted.entry(at.leader).or_default().push(Followed {
                partition: p,
                leader_epoch: at.leader_epoch,
                throttle,
            });
        }
        // Stop fetchers for leaders we no longer follow (or that moved).
        running.retain(|leader, r| {
            let addr = image
                .brokers
                .get(leader)
                .map(|b| format!("{}:{}", b.host, b.port));
            let keep = wanted.contains_key(leader) && addr.as_deref() == Some(r.addr.as_str());
            if !keep {
                r.task.abort();
            }
            keep
        });
        for (leader, parts) in wanted {
            if let Some(r) = running.get(&leader) {
                // Most metadata changes concern other partitions: a fetcher whose list is
                // unchanged keeps its connection and its long poll.
                r.parts.send_if_modified(|current| {
                    if same_list(current, &parts) {
                        false
                    } else {
                        *current = parts;
                        true
                    }
                });
                continue;
            }
            let Some(b) = image.brokers.get(&leader) else {
                continue;
            };
            let addr = format!("{}:{}", b.host, b.port);
            let (tx, rx) = watch::channel(parts);
            let task = tokio::spawn(fetcher::run(settings, leader, addr.clone(), rx));
            running.insert(
                leader,
                Running {
                    addr,
                    parts: tx,
                    task,
                },
            );
        }
        tokio::select! {
            r = applied.changed() => if r.is_err() { break },
            _ = shutdown.cancelled() => break,
        }
    }
    for r in running.into_values() {
        r.task.abort();
    }
}

/// Whether two fetch lists name the same local replicas at the same epochs and throttles.
fn same_list(a: &[Followed], b: &[Followed]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            Arc::ptr_eq(&x.partition, &y.partition)
                && x.leader_epoch == y.leader_epoch
                && x.throttle == y.throttle
        })
}

/// Default fetcher settings for broker `me`.
pub fn fetcher_settings(me: i32) -> FetcherSettings {
    FetcherSettings {
        me,
        max_wait_ms: 500,
        partition_max_bytes: 1 << 20,
        max_bytes: 10 << 20,
        backoff: Duration::from_millis(200),
    }
}
