//! Control records: the single record of a control batch. Weir only interprets
//! transaction markers (COMMIT/ABORT); other types (KRaft's) are carried as unknown.
//!
//! Key: int16 version (0) + int16 type. Marker value: int16 version (0) + int32
//! coordinatorEpoch. A negative version is corrupt; a positive one is read as version 0.

use super::builder::{BatchBuilder, BatchOptions, NO_SEQUENCE};
use super::record::{NewRecord, Record};
use super::{BatchError, Compression};

/// The type in a control record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    /// Transaction aborted (type 0).
    Abort,
    /// Transaction committed (type 1).
    Commit,
    /// Any other type (KRaft's 2..6 or future ones); consumers skip these.
    Unknown(i16),
}

impl ControlRecordType {
    /// The type id on the wire.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Unknown(id) => id,
        }
    }

    /// Parses a control record key.
    pub fn parse_key(key: &[u8]) -> Result<Self, BatchError> {
        let (version, kind) = match key {
            [v0, v1, t0, t1, ..] => (
                i16::from_be_bytes([*v0, *v1]),
                i16::from_be_bytes([*t0, *t1]),
            ),
            _ => return Err(BatchError::InvalidControlRecord("key shorter than 4 bytes")),
        };
        if version < 0 {
            return Err(BatchError::InvalidControlRecord("negative key version"));
        }
        Ok(match kind {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Unknown(other),
        })
    }

    /// Key bytes (version 0).
    pub fn key_bytes(self) -> [u8; 4] {
        let t = self.id().to_be_bytes();
        [0, 0, t[0], t[1]]
    }
}

/// A COMMIT or ABORT marker written by a partition leader at the end of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
    /// Epoch of the transaction coordinator that wrote it.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// Reads a control record; `Ok(None)` when it is a control record but not a marker.
    pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<Self>, BatchError> {
        let key = key.ok_or(BatchError::InvalidControlRecord("null key"))?;
        let commit = match ControlRecordType::parse_key(key)? {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            ControlRecordType::Unknown(_) => return Ok(None),
        };
        let (version, epoch) = match value {
            Some([v0, v1, e0, e1, e2, e3, ..]) => (
                i16::from_be_bytes([*v0, *v1]),
                i32::from_be_bytes([*e0, *e1, *e2, *e3]),
            ),
            _ => {
                return Err(BatchError::InvalidControlRecord(
                    "marker value shorter than 6 bytes",
                ))
            }
        };
        if version < 0 {
            return Err(BatchError::InvalidControlRecord("negative marker version"));
        }
        Ok(Some(EndTxnMarker {
            commit,
            coordinator_epoch: epoch,
        }))
    }

    /// Reads a decoded control record.
    pub fn from_record(record: &Record) -> Result<Option<Self>, BatchError> {
        Self::parse(record.key.as_deref(), record.value.as_deref())
    }

    /// Marker value bytes (version 0).
    pub fn value_bytes(&self) -> [u8; 6] {
        let e = self.coordinator_epoch.to_be_bytes();
        [0, 0, e[0], e[1], e[2], e[3]]
    }

    fn record_type(&self) -> ControlRecordType {
        if self.commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        }
    }

    /// The marker batch Kafka writes: transactional + control, one record, uncompressed,
    /// baseSequence -1, base and max timestamp = `timestamp`.
    pub fn build_batch(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp: i64,
    ) -> Result<Vec<u8>, BatchError> {
        let mut b = BatchBuilder::new(BatchOptions {
            compression: Compression::None,
            producer_id,
            producer_epoch,
            base_sequence: NO_SEQUENCE,
            transactional: true,
            control: true,
            ..BatchOptions::default()
        });
        let key = self.record_type().key_bytes();
        let value = self.value_bytes();
        b.push(&NewRecord::new(timestamp, Some(&key), Some(&value)))?;
        b.build()
    }
}
