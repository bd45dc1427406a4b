//! One function per checker rule, over an index of the history built once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::{Failover, Input, Violation};
use crate::chaos::history::{Event, Func, Kind};

/// An operation with its invocation and (if any) its completion.
#[derive(Debug, Clone)]
pub struct Op<'a> {
    pub process: &'a str,
    pub partition: i32,
    pub value: Option<&'a str>,
    /// Offset given at invocation (commits: the offset committed).
    pub invoke_offset: Option<i64>,
    pub invoke_us: u64,
    /// `Invoke` when it never completed.
    pub outcome: Kind,
    pub complete_us: Option<u64>,
    /// Offset in the completion (send ok: where it landed; committed: what was read).
    pub offset: Option<i64>,
}

/// The history indexed for the rules.
pub struct Index<'a> {
    pub input: &'a Input,
    /// Sends in invocation order.
    pub sends: Vec<Op<'a>>,
    /// Indexes into `sends` of acknowledged ones.
    pub acked: Vec<usize>,
    pub polls: Vec<&'a Event>,
    pub seeks: Vec<&'a Event>,
    pub commits: Vec<Op<'a>>,
    pub fetches: Vec<Op<'a>>,
    /// (partition, offset) → value in the final read.
    pub final_at: HashMap<(i32, i64), &'a str>,
}

impl<'a> Index<'a> {
    pub fn build(input: &'a Input) -> Index<'a> {
        let mut ops: Vec<Op<'a>> = Vec::new();
        let mut by_id: HashMap<u64, usize> = HashMap::new();
        let mut polls = Vec::new();
        let mut seeks = Vec::new();
        let mut funcs: Vec<Func> = Vec::new();
        for e in &input.events {
            match (e.f, e.kind) {
                (Func::Poll, _) => polls.push(e),
                (Func::Seek, _) => seeks.push(e),
                (_, Kind::Invoke) => {
                    by_id.insert(e.id, ops.len());
                    funcs.push(e.f);
                    ops.push(Op {
                        process: &e.process,
                        partition: e.partition,
                        value: e.value.as_deref(),
                        invoke_offset: e.offset,
                        invoke_us: e.t_us,
                        outcome: Kind::Invoke,
                        complete_us: None,
                        offset: None,
                    });
                }
                (_, kind) => {
                    if let Some(op) = by_id.get(&e.id).and_then(|i| ops.get_mut(*i)) {
                        op.outcome = kind;
                        op.complete_us = Some(e.t_us);
                        op.offset = e.offset;
                    }
                }
            }
        }
        let mut sends = Vec::new();
        let mut commits = Vec::new();
        let mut fetches = Vec::new();
        for (op, f) in ops.into_iter().zip(funcs) {
            match f {
                Func::Send => sends.push(op),
                Func::Commit => commits.push(op),
                Func::Committed => fetches.push(op),
                Func::Poll | Func::Seek => {}
            }
        }
        let acked = sends
            .iter()
            .enumerate()
            .filter(|(_, s)| s.outcome == Kind::Ok && s.offset.is_some())
            .map(|(i, _)| i)
            .collect();
        let mut final_at = HashMap::new();
        for (p, recs) in &input.final_log {
            for (o, v) in recs {
                final_at.insert((*p, *o), v.as_str());
            }
        }
        Index {
            input,
            sends,
            acked,
            polls,
            seeks,
            commits,
            fetches,
            final_at,
        }
    }

    fn acked_ops(&self) -> impl Iterator<Item = &Op<'a>> {
        self.acked.iter().filter_map(|i| self.sends.get(*i))
    }
}

fn push(v: &mut Vec<Violation>, rule: &'static str, what: String) {
    v.push(Violation { rule, what });
}

