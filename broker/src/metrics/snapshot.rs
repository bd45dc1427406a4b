//! The families whose series must disappear with their group, topic or partition:
//! consumer-group lag/offsets/members/state and per-partition offsets and sizes.
//!
//! The `metrics` exporter keeps every series it has seen until the process exits, so
//! these are not recorded there. A refresh task takes a [`Snapshot`] every
//! `metrics.lag_refresh_interval_ms` and renders it to text here; the endpoint appends
//! that text to the exporter's. A deleted group or topic is simply absent from the next
//! snapshot. This module is pure: data in, text out.
//!
//! Lag policy (see `group::lag::lag`): lag = high watermark − committed offset, never
//! below 0 (a commit above the end after truncation reads as 0). A partition the group
//! has never committed has no lag series: where it would start depends on the consumer's
//! reset policy, which the broker does not know (Kafka's tooling shows "-" too). A
//! commit on a partition that no longer exists has no series either. Lag in seconds is
//! now minus the timestamp of the first uncommitted record (0 when caught up), with no
//! series where that record cannot be read.

use crate::group::lag::lag;
use crate::group::GroupState;

use super::names;
use super::text::Exposition;

/// One committed offset of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset.
    pub committed: i64,
    /// The partition's high watermark, `None` if it no longer exists.
    pub high_watermark: Option<i64>,
    /// Lag in time (see `group::lag::lag_ms`), `None` when unknown.
    pub lag_ms: Option<i64>,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// Group id.
    pub id: String,
    /// Current state.
    pub state: GroupState,
    /// Members.
    pub members: usize,
    /// Committed offsets.
    pub offsets: Vec<OffsetRow>,
}

/// One partition's offsets and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStat {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First readable offset.
    pub log_start: i64,
    /// Next offset.
    pub log_end: i64,
    /// High watermark.
    pub high_watermark: i64,
    /// Segment bytes.
    pub size_bytes: u64,
    /// Segment files.
    pub segments: usize,
}

/// What one refresh saw.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every group.
    pub groups: Vec<GroupSnapshot>,
    /// Every partition, or `None` when there are more than `max_partition_series`.
    pub partitions: Option<Vec<PartitionStat>>,
}

const STATES: [GroupState; 5] = [
    GroupState::Empty,
    GroupState::PreparingRebalance,
    GroupState::CompletingRebalance,
    GroupState::Stable,
    GroupState::Dead,
];

/// Renders the snapshot as exposition text.
pub fn render(s: &Snapshot) -> String {
    let mut e = Exposition::default();
    render_groups(&mut e, &s.groups);
    render_partitions(&mut e, s.partitions.as_deref());
    e.finish()
}

fn render_groups(e: &mut Exposition, groups: &[GroupSnapshot]) {
    e.family(names::GROUP_LAG);
    for g in groups {
        for o in &g.offsets {
            if let Some(l) = lag(Some(o.committed), o.high_watermark) {
                let p = o.partition.to_string();
                e.sample(
                    names::GROUP_LAG,
                    &[("group", &g.id), ("topic", &o.topic), ("partition", &p)],
                    l,
                );
            }
        }
    }
    e.family(names::GROUP_LAG_SECONDS);
    for g in groups {
        for o in &g.offsets {
            if let Some(ms) = o.lag_ms {
                let p = o.partition.to_string();
                e.sample(
                    names::GROUP_LAG_SECONDS,
                    &[("group", &g.id), ("topic", &o.topic), ("partition", &p)],
                    ms as f64 / 1000.0,
                );
            }
        }
    }
    e.family(names::GROUP_COMMITTED_OFFSET);
    for g in groups {
        for o in g.offsets.iter().filter(|o| o.high_watermark.is_some()) {
            let p = o.partition.to_string();
            e.sample(
                names::GROUP_COMMITTED_OFFSET,
                &[("group", &g.id), ("topic", &o.topic), ("partition", &p)],
                o.committed,
            );
        }
    }
    e.family(names::GROUP_MEMBERS);
    for g in groups {
        e.sample(names::GROUP_MEMBERS, &[("group", &g.id)], g.members);
    }
    e.family(names::GROUP_STATE);
    for g in groups {
        for s in STATES {
            let v = u8::from(s == g.state);
            e.sample(
                names::GROUP_STATE,
                &[("group", &g.id), ("state", s.name())],
                v,
            );
        }
    }
}

