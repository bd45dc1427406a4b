//! The checker: a pure function from a run's history, final reads and harness findings
//! to a report of violations of rules 1–12 (§4.5 of reliability-and-faults.md). No I/O,
//! no clock: unit tests feed it histories by hand (`tests.rs`).
//!
//! Layout: this file holds the input and report types and `check`; `rules.rs` one
//! function per rule; `tests.rs` the histories each rule must catch.

use std::collections::BTreeMap;

use serde::Serialize;

use super::history::Event;

mod rules;
#[cfg(test)]
mod tests;

/// One injected fault as the harness carried it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultSpan {
    /// Menu id (`F1`...).
    pub kind: String,
    /// Injected at (µs since the workload started).
    pub start_us: u64,
    /// Healed at (µs); equal to `start_us` when nothing was held.
    pub end_us: u64,
    /// Whether one broker alone was down or cut off while it was held (progress expected).
    pub single_node: bool,
    /// Whether failover time is measured from it (a leader was taken away).
    pub leader_fault: bool,
    /// Partitions the target led when injected (failover is measured on these; empty:
    /// any partition).
    pub partitions: Vec<i32>,
    /// Part of a mixed phase (switches too fast for the progress rule).
    pub in_mix: bool,
    /// What was done, for the fault log.
    pub what: String,
}

/// Everything the checker looks at.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The history, in recording order.
    pub events: Vec<Event>,
    /// The fresh consumer's final read of each partition: (offset, value) from the log
    /// start to the high watermark.
    pub final_log: BTreeMap<i32, Vec<(i64, String)>>,
    /// Each partition's high watermark at the final read.
    pub high_watermarks: BTreeMap<i32, i64>,
    /// Faults injected.
    pub faults: Vec<FaultSpan>,
    /// Replica differences found after healing (rule 10), one line each.
    pub divergence: Vec<String>,
    /// Panic or corruption lines in broker logs that no injected fault explains (rule 12).
    pub log_findings: Vec<String>,
    /// Liveness failures the harness saw itself (rule 11), e.g. an ISR that never healed.
    pub liveness: Vec<String>,
    /// Acknowledged writes required while a single-node fault is held (rule 11).
    pub min_progress: usize,
    /// Whether a consumer group ran (rule 9 applies).
    pub group_ran: bool,
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// `1-lost-write`, `2-inconsistent-offset`, ...
    pub rule: &'static str,
    /// What was seen.
    pub what: String,
}

/// Failover percentiles (ms from fault to the next acknowledged write).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Failover {
    /// Median.
    pub p50: Option<u64>,
    /// Largest.
    pub max: Option<u64>,
    /// Every measurement, in fault order.
    pub samples: Vec<u64>,
}

/// The outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Invocations in the history.
    pub operations: usize,
    /// Sends acknowledged.
    pub acknowledged: usize,
    /// Acknowledged sends missing from the final read.
    pub lost: usize,
    /// Values stored more than once.
    pub duplicated: usize,
    /// Replica differences after healing.
    pub divergent: usize,
    /// Records consumers received.
    pub polled: usize,
    /// Faults by kind.
    pub faults: BTreeMap<String, u64>,
    /// Failover times.
    pub failover: Failover,
    /// Every violation (each rule reports at most `MAX_PER_RULE` lines plus a count).
    pub violations: Vec<Violation>,
}

/// Lines reported per rule before summarising the rest as a count.
pub const MAX_PER_RULE: usize = 20;

/// Checks a run.
pub fn check(input: &Input) -> Report {
    let idx = rules::Index::build(input);
    let mut report = Report {
        operations: input
            .events
            .iter()
            .filter(|e| e.kind == super::history::Kind::Invoke)
            .count(),
        acknowledged: idx.acked.len(),
        polled: idx.polls.len(),
        ..Default::default()
    };
    for f in &input.faults {
        *report.faults.entry(f.kind.clone()).or_default() += 1;
    }
    let mut v = Vec::new();
    report.lost = rules::lost_writes(&idx, &mut v);
    rules::one_value_per_offset(&idx, &mut v);
    rules::reads_not_lost(&idx, &mut v);
    report.duplicated = rules::duplicates(&idx, &mut v);
    rules::producer_order(&idx, &mut v);
    rules::real_time_order(&idx, &mut v);
    rules::aborted_reads(&idx, &mut v);
    rules::monotonic_polls(&idx, &mut v);
    if input.group_ran {
        rules::group_offsets(&idx, &mut v);
    }
    report.divergent = input.divergence.len();
    for d in &input.divergence {
        v.push(Violation {
            rule: "10-replica-divergence",
            what: d.clone(),
        });
    }
    rules::progress(&idx, &mut v);
    for l in &input.liveness {
        v.push(Violation {
            rule: "11-liveness",
            what: l.clone(),
        });
    }
    for l in &input.log_findings {
        v.push(Violation {
            rule: "12-process-health",
            what: l.clone(),
        });
    }
    report.failover = rules::failover(&idx);
    report.violations = cap(v);
    report
}

/// Keeps the first `MAX_PER_RULE` lines of each rule and says how many more there were.
fn cap(all: Vec<Violation>) -> Vec<Violation> {
    let mut per: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for v in all {
        let n = per.entry(v.rule).or_default();
        *n += 1;
        if *n <= MAX_PER_RULE {
            out.push(v);
        }
    }
    for (rule, n) in per {
        if n > MAX_PER_RULE {
            out.push(Violation {
                rule,
                what: format!("... and {} more", n - MAX_PER_RULE),
            });
        }
    }
    out
}
