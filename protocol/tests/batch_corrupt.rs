//! Damaged batches: every function returns an error (or, where no check covers the
//! damage, a value) and never panics or allocates by a forged length.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use weir_protocol::batch::{
    compute_crc, decode_records, decode_records_with_limit, validate_batch, validate_records,
    BatchBuilder, BatchError, BatchOptions, Compression, NewRecord, RecordIter,
};

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn sample(codec: Compression) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::new(codec));
    for i in 0..5u8 {
        let key = [b'k', i];
        b.push(&NewRecord::new(
            1000 + i64::from(i),
            Some(&key),
            Some(&[i; 20]),
        ))
        .unwrap();
    }
    b.build().unwrap()
}

fn reseal(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// An uncompressed batch holding `payload` as its records bytes with the given count.
fn raw_batch(count: i32, payload: &[u8]) -> Vec<u8> {
    let mut b = BatchBuilder::new(BatchOptions::default()).build().unwrap();
    b.extend_from_slice(payload);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[23..27].copy_from_slice(&(count - 1).max(0).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    reseal(&mut b);
    b
}

fn all_fail(batch: &[u8]) -> Vec<BatchError> {
    let mut errs = Vec::new();
    if let Err(e) = decode_records(batch) {
        errs.push(e);
    }
    if let Err(e) = validate_records(batch, false, 1 << 20) {
        errs.push(e);
    }
    errs
}

#[test]
fn truncated_batches_are_errors() {
    for codec in CODECS {
        let b = sample(codec);
        for n in 0..b.len() {
            let cut = &b[..n];
            assert!(validate_batch(cut).is_err());
            assert_eq!(all_fail(cut).len(), 2, "{codec:?} cut at {n}");
            assert!(RecordIter::new(cut, 1 << 20).is_err());
        }
    }
}

#[test]
fn flipped_bytes_fail_crc_and_never_panic_after_reseal() {
    for codec in CODECS {
        let b = sample(codec);
        for i in 0..b.len() {
            for bit in [0x01u8, 0x80] {
                let mut d = b.clone();
                d[i] ^= bit;
                if !(17..21).contains(&i) && i >= 21 {
                    assert!(matches!(
                        validate_batch(&d),
                        Err(BatchError::CrcMismatch { .. })
                    ));
                }
                let _ = validate_records(&d, true, 1 << 20);
                reseal(&mut d);
                let _ = decode_records(&d);
                let _ = validate_records(&d, true, 1 << 20);
                if let Ok(it) = RecordIter::new(&d, 1 << 20) {
                    let _ = it.count();
                }
            }
        }
    }
}

#[test]
fn record_count_mismatch() {
    let rec = [0x0C, 0, 0, 0, 0x01, 0x01, 0]; // 7-byte record: null key and value
    let two: Vec<u8> = rec.iter().chain(rec.iter()).copied().collect();
    let cases: [(i32, &[u8], u32, usize); 3] = [
        (2, &rec, 1, 0), // payload ends early
        (1, &two, 1, 7), // trailing record
        (1, &[], 0, 0),  // no records at all
    ];
    for (count, payload, found, trailing) in cases {
        let b = raw_batch(count, payload);
        validate_batch(&b).unwrap();
        let want = BatchError::RecordCountMismatch {
            declared: count,
            found,
            trailing_bytes: trailing,
        };
        assert_eq!(all_fail(&b), vec![want.clone(), want]);
    }
    // Zero count with bytes behind it.
    let b = raw_batch(0, &rec);
    assert!(matches!(
        decode_records(&b),
        Err(BatchError::RecordCountMismatch { declared: 0, .. })
    ));
}

#[test]
fn huge_declared_count_allocates_nothing_big() {
    for codec in CODECS {
        let mut b = sample(codec);
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        b[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
        reseal(&mut b);
        assert!(matches!(
            decode_records(&b),
            Err(BatchError::RecordCountMismatch { found: 5, .. })
        ));
        assert!(validate_records(&b, false, 1 << 20).is_err());
    }
}

#[test]
fn bad_varints_and_huge_lengths() {
    let cases: [&[u8]; 6] = [
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], // 6-byte record length
        &[0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0], // length i32::MAX
        &[0x0C, 0, 0x80, 0x80, 0x80, 0x80, 0x80], // timestamp delta runs out
        &[0x14, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0], // key length i32::MAX
        &[0x0C, 0, 0, 0, 0x01, 0x01, 0xFE],    // header count runs off
        &[0x10, 0, 0, 0, 0x01, 0x01, 0x02, 0x03, 0x00], // header key length -2
    ];
    for (i, payload) in cases.iter().enumerate() {
        let b = raw_batch(1, payload);
        validate_batch(&b).unwrap();
        for e in all_fail(&b) {
            assert!(
                matches!(e, BatchError::MalformedRecord { index: 0, .. }),
                "case {i}: {e:?}"
            );
        }
        assert_eq!(all_fail(&b).len(), 2, "case {i}");
    }
}

#[test]
fn batch_length_lies() {
    let mut b = sample(Compression::None);
    b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        validate_batch(&b),
        Err(BatchError::Truncated { .. })
    ));
    assert_eq!(all_fail(&b).len(), 2);
    let mut b = sample(Compression::None);
    b.push(0);
    assert!(matches!(
        validate_batch(&b),
        Err(BatchError::InvalidLength(_))
    ));
    assert_eq!(all_fail(&b).len(), 2);
    let mut b = sample(Compression::None);
    b[22] = 0x05; // codec id 5
    reseal(&mut b);
    assert!(matches!(
        decode_records(&b),
        Err(BatchError::UnknownCompression(5))
    ));
    assert!(matches!(
        validate_records(&b, false, 1 << 20),
        Err(BatchError::UnknownCompression(5))
    ));
}

