//! Zig-zag varints (int32) and varlongs (int64) as used inside RecordBatch v2 records.
//!
//! Zig-zag maps small negative numbers to small unsigned ones, then base-128 groups go
//! least-significant first with the high bit marking "more follows". Unlike Kafka's Java
//! reader, overlong encodings (a varint's 5th byte above 0x0F, a varlong's 10th above 0x01)
//! are rejected: they cannot come from a correct writer.

use thiserror::Error;

/// Longest varint encoding.
pub const MAX_VARINT_LEN: usize = 5;
/// Longest varlong encoding.
pub const MAX_VARLONG_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The bytes ended while the continuation bit was still set.
    #[error("varint truncated")]
    Truncated,
    /// Too many bytes, or bits beyond the integer's width.
    #[error("varint too long")]
    TooLong,
}

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn put_unsigned(buf: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        buf.push((u as u8) | 0x80);
        u >>= 7;
    }
    buf.push(u as u8);
}

fn unsigned_len(u: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes one byte.
    let bits = 64 - (u | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends the zig-zag varint encoding of `v`.
pub fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_unsigned(buf, u64::from(zigzag32(v)));
}

/// Appends the zig-zag varlong encoding of `v`.
pub fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_unsigned(buf, zigzag64(v));
}

/// Encoded size of `v` as a varint.
pub fn varint_len(v: i32) -> usize {
    unsigned_len(u64::from(zigzag32(v)))
}

/// Encoded size of `v` as a varlong.
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

/// Reads an unsigned base-128 value of at most `max_len` bytes whose last byte may carry
/// at most `last_max` (so the value fits the target width). Returns value and bytes used.
fn read_unsigned(buf: &[u8], max_len: usize, last_max: u8) -> Result<(u64, usize), VarintError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(max_len) {
        if i + 1 == max_len && b > last_max {
            return Err(VarintError::TooLong);
        }
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if buf.len() >= max_len {
        Err(VarintError::TooLong)
    } else {
        Err(VarintError::Truncated)
    }
}

/// Reads a zig-zag varint from the start of `buf`: (value, bytes consumed).
pub fn read_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    let (u, n) = read_unsigned(buf, MAX_VARINT_LEN, 0x0F)?;
    let u = u as u32;
    Ok((((u >> 1) as i32) ^ -((u & 1) as i32), n))
}

/// Reads a zig-zag varlong from the start of `buf`: (value, bytes consumed).
pub fn read_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    let (u, n) = read_unsigned(buf, MAX_VARLONG_LEN, 0x01)?;
    Ok((((u >> 1) as i64) ^ -((u & 1) as i64), n))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Encodings from Kafka's ByteUtilsTest.
    const VARINTS: &[(i32, &[u8])] = &[
        (0, &[0x00]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (63, &[0x7E]),
        (-64, &[0x7F]),
        (64, &[0x80, 0x01]),
        (-65, &[0x81, 0x01]),
        (8191, &[0xFE, 0x7F]),
        (-8192, &[0xFF, 0x7F]),
        (8192, &[0x80, 0x80, 0x01]),
        (i32::MAX, &[0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
        (i32::MIN, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ];

    #[test]
    fn varint_known_answers() {
        for &(v, bytes) in VARINTS {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf, bytes, "encode {v}");
            assert_eq!(varint_len(v), bytes.len());
            assert_eq!(read_varint(bytes).unwrap(), (v, bytes.len()), "decode {v}");
            // Varlongs share the encoding for values in int32 range.
            assert_eq!(read_varlong(bytes).unwrap(), (i64::from(v), bytes.len()));
        }
    }

    #[test]
    fn varlong_known_answers() {
        let max = [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        let min = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01];
        for (v, bytes) in [(i64::MAX, &max), (i64::MIN, &min)] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(buf, bytes);
            assert_eq!(varlong_len(v), 10);
            assert_eq!(read_varlong(bytes).unwrap(), (v, 10));
        }
    }

    #[test]
    fn invalid_encodings_rejected() {
        // Kafka ByteUtilsTest: 6-byte varint and 11-byte varlong.
        assert_eq!(
            read_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(VarintError::TooLong)
        );
        let mut long = vec![0xFF; 10];
        long.push(0x01);
        assert_eq!(read_varlong(&long), Err(VarintError::TooLong));
        // Overflowing bits in the final byte.
        assert_eq!(
            read_varint(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F]),
            Err(VarintError::TooLong)
        );
        assert_eq!(read_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[0x80, 0x80]), Err(VarintError::Truncated));
        assert_eq!(read_varlong(&[0xFF; 9]), Err(VarintError::Truncated));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn varint_round_trip(v in any::<i32>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            prop_assert_eq!(buf.len(), varint_len(v));
            prop_assert_eq!(read_varint(&buf).unwrap(), (v, buf.len()));
        }

        #[test]
        fn varlong_round_trip(v in any::<i64>()) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            prop_assert_eq!(buf.len(), varlong_len(v));
            prop_assert_eq!(read_varlong(&buf).unwrap(), (v, buf.len()));
        }
    }
}
