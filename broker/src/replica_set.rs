//! A leader's view of its partition's replicas, as a pure state machine (time passed in):
//! how far each follower has fetched, which of them are caught up, and the high
//! watermark that follows (Kafka's `Replica` and `Partition.maybeIncrementLeaderHW`).
//!
//! - A follower's log end is the offset it last fetched from: it asks for what it does not
//!   have, so everything below is in its log (and, with the default flush policy, fsynced:
//!   a follower fsyncs an append before it fetches again).
//! - The high watermark is the smallest log end among the leader's own committable end
//!   (durable, under the flush policy) and every other ISR member. A follower that has not
//!   fetched since this broker became leader counts as 0, so the watermark waits for it.
//! - A follower the leader has proposed for the ISR counts for the watermark from the
//!   proposal on, not only once the metadata lists it (Kafka's "maximal ISR", KIP-497):
//!   the controller may add it and, in the same breath, make it leader (preferred-leader
//!   election), while this broker's image still shows the old ISR; a watermark that
//!   ignored it would acknowledge writes the new leader never had.
//! - A follower is caught up when it fetched at the leader's log end, or at least at the
//!   log end the leader had at its previous fetch (so one that always trails by the
//!   in-flight produce still counts); one not caught up for `replica_lag_time_max_ms` is
//!   out of sync.

use std::collections::BTreeMap;

/// One follower, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Follower {
    /// Its log end offset (the offset of its last fetch), -1 before its first fetch.
    pub log_end: i64,
    /// When it last fetched.
    pub last_fetch_ms: i64,
    /// The leader's log end at that fetch.
    pub leader_end_at_fetch: i64,
    /// The last time it was caught up.
    pub caught_up_ms: i64,
}

/// The replicas of one partition this broker leads (or, as a follower, nothing to do).
#[derive(Debug, Clone, Default)]
pub struct ReplicaSet {
    /// The ISR members other than this broker, from the metadata image.
    isr: Vec<i32>,
    /// Followers proposed for the ISR and not yet in it: counted by the watermark.
    joining: std::collections::BTreeSet<i32>,
    /// Every other replica: followers fetch whether or not they are in the ISR.
    followers: BTreeMap<i32, Follower>,
    /// What the leader itself can count: its log end, or its durable end when the flush
    /// policy wants records fsynced before they count.
    local_end: i64,
    /// The leader's log end (caught-up checks compare against it).
    leader_end: i64,
}

impl ReplicaSet {
    /// A set whose leader has `local_end` committable and `leader_end` in its log.
    pub fn new(local_end: i64, leader_end: i64) -> Self {
        ReplicaSet {
            local_end,
            leader_end,
            ..Default::default()
        }
    }

    /// Takes the metadata's replicas and ISR (`me` excluded), as leader since `now_ms`
    /// when `became_leader`: followers' positions are then unknown until they fetch, and
    /// each gets one lag period of grace.
    pub fn set_members(
        &mut self,
        me: i32,
        replicas: &[i32],
        isr: &[i32],
        became_leader: bool,
        now_ms: i64,
    ) {
        self.isr = isr.iter().copied().filter(|r| *r != me).collect();
        let others: Vec<i32> = replicas.iter().copied().filter(|r| *r != me).collect();
        self.followers.retain(|id, _| others.contains(id));
        if became_leader {
            self.joining.clear();
        }
        let isr = &self.isr;
        self.joining
            .retain(|id| others.contains(id) && !isr.contains(id));
        for id in others {
            let fresh = Follower {
                log_end: -1,
                last_fetch_ms: now_ms,
                leader_end_at_fetch: 0,
                caught_up_ms: now_ms,
            };
            let f = self.followers.entry(id).or_insert(fresh);
            if became_leader {
                *f = fresh;
            }
        }
    }

    /// The leader's committable end moved (an append, or a flush made more durable).
    pub fn raise_committable(&mut self, committable: i64) {
        self.local_end = self.local_end.max(committable);
    }

    /// The leader's log end moved (an append).
    pub fn set_leader_end(&mut self, log_end: i64) {
        self.leader_end = log_end;
    }

    /// The log was cut back (truncation) or replaced: both ends start again from `end`.
    pub fn reset_ends(&mut self, end: i64) {
        self.local_end = end;
        self.leader_end = end;
    }

    /// `set_leader_end` and `raise_committable` at once (tests).
    #[cfg(test)]
    fn set_local_end(&mut self, committable: i64, log_end: i64) {
        self.raise_committable(committable);
        self.set_leader_end(log_end);
    }

