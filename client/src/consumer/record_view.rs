//! A consumed record read in place, for [`super::Consumer::poll_each`]: key, value and
//! headers borrow the fetched bytes, so reading a record allocates nothing and touches no
//! reference count. [`RecordView::to_record`] makes the owned [`ConsumerRecord`] when one
//! is needed.

use std::sync::Arc;

use weir_protocol::batch;

use super::ConsumerRecord;

/// One record, borrowed for the duration of the visit.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    topic: &'a Arc<str>,
    partition: i32,
    source: Source<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// Parsed from the fetched batch.
    Wire(batch::RecordView<'a>),
    /// Decoded earlier (left over from [`super::Consumer::stream`]).
    Decoded(&'a ConsumerRecord),
}

impl<'a> RecordView<'a> {
    pub(crate) fn wire(topic: &'a Arc<str>, partition: i32, r: batch::RecordView<'a>) -> Self {
        RecordView {
            topic,
            partition,
            source: Source::Wire(r),
        }
    }

    pub(crate) fn decoded(r: &'a ConsumerRecord) -> Self {
        RecordView {
            topic: &r.topic,
            partition: r.partition,
            source: Source::Decoded(r),
        }
    }

    /// Topic.
    pub fn topic(&self) -> &'a str {
        self.topic
    }

    /// Partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Offset.
    pub fn offset(&self) -> i64 {
        match self.source {
            Source::Wire(r) => r.offset,
            Source::Decoded(r) => r.offset,
        }
    }

    /// Timestamp (ms).
    pub fn timestamp(&self) -> i64 {
        match self.source {
            Source::Wire(r) => r.timestamp,
            Source::Decoded(r) => r.timestamp,
        }
    }

    /// Key; `None` is a null key.
    pub fn key(&self) -> Option<&'a [u8]> {
        match self.source {
            Source::Wire(r) => r.key,
            Source::Decoded(r) => r.key.as_deref(),
        }
    }

    /// Value; `None` is a null value.
    pub fn value(&self) -> Option<&'a [u8]> {
        match self.source {
            Source::Wire(r) => r.value,
            Source::Decoded(r) => r.value.as_deref(),
        }
    }

    /// Headers in wire order, as (key bytes, value).
    pub fn headers(&self) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
        match self.source {
            Source::Wire(r) => r.headers().collect(),
            Source::Decoded(r) => r
                .headers
                .iter()
                .map(|h| (h.key.as_bytes(), h.value.as_deref()))
                .collect(),
        }
    }

    /// The owned record (key and value share the fetched buffer; no copy).
    pub fn to_record(&self) -> ConsumerRecord {
        match self.source {
            Source::Wire(r) => {
                let r = r.to_record();
                ConsumerRecord {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r.headers,
                }
            }
            Source::Decoded(r) => r.clone(),
        }
    }
}
