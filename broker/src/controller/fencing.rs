//! Broker fencing and partition leader election, as pure decisions: given the image, the
//! heartbeats the controller heard and the time, which records to write. The controller
//! runs it on a timer while it leads the quorum.
//!
//! - A broker is alive when its last heartbeat (from its current incarnation) is at most
//!   the session timeout old and did not ask to shut down. Right after a controller takes
//!   over it has heard nobody yet (what it heard in an earlier term is stale), so everyone
//!   gets one session timeout of grace.
//! - A registered broker that is not alive is fenced; a fenced one that is alive again is
//!   unfenced. The controller itself is alive while it leads.
//! - A partition whose leader is fenced (or gone) gets the first in-sync replica that is
//!   alive as leader, or none (-1, offline) when no in-sync replica is; a partition without
//!   a leader gets one as soon as an in-sync replica is back. Every change bumps the
//!   leader epoch. Unclean election (a replica outside the ISR) is never done here.

use std::collections::{BTreeSet, HashMap};

use crate::metadata::{BrokerFenceRecord, MetadataImage, MetadataRecord, PartitionRecord, Record};
use crate::raft::heartbeats::Beat;

/// What the decision needs.
#[derive(Debug, Clone, Copy)]
pub struct FencingInput<'a> {
    /// The current image.
    pub image: &'a MetadataImage,
    /// Last heartbeat per broker, by the controller's clock.
    pub beats: &'a HashMap<i32, Beat>,
    /// Now, by the same clock.
    pub now_ms: i64,
    /// `cluster.broker_session_timeout_ms`.
    pub session_timeout_ms: i64,
    /// When this controller started leading.
    pub leader_since_ms: i64,
    /// The controller's own id.
    pub me: i32,
    /// Check every partition even if no broker changed state (the first decision after
    /// taking over: the previous controller may have died half-way). Otherwise partitions
    /// are only looked at when some broker was fenced or unfenced, so a steady cluster
    /// costs nothing per partition at each heartbeat.
    pub full_scan: bool,
}

impl FencingInput<'_> {
    fn alive(&self, id: i32) -> bool {
        if id == self.me {
            return true;
        }
        let incarnation = self.image.brokers.get(&id).map(|b| b.incarnation);
        // Everyone gets the takeover grace, also brokers with a beat on record: that beat
        // may be from this broker's previous term, when it last led, and their beats since
        // went to the controllers in between.
        let grace = self.now_ms - self.leader_since_ms <= self.session_timeout_ms;
        match self.beats.get(&id) {
            Some(b) if Some(b.incarnation) == incarnation => {
                !b.shutting_down && (grace || self.now_ms - b.at_ms <= self.session_timeout_ms)
            }
            // Nothing heard from this incarnation yet: only the takeover grace.
            _ => grace,
        }
    }
}

/// Whether a topic allows unclean leader election (its override; the broker default is
/// off).
fn unclean(t: &crate::metadata::TopicImage) -> bool {
    t.configs
        .get("unclean.leader.election.enable")
        .is_some_and(|v| v == "true")
}

