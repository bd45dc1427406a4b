//! Histories written by hand: a clean one passes; each planted anomaly is caught by its
//! rule.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use crate::chaos::history::{Event, Func, Kind};

/// Builds a history with increasing timestamps.
#[derive(Default)]
struct H {
    t: u64,
    next_id: u64,
    events: Vec<Event>,
}

impl H {
    #[allow(clippy::too_many_arguments)]
    fn ev(
        &mut self,
        process: &str,
        kind: Kind,
        f: Func,
        id: u64,
        p: i32,
        value: Option<&str>,
        offset: Option<i64>,
    ) {
        self.t += 10;
        self.events.push(Event {
            t_us: self.t,
            process: process.into(),
            kind,
            f,
            id,
            partition: p,
            value: value.map(str::to_string),
            offset,
            error: (kind == Kind::Fail || kind == Kind::Info).then(|| "x".to_string()),
        });
    }

    /// A send acknowledged at `offset`.
    fn send_ok(&mut self, process: &str, p: i32, value: &str, offset: i64) {
        self.next_id += 1;
        let id = self.next_id;
        self.ev(process, Kind::Invoke, Func::Send, id, p, Some(value), None);
        self.ev(
            process,
            Kind::Ok,
            Func::Send,
            id,
            p,
            Some(value),
            Some(offset),
        );
    }

    fn send_failed(&mut self, process: &str, p: i32, value: &str) {
        self.next_id += 1;
        let id = self.next_id;
        self.ev(process, Kind::Invoke, Func::Send, id, p, Some(value), None);
        self.ev(process, Kind::Fail, Func::Send, id, p, Some(value), None);
    }

    fn poll(&mut self, process: &str, p: i32, offset: i64, value: &str) {
        self.ev(
            process,
            Kind::Ok,
            Func::Poll,
            0,
            p,
            Some(value),
            Some(offset),
        );
    }

    fn commit(&mut self, process: &str, p: i32, offset: i64) {
        self.next_id += 1;
        let id = self.next_id;
        self.ev(
            process,
            Kind::Invoke,
            Func::Commit,
            id,
            p,
            None,
            Some(offset),
        );
        self.ev(process, Kind::Ok, Func::Commit, id, p, None, None);
    }

    fn fetch(&mut self, p: i32, offset: i64) {
        self.next_id += 1;
        let id = self.next_id;
        self.ev("admin", Kind::Invoke, Func::Committed, id, p, None, None);
        self.ev(
            "admin",
            Kind::Ok,
            Func::Committed,
            id,
            p,
            None,
            Some(offset),
        );
    }

    /// Three values to p0 at 0..3, read by an assign consumer and the group, committed.
    fn clean() -> H {
        let mut h = H::default();
        for (i, v) in ["p0-0", "p0-1", "p0-2"].iter().enumerate() {
            h.send_ok("p0", 0, v, i as i64);
        }
        for (i, v) in ["p0-0", "p0-1", "p0-2"].iter().enumerate() {
            h.poll("c0", 0, i as i64, v);
            h.poll("g0.1", 0, i as i64, v);
        }
        h.commit("g0.1", 0, 2);
        h.commit("g0.1", 0, 3);
        h.fetch(0, 3);
        h
    }

    fn input(&self, final_log: &[(i64, &str)]) -> Input {
        Input {
            events: self.events.clone(),
            final_log: [(
                0,
                final_log.iter().map(|(o, v)| (*o, v.to_string())).collect(),
            )]
            .into_iter()
            .collect(),
            high_watermarks: [(0, final_log.len() as i64)].into_iter().collect(),
            min_progress: 100,
            group_ran: true,
            ..Default::default()
        }
    }
}

const FINAL: [(i64, &str); 3] = [(0, "p0-0"), (1, "p0-1"), (2, "p0-2")];

fn rules_of(r: &Report) -> Vec<&'static str> {
    r.violations.iter().map(|v| v.rule).collect()
}

#[test]
fn a_clean_history_passes() {
    let r = check(&H::clean().input(&FINAL));
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.acknowledged, r.lost, r.duplicated), (3, 0, 0));
}

#[test]
fn a_lost_write_is_caught() {
    // The acknowledged p0-2 is gone from the final read.
    let r = check(&H::clean().input(&FINAL[..2]));
    assert_eq!(r.lost, 1);
    assert!(rules_of(&r).contains(&"1-lost-write"), "{:?}", r.violations);
    // What the consumers read of it was lost too.
    assert!(rules_of(&r).contains(&"3-read-then-lost"));
}

