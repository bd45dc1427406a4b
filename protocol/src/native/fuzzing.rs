//! Properties the fuzz targets check, kept here so the corpus-replay test on stable runs
//! exactly what libFuzzer runs.

use bytes::BytesMut;
use prost::Message;
use tokio_util::codec::{Decoder, Encoder};

use super::{ClientCodec, ServerCodec};

/// Frame limit used while fuzzing: small, so the size check fires often.
const FUZZ_MAX_FRAME: usize = 4096;

/// Feeds `data` to both decoders, whole and split at a data-chosen point. Must never
/// panic; whatever decodes must re-encode to a frame that decodes to the same envelope.
///
/// # Panics
/// When the property is violated (that is the point: the fuzzer reports it).
pub fn frame_decode(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (head, tail) = data.split_at(split);

    let mut server = ServerCodec::new(FUZZ_MAX_FRAME);
    let mut buf = BytesMut::from(head);
    let mut requests = Vec::new();
    let mut failed = drain(&mut server, &mut buf, &mut requests);
    if !failed {
        buf.extend_from_slice(tail);
        failed = drain(&mut server, &mut buf, &mut requests);
    }
    let _ = failed;
    for req in requests {
        let mut out = BytesMut::new();
        if ClientCodec::new(FUZZ_MAX_FRAME)
            .encode(req.clone(), &mut out)
            .is_ok()
        {
            let again = ServerCodec::new(FUZZ_MAX_FRAME).decode(&mut out);
            assert!(
                matches!(&again, Ok(Some(r)) if *r == req),
                "request did not round-trip"
            );
        }
    }

    let mut client = ClientCodec::new(FUZZ_MAX_FRAME);
    let mut buf = BytesMut::from(data);
    let mut responses = Vec::new();
    drain(&mut client, &mut buf, &mut responses);
    for resp in responses {
        assert_eq!(resp.encoded_len(), resp.encode_to_vec().len());
    }
}

/// Decodes frames until more bytes are needed (false) or an error ends the stream (true).
fn drain<D: Decoder>(codec: &mut D, buf: &mut BytesMut, out: &mut Vec<D::Item>) -> bool {
    loop {
        match codec.decode(buf) {
            Ok(Some(item)) => out.push(item),
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}
