//! Every metric family Weir exports: its name, kind and help text, in one list. Recorders
//! and the dashboard refer to these names; a test checks the dashboard against [`ALL`].
//!
//! Conventions: `weir_` prefix, unit in the name (`_seconds`, `_bytes`, `_records`),
//! counters end in `_total`.

/// How a family is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations.
    Histogram,
}

impl Kind {
    /// The `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

macro_rules! families {
    ($($id:ident = $name:literal, $kind:ident, $help:literal;)*) => {
        $(#[doc = $help] pub const $id: &str = $name;)*
        /// (name, kind, help) of every family.
        pub const ALL: &[(&str, Kind, &str)] = &[$(($name, Kind::$kind, $help)),*];
    };
}

families! {
    // Consumer groups (rendered from a periodic snapshot; see `metrics::snapshot`).
    GROUP_LAG = "weir_consumer_group_lag", Gauge,
        "Records between a group's committed offset and the partition's high watermark.";
    GROUP_LAG_SECONDS = "weir_consumer_group_lag_seconds", Gauge,
        "Seconds since the first record a group has not committed was written (0 when caught up).";
    GROUP_COMMITTED_OFFSET = "weir_consumer_group_committed_offset", Gauge,
        "A group's committed offset for a partition.";
    GROUP_MEMBERS = "weir_consumer_group_members", Gauge,
        "Members of a consumer group.";
    GROUP_STATE = "weir_consumer_group_state", Gauge,
        "1 for the group's current state, 0 for the others.";
    // Partitions (snapshot; off above metrics.max_partition_series partitions).
    PARTITION_LOG_END_OFFSET = "weir_partition_log_end_offset", Gauge,
        "Offset the next appended record gets.";
    PARTITION_LOG_START_OFFSET = "weir_partition_log_start_offset", Gauge,
        "First offset still readable.";
    PARTITION_HIGH_WATERMARK = "weir_partition_high_watermark", Gauge,
        "Offsets below this are visible to consumers.";
    PARTITION_SIZE_BYTES = "weir_partition_size_bytes", Gauge,
        "Bytes of the partition's segment files.";
    PARTITION_SEGMENTS = "weir_partition_segments", Gauge,
        "Segment files of the partition.";
    PARTITION_SERIES_SUPPRESSED = "weir_partition_series_suppressed", Gauge,
        "1 when per-partition series are off because of metrics.max_partition_series.";
    // Throughput by topic (atomics in the topic table, rendered at scrape time).
    PRODUCED_RECORDS = "weir_produced_records_total", Counter,
        "Records appended by Produce requests.";
    PRODUCED_BYTES = "weir_produced_bytes_total", Counter,
        "Record batch bytes appended by Produce requests.";
    FETCHED_BYTES = "weir_fetched_bytes_total", Counter,
        "Record batch bytes returned by Fetch requests.";
    // Requests.
    REQUESTS = "weir_requests_total", Counter,
        "Requests handled, by API.";
    REQUEST_ERRORS = "weir_request_errors_total", Counter,
        "Error codes returned, by API and code (envelope and per-partition codes).";
    REQUEST_DURATION = "weir_request_duration_seconds", Histogram,
        "Time from decoded request to response ready, by API.";
    BAD_FRAMES = "weir_bad_frames_total", Counter,
        "Connections closed because a frame could not be decoded.";
    CONNECTIONS_OPEN = "weir_connections_open", Gauge,
        "Open client connections.";
    PURGATORY_SIZE = "weir_purgatory_size", Gauge,
        "Requests parked waiting: long-polling fetches (kind=fetch), produce waiting for fsync (kind=produce).";
    // The metadata quorum (openraft's metrics, followed as they change).
    QUORUM_LEADER = "weir_metadata_quorum_leader", Gauge,
        "Node id of the metadata quorum's leader (the active controller); -1 while none is known.";
    QUORUM_TERM = "weir_metadata_quorum_term", Gauge,
        "Current Raft term of the metadata quorum.";
    QUORUM_LOG_END = "weir_metadata_quorum_last_log_index", Gauge,
        "Index of the last entry in this node's metadata log.";
    QUORUM_APPLIED = "weir_metadata_quorum_applied_index", Gauge,
        "Index of the last metadata entry applied to this node's image.";
    QUORUM_SNAPSHOT = "weir_metadata_quorum_snapshot_index", Gauge,
        "Last metadata entry covered by this node's latest snapshot (0: none yet).";
    QUORUM_PURGED = "weir_metadata_quorum_purged_index", Gauge,
        "Metadata entries up to here were compacted away after a snapshot; a voter behind it catches up by snapshot.";
    QUORUM_VOTER_LAG = "weir_metadata_quorum_voter_lag", Gauge,
        "On the leader: entries each voter's log trails the leader's (by voter).";
    FENCED_BROKERS = "weir_cluster_fenced_brokers", Gauge,
        "Registered brokers the controller has fenced (they lead nothing).";
    OFFLINE_PARTITIONS = "weir_cluster_offline_partitions", Gauge,
        "Partitions without a live leader (no in-sync replica is available).";
    REASSIGNING_PARTITIONS = "weir_cluster_reassigning_partitions", Gauge,
        "Partitions with a replica move in progress (weir partition reassign).";
    FOLLOWER_LAG_RECORDS = "weir_replication_max_follower_lag_records", Gauge,
        "On a leader: the most records any follower of its partitions is behind the log end.";
    FOLLOWER_LAG_SECONDS = "weir_replication_max_follower_lag_seconds", Gauge,
        "On a leader: the longest any follower of its partitions has not been caught up.";
    REPLICA_FETCH_BYTES = "weir_replication_fetched_bytes_total", Counter,
        "Bytes of batches this broker appended as a follower (replica fetch throughput).";
    UNDER_REPLICATED = "weir_cluster_under_replicated_partitions", Gauge,
        "Partitions whose ISR is smaller than their replica set (from the metadata image).";
    UNDER_MIN_ISR = "weir_cluster_under_min_isr_partitions", Gauge,
        "Partitions whose ISR is smaller than the topic's min.insync.replicas override (acks=all writes to them fail).";
    ISR_CHANGES = "weir_cluster_isr_changes_total", Counter,
        "ISR changes the controller wrote, by kind (shrink: members left; expand: members joined).";
    LEADER_ELECTIONS = "weir_cluster_leader_elections_total", Counter,
        "Partition leader changes written by this broker as controller, by cause (fencing: the leader was fenced or none was live; preferred: handed back to the preferred replica).";
    IMAGE_DIGEST = "weir_metadata_image_digest", Gauge,
        "CRC-32C of this broker's metadata image: equal on brokers that hold the same metadata.";
    IMAGE_DIGEST_INDEX = "weir_metadata_image_digest_index", Gauge,
        "The metadata log index of the image weir_metadata_image_digest was computed on (reports coalesce bursts of changes).";
    // Storage.
    LOG_FLUSH_DURATION = "weir_log_flush_duration_seconds", Histogram,
        "Time of one partition log fsync.";
    STORAGE_OPS = "weir_storage_ops_total", Counter,
        "Produce appends and fetch reads by where they ran (thread=async: on the request's own thread, the data in the page cache; thread=blocking: handed to a blocking thread, for a segment roll, a new leader epoch, uncached data or a busy log).";
    FETCH_BYTES = "weir_fetch_bytes_total", Counter,
        "Record bytes answered to consumer fetches by how they left (path=sendfile: from the segment file's page cache by the kernel, never copied into the broker; path=copy: read into memory and encoded into the response).";
    CLEANER_CLEANED_BYTES = "weir_cleaner_cleaned_bytes_total", Counter,
        "Bytes read by the log cleaner while compacting.";
    CLEANER_LAST_RUN = "weir_cleaner_last_run_timestamp_seconds", Gauge,
        "Unix time the last cleaner pass finished.";
    PARTITIONS_OPENED_CLEAN = "weir_partitions_opened_clean_total", Counter,
        "Partitions opened at start without a recovery scan.";
    PARTITIONS_RECOVERED = "weir_partitions_recovered_total", Counter,
        "Partitions that needed recovery at start.";
    // Process.
    PROCESS_RESIDENT_MEMORY = "weir_process_resident_memory_bytes", Gauge,
        "Resident set size.";
    PROCESS_OPEN_FDS = "weir_process_open_fds", Gauge,
        "Open file descriptors.";
    PROCESS_UPTIME = "weir_process_uptime_seconds", Gauge,
        "Seconds since the broker started.";
    PROCESS_START_TIME = "weir_process_start_time_seconds", Gauge,
        "Unix time the broker started.";
    BUILD_INFO = "weir_build_info", Gauge,
        "Always 1; labels carry the version and git commit.";
}

/// Buckets for every `_seconds` histogram: 100 µs to 10 s, about 2.5x apart.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Registers help texts with the recorder (for the families it renders).
pub fn describe_all() {
    for &(name, kind, help) in ALL {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// The (kind, help) of a family.
pub fn lookup(name: &str) -> Option<(Kind, &'static str)> {
    ALL.iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, k, h)| (k, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        let mut seen = std::collections::HashSet::new();
        for &(name, kind, _) in ALL {
            assert!(name.starts_with("weir_"), "{name}");
            assert!(seen.insert(name), "duplicate {name}");
            assert_eq!(kind == Kind::Counter, name.ends_with("_total"), "{name}");
        }
    }

    /// Metric names in a PromQL expression (identifiers starting with `weir_`).
    fn metric_names(expr: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = expr;
        while let Some(i) = rest.find("weir_") {
            let tail = rest.get(i..).unwrap_or("");
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            out.push(tail.get(..end).unwrap_or("").to_string());
            rest = tail.get(end..).unwrap_or("");
        }
        out
    }

    #[test]
    fn dashboard_is_valid_json_and_uses_existing_metrics() {
        let text = include_str!("../../../configs/grafana/weir-dashboard.json");
        let dash: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        let panels = dash["panels"].as_array().expect("panels");
        assert!(panels.len() >= 4);
        let mut used = std::collections::BTreeSet::new();
        for p in panels {
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{p}");
            for t in targets {
                let expr = t["expr"].as_str().expect("expr");
                let names = metric_names(expr);
                assert!(!names.is_empty(), "{expr}");
                for n in names {
                    let family = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| {
                            n.strip_suffix(s)
                                .filter(|f| lookup(f).map(|(k, _)| k) == Some(Kind::Histogram))
                        })
                        .unwrap_or(&n)
                        .to_string();
                    assert!(lookup(&family).is_some(), "{expr}: unknown metric {n}");
                    used.insert(family);
                }
            }
        }
        for required in [
            GROUP_LAG,
            PRODUCED_RECORDS,
            FETCHED_BYTES,
            REQUEST_DURATION,
            PARTITION_SIZE_BYTES,
        ] {
            assert!(used.contains(required), "dashboard lacks {required}");
        }
    }
}
