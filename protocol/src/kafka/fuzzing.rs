//! The property the `kafka_header_decode` fuzz target checks, here so that the stable
//! corpus-replay test runs the same code.

use bytes::Bytes;

use super::header::decode;

/// Decodes `data` as a request frame body. Never panics; when a header is read, the body
/// left over is a suffix of the input and every shorter prefix of the header fails.
pub fn header_decode(data: &[u8]) {
    let full = Bytes::copy_from_slice(data);
    let mut body = full.clone();
    if decode(&mut body).is_ok() {
        let consumed = full.len() - body.len();
        assert!(consumed >= 8, "a header is at least 8 bytes");
        assert_eq!(
            full.slice(consumed..),
            body,
            "body is not the input's suffix"
        );
        if let Some(cut) = consumed.checked_sub(1) {
            let mut short = full.slice(..cut);
            assert!(decode(&mut short).is_err(), "truncated header accepted");
        }
    }
}
