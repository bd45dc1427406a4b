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

#[derive(Debug, Clone)]
enum Damage {
    Truncate(usize),
    Flip(usize, u8),
    ZeroTail(usize),
    Garbage(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0usize..100_000).prop_map(Damage::Truncate),
        (0usize..100_000, 1u8..=255).prop_map(|(p, b)| Damage::Flip(p, b)),
        (1usize..5000).prop_map(Damage::ZeroTail),
        prop::collection::vec(any::<u8>(), 1..200).prop_map(Damage::Garbage),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("WEIR_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]

    /// Any damage to the active segment after a crash: the log reopens to a prefix of what
    /// was written that keeps every batch lying wholly before the damage.
    #[test]
    fn damaged_tail_recovers_to_a_valid_prefix(
        sizes in prop::collection::vec((1usize..4, 0usize..200), 5..30),
        d in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = cfg(1 << 20);
        let mut log = Log::open(dir.path(), config.clone()).unwrap();
        let mut written = Vec::new();
        let mut ends = Vec::new();
        let mut end = 0usize;
        for (count, size) in &sizes {
            let mut b = testkit::simple_batch(*count, *size, 0);
            log.append_as_leader(&mut b, 0, 0).unwrap();
            end += b.len();
            ends.push(end);
            written.push(b);
        }
        drop(log);
        let path = dir.path().join("00000000000000000000.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let intact_until = match &d {
            Damage::Truncate(p) => { let p = p % (bytes.len() + 1); bytes.truncate(p); p }
            Damage::Flip(p, x) => {
                let p = p % bytes.len();
                // baseOffset and partitionLeaderEpoch sit outside the CRC by design (Kafka's
                // format): a flip there is undetectable, as in Kafka.
                let start = std::iter::once(0).chain(ends.iter().copied()).filter(|s| *s <= p).max().unwrap_or(0);
                prop_assume!(!matches!(p - start, 0..=7 | 12..=15));
                bytes[p] ^= x;
                p
            }
            Damage::ZeroTail(n) => { let l = bytes.len(); bytes.extend(std::iter::repeat_n(0u8, *n)); l }
            Damage::Garbage(g) => { let l = bytes.len(); bytes.extend_from_slice(g); l }
        };
        std::fs::write(&path, &bytes).unwrap();
        let log = Log::open(dir.path(), config).unwrap();
        let got = read_all(&log);
        let must_keep = ends.iter().filter(|e| **e <= intact_until).count();
        prop_assert!(got.len() >= must_keep, "kept {} of {must_keep}", got.len());
        prop_assert_eq!(&got[..], &written[..got.len()]);
        prop_assert_eq!(log.log_end_offset(), sizes[..got.len()].iter().map(|(c, _)| *c as i64).sum::<i64>());
    }
}