    /// A follower fetched at `offset`. Unknown followers (not replicas) are ignored.
    pub fn follower_fetched(&mut self, id: i32, offset: i64, now_ms: i64) {
        let leader_end = self.leader_end;
        let Some(f) = self.followers.get_mut(&id) else {
            return;
        };
        if offset >= leader_end {
            f.caught_up_ms = f.caught_up_ms.max(now_ms);
        } else if offset >= f.leader_end_at_fetch {
            f.caught_up_ms = f.caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end = offset;
        f.last_fetch_ms = now_ms;
        f.leader_end_at_fetch = leader_end;
    }

    /// Followers this leader proposes to add to the ISR: from now on they hold the
    /// watermark back as members do, until the metadata lists them, leadership moves, or
    /// they stop being caught up (`drop_stale_joining`).
    pub fn joining(&mut self, ids: &[i32]) {
        for id in ids {
            if self.followers.contains_key(id) && !self.isr.contains(id) {
                self.joining.insert(*id);
            }
        }
    }

    /// Forgets proposed followers not caught up for longer than `lag_max_ms` (a proposal
    /// the controller refused must not stall the watermark on a follower that stopped).
    pub fn drop_stale_joining(&mut self, now_ms: i64, lag_max_ms: i64) {
        let followers = &self.followers;
        self.joining.retain(|id| {
            followers
                .get(id)
                .is_some_and(|f| now_ms - f.caught_up_ms <= lag_max_ms)
        });
    }

    /// The high watermark these positions allow.
    pub fn high_watermark(&self) -> i64 {
        self.isr
            .iter()
            .chain(self.joining.iter())
            .fold(self.local_end, |hw, id| {
                let end = self.followers.get(id).map_or(0, |f| f.log_end.max(0));
                hw.min(end)
            })
    }

    /// ISR size, this broker included.
    pub fn isr_size(&self) -> usize {
        self.isr.len() + 1
    }

    /// ISR members that have not been caught up for longer than `lag_max_ms`.
    pub fn out_of_sync(&self, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        self.isr
            .iter()
            .copied()
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|f| now_ms - f.caught_up_ms > lag_max_ms)
            })
            .collect()
    }

    /// The worst follower lag: records behind the leader's log end, and milliseconds
    /// since last caught up (0, 0 with no followers).
    pub fn max_lag(&self, now_ms: i64) -> (i64, i64) {
        self.followers.values().fold((0, 0), |(records, ms), f| {
            (
                records.max(self.leader_end - f.log_end.max(0)),
                ms.max(now_ms - f.caught_up_ms),
            )
        })
    }

    /// Followers outside the ISR that have caught up to `hw` (Kafka's expand rule) and
    /// fetched within `lag_max_ms`. Kafka checks the rule as a fetch arrives, so a
    /// follower that stopped fetching never rejoins; checked on a timer instead, the last
    /// fetch alone would not do: a follower that stopped exactly at the watermark (which it
    /// held there) still "reaches" it after being shrunk out, and was proposed back at once,
    /// stalling acks=all for as long as it was stopped (weir-chaos seed 9: F4 on the
    /// controller, which nobody fenced meanwhile).
    pub fn ready_to_join(&self, hw: i64, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        self.followers
            .iter()
            .filter(|(id, f)| {
                !self.isr.contains(id)
                    && f.log_end >= hw
                    && f.log_end >= 0
                    && now_ms - f.last_fetch_ms <= lag_max_ms
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_replica_commits_its_own_end() {
        let mut r = ReplicaSet::new(0, 0);
        r.set_members(1, &[1], &[1], true, 0);
        r.set_local_end(10, 10);
        assert_eq!(r.high_watermark(), 10);
        assert_eq!(r.isr_size(), 1);
    }

    #[test]
    fn the_watermark_waits_for_every_isr_member() {
        let mut r = ReplicaSet::new(0, 0);
        r.set_members(1, &[1, 2, 3], &[1, 2, 3], true, 0);
        r.set_local_end(10, 10);
        assert_eq!(r.high_watermark(), 0, "nobody fetched yet");
        r.follower_fetched(2, 10, 5);
        assert_eq!(r.high_watermark(), 0, "3 has not fetched");
        r.follower_fetched(3, 7, 5);
        assert_eq!(r.high_watermark(), 7);
        r.follower_fetched(3, 10, 6);
        assert_eq!(r.high_watermark(), 10);
        // Not durable on the leader yet: the leader's own end bounds it.
        r.set_local_end(10, 15);
        r.follower_fetched(2, 15, 7);
        r.follower_fetched(3, 15, 7);
        assert_eq!(r.high_watermark(), 10);
        // Out of the ISR, a follower no longer holds it back.
        r.set_members(1, &[1, 2, 3], &[1, 2], false, 8);
        r.set_local_end(20, 20);
        assert_eq!(r.high_watermark(), 15);
    }

    #[test]
    fn lagging_followers_fall_out_and_caught_up_ones_may_join() {
        let mut r = ReplicaSet::new(0, 0);
        r.set_members(1, &[1, 2, 3], &[1, 2, 3], true, 1_000);
        r.set_local_end(100, 100);
        r.follower_fetched(2, 100, 1_500);
        // 3 never fetches: out of sync once the lag passes; 2 stays.
        assert!(r.out_of_sync(10_000, 30_000).is_empty());
        assert_eq!(r.out_of_sync(31_001, 30_000), vec![3]);
        // 2 keeps trailing by the in-flight append but reaches the previous end each time.
        r.set_local_end(110, 110);
        r.follower_fetched(2, 100, 20_000);
        r.set_local_end(120, 120);
        r.follower_fetched(2, 110, 40_000);
        assert!(!r.out_of_sync(50_000, 30_000).contains(&2));
        // Out of the ISR, 3 joins again once it reached the watermark.
        r.set_members(1, &[1, 2, 3], &[1, 2], false, 40_000);
        assert!(r.ready_to_join(110, 40_000, 30_000).is_empty());
        r.follower_fetched(3, 110, 41_000);
        assert_eq!(r.ready_to_join(110, 41_000, 30_000), vec![3]);
        // Both trail the leader's 120 by 10; 3 was last caught up when this leader began.
        assert_eq!(r.max_lag(42_000), (10, 41_000));
    }

    /// Seed 9 of weir-chaos (F4 on the controller): the paused follower's last fetch was at
    /// the leader's end, so after the shrink it still "reached" the watermark and was
    /// proposed back every tick; only a follower that fetched within the lag may join.
    #[test]
    fn a_follower_that_stopped_fetching_is_not_proposed_back() {
        let mut r = ReplicaSet::new(0, 0);
        r.set_members(1, &[1, 2, 3], &[1, 2, 3], true, 0);
        r.set_local_end(50, 50);
        r.follower_fetched(2, 50, 100);
        r.follower_fetched(3, 50, 100);
        // 2 stops; 3 keeps fetching; nothing new is written.
        r.follower_fetched(3, 50, 2_000);
        r.follower_fetched(3, 50, 2_200);
        assert_eq!(r.out_of_sync(2_200, 2_000), vec![2]);
        r.set_members(1, &[1, 2, 3], &[1, 3], false, 2_200);
        assert_eq!(r.high_watermark(), 50);
        assert!(
            r.ready_to_join(50, 2_300, 2_000).is_empty(),
            "2 has not fetched since"
        );
        // It comes back and fetches at the end: it joins.
        r.follower_fetched(2, 50, 6_000);
        assert_eq!(r.ready_to_join(50, 6_000, 2_000), vec![2]);
    }

    /// Seed 1 of weir-chaos (F1 on a leader, then the preferred-leader election giving it
    /// back): the leader proposed 3 for the ISR; the controller added it and made it leader
    /// at 4894 while this leader's image still said ISR {1, 2}, so this leader
    /// acknowledged a write at 4894 that 3 never had, and it was lost. A proposed follower
    /// must hold the watermark back from the proposal on.
    #[test]
    fn a_follower_proposed_for_the_isr_holds_the_watermark_back() {
        let mut r = ReplicaSet::new(0, 0);
        r.set_members(1, &[1, 2, 3], &[1, 2], true, 0);
        r.set_local_end(4894, 4894);
        r.follower_fetched(2, 4894, 10);
        r.follower_fetched(3, 4894, 10);
        assert_eq!(r.ready_to_join(4894, 10, 2_000), vec![3]);
        r.joining(&[3]);
        // A new record reaches 2 but not 3 (it is about to lead).
        r.set_local_end(4895, 4895);
        r.follower_fetched(2, 4895, 20);
        assert_eq!(r.high_watermark(), 4894, "3 does not have 4894 yet");
        r.follower_fetched(3, 4895, 30);
        assert_eq!(r.high_watermark(), 4895);
        // Once the metadata lists it, it is a member like the others.
        r.set_members(1, &[1, 2, 3], &[1, 2, 3], false, 40);
        assert_eq!(r.high_watermark(), 4895);
        // A proposal that never lands stops counting once the follower is not caught up.
        let mut r = ReplicaSet::new(0, 0);
        r.set_members(1, &[1, 2, 3], &[1, 2], true, 0);
        r.set_local_end(10, 10);
        r.follower_fetched(2, 10, 0);
        r.follower_fetched(3, 10, 0);
        r.joining(&[3]);
        r.set_local_end(20, 20);
        r.follower_fetched(2, 20, 100);
        assert_eq!(r.high_watermark(), 10);
        r.drop_stale_joining(5_000, 2_000);
        assert_eq!(r.high_watermark(), 20);
        // A new leader starts with no proposals.
        r.joining(&[3]);
        r.set_members(1, &[1, 2, 3], &[1, 2], true, 6_000);
        r.follower_fetched(2, 20, 6_001);
        assert_eq!(r.high_watermark(), 20);
    }
}
