use thiserror::Error;

/// Why a byte sequence is not a valid RecordBatch v2.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a batch header, or than the batch length field announces.
    #[error("batch truncated: need {needed} bytes, have {have}")]
    Truncated {
        /// Bytes required.
        needed: usize,
        /// Bytes available.
        have: usize,
    },
    /// The batchLength field is below the 49-byte minimum or otherwise impossible.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// Magic byte other than 2.
    #[error("unsupported batch magic {0} (only magic 2 is supported)")]
    UnsupportedMagic(i8),
    /// Stored CRC-32C differs from the one computed over bytes 21..end.
    #[error("batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// Compression codec id 5..7.
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    /// recordsCount and lastOffsetDelta disagree, or the count is not positive.
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    CountMismatch {
        /// recordsCount from the header.
        count: i32,
        /// lastOffsetDelta from the header.
        last_offset_delta: i32,
    },
    /// A record inside the batch is malformed.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The compressed payload could not be (de)compressed.
    #[error("compression error ({codec}): {message}")]
    Compression {
        /// Codec name.
        codec: &'static str,
        /// What the codec said.
        message: String,
    },
    /// Decompressing the records would exceed the caller's size cap (a zip bomb, or a
    /// batch larger than the broker accepts).
    #[error("decompressed records exceed {limit} bytes ({codec})")]
    DecompressedTooLarge {
        /// Codec name.
        codec: &'static str,
        /// The cap that was hit.
        limit: usize,
    },
    /// Record `index` (0-based within the batch) could not be parsed.
    #[error("malformed record {index}: {reason}")]
    MalformedRecord {
        /// Position of the record in the batch.
        index: u32,
        /// What was wrong.
        reason: &'static str,
    },
    /// The records payload does not hold exactly recordsCount records.
    #[error("records count {declared} but the payload holds {found} record(s){trailing}", trailing = if *.trailing_bytes > 0 { " and trailing bytes" } else { "" })]
    RecordCountMismatch {
        /// recordsCount from the header.
        declared: i32,
        /// Records that parsed before the payload ended (or before trailing bytes).
        found: u32,
        /// Bytes left after the declared number of records.
        trailing_bytes: usize,
    },
    /// Offset deltas are not strictly increasing within [0, lastOffsetDelta].
    #[error("record {index} has offset delta {offset_delta} out of order (last offset delta {last_offset_delta})")]
    OffsetDeltaOutOfOrder {
        /// Position of the record in the batch.
        index: u32,
        /// Its offset delta.
        offset_delta: i32,
        /// lastOffsetDelta from the header.
        last_offset_delta: i32,
    },
    /// A record without a key where keys are required (compacted topics).
    #[error("record with offset delta {offset_delta} has no key")]
    MissingKey {
        /// Offset delta of the keyless record.
        offset_delta: i32,
    },
    /// A control batch whose record is not a valid control record.
    #[error("invalid control record: {0}")]
    InvalidControlRecord(&'static str),
    /// The builder was given something the format cannot represent.
    #[error("cannot encode batch: {0}")]
    Unencodable(&'static str),
}
