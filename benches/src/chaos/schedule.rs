//! The fault schedule: a pure function of (seed, duration, enabled faults), so rerunning a
//! seed replays the same plan. Targets are not chosen here (they depend on live
//! metadata); each step carries a random `pick` the injector turns into a target.
//!
//! Shape (§4.4 of reliability-and-faults.md, scaled to `duration`): a warm-up without
//! faults, then every enabled fault once in the standard order (F1, F3, F5, F2, F6, F8,
//! F9, F7, F12, F4), then seeded random faults from the enabled menu until the fault
//! window ends, then a tail where everything is healed and producers continue. Holds and
//! gaps are shorter than §4.4's because the harness sets the broker's session and ISR
//! timeouts to ~1.5–2 s (so a 4 s pause already outlives them), which packs at least one
//! fault per 20 s into any run of 300 s or more.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::rng::Rng;

/// One entry of the fault menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// kill -9 the leader of a partition; restart after the hold.
    F1,
    /// kill -9 the Raft metadata leader; restart after the hold.
    F2,
    /// SIGSTOP a partition leader past the session timeout, then SIGCONT.
    F3,
    /// SIGSTOP a follower, then SIGCONT.
    F4,
    /// Isolate a partition leader from both peers (clients still reach it).
    F5,
    /// One-way link loss between two brokers.
    F6,
    /// kill -9 all three brokers within a second; restart after the hold.
    F7,
    /// Disk full on one broker (ballast file in its capped tmpfs).
    F8,
    /// kill -9 a follower, damage its log tail (truncate, bit flip or index loss), restart.
    F9,
    /// Mixed: F1/F3/F5/F6 switched every few seconds.
    F12,
}

/// Every implemented fault, in the standard schedule's order.
pub const STANDARD_ORDER: [FaultKind; 10] = [
    FaultKind::F1,
    FaultKind::F3,
    FaultKind::F5,
    FaultKind::F2,
    FaultKind::F6,
    FaultKind::F8,
    FaultKind::F9,
    FaultKind::F7,
    FaultKind::F12,
    FaultKind::F4,
];

/// The faults a mixed phase switches between (§4.4: F3/F5/F6/F1).
const MIXED: [FaultKind; 4] = [FaultKind::F1, FaultKind::F3, FaultKind::F5, FaultKind::F6];

impl FaultKind {
    /// Whether it takes down or cuts off one broker only (the cluster keeps a majority):
    /// progress is expected while it is held (rule 11).
    pub fn single_node(self) -> bool {
        matches!(
            self,
            FaultKind::F1 | FaultKind::F2 | FaultKind::F3 | FaultKind::F4 | FaultKind::F5
        )
    }

    /// Whether the fault takes a partition or Raft leader away, so its failover time is
    /// measured.
    pub fn is_leader_fault(self) -> bool {
        matches!(
            self,
            FaultKind::F1 | FaultKind::F2 | FaultKind::F3 | FaultKind::F5
        )
    }

    /// (min, max) hold in ms.
    fn hold_ms(self) -> (u64, u64) {
        match self {
            FaultKind::F1 => (3_000, 8_000),
            FaultKind::F2 | FaultKind::F7 => (5_000, 5_000),
            FaultKind::F3 | FaultKind::F4 => (4_000, 8_000),
            FaultKind::F5 | FaultKind::F6 => (6_000, 10_000),
            FaultKind::F8 => (8_000, 12_000),
            FaultKind::F9 => (500, 500),
            FaultKind::F12 => (20_000, 30_000),
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        STANDARD_ORDER
            .iter()
            .copied()
            .find(|k| k.to_string().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown fault {s:?}; implemented: F1-F9 and F12 (F10, F11, F13 are not)")
            })
    }
}

/// One planned injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When, in ms from the start of the workload.
    pub at_ms: u64,
    /// What.
    pub kind: FaultKind,
    /// How long it is held before healing (for kills: until the restart).
    pub hold_ms: u64,
    /// Random bits the injector turns into a target (partition, broker, variant).
    pub pick: u64,
    /// Part of a mixed (F12) phase.
    pub in_mix: bool,
}

/// The plan of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Warm-up end: no faults before (ms).
    pub faults_from_ms: u64,
    /// No fault is held past this (ms); the rest of the run is the healed tail.
    pub faults_until_ms: u64,
    /// Injections in time order.
    pub steps: Vec<Step>,
}

