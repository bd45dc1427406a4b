//! Property tests: arbitrary batches survive encode -> validate -> decode for every codec.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::Bytes;
use proptest::prelude::*;
use weir_protocol::batch::{
    decode_records, validate_batch, validate_records, BatchBuilder, BatchOptions, Compression,
    NewRecord, RecordHeader, RecordIter, TimestampType, DEFAULT_MAX_DECOMPRESSED,
};

#[derive(Debug, Clone)]
struct Input {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<RecordHeader>,
}

fn header() -> impl Strategy<Value = RecordHeader> {
    (
        "\\PC{0,8}",
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
    )
        .prop_map(|(key, value)| RecordHeader {
            key,
            value: value.map(Bytes::from),
        })
}

fn record(base: i64) -> impl Strategy<Value = Input> {
    (
        -1_000_000i64..1_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec(header(), 0..3),
    )
        .prop_map(move |(dt, key, value, headers)| Input {
            timestamp: base + dt,
            key,
            value,
            headers,
        })
}

fn batch_options(codec: Compression) -> impl Strategy<Value = BatchOptions> {
    (
        proptest::option::of(0i64..2_000_000_000_000),
        -1i64..1_000_000,
        -1i16..100,
        -1i32..1_000_000,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |(base_ts, pid, epoch, seq, transactional, log_append)| BatchOptions {
                compression: codec,
                base_timestamp: base_ts,
                producer_id: pid,
                producer_epoch: epoch,
                base_sequence: seq,
                transactional,
                timestamp_type: if log_append {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                },
                ..BatchOptions::default()
            },
        )
}

fn check_round_trip(opts: BatchOptions, inputs: &[Input]) -> Result<(), TestCaseError> {
    let mut b = BatchBuilder::new(opts);
    for i in inputs {
        b.push(&NewRecord {
            timestamp: i.timestamp,
            key: i.key.as_deref(),
            value: i.value.as_deref(),
            headers: &i.headers,
        })
        .unwrap();
    }
    let batch = b.build().unwrap();
    let h = validate_batch(&batch).unwrap();
    prop_assert_eq!(h.compression().unwrap(), opts.compression);
    prop_assert_eq!(h.records_count as usize, inputs.len());
    prop_assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (opts.producer_id, opts.producer_epoch, opts.base_sequence)
    );
    prop_assert_eq!(h.is_transactional(), opts.transactional);
    let max_ts = inputs.iter().map(|i| i.timestamp).max().unwrap_or(-1);
    prop_assert_eq!(h.max_timestamp, max_ts);

    let decoded = decode_records(&batch).unwrap();
    prop_assert_eq!(decoded.len(), inputs.len());
    for (n, (r, i)) in decoded.iter().zip(inputs).enumerate() {
        prop_assert_eq!(r.offset, n as i64);
        let want_ts = match opts.timestamp_type {
            TimestampType::CreateTime => i.timestamp,
            TimestampType::LogAppendTime => max_ts,
        };
        prop_assert_eq!(r.timestamp, want_ts);
        prop_assert_eq!(r.key.as_deref(), i.key.as_deref());
        prop_assert_eq!(r.value.as_deref(), i.value.as_deref());
        prop_assert_eq!(&r.headers, &i.headers);
    }
    let lazy: Vec<_> = RecordIter::from_bytes(Bytes::from(batch.clone()), DEFAULT_MAX_DECOMPRESSED)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    prop_assert_eq!(&lazy, &decoded);

    let s = validate_records(&batch, false, DEFAULT_MAX_DECOMPRESSED).unwrap();
    prop_assert_eq!(s.count as usize, inputs.len());
    prop_assert!(s.sequential_offsets);
    prop_assert_eq!(
        s.null_keys as usize,
        inputs.iter().filter(|i| i.key.is_none()).count()
    );
    prop_assert_eq!(
        s.null_values as usize,
        inputs.iter().filter(|i| i.value.is_none()).count()
    );
    if opts.timestamp_type == TimestampType::CreateTime {
        prop_assert_eq!(s.max_timestamp, max_ts);
    }
    let keyed = inputs.iter().all(|i| i.key.is_some());
    prop_assert_eq!(
        validate_records(&batch, true, DEFAULT_MAX_DECOMPRESSED).is_ok(),
        keyed
    );
    Ok(())
}

macro_rules! round_trip {
    ($name:ident, $codec:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn $name(
                opts in batch_options($codec),
                inputs in proptest::collection::vec(record(1_600_000_000_000), 0..40),
            ) {
                check_round_trip(opts, &inputs)?;
            }
        }
    };
}

round_trip!(round_trip_none, Compression::None);
round_trip!(round_trip_gzip, Compression::Gzip);
round_trip!(round_trip_snappy, Compression::Snappy);
round_trip!(round_trip_lz4, Compression::Lz4);
round_trip!(round_trip_zstd, Compression::Zstd);
