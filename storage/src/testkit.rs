//! Builders for valid, uncompressed RecordBatch v2 bytes, for tests and benchmarks.
//!
//! This is deliberately tiny (no compression, no headers); the full record codec lives in
//! `weir_protocol::batch`.

use weir_protocol::batch::{compute_crc, BatchHeader, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};

/// One record to put in a test batch.
#[derive(Debug, Clone, Copy)]
pub struct TestRecord<'a> {
    /// Key, `None` = null.
    pub key: Option<&'a [u8]>,
    /// Value, `None` = null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Record timestamp in ms.
    pub timestamp: i64,
}

/// Producer fields of a batch.
#[derive(Debug, Clone, Copy)]
pub struct TestProducer {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Base sequence.
    pub base_sequence: i32,
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if u < 0x80 {
            out.push(u as u8);
            return;
        }
        out.push((u as u8 & 0x7f) | 0x80);
        u >>= 7;
    }
}

fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// Builds one batch (base offset 0, leader epoch -1) holding `records`.
pub fn build_batch(
    records: &[TestRecord<'_>],
    producer: Option<TestProducer>,
    attributes: i16,
) -> Vec<u8> {
    let base_ts = records.first().map_or(-1, |r| r.timestamp);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let mut out = vec![0u8; HEADER_LEN];
    let mut rec = Vec::with_capacity(64);
    for (i, r) in records.iter().enumerate() {
        rec.clear();
        rec.push(0); // attributes
        put_varint(&mut rec, r.timestamp - base_ts);
        put_varint(&mut rec, i as i64);
        put_bytes(&mut rec, r.key);
        put_bytes(&mut rec, r.value);
        put_varint(&mut rec, 0); // headers
        put_varint(&mut out, rec.len() as i64);
        out.extend_from_slice(&rec);
    }
    let (pid, epoch, seq) =
        producer.map_or((-1, -1, -1), |p| (p.producer_id, p.epoch, p.base_sequence));
    let h = BatchHeader {
        base_offset: 0,
        batch_length: (out.len() - LOG_OVERHEAD) as i32,
        partition_leader_epoch: -1,
        magic: MAGIC_V2,
        crc: 0,
        attributes,
        last_offset_delta: records.len().saturating_sub(1) as i32,
        base_timestamp: base_ts,
        max_timestamp: max_ts,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        records_count: records.len() as i32,
    };
    h.write(&mut out);
    let crc = compute_crc(&out);
    if let Some(slot) = out.get_mut(17..21) {
        slot.copy_from_slice(&crc.to_be_bytes());
    }
    out
}

/// A batch of `count` keyless records of `value_len` bytes, all at `timestamp`.
pub fn simple_batch(count: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
    let value = vec![0x5au8; value_len];
    let recs: Vec<TestRecord<'_>> = (0..count)
        .map(|_| TestRecord {
            key: None,
            value: Some(&value),
            timestamp,
        })
        .collect();
    build_batch(&recs, None, 0)
}

/// A batch of one keyed record per `(key, value)` pair, all at `timestamp`.
pub fn keyed_batch(pairs: &[(&[u8], Option<&[u8]>)], timestamp: i64) -> Vec<u8> {
    let recs: Vec<TestRecord<'_>> = pairs
        .iter()
        .map(|(k, v)| TestRecord {
            key: Some(k),
            value: *v,
            timestamp,
        })
        .collect();
    build_batch(&recs, None, 0)
}

/// A batch of `count` records from an idempotent producer.
pub fn producer_batch(count: usize, producer: TestProducer, timestamp: i64) -> Vec<u8> {
    let value = [1u8; 16];
    let recs: Vec<TestRecord<'_>> = (0..count)
        .map(|_| TestRecord {
            key: None,
            value: Some(&value),
            timestamp,
        })
        .collect();
    build_batch(&recs, Some(producer), 0)
}

/// Whether the file system under `dir` answers `RWF_NOWAIT` reads (tmpfs and old kernels
/// do not: there every cached-only read reports "would block" and callers read the usual
/// way). Tests of the cached read path ask first.
pub fn nowait_reads_supported(dir: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let path = dir.join("nowait-probe");
    if std::fs::write(&path, b"probe").is_err() {
        return false;
    }
    let Ok(f) = std::fs::File::open(&path) else {
        return false;
    };
    let mut buf = [0u8; 5];
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: one iovec over a live local buffer.
    let n = unsafe { libc::preadv2(f.as_raw_fd(), &iov, 1, 0, libc::RWF_NOWAIT) };
    let _ = std::fs::remove_file(&path);
    n == 5
}

/// Whether this kernel can tell which pages of a file are cached (`cachestat`, Linux 6.5),
/// which zero-copy reads ([`crate::Records::InFile`]) need. Tests expect slices only then.
pub fn zero_copy_supported(dir: &std::path::Path) -> bool {
    let path = dir.join("cachestat-probe");
    if std::fs::write(&path, b"probe").is_err() {
        return false;
    }
    let supported = std::fs::File::open(&path)
        .map(|f| crate::segment::page_cache::supported(&f))
        .unwrap_or(false);
    let _ = std::fs::remove_file(&path);
    supported
}