/// The records that bring fencing and leadership up to date (empty when nothing changes).
pub fn decide(input: &FencingInput<'_>) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    let mut fenced: BTreeSet<i32> = BTreeSet::new();
    for (id, b) in &input.image.brokers {
        let alive = input.alive(*id);
        if !alive {
            fenced.insert(*id);
        }
        if alive == b.fenced {
            out.push(MetadataRecord {
                record: Some(Record::BrokerFence(BrokerFenceRecord {
                    broker_id: *id,
                    fenced: !alive,
                })),
            });
        }
    }
    if out.is_empty() && !input.full_scan {
        return out;
    }
    let usable = |id: i32| input.image.brokers.contains_key(&id) && !fenced.contains(&id);
    for (name, t) in &input.image.topics {
        for (i, p) in t.partitions.iter().enumerate() {
            // Fenced brokers leave the ISR (so acks=all stops waiting for them), except the
            // last member: it keeps the partition's only complete copy on record.
            let live_isr: Vec<i32> = p.isr.iter().copied().filter(|r| usable(*r)).collect();
            let isr = if live_isr.is_empty() {
                p.isr.clone()
            } else {
                live_isr
            };
            let mut isr = isr;
            let leader = if p.leader >= 0 && usable(p.leader) {
                p.leader
            } else {
                match isr.iter().copied().find(|r| usable(*r)) {
                    Some(l) => l,
                    // No in-sync replica is alive: only a topic that allows it takes any
                    // live replica, which becomes the whole ISR (what only the old ISR had
                    // is lost, as the topic accepted).
                    None if unclean(t) => match p.replicas.iter().copied().find(|r| usable(*r)) {
                        Some(l) => {
                            isr = vec![l];
                            l
                        }
                        None => -1,
                    },
                    None => -1,
                }
            };
            if leader == p.leader && isr == p.isr {
                continue;
            }
            let leader_epoch = if leader == p.leader {
                p.leader_epoch
            } else {
                p.leader_epoch.saturating_add(1)
            };
            out.push(MetadataRecord {
                record: Some(Record::Partition(PartitionRecord {
                    leader,
                    isr,
                    leader_epoch,
                    partition_epoch: p.partition_epoch.saturating_add(1),
                    ..p.to_record(name, &t.id, i32::try_from(i).unwrap_or(i32::MAX))
                })),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::metadata::{BrokerRecord, TopicRecord};
    use bytes::Bytes;

    const TIMEOUT: i64 = 9_000;

    fn image() -> MetadataImage {
        let mut img = MetadataImage::new(1);
        for id in 1..=3 {
            img.apply(&MetadataRecord {
                record: Some(Record::Broker(BrokerRecord {
                    broker_id: id,
                    host: "127.0.0.1".into(),
                    port: 9000 + id,
                    incarnation: 10 + i64::from(id),
                    ..Default::default()
                })),
            });
        }
        img.apply(&MetadataRecord {
            record: Some(Record::Topic(TopicRecord {
                name: "t".into(),
                topic_id: Bytes::from(vec![1; 16]),
                partition_count: 1,
                configs: Default::default(),
            })),
        });
        img.apply(&MetadataRecord {
            record: Some(Record::Partition(PartitionRecord {
                topic: "t".into(),
                partition: 0,
                leader: 2,
                replicas: vec![2, 3],
                isr: vec![2, 3],
                leader_epoch: 4,
                ..Default::default()
            })),
        });
        img
    }

    fn beat(id: i32, at_ms: i64) -> (i32, Beat) {
        (
            id,
            Beat {
                incarnation: 10 + i64::from(id),
                at_ms,
                shutting_down: false,
            },
        )
    }

    fn run(img: &MetadataImage, beats: &HashMap<i32, Beat>, now_ms: i64) -> Vec<MetadataRecord> {
        decide(&FencingInput {
            image: img,
            beats,
            now_ms,
            session_timeout_ms: TIMEOUT,
            leader_since_ms: 0,
            me: 1,
            full_scan: true,
        })
    }

    fn apply_all(img: &mut MetadataImage, recs: &[MetadataRecord]) {
        for r in recs {
            img.apply(r);
        }
    }

    #[test]
    fn nobody_is_fenced_during_the_takeover_grace() {
        assert!(run(&image(), &HashMap::new(), TIMEOUT).is_empty());
    }

    /// weir-chaos: a broker taking over again still had the beats it heard when it last
    /// led; brokers that heartbeat to the controllers in between must not be fenced at once.
    #[test]
    fn beats_from_an_earlier_term_do_not_cut_the_takeover_grace() {
        let beats: HashMap<_, _> = [beat(2, 1_000), beat(3, 1_000)].into();
        let img = image();
        let input = |now_ms| FencingInput {
            image: &img,
            beats: &beats,
            now_ms,
            session_timeout_ms: TIMEOUT,
            leader_since_ms: 50_000,
            me: 1,
            full_scan: true,
        };
        assert!(decide(&input(50_000)).is_empty());
        assert!(decide(&input(50_000 + TIMEOUT)).is_empty());
        // Still silent once the grace is over: fenced.
        assert!(!decide(&input(50_001 + TIMEOUT)).is_empty());
    }

    #[test]
    fn a_silent_leader_is_fenced_and_the_next_isr_member_leads_with_a_new_epoch() {
        let mut img = image();
        let beats: HashMap<_, _> = [beat(2, 1_000), beat(3, 19_500)].into();
        let recs = run(&img, &beats, 20_000);
        apply_all(&mut img, &recs);
        assert!(img.brokers[&2].fenced);
        assert!(!img.brokers[&3].fenced);
        let p = &img.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (3, 5));
        // Deciding again changes nothing.
        assert!(run(&img, &beats, 20_000).is_empty());
    }

    #[test]
    fn with_no_live_isr_member_the_partition_goes_offline_then_returns() {
        let mut img = image();
        let silent: HashMap<_, _> = [beat(2, 1_000), beat(3, 1_000)].into();
        let recs = run(&img, &silent, 20_000);
        apply_all(&mut img, &recs);
        assert_eq!(
            img.topics["t"].partitions[0].leader, -1,
            "offline, never unclean"
        );
        // Broker 2 heartbeats again: unfenced, and it leads again (epoch bumped twice).
        let back: HashMap<_, _> = [beat(2, 21_000), beat(3, 1_000)].into();
        let recs = run(&img, &back, 22_000);
        apply_all(&mut img, &recs);
        assert!(!img.brokers[&2].fenced);
        let p = &img.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch), (2, 6));
    }

    #[test]
    fn a_fenced_follower_leaves_the_isr_and_the_leader_keeps_its_epoch() {
        let mut img = image();
        let beats: HashMap<_, _> = [beat(2, 19_500), beat(3, 1_000)].into();
        let recs = run(&img, &beats, 20_000);
        apply_all(&mut img, &recs);
        let p = &img.topics["t"].partitions[0];
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (2, 4, vec![2]));
        assert_eq!(p.partition_epoch, 1);
    }

    #[test]
    fn only_a_topic_that_allows_it_elects_outside_the_isr() {
        // The ISR has shrunk to the leader, 2; then 2 dies while 3 (out of sync) lives.
        let shrunk = |unclean: bool| {
            let mut img = image();
            img.topics.get_mut("t").unwrap().partitions[0].isr = vec![2];
            if unclean {
                img.topics
                    .get_mut("t")
                    .unwrap()
                    .configs
                    .insert("unclean.leader.election.enable".into(), "true".into());
            }
            img
        };
        let beats: HashMap<_, _> = [beat(2, 1_000), beat(3, 19_500)].into();
        let mut clean = shrunk(false);
        let recs = run(&clean, &beats, 20_000);
        apply_all(&mut clean, &recs);
        let p = &clean.topics["t"].partitions[0];
        assert_eq!(
            (p.leader, p.isr.clone()),
            (-1, vec![2]),
            "offline, ISR kept"
        );
        let mut unclean = shrunk(true);
        let recs = run(&unclean, &beats, 20_000);
        apply_all(&mut unclean, &recs);
        let p = &unclean.topics["t"].partitions[0];
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (3, vec![3], 5));
    }

    #[test]
    fn a_controlled_shutdown_or_a_stale_incarnation_fences_at_once() {
        let img = image();
        let mut beats: HashMap<_, _> = [beat(2, 19_900), beat(3, 19_900)].into();
        beats.get_mut(&2).unwrap().shutting_down = true;
        beats.get_mut(&3).unwrap().incarnation = 999;
        let mut after = img.clone();
        apply_all(&mut after, &run(&img, &beats, 20_000));
        assert!(after.brokers[&2].fenced && after.brokers[&3].fenced);
        assert_eq!(after.topics["t"].partitions[0].leader, -1);
    }

    #[test]
    fn the_controller_never_fences_itself() {
        let img = image();
        let recs = run(&img, &HashMap::new(), 100_000);
        let mut after = img.clone();
        apply_all(&mut after, &recs);
        assert!(!after.brokers[&1].fenced);
    }
}