/// Plans a run of `duration_s` seconds for `seed` over the `enabled` faults.
pub fn generate(seed: u64, duration_s: u64, enabled: &BTreeSet<FaultKind>) -> Schedule {
    let mut rng = Rng::new(seed);
    let duration = duration_s * 1000;
    let warmup = (duration / 10).clamp(10_000, 30_000);
    let tail = (duration / 10).clamp(15_000, 30_000);
    let end = duration.saturating_sub(tail);
    let mut steps = Vec::new();
    let mut t = warmup;
    let first: Vec<FaultKind> = STANDARD_ORDER
        .iter()
        .copied()
        .filter(|k| enabled.contains(k))
        .collect();
    let menu = first.clone();
    let mut i = 0usize;
    while !menu.is_empty() {
        let kind = match first.get(i) {
            Some(k) => *k,
            None => menu[rng.index(menu.len())],
        };
        i += 1;
        let (lo, hi) = kind.hold_ms();
        let hold = rng.range(lo, hi);
        if t + hold > end {
            // A long first-pass fault that no longer fits leaves room for shorter ones.
            if i <= first.len() {
                continue;
            }
            break;
        }
        steps.push(Step {
            at_ms: t,
            kind,
            hold_ms: hold,
            pick: rng.next_u64(),
            in_mix: false,
        });
        if kind == FaultKind::F12 {
            // The phase's own switches, each healed before the next starts.
            let mut m = t;
            while m < t + hold {
                let every = rng.range(3_000, 5_000).min(t + hold - m);
                if every < 1_500 {
                    break;
                }
                steps.push(Step {
                    at_ms: m,
                    kind: MIXED[rng.index(MIXED.len())],
                    hold_ms: every - 500,
                    pick: rng.next_u64(),
                    in_mix: true,
                });
                m += every;
            }
        }
        t += hold + rng.range(4_000, 7_000);
    }
    Schedule {
        faults_from_ms: warmup,
        faults_until_ms: end,
        steps,
    }
}

/// Parses `F1,F3,...` (or `all`).
pub fn parse_faults(list: &str) -> Result<BTreeSet<FaultKind>, String> {
    if list.trim().eq_ignore_ascii_case("all") {
        return Ok(STANDARD_ORDER.iter().copied().collect());
    }
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(FaultKind::from_str)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<FaultKind> {
        STANDARD_ORDER.iter().copied().collect()
    }

    #[test]
    fn a_seed_replays_the_same_plan_and_another_differs() {
        assert_eq!(generate(7, 300, &all()), generate(7, 300, &all()));
        assert_ne!(generate(7, 300, &all()), generate(8, 300, &all()));
    }

    #[test]
    fn long_runs_inject_one_fault_per_20s_from_the_whole_menu() {
        for seed in 0..200 {
            for duration in [300, 600, 1200] {
                let s = generate(seed, duration, &all());
                assert!(
                    s.steps.len() as u64 >= duration / 20,
                    "seed {seed} duration {duration}: {} faults",
                    s.steps.len()
                );
                for k in STANDARD_ORDER {
                    assert!(s.steps.iter().any(|st| st.kind == k), "{k} missing");
                }
            }
        }
    }

    #[test]
    fn steps_stay_in_the_fault_window_and_do_not_overlap() {
        for seed in 0..200 {
            let s = generate(seed, 300, &all());
            let mut busy_until = 0;
            for st in &s.steps {
                assert!(st.at_ms >= s.faults_from_ms);
                assert!(st.at_ms + st.hold_ms <= s.faults_until_ms);
                if st.kind == FaultKind::F12 {
                    continue;
                }
                assert!(st.at_ms >= busy_until, "seed {seed}: overlap at {st:?}");
                busy_until = st.at_ms + st.hold_ms;
            }
        }
    }

    #[test]
    fn a_short_run_covers_the_ci_faults() {
        for seed in 0..50 {
            let s = generate(seed, 180, &all());
            assert!(s.steps.len() >= 10, "seed {seed}: {}", s.steps.len());
            for k in [FaultKind::F1, FaultKind::F2, FaultKind::F3, FaultKind::F5] {
                assert!(s.steps.iter().any(|st| st.kind == k), "{k} missing");
            }
        }
    }

    #[test]
    fn fault_lists_parse() {
        let f = parse_faults("F1, f3,F12").unwrap();
        assert_eq!(
            f.into_iter().collect::<Vec<_>>(),
            vec![FaultKind::F1, FaultKind::F3, FaultKind::F12]
        );
        assert_eq!(parse_faults("all").unwrap().len(), 10);
        assert!(parse_faults("F10").unwrap_err().contains("not"));
    }
}
