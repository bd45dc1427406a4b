//! The leader append path: validate, check idempotence, assign offsets in place, roll,
//! write, apply the flush policy (inline, or reported to the caller).

use weir_protocol::batch::header::set_log_append_time;
use weir_protocol::batch::{
    set_base_offset, set_partition_leader_epoch, validate_batch, BatchHeader, TimestampType,
};

use super::open::prealloc;
use super::{AppendInfo, FlushMode, Log, SNAPSHOTS_KEPT};
use crate::error::{Error, Result};
use crate::producer_state::{self, snapshot, ProducerEntry, SequenceCheck};
use crate::segment::Segment;

/// The last offset and largest timestamp client batches get when appended from `base`
/// (`append_time`: the broker's clock replaces their timestamps).
fn span_of(headers: &[(u64, BatchHeader)], base: i64, append_time: Option<i64>) -> (i64, i64) {
    let mut next = base;
    let mut max_ts = -1i64;
    for (_, h) in headers {
        next = next
            .saturating_add(i64::from(h.last_offset_delta))
            .saturating_add(1);
        max_ts = max_ts.max(append_time.unwrap_or(h.max_timestamp));
    }
    (next - 1, max_ts)
}

impl Log {
    /// Appends client batches (one request's worth, usually one batch): validates each
    /// (CRC, magic, sizes, counts), checks idempotent-producer sequences, assigns offsets
    /// and the leader epoch in place (plus LogAppendTime if configured), writes them to the
    /// active segment (rolling first if needed) and applies the flush policy.
    ///
    /// A duplicate of one of the producer's last five batches appends nothing and returns
    /// the original offsets with `duplicate: true`. On any error nothing becomes visible.
    pub fn append_as_leader(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_as_leader_with(batches, leader_epoch, now_ms, FlushMode::Inline)
    }

    /// [`Log::append_as_leader`] with the flush policy applied per `mode`: with
    /// [`FlushMode::Deferred`] nothing is fsynced here and
    /// [`AppendInfo::flush_needed`] says whether the caller must flush before answering.
    pub fn append_as_leader_with(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
        mode: FlushMode,
    ) -> Result<AppendInfo> {
        self.leader_append(batches, leader_epoch, now_ms, mode, false)?
            .ok_or_else(|| Error::InvalidRecord("append refused without cause".into()))
    }