#[test]
fn offsets_must_increase_for_strict_validation() {
    // Two records both with offset delta 0.
    let rec = [0x0C, 0, 0, 0, 0x01, 0x01, 0];
    let two: Vec<u8> = rec.iter().chain(rec.iter()).copied().collect();
    let b = raw_batch(2, &two);
    assert_eq!(decode_records(&b).unwrap().len(), 2);
    assert!(matches!(
        validate_records(&b, false, 1 << 20),
        Err(BatchError::OffsetDeltaOutOfOrder {
            index: 1,
            offset_delta: 0,
            ..
        })
    ));
}

#[test]
fn zip_bomb_is_capped() {
    let big = vec![b'x'; 2 << 20];
    for codec in CODECS {
        let mut b = BatchBuilder::new(BatchOptions::new(codec));
        b.push(&NewRecord::new(0, Some(b"k"), Some(&big))).unwrap();
        let batch = b.build().unwrap();
        assert!(matches!(
            decode_records_with_limit(&batch, 1 << 20),
            Err(BatchError::DecompressedTooLarge {
                limit: 1_048_576,
                ..
            })
        ));
        assert!(matches!(
            validate_records(&batch, true, 1 << 20),
            Err(BatchError::DecompressedTooLarge { .. })
        ));
        assert_eq!(validate_records(&batch, true, 4 << 20).unwrap().count, 1);
    }
}

#[test]
fn invalid_utf8_header_key() {
    // One record with one header whose key is [0xFF].
    let payload = [0x12, 0, 0, 0, 0x01, 0x01, 0x02, 0x02, 0xFF, 0x01];
    let b = raw_batch(1, &payload);
    let decoded = decode_records(&b).unwrap();
    assert_eq!(decoded[0].headers[0].key, "\u{FFFD}");
    assert!(matches!(
        validate_records(&b, false, 1 << 20),
        Err(BatchError::MalformedRecord {
            reason: "header key is not UTF-8",
            ..
        })
    ));
}