#[test]
fn a_duplicate_is_caught() {
    let mut h = H::clean();
    h.poll("c0", 0, 3, "p0-1");
    let r = check(&h.input(&[(0, "p0-0"), (1, "p0-1"), (2, "p0-2"), (3, "p0-1")]));
    assert_eq!(r.duplicated, 1);
    assert!(rules_of(&r).contains(&"4-duplicate"), "{:?}", r.violations);
}

#[test]
fn a_reused_offset_is_caught() {
    // p0-3 acknowledged at offset 2, already p0-2's (a truncation that reused it).
    let mut h = H::clean();
    h.send_ok("p1", 0, "p1-0", 2);
    let r = check(&h.input(&FINAL));
    let rules = rules_of(&r);
    assert!(
        rules.contains(&"2-inconsistent-offset"),
        "{:?}",
        r.violations
    );
    assert!(rules.contains(&"1-lost-write"));
    // Acknowledged after p0-2 was, yet at the same offset.
    assert!(rules.contains(&"6-realtime-order"));
}

#[test]
fn a_backwards_commit_is_caught() {
    let mut h = H::clean();
    h.commit("g1.1", 0, 1);
    let r = check(&h.input(&FINAL));
    assert!(
        rules_of(&r).contains(&"9-commit-backward"),
        "{:?}",
        r.violations
    );

    // An offset fetch that sees less than an acknowledged commit.
    let mut h = H::clean();
    h.fetch(0, 2);
    let r = check(&h.input(&FINAL));
    assert!(
        rules_of(&r).contains(&"9-commit-backward"),
        "{:?}",
        r.violations
    );
}

#[test]
fn an_aborted_read_is_caught() {
    let mut h = H::clean();
    h.send_failed("p0", 0, "p0-3");
    h.poll("c0", 0, 3, "p0-3");
    let r = check(&h.input(&[(0, "p0-0"), (1, "p0-1"), (2, "p0-2"), (3, "p0-3")]));
    assert!(
        rules_of(&r).contains(&"7-aborted-read"),
        "{:?}",
        r.violations
    );
}

#[test]
fn skipped_and_backward_polls_are_caught_but_seeks_are_not() {
    let mut h = H::clean();
    h.poll("c1", 0, 0, "p0-0");
    h.poll("c1", 0, 2, "p0-2");
    h.poll("c1", 0, 1, "p0-1");
    h.ev("c1", Kind::Ok, Func::Seek, 0, 0, None, Some(0));
    h.poll("c1", 0, 0, "p0-0");
    let r = check(&h.input(&FINAL));
    let rules = rules_of(&r);
    assert_eq!(
        rules.iter().filter(|r| r.starts_with('8')).count(),
        2,
        "{:?}",
        r.violations
    );
    assert!(rules.contains(&"8-poll-skip") && rules.contains(&"8-nonmonotonic-poll"));
}

#[test]
fn reordered_producer_offsets_are_caught() {
    let mut h = H::default();
    h.send_ok("p0", 0, "p0-0", 1);
    h.send_ok("p0", 0, "p0-1", 0);
    let mut input = h.input(&[(0, "p0-1"), (1, "p0-0")]);
    input.group_ran = false;
    let r = check(&input);
    assert!(
        rules_of(&r).contains(&"5-nonmonotonic-send"),
        "{:?}",
        r.violations
    );
}

#[test]
fn a_group_that_misses_a_record_is_caught() {
    let mut h = H::clean();
    h.send_ok("p0", 0, "p0-3", 3);
    let r = check(&h.input(&[(0, "p0-0"), (1, "p0-1"), (2, "p0-2"), (3, "p0-3")]));
    assert!(
        rules_of(&r).contains(&"9-group-missed"),
        "{:?}",
        r.violations
    );
}

#[test]
fn no_progress_during_a_held_fault_is_caught_and_failover_measured() {
    let h = H::clean();
    let mut input = h.input(&FINAL);
    input.faults.push(FaultSpan {
        kind: "F1".into(),
        start_us: 0,
        end_us: 5_000_000,
        single_node: true,
        leader_fault: true,
        partitions: vec![0],
        in_mix: false,
        what: "kill -9 broker 1".into(),
    });
    let r = check(&input);
    assert!(
        rules_of(&r).contains(&"11-no-progress"),
        "{:?}",
        r.violations
    );
    assert_eq!(r.faults["F1"], 1);
    assert_eq!(r.failover.samples.len(), 1);
}