    /// [`Log::append_as_leader_with`] in [`FlushMode::Deferred`], but only if the append is
    /// light: a write into the page cache and nothing else (no segment roll, no leader-epoch
    /// or checkpoint file to write, which fsync). Returns `Ok(None)`, having changed
    /// nothing, when it is not; the caller then appends the usual way. A light append takes
    /// microseconds, so the broker may run it on an async worker instead of handing it to a
    /// blocking thread (a hand-off cost a third of the broker's CPU at 50k records/s).
    pub fn try_append_as_leader_light(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<Option<AppendInfo>> {
        self.leader_append(batches, leader_epoch, now_ms, FlushMode::Deferred, true)
    }

    /// The leader append; with `light`, `Ok(None)` instead of any step that does more than
    /// write into the page cache, before anything changed.
    fn leader_append(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
        mode: FlushMode,
        light: bool,
    ) -> Result<Option<AppendInfo>> {
        self.check_poisoned()?;
        let mut headers = self.validate_client_batches(batches)?;

        // Idempotence, staged so a failure part-way leaves the state untouched.
        let mut staged: Vec<ProducerEntry> = Vec::new();
        for (_, h) in &headers {
            if h.producer_id < 0 {
                continue;
            }
            let current = staged
                .iter()
                .find(|e| e.producer_id == h.producer_id)
                .or_else(|| self.producers.get(h.producer_id));
            let check = producer_state::check_batch(current, h)?;
            if let SequenceCheck::Duplicate(orig) = check {
                if headers.len() != 1 {
                    return Err(Error::InvalidRecord(
                        "duplicate batch inside a multi-batch append".into(),
                    ));
                }
                let append_time = match self.config.message_timestamp_type {
                    TimestampType::LogAppendTime => orig.max_timestamp,
                    TimestampType::CreateTime => -1,
                };
                return Ok(Some(AppendInfo {
                    base_offset: orig.base_offset,
                    last_offset: orig.last_offset,
                    log_append_time_ms: append_time,
                    record_count: h.records_count as u32,
                    duplicate: true,
                    // The original may still await its flush; with a flush per append,
                    // the retry's answer promises the same durability.
                    flush_needed: mode == FlushMode::Deferred
                        && self.config.flush_messages <= 1
                        && self.recovery_point <= orig.last_offset,
                    flush_soon: false,
                }));
            }
            // Later batches of the same producer in this request see this one.
            let mut next = current
                .cloned()
                .unwrap_or_else(|| ProducerEntry::new(h.producer_id, h.producer_epoch));
            producer_state::apply(&mut next, h);
            staged.retain(|e| e.producer_id != h.producer_id);
            staged.push(next);
        }

        // Assign offsets and stamp the batches in place.
        let base = self.log_end_offset();
        let log_append_time = self.config.message_timestamp_type == TimestampType::LogAppendTime;
        // Checked before stamping: a refused light append must leave the batches as the
        // client sent them (a batch stamped with LogAppendTime fails validation again).
        if light {
            let (last, max_ts) = span_of(&headers, base, log_append_time.then_some(now_ms));
            if !self.append_is_light(batches.len() as u64, max_ts, last, leader_epoch, now_ms)? {
                return Ok(None);
            }
        }
        let mut next = base;
        let mut max_ts = -1i64;
        let mut records = 0u64;
        for (pos, h) in headers.iter_mut() {
            let Some(bytes) = batches.get_mut(*pos as usize..*pos as usize + h.total_len()) else {
                return Err(Error::InvalidRecord("batch outside the buffer".into()));
            };
            set_base_offset(bytes, next);
            set_partition_leader_epoch(bytes, leader_epoch);
            h.base_offset = next;
            h.partition_leader_epoch = leader_epoch;
            if log_append_time {
                set_log_append_time(bytes, now_ms);
                h.max_timestamp = now_ms;
            }
            max_ts = max_ts.max(h.max_timestamp);
            records += h.records_count as u64;
            next = h.next_offset();
        }
        let last_offset = next - 1;

        self.mark_unclean()?;
        self.maybe_roll(batches.len() as u64, max_ts, base, last_offset, now_ms)?;
        self.active_mut()?.append(batches, &headers)?;
        // Only a new epoch's first append writes the cache file.
        self.epochs.update(|e| e.assign(leader_epoch, base))?;

        for (_, h) in &headers {
            self.producers.record(h);
        }
        self.unflushed_messages += records;
        if self.first_unflushed_ms.is_none() {
            self.first_unflushed_ms = Some(now_ms);
        }
        let (flush_needed, flush_soon) = self.apply_flush_policy(mode, now_ms)?;
        Ok(Some(AppendInfo {
            base_offset: base,
            last_offset,
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            record_count: records as u32,
            duplicate: false,
            flush_needed,
            flush_soon,
        }))
    }

    /// Whether appending `incoming` bytes ending at `last_offset` under `leader_epoch` only
    /// writes the active segment: no unclean mark to write, no roll, no new epoch entry.
    fn append_is_light(
        &self,
        incoming: u64,
        max_ts: i64,
        last_offset: i64,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<bool> {
        let roll = self.would_roll(incoming, max_ts, last_offset, now_ms)?;
        Ok(
            !self.needs_unclean_mark
                && !roll
                && self.epochs.epochs().latest() == Some(leader_epoch),
        )
    }

    /// Appends batches copied from a leader (replication): offsets, epochs and timestamps
    /// are kept as they are. Each batch must pass its CRC and start at or after the log end
    /// offset, with offsets increasing. Producer state is updated without sequence checks
    /// (the leader already did them). Returns the first and last offsets appended.
    pub fn append_as_follower(&mut self, batches: &[u8], now_ms: i64) -> Result<AppendInfo> {
        self.check_poisoned()?;
        let mut headers: Vec<(u64, BatchHeader)> = Vec::new();
        let mut next = self.log_end_offset();
        let mut max_ts = -1i64;
        let mut records = 0u64;
        let mut pos = 0u64;
        for item in weir_protocol::batch::BatchIter::new(batches, true) {
            let (h, bytes) = item?;
            if h.base_offset < next || h.base_offset > i64::MAX / 2 {
                return Err(Error::InvalidRecord(format!(
                    "follower batch at offset {} does not follow {next}",
                    h.base_offset
                )));
            }
            headers.push((pos, h));
            pos += bytes.len() as u64;
            next = h.next_offset();
            max_ts = max_ts.max(h.max_timestamp);
            records += h.records_count.max(0) as u64;
        }
        let (Some((_, first)), Some((_, last))) = (headers.first(), headers.last()) else {
            return Err(Error::InvalidRecord("no batches to append".into()));
        };
        let (base, last_offset) = (first.base_offset, last.last_offset());
        self.mark_unclean()?;
        // A gap (e.g. the leader compacted) starts a new segment at the batch's offset, so
        // every segment's base stays at or below its first batch.
        let roll_base = base.max(self.log_end_offset());
        let gap = base > self.log_end_offset() && self.active()?.size() > 0;
        if gap {
            self.roll(roll_base, now_ms)?;
        } else {
            self.maybe_roll(batches.len() as u64, max_ts, roll_base, last_offset, now_ms)?;
        }
        self.active_mut()?.append(batches, &headers)?;
        // The leader's epochs, as its batches carry them: the follower's cache matches.
        self.epochs.update(|e| {
            let mut changed = false;
            for (_, h) in &headers {
                changed |= e.assign(h.partition_leader_epoch, h.base_offset);
            }
            changed
        })?;
        for (_, h) in &headers {
            self.producers.record(h);
        }
        self.unflushed_messages += records;
        if self.first_unflushed_ms.is_none() {
            self.first_unflushed_ms = Some(now_ms);
        }
        self.apply_flush_policy(FlushMode::Inline, now_ms)?;
        Ok(AppendInfo {
            base_offset: base,
            last_offset,
            log_append_time_ms: -1,
            record_count: records as u32,
            duplicate: false,
            flush_needed: false,
            flush_soon: false,
        })
    }

    /// Splits `batches` into validated client batches: `(position, header)`.
    fn validate_client_batches(&self, batches: &[u8]) -> Result<Vec<(u64, BatchHeader)>> {
        let mut out = Vec::with_capacity(1);
        let mut pos = 0usize;
        while pos < batches.len() {
            let rest = batches.get(pos..).unwrap_or(&[]);
            let h = BatchHeader::parse(rest)?;
            let len = h.total_len();
            if len > self.config.max_message_bytes as usize {
                return Err(Error::RecordTooLarge {
                    size: len,
                    max: self.config.max_message_bytes,
                });
            }
            let bytes = rest.get(..len).ok_or(Error::InvalidBatch(
                weir_protocol::batch::BatchError::Truncated {
                    needed: len,
                    have: rest.len(),
                },
            ))?;
            let h = validate_batch(bytes)?;
            if h.records_count <= 0 || h.records_count - 1 != h.last_offset_delta {
                return Err(Error::InvalidRecord(format!(
                    "record count {} does not match last offset delta {}",
                    h.records_count, h.last_offset_delta
                )));
            }
            if h.is_control() {
                return Err(Error::InvalidRecord(
                    "clients may not write control batches".into(),
                ));
            }
            if h.producer_id >= 0 && h.base_sequence < 0 {
                return Err(Error::InvalidRecord(
                    "idempotent batch without a base sequence".into(),
                ));
            }
            if h.timestamp_type() == TimestampType::LogAppendTime {
                return Err(Error::InvalidRecord(
                    "producers may not set LogAppendTime".into(),
                ));
            }
            out.push((pos as u64, h));
            pos += len;
        }
        if out.is_empty() {
            return Err(Error::InvalidRecord("no batches to append".into()));
        }
        Ok(out)
    }

    /// Whether appending `incoming` bytes (largest timestamp `max_ts`, ending at
    /// `last_offset`) must first roll the active segment.
    fn would_roll(
        &self,
        incoming: u64,
        max_ts: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<bool> {
        Ok(self.active()?.should_roll(
            incoming,
            max_ts,
            last_offset,
            self.config.segment_bytes,
            self.config.segment_ms,
            now_ms,
        ))
    }

    fn maybe_roll(
        &mut self,
        incoming: u64,
        max_ts: i64,
        base: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<()> {
        if self.would_roll(incoming, max_ts, last_offset, now_ms)? {
            self.roll(base, now_ms)?;
        }
        Ok(())
    }

    /// Seals the active segment, makes it durable, snapshots producer state and starts a
    /// new segment at `new_base`.
    pub(crate) fn roll(&mut self, new_base: i64, now_ms: i64) -> Result<()> {
        self.check_poisoned()?;
        self.mark_unclean()?;
        let dir = self.dir.clone();
        {
            let active = self.active_mut()?;
            active.seal()?;
        }
        // Everything before the new segment becomes durable now, so recovery never has to
        // scan sealed segments.
        if let Err(e) = self.active()?.flush() {
            self.poisoned = true;
            return Err(e);
        }
        self.recovery_point = new_base;
        self.unflushed_messages = 0;
        self.first_unflushed_ms = None;
        let seg = Segment::create(
            &dir,
            new_base,
            self.settings(),
            now_ms,
            prealloc(&self.config),
        )?;
        self.segments.insert(new_base, seg);
        snapshot::write(&dir, new_base, &self.producers)?;
        snapshot::prune(&dir, self.log_start_offset, new_base, SNAPSHOTS_KEPT)?;
        self.write_checkpoint(false)?;
        self.last_checkpoint_ms = now_ms;
        Ok(())
    }

    /// Forces a roll of a non-empty active segment (tests, admin tools, the cleaner).
    pub fn roll_now(&mut self, now_ms: i64) -> Result<()> {
        if self.active()?.size() == 0 {
            return Ok(());
        }
        let leo = self.log_end_offset();
        self.roll(leo, now_ms)
    }
}
