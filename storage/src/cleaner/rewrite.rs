//! Rewriting one group of segments into a cleaned segment (`.cleaned` files).

use bytes::Bytes;
use weir_protocol::batch::header::attr;
use weir_protocol::batch::{
    compute_crc, BatchBuilder, BatchHeader, BatchIter, BatchOptions, RecordIter,
    DEFAULT_MAX_DECOMPRESSED,
};

use super::job::CleanSnapshot;
use super::offset_map::OffsetMap;
use super::plan::{keep_record, RecordFacts, SegmentInfo};
use super::CleanStats;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// Bytes read per `pread` while cleaning.
pub(crate) const READ_CHUNK: usize = 4 << 20;
/// Output buffered before it is written.
const WRITE_CHUNK: usize = 4 << 20;

/// Per-pass parameters.
pub(crate) struct Pass<'a> {
    pub map: &'a OffsetMap,
    pub map_end: i64,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
}

/// Writes the survivors of `group` to a new `.cleaned` segment (sealed and fsynced).
pub(crate) fn rewrite_group(
    snap: &CleanSnapshot,
    group: &[SegmentInfo],
    pass: &Pass<'_>,
    stats: &mut CleanStats,
) -> Result<Segment> {
    let first = group
        .first()
        .ok_or_else(|| Error::corrupt(&snap.dir, "empty clean group"))?;
    let group_end = group.last().map_or(first.next_offset, |s| s.next_offset);
    let mut out = Segment::create_with_suffix(
        &snap.dir,
        first.base_offset,
        snap.settings,
        pass.now_ms,
        None,
        ".cleaned",
    )?;
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_CHUNK + 64 * 1024);
    let mut headers: Vec<(u64, BatchHeader)> = Vec::new();
    for info in group {
        let Some(seg) = snap.source(info.base_offset) else {
            continue;
        };
        let mut pos = 0;
        while let Some((chunk, next_pos)) = seg.read_chunk(pos)? {
            pos = next_pos;
            stats.bytes_read += chunk.len() as u64;
            for item in BatchIter::new(&chunk, false) {
                let (h, bytes) = item?;
                let is_group_last = h.next_offset() == group_end;
                let kept = clean_batch(snap, &chunk, &h, bytes, is_group_last, pass, stats)?;
                if let Some(kept) = kept {
                    let kh = BatchHeader::parse(&kept)?;
                    headers.push((buf.len() as u64, kh));
                    buf.extend_from_slice(&kept);
                }
                if buf.len() >= WRITE_CHUNK {
                    flush_out(&mut out, &mut buf, &mut headers, stats)?;
                }
            }
        }
    }
    flush_out(&mut out, &mut buf, &mut headers, stats)?;
    out.seal()?;
    out.flush()?;
    Ok(out)
}

fn flush_out(
    out: &mut Segment,
    buf: &mut Vec<u8>,
    headers: &mut Vec<(u64, BatchHeader)>,
    stats: &mut CleanStats,
) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    out.append(buf, headers)?;
    stats.bytes_written += buf.len() as u64;
    buf.clear();
    headers.clear();
    Ok(())
}

/// The batch to write in place of `bytes`: itself, a re-encoded copy with fewer records,
/// an empty batch (to keep a producer's last sequence or the group's end offset), or none.
fn clean_batch(
    snap: &CleanSnapshot,
    chunk: &Bytes,
    h: &BatchHeader,
    bytes: &[u8],
    is_group_last: bool,
    pass: &Pass<'_>,
    stats: &mut CleanStats,
) -> Result<Option<Bytes>> {
    let whole = chunk.slice_ref(bytes);
    // Transaction data and markers are kept as they are.
    if h.is_control() || h.is_transactional() || h.base_offset >= pass.map_end {
        stats.records_read += h.records_count.max(0) as u64;
        stats.records_kept += h.records_count.max(0) as u64;
        return Ok(Some(whole));
    }
    let horizon = (h.attributes & attr::DELETE_HORIZON != 0).then_some(h.base_timestamp);
    let iter = RecordIter::from_bytes(whole.clone(), DEFAULT_MAX_DECOMPRESSED)?;
    let mut survivors = Vec::new();
    let mut total = 0u64;
    for rec in iter {
        let rec = rec?;
        total += 1;
        let facts = RecordFacts {
            offset: rec.offset,
            has_key: rec.key.is_some(),
            is_tombstone: rec.value.is_none(),
            latest_for_key: rec.key.as_deref().and_then(|k| pass.map.get(k)),
            delete_horizon: horizon,
        };
        if keep_record(facts, pass.map_end, pass.now_ms) {
            survivors.push(rec);
        }
    }
    stats.records_read += total;
    stats.records_kept += survivors.len() as u64;
    // A kept tombstone gets its delete horizon the first time it is cleaned.
    let needs_horizon = horizon.is_none() && survivors.iter().any(|r| r.value.is_none());
    if survivors.len() as u64 == total && !needs_horizon {
        return Ok(Some(whole));
    }
    let producers_last = h.producer_id >= 0
        && snap
            .producer_last_offsets
            .get(&h.producer_id)
            .is_some_and(|o| *o == h.last_offset());
    if survivors.is_empty() && !is_group_last && !producers_last {
        return Ok(None);
    }
    let new_horizon = match horizon {
        Some(t) => Some(t),
        None if needs_horizon => Some(pass.now_ms.saturating_add(pass.delete_retention_ms)),
        None => None,
    };
    let options = BatchOptions {
        compression: h.compression()?,
        // With a horizon, baseTimestamp holds it and record deltas are relative to it.
        base_timestamp: new_horizon,
        base_offset: h.base_offset,
        partition_leader_epoch: h.partition_leader_epoch,
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        transactional: false,
        control: false,
        timestamp_type: h.timestamp_type(),
        last_offset_delta: Some(h.last_offset_delta),
        ..BatchOptions::default()
    };
    let mut b = BatchBuilder::with_capacity(options, bytes.len());
    for rec in &survivors {
        let delta = i32::try_from(rec.offset - h.base_offset)
            .map_err(|_| Error::InvalidRecord("record offset outside its batch".into()))?;
        b.push_with_offset_delta(delta, &rec.as_new())?;
    }
    stats.batches_rewritten += 1;
    let mut out = b.build()?;
    if new_horizon.is_some() {
        set_delete_horizon_flag(&mut out);
    }
    Ok(Some(Bytes::from(out)))
}

/// Sets attribute bit 6 (baseTimestamp is the delete horizon) and refreshes the CRC.
fn set_delete_horizon_flag(batch: &mut [u8]) {
    if let Some(a) = batch.get_mut(21..23) {
        let cur: [u8; 2] = (&*a).try_into().unwrap_or([0, 0]);
        let attrs = i16::from_be_bytes(cur) | attr::DELETE_HORIZON;
        a.copy_from_slice(&attrs.to_be_bytes());
    }
    let crc = compute_crc(batch);
    if let Some(c) = batch.get_mut(17..21) {
        c.copy_from_slice(&crc.to_be_bytes());
    }
}