/// Rule 1: every acknowledged send is in the final read at its offset with its value.
pub fn lost_writes(idx: &Index, v: &mut Vec<Violation>) -> usize {
    let mut lost = 0;
    for s in idx.acked_ops() {
        let (Some(o), Some(val)) = (s.offset, s.value) else {
            continue;
        };
        match idx.final_at.get(&(s.partition, o)) {
            Some(got) if *got == val => {}
            got => {
                lost += 1;
                let hw = idx
                    .input
                    .high_watermarks
                    .get(&s.partition)
                    .copied()
                    .unwrap_or(-1);
                push(
                    v,
                    "1-lost-write",
                    format!(
                        "{} acknowledged at p{}@{o} by {}, final read has {:?} (hw {hw})",
                        val, s.partition, s.process, got
                    ),
                );
            }
        }
    }
    lost
}

/// Rule 2: across acks, polls and the final read, one value per (partition, offset).
pub fn one_value_per_offset(idx: &Index, v: &mut Vec<Violation>) {
    let mut seen: HashMap<(i32, i64), (&str, &str)> = HashMap::new();
    for ((p, o), val) in &idx.final_at {
        seen.insert((*p, *o), (val, "final read"));
    }
    let acks = idx
        .acked_ops()
        .filter_map(|s| Some((s.partition, s.offset?, s.value?, s.process)));
    let polls = idx.polls.iter().filter_map(|e| {
        Some((
            e.partition,
            e.offset?,
            e.value.as_deref()?,
            e.process.as_str(),
        ))
    });
    let mut reported = HashSet::new();
    for (p, o, val, who) in acks.chain(polls) {
        match seen.get(&(p, o)) {
            Some((other, by)) if *other != val => {
                if reported.insert((p, o)) {
                    push(
                        v,
                        "2-inconsistent-offset",
                        format!("p{p}@{o} holds {val} for {who} but {other} for {by}"),
                    );
                }
            }
            Some(_) => {}
            None => {
                seen.insert((p, o), (val, who));
            }
        }
    }
}

/// Rule 3: anything a consumer read is in the final log at the same offset.
pub fn reads_not_lost(idx: &Index, v: &mut Vec<Violation>) {
    for e in &idx.polls {
        let (Some(o), Some(val)) = (e.offset, e.value.as_deref()) else {
            continue;
        };
        if idx.final_at.get(&(e.partition, o)) != Some(&val) {
            push(
                v,
                "3-read-then-lost",
                format!(
                    "{} read {val} at p{}@{o}; the final read has {:?}",
                    e.process,
                    e.partition,
                    idx.final_at.get(&(e.partition, o))
                ),
            );
        }
    }
}

/// Rule 4: with idempotent producers each value is stored at most once.
pub fn duplicates(idx: &Index, v: &mut Vec<Violation>) -> usize {
    let mut at: HashMap<&str, Vec<(i32, i64)>> = HashMap::new();
    for ((p, o), val) in &idx.final_at {
        at.entry(val).or_default().push((*p, *o));
    }
    let mut dup = 0;
    let mut found: Vec<(&str, Vec<(i32, i64)>)> =
        at.into_iter().filter(|(_, w)| w.len() > 1).collect();
    found.sort();
    for (val, mut wher) in found {
        dup += 1;
        wher.sort();
        push(
            v,
            "4-duplicate",
            format!("{val} stored {} times: {wher:?}", wher.len()),
        );
    }
    dup
}

/// Rule 5: per producer and partition, offsets grow with the order of sending.
pub fn producer_order(idx: &Index, v: &mut Vec<Violation>) {
    let mut last: HashMap<(&str, i32), (i64, &str)> = HashMap::new();
    // `sends` is in invocation order, which is each producer's sequence order.
    for s in idx.acked_ops() {
        let (Some(o), Some(val)) = (s.offset, s.value) else {
            continue;
        };
        if let Some((prev, pval)) = last.get(&(s.process, s.partition)) {
            if o <= *prev {
                push(
                    v,
                    "5-nonmonotonic-send",
                    format!(
                        "{}: {val} sent after {pval} but stored at p{}@{o} <= {prev}",
                        s.process, s.partition
                    ),
                );
            }
        }
        last.insert((s.process, s.partition), (o, val));
    }
}

