//! Replica placement, as a pure function: Kafka's rack-unaware round-robin with a shifted
//! start. Partition `p`'s first replica (its preferred leader) is broker
//! `(start + p) mod n`, so leaders spread evenly; the other replicas follow it at a
//! distance that shifts by one every `n` partitions, so the followers of one broker's
//! partitions spread over all the others instead of always landing on its neighbour.
//! The controller picks `start` and `shift` at random per topic (so topics do not all put
//! partition 0 on the same broker); tests pass them in.

use std::ops::Range;

/// Why replicas cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Fewer live brokers than replicas asked for.
    #[error("replication factor {factor} is larger than the {live} available broker(s)")]
    TooFewBrokers {
        /// Replicas asked for.
        factor: i32,
        /// Unfenced, registered brokers.
        live: usize,
    },
    /// Zero or negative.
    #[error("replication factor must be positive, got {0}")]
    NotPositive(i32),
}

/// Replica lists for `partitions` (indexes; new partitions of an existing topic start past
/// 0), `factor` replicas each, over `brokers` (sorted, distinct ids). The first replica of
/// each list is its preferred leader.
pub fn place(
    partitions: Range<i32>,
    factor: i32,
    brokers: &[i32],
    start: usize,
    shift: usize,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if factor <= 0 {
        return Err(PlacementError::NotPositive(factor));
    }
    let n = brokers.len();
    let rf = usize::try_from(factor).unwrap_or(usize::MAX);
    if rf > n {
        return Err(PlacementError::TooFewBrokers { factor, live: n });
    }
    let mut out = Vec::with_capacity(partitions.len());
    for p in partitions {
        let p = usize::try_from(p).unwrap_or(0);
        // The follower distance grows by one each time the leaders have gone round once.
        let shift = shift + p / n;
        let first = (start + p) % n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.extend(brokers.get(first));
        for j in 0..rf - 1 {
            let distance = 1 + (shift + j) % (n - 1);
            replicas.extend(brokers.get((first + distance) % n));
        }
        out.push(replicas);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn one_broker_gets_everything() {
        let r = place(0..4, 1, &[7], 0, 0).unwrap();
        assert_eq!(r, vec![vec![7]; 4]);
    }

    #[test]
    fn kafka_layout_for_five_brokers() {
        // Kafka's documented example (AdminUtils): 5 brokers, 10 partitions, RF 3, start 0,
        // shift 0.
        let r = place(0..10, 3, &[0, 1, 2, 3, 4], 0, 0).unwrap();
        let expect: Vec<Vec<i32>> = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(r, expect);
    }

    #[test]
    fn replicas_are_distinct_and_leaders_even() {
        let brokers = [1, 2, 3];
        for start in 0..3 {
            for shift in 0..3 {
                let r = place(0..12, 3, &brokers, start, shift).unwrap();
                let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
                for list in &r {
                    let set: BTreeSet<_> = list.iter().collect();
                    assert_eq!(set.len(), 3, "{list:?}");
                    *leaders.entry(list[0]).or_default() += 1;
                    for b in list {
                        *replicas.entry(*b).or_default() += 1;
                    }
                }
                assert_eq!(leaders.values().copied().collect::<Vec<_>>(), [4, 4, 4]);
                assert_eq!(replicas.values().copied().collect::<Vec<_>>(), [12, 12, 12]);
            }
        }
    }

    #[test]
    fn added_partitions_continue_the_pattern() {
        let all = place(0..8, 2, &[1, 2, 3], 1, 2).unwrap();
        let tail = place(5..8, 2, &[1, 2, 3], 1, 2).unwrap();
        assert_eq!(&all[5..], &tail[..]);
    }

    #[test]
    fn refuses_more_replicas_than_brokers() {
        assert_eq!(
            place(0..1, 3, &[1, 2], 0, 0),
            Err(PlacementError::TooFewBrokers { factor: 3, live: 2 })
        );
        assert_eq!(
            place(0..1, 0, &[1, 2], 0, 0),
            Err(PlacementError::NotPositive(0))
        );
    }
}
