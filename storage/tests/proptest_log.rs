//! Property: whatever batches are appended, a reopen (clean or not) reads back the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::read_all;
use proptest::prelude::*;
use weir_storage::{testkit, Log, LogConfig};

fn cfg(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        segment_index_bytes: 1024,
        index_interval_bytes: 128,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn append_reopen_read_back(
        batches in prop::collection::vec((1usize..6, 0usize..300, 0i64..1_000_000), 1..40),
        segment_bytes in 600u64..5000,
        clean in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), cfg(segment_bytes)).unwrap();
        let mut written = Vec::new();
        let mut next = 0i64;
        for (count, size, ts) in &batches {
            let mut b = testkit::simple_batch(*count, *size, *ts);
            let info = log.append_as_leader(&mut b, 1, 0).unwrap();
            prop_assert_eq!(info.base_offset, next);
            next += *count as i64;
            written.push(b);
        }
        prop_assert_eq!(read_all(&log), written.clone());
        if clean { log.close().unwrap() } else { drop(log) }
        let log = Log::open(dir.path(), cfg(segment_bytes)).unwrap();
        prop_assert_eq!(log.log_end_offset(), next);
        prop_assert_eq!(read_all(&log), written);
        // Timestamp lookups agree with a brute-force answer.
        let probe = batches[0].2;
        let want = batches.iter().scan(0i64, |o, (c, _, ts)| { let r = (*o, *ts); *o += *c as i64; Some(r) })
            .find(|(_, ts)| *ts >= probe);
        prop_assert_eq!(log.offset_for_timestamp(probe).unwrap(), want);
    }
}