/// Rule 6: if ack(a) returned before send(b) was invoked on the same partition,
/// offset(a) < offset(b).
pub fn real_time_order(idx: &Index, v: &mut Vec<Violation>) {
    let mut per: BTreeMap<i32, Vec<&Op>> = BTreeMap::new();
    for s in idx.acked_ops() {
        per.entry(s.partition).or_default().push(s);
    }
    for (p, ops) in per {
        let mut by_done: Vec<(u64, i64, &str)> = ops
            .iter()
            .filter_map(|s| Some((s.complete_us?, s.offset?, s.value?)))
            .collect();
        by_done.sort();
        let mut by_start: Vec<&&Op> = ops.iter().collect();
        by_start.sort_by_key(|s| s.invoke_us);
        let mut j = 0;
        let mut best: Option<(i64, &str)> = None;
        for b in by_start {
            while let Some((done, o, val)) = by_done.get(j) {
                if *done >= b.invoke_us {
                    break;
                }
                if best.is_none_or(|(bo, _)| *o > bo) {
                    best = Some((*o, val));
                }
                j += 1;
            }
            if let (Some((ao, aval)), Some(bo)) = (best, b.offset) {
                if bo <= ao {
                    push(
                        v,
                        "6-realtime-order",
                        format!(
                            "p{p}: {} invoked after {aval}@{ao} was acknowledged, but stored at {bo}",
                            b.value.unwrap_or("?")
                        ),
                    );
                }
            }
        }
    }
}

/// Rule 7: a value whose send definitely failed is never read.
pub fn aborted_reads(idx: &Index, v: &mut Vec<Violation>) {
    let failed: HashSet<&str> = idx
        .sends
        .iter()
        .filter(|s| s.outcome == Kind::Fail)
        .filter_map(|s| s.value)
        .collect();
    if failed.is_empty() {
        return;
    }
    for ((p, o), val) in &idx.final_at {
        if failed.contains(val) {
            push(
                v,
                "7-aborted-read",
                format!("{val} failed definitely but is stored at p{p}@{o}"),
            );
        }
    }
    for e in &idx.polls {
        if let Some(val) = e.value.as_deref().filter(|val| failed.contains(val)) {
            push(
                v,
                "7-aborted-read",
                format!("{val} failed definitely but {} read it", e.process),
            );
        }
    }
}

/// Rule 8: an assign consumer (`c*`) sees, per partition, strictly increasing offsets with
/// no stored record skipped, except where it sought.
pub fn monotonic_polls(idx: &Index, v: &mut Vec<Violation>) {
    // Merge polls and seeks of assign consumers in history order.
    let mut events: Vec<&Event> = idx
        .polls
        .iter()
        .chain(idx.seeks.iter())
        .copied()
        .filter(|e| e.process.starts_with('c'))
        .collect();
    events.sort_by_key(|e| e.t_us);
    // (process, partition) → next offset expected.
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for e in events {
        let Some(o) = e.offset else { continue };
        let key = (e.process.as_str(), e.partition);
        if e.f == Func::Seek {
            next.insert(key, o);
            continue;
        }
        if let Some(want) = next.get(&key).copied() {
            if o < want {
                push(
                    v,
                    "8-nonmonotonic-poll",
                    format!(
                        "{} read p{}@{o} after reaching {want}",
                        e.process, e.partition
                    ),
                );
            } else if o > want && idx.final_at.contains_key(&(e.partition, want)) {
                push(
                    v,
                    "8-poll-skip",
                    format!(
                        "{} read p{}@{o} but skipped stored offsets {want}..{o}",
                        e.process, e.partition
                    ),
                );
            }
        }
        next.insert(key, o + 1);
    }
}