fn render_partitions(e: &mut Exposition, parts: Option<&[PartitionStat]>) {
    e.family(names::PARTITION_SERIES_SUPPRESSED);
    e.sample(
        names::PARTITION_SERIES_SUPPRESSED,
        &[],
        u8::from(parts.is_none()),
    );
    let Some(parts) = parts else { return };
    type Get = fn(&PartitionStat) -> String;
    let families: [(&str, Get); 5] = [
        (names::PARTITION_LOG_END_OFFSET, |p| p.log_end.to_string()),
        (names::PARTITION_LOG_START_OFFSET, |p| {
            p.log_start.to_string()
        }),
        (names::PARTITION_HIGH_WATERMARK, |p| {
            p.high_watermark.to_string()
        }),
        (names::PARTITION_SIZE_BYTES, |p| p.size_bytes.to_string()),
        (names::PARTITION_SEGMENTS, |p| p.segments.to_string()),
    ];
    for (name, get) in families {
        e.family(name);
        for p in parts {
            let idx = p.partition.to_string();
            e.sample(name, &[("topic", &p.topic), ("partition", &idx)], get(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(topic: &str, partition: i32, committed: i64, hw: Option<i64>) -> OffsetRow {
        OffsetRow {
            topic: topic.into(),
            partition,
            committed,
            high_watermark: hw,
            lag_ms: None,
        }
    }

    fn group(offsets: Vec<OffsetRow>) -> Snapshot {
        Snapshot {
            groups: vec![GroupSnapshot {
                id: "g".into(),
                state: GroupState::Stable,
                members: 2,
                offsets,
            }],
            partitions: Some(Vec::new()),
        }
    }

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .map(|l| l[series.len() + 1..].to_string())
    }

    const LAG: &str = "weir_consumer_group_lag{group=\"g\",topic=\"t\",partition=\"0\"}";
    const COMMITTED: &str =
        "weir_consumer_group_committed_offset{group=\"g\",topic=\"t\",partition=\"0\"}";

    #[test]
    fn lag_is_high_watermark_minus_committed() {
        let t = render(&group(vec![row("t", 0, 400, Some(1000))]));
        assert_eq!(value(&t, LAG).as_deref(), Some("600"), "{t}");
        assert_eq!(value(&t, COMMITTED).as_deref(), Some("400"), "{t}");
        assert_eq!(
            value(&t, "weir_consumer_group_members{group=\"g\"}").as_deref(),
            Some("2")
        );
        assert_eq!(
            value(
                &t,
                "weir_consumer_group_state{group=\"g\",state=\"Stable\"}"
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            value(&t, "weir_consumer_group_state{group=\"g\",state=\"Empty\"}").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn lag_in_seconds_has_a_series_only_where_known() {
        const SECS: &str =
            "weir_consumer_group_lag_seconds{group=\"g\",topic=\"t\",partition=\"0\"}";
        let mut r = row("t", 0, 400, Some(1000));
        r.lag_ms = Some(2_500);
        let t = render(&group(vec![r, row("t", 1, 5, Some(9))]));
        assert_eq!(value(&t, SECS).as_deref(), Some("2.5"), "{t}");
        assert!(
            !t.contains("lag_seconds{group=\"g\",topic=\"t\",partition=\"1\"}"),
            "{t}"
        );
        assert!(
            t.contains("# TYPE weir_consumer_group_lag_seconds gauge"),
            "{t}"
        );
    }

    #[test]
    fn no_commit_yet_means_no_lag_series() {
        let t = render(&group(Vec::new()));
        assert!(!t.contains("weir_consumer_group_lag{"), "{t}");
        // The group itself is still visible.
        assert!(
            t.contains("weir_consumer_group_members{group=\"g\"} 2"),
            "{t}"
        );
    }

    #[test]
    fn committed_above_end_after_truncation_is_zero_lag() {
        let t = render(&group(vec![row("t", 0, 1500, Some(1000))]));
        assert_eq!(value(&t, LAG).as_deref(), Some("0"), "{t}");
    }

    #[test]
    fn deleted_topic_series_are_gone() {
        let t = render(&group(vec![row("t", 0, 400, None)]));
        assert!(value(&t, LAG).is_none(), "{t}");
        assert!(value(&t, COMMITTED).is_none(), "{t}");
    }

    #[test]
    fn deleted_group_series_are_gone() {
        let t = render(&Snapshot::default());
        assert!(!t.contains("group=\"g\""), "{t}");
    }

    #[test]
    fn partitions_render_or_are_suppressed() {
        let p = PartitionStat {
            topic: "t".into(),
            partition: 3,
            log_start: 10,
            log_end: 50,
            high_watermark: 49,
            size_bytes: 4096,
            segments: 2,
        };
        let t = render(&Snapshot {
            groups: Vec::new(),
            partitions: Some(vec![p]),
        });
        for (n, v) in [
            ("weir_partition_log_end_offset", "50"),
            ("weir_partition_log_start_offset", "10"),
            ("weir_partition_high_watermark", "49"),
            ("weir_partition_size_bytes", "4096"),
            ("weir_partition_segments", "2"),
        ] {
            let s = format!("{n}{{topic=\"t\",partition=\"3\"}}");
            assert_eq!(value(&t, &s).as_deref(), Some(v), "{t}");
        }
        assert_eq!(
            value(&t, "weir_partition_series_suppressed").as_deref(),
            Some("0")
        );
        let t = render(&Snapshot::default());
        assert!(!t.contains("weir_partition_size_bytes{"), "{t}");
        assert_eq!(
            value(&t, "weir_partition_series_suppressed").as_deref(),
            Some("1")
        );
    }
}
