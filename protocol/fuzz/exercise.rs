//! What the `batch_decode` fuzz target does with one input, shared with the stable replay
//! test `protocol/tests/batch_fuzz_corpus.rs`. Panics only on a broken invariant.

use weir_protocol::batch::{
    compute_crc, decode_records_with_limit, validate_batch, validate_records, RecordIter,
    HEADER_LEN, LOG_OVERHEAD,
};

/// Small enough that bombs are cheap to hit, large enough for every seed.
const MAX_DECOMPRESSED: usize = 1 << 20;

pub fn exercise(data: &[u8]) {
    run(data);
    // Also run a copy whose length field and CRC are made right, so that inputs get past
    // the header checks and reach record parsing without the fuzzer forging a CRC.
    if data.len() >= HEADER_LEN {
        let mut fixed = data.to_vec();
        if let Ok(len) = i32::try_from(fixed.len() - LOG_OVERHEAD) {
            fixed[8..12].copy_from_slice(&len.to_be_bytes());
            let crc = compute_crc(&fixed);
            fixed[17..21].copy_from_slice(&crc.to_be_bytes());
            run(&fixed);
        }
    }
}

fn run(data: &[u8]) {
    let header = validate_batch(data);
    let decoded = decode_records_with_limit(data, MAX_DECOMPRESSED);
    let strict = validate_records(data, false, MAX_DECOMPRESSED);
    let _ = validate_records(data, true, MAX_DECOMPRESSED);
    if let Ok(records) = &decoded {
        let h = header
            .as_ref()
            .expect("decode_records accepted an invalid batch");
        assert_eq!(records.len() as i64, i64::from(h.records_count));
    }
    if let Ok(summary) = &strict {
        // Strictly valid records must also decode lazily, to the same count.
        let iter = RecordIter::new(data, MAX_DECOMPRESSED).expect("iterator rejected valid batch");
        let mut n = 0u64;
        for r in iter {
            r.expect("record rejected after validation");
            n += 1;
        }
        assert_eq!(n, u64::from(summary.count));
        if header.is_ok() {
            assert!(
                decoded.is_ok(),
                "validate_records ok but decode_records failed"
            );
        }
    }
}