/// Rule 9: committed offsets never go backward or above the high watermark, and the
/// group processes every acknowledged record.
pub fn group_offsets(idx: &Index, v: &mut Vec<Violation>) {
    let acked_commits: Vec<&Op> = idx
        .commits
        .iter()
        .filter(|c| c.outcome == Kind::Ok && c.invoke_offset.is_some())
        .collect();
    // A commit or an OffsetFetch invoked after an acknowledged commit completed must not
    // see a smaller offset for that partition.
    let mut per: BTreeMap<i32, Vec<(u64, i64, &str)>> = BTreeMap::new();
    for c in &acked_commits {
        if let (Some(done), Some(o)) = (c.complete_us, c.invoke_offset) {
            per.entry(c.partition)
                .or_default()
                .push((done, o, "commit"));
        }
    }
    for list in per.values_mut() {
        list.sort();
    }
    let later: Vec<(&Op, Option<i64>, &str)> = acked_commits
        .iter()
        .map(|c| (*c, c.invoke_offset, "commit"))
        .chain(
            idx.fetches
                .iter()
                .filter(|f| f.outcome == Kind::Ok)
                .map(|f| (f, f.offset, "offset fetch")),
        )
        .collect();
    for (op, seen, what) in later {
        let Some(seen) = seen else { continue };
        let Some(list) = per.get(&op.partition) else {
            continue;
        };
        let before = list
            .iter()
            .take_while(|(done, _, _)| *done < op.invoke_us)
            .map(|(_, o, _)| *o)
            .max();
        if let Some(b) = before {
            if seen < b {
                push(
                    v,
                    "9-commit-backward",
                    format!(
                        "p{}: {what} by {} at {} saw {seen} after a commit of {b} was acknowledged",
                        op.partition, op.process, op.invoke_us
                    ),
                );
            }
        }
    }
    for c in &acked_commits {
        let hw = idx.input.high_watermarks.get(&c.partition).copied();
        if let (Some(o), Some(hw)) = (c.invoke_offset, hw) {
            if o > hw {
                push(
                    v,
                    "9-commit-above-hw",
                    format!(
                        "p{}: {} committed {o} above the final hw {hw}",
                        c.partition, c.process
                    ),
                );
            }
        }
    }
    let processed: HashSet<&str> = idx
        .polls
        .iter()
        .filter(|e| e.process.starts_with('g'))
        .filter_map(|e| e.value.as_deref())
        .collect();
    for s in idx.acked_ops() {
        if let Some(val) = s.value.filter(|val| !processed.contains(val)) {
            push(
                v,
                "9-group-missed",
                format!(
                    "the group never processed acknowledged {val} (p{}@{:?})",
                    s.partition, s.offset
                ),
            );
        }
    }
}

/// Rule 11: enough acknowledged writes while each held single-node fault lasted.
pub fn progress(idx: &Index, v: &mut Vec<Violation>) {
    let mut done: Vec<u64> = idx.acked_ops().filter_map(|s| s.complete_us).collect();
    done.sort();
    for f in &idx.input.faults {
        // Mixed switches are too short to demand progress of each; 3 s at least, so the
        // ~1.5 s failover leaves time to write.
        if !f.single_node || f.in_mix || f.end_us < f.start_us + 3_000_000 {
            continue;
        }
        let lo = done.partition_point(|t| *t < f.start_us);
        let hi = done.partition_point(|t| *t <= f.end_us);
        let n = hi - lo;
        if n < idx.input.min_progress {
            push(
                v,
                "11-no-progress",
                format!(
                    "{} ({}) held {} ms: {n} acknowledged writes, want >= {}",
                    f.kind,
                    f.what,
                    (f.end_us - f.start_us) / 1000,
                    idx.input.min_progress
                ),
            );
        }
    }
}

/// Failover: for each leader fault, ms from injection to the first acknowledgement of a
/// send invoked after it on a partition the target led.
pub fn failover(idx: &Index) -> Failover {
    let mut samples = Vec::new();
    for f in idx.input.faults.iter().filter(|f| f.leader_fault) {
        let parts: BTreeSet<i32> = f.partitions.iter().copied().collect();
        let first = idx
            .acked_ops()
            .filter(|s| s.invoke_us >= f.start_us)
            .filter(|s| parts.is_empty() || parts.contains(&s.partition))
            .filter_map(|s| s.complete_us)
            .min();
        if let Some(t) = first {
            samples.push((t - f.start_us) / 1000);
        }
    }
    let mut sorted = samples.clone();
    sorted.sort();
    Failover {
        p50: sorted.get(sorted.len() / 2).copied(),
        max: sorted.last().copied(),
        samples,
    }
}
