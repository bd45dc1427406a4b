//! The background heartbeat and the state it shares with [`super::GroupConsumer`]: the
//! membership, requests to rejoin, and failures the caller must hear about.
//!
//! The task only heartbeats and raises flags; the rejoin itself runs inside `poll`, in the
//! caller's task, so callbacks and commits happen between batches the caller processed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

use super::link::{Lane, Link};
use crate::error::Error;

#[derive(Debug)]
struct Membership {
    member_id: String,
    generation: i32,
    /// When the coordinator last confirmed the membership (join, sync or heartbeat).
    confirmed: Instant,
}

pub(super) struct Shared {
    // std Mutexes: held for a copy in or out, never across an await.
    membership: Mutex<Membership>,
    /// Bumped by every request for a rejoin; `poll` rejoins while this is ahead of the
    /// value its last completed rejoin started from, so a request made during a rejoin,
    /// or a rejoin cut short by an error or a cancelled `poll`, is never lost.
    rejoin_wanted: AtomicU64,
    /// The coordinator forgot us: our partitions may be someone else's already.
    reset_member: AtomicBool,
    /// A heartbeat failure no retry can cure; the next `poll` returns it.
    fatal: Mutex<Option<Error>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Shared {
    pub(super) fn new() -> Shared {
        Shared {
            membership: Mutex::new(Membership {
                member_id: String::new(),
                generation: -1,
                confirmed: Instant::now(),
            }),
            rejoin_wanted: AtomicU64::new(0),
            reset_member: AtomicBool::new(false),
            fatal: Mutex::new(None),
        }
    }

    pub(super) fn membership(&self) -> (String, i32) {
        let m = lock(&self.membership);
        (m.member_id.clone(), m.generation)
    }

    /// Stores the membership the coordinator just confirmed.
    pub(super) fn set(&self, member_id: &str, generation: i32) {
        let mut m = lock(&self.membership);
        m.member_id = member_id.to_owned();
        m.generation = generation;
        m.confirmed = Instant::now();
    }

    fn confirm(&self, generation: i32) {
        let mut m = lock(&self.membership);
        if m.generation == generation {
            m.confirmed = Instant::now();
        }
    }

    /// How long ago the coordinator last confirmed the membership.
    pub(super) fn unconfirmed_for(&self) -> Duration {
        lock(&self.membership).confirmed.elapsed()
    }

    pub(super) fn want_rejoin(&self) {
        self.rejoin_wanted.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn rejoin_wanted(&self) -> u64 {
        self.rejoin_wanted.load(Ordering::Acquire)
    }

    pub(super) fn take_reset(&self) -> bool {
        self.reset_member.swap(false, Ordering::AcqRel)
    }

    pub(super) fn take_fatal(&self) -> Option<Error> {
        lock(&self.fatal).take()
    }
}

/// Heartbeats every `every` while the member has an id. Connection failures are logged
/// and make the link find the coordinator again (the next beat reconnects); answers are
/// turned into flags for `poll`.
pub(super) async fn run(
    link: Arc<Link>,
    shared: Arc<Shared>,
    group: String,
    instance_id: Option<String>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let (member_id, generation) = shared.membership();
        // Nothing to keep alive before a join completed: an id from the first step of a
        // join is not a member yet (the coordinator would answer UNKNOWN_MEMBER_ID).
        if member_id.is_empty() || generation < 0 {
            continue;
        }
        let req = v1::HeartbeatRequest {
            group_id: group.clone(),
            generation_id: generation,
            member_id,
            group_instance_id: instance_id.clone(),
        };
        let timeout = every.max(Duration::from_secs(5));
        let r = match link
            .request(Lane::Other, req, timeout, |r| r.error_code)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // Retried at the next beat; said once per outage, not once per beat.
                if !failing {
                    tracing::warn!(group = %group, error = %e, "heartbeat failed; finding the coordinator again");
                }
                failing = true;
                if !e.is_retriable() {
                    *lock(&shared.fatal) = Some(e);
                }
                continue;
            }
        };
        if failing {
            tracing::info!(group = %group, "heartbeats succeed again");
            failing = false;
        }
        // Only an answer about the generation we still have counts: a reply to a
        // heartbeat sent before a rejoin finished says nothing about the new one.
        if shared.membership().1 != generation {
            continue;
        }
        match ErrorCode::from_i32(r.error_code) {
            ErrorCode::None => shared.confirm(generation),
            ErrorCode::UnknownMemberId => {
                shared.reset_member.store(true, Ordering::Release);
                shared.want_rejoin();
            }
            ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration => shared.want_rejoin(),
            // The link already forgot the old coordinator; the next beat asks the new one.
            code if super::link::coordinator_moved(code) => {}
            code if code.is_retriable() => shared.want_rejoin(),
            code => {
                *lock(&shared.fatal) = Some(Error::Broker {
                    code,
                    context: format!("heartbeat in group {group}"),
                    message: String::new(),
                });
            }
        }
    }
}
