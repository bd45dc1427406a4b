//! The four record codecs Kafka allows, with a hard cap on decompressed size.
//!
//! Every decompressor stops once the output would pass `max_len`, so a few kilobytes of
//! gzip or zstd cannot make the broker allocate gigabytes. Formats written match what the
//! Java client writes: gzip member, snappy in xerial (snappy-java) framing with 32 KiB
//! blocks, LZ4 frame with independent 64 KiB blocks, standard zstd frames. Readers accept
//! what other clients send too: raw snappy blocks (librdkafka, Sarama) and LZ4 frames with
//! checksums (Sarama).

use std::cell::RefCell;
use std::io::{Read, Write};

use super::{BatchError, Compression};

/// snappy-java's stream magic: `\x82SNAPPY\0`.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic + int32 version + int32 minimum compatible version.
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size.
const XERIAL_BLOCK: usize = 32 * 1024;
/// zlib's default level, which is what Kafka's gzip level -1 means.
const GZIP_LEVEL: u32 = 6;
/// Kafka's default `compression.zstd.level`.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

fn codec_err(codec: Compression, e: impl std::fmt::Display) -> BatchError {
    BatchError::Compression {
        codec: codec.name(),
        message: e.to_string(),
    }
}

/// Compresses `input` with `codec`, appending the compressed stream to `out`.
pub fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<(), BatchError> {
    compress_with_zstd_level(codec, DEFAULT_ZSTD_LEVEL, input, out)
}

/// [`compress`] with zstd at `zstd_level` (Kafka's `compression.zstd.level`; other codecs
/// ignore it).
pub fn compress_with_zstd_level(
    codec: Compression,
    zstd_level: i32,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
            enc.write_all(input).map_err(|e| codec_err(codec, e))?;
            enc.finish().map_err(|e| codec_err(codec, e))?;
        }
        Compression::Snappy => compress_xerial(input, out)?,
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent);
            let mut enc = FrameEncoder::with_frame_info(info, out);
            enc.write_all(input).map_err(|e| codec_err(codec, e))?;
            enc.finish().map_err(|e| codec_err(codec, e))?;
        }
        Compression::Zstd => compress_zstd(input, zstd_level, out)?,
    }
    Ok(())
}

fn compress_xerial(input: &[u8], out: &mut Vec<u8>) -> Result<(), BatchError> {
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut enc = snap::raw::Encoder::new();
    for block in input.chunks(XERIAL_BLOCK) {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        out.resize(start + snap::raw::max_compress_len(block.len()), 0);
        let n = match out.get_mut(start..) {
            Some(dst) => enc
                .compress(block, dst)
                .map_err(|e| codec_err(Compression::Snappy, e))?,
            None => 0,
        };
        out.truncate(start + n);
        let n = i32::try_from(n).map_err(|_| BatchError::Unencodable("snappy block too large"))?;
        if let Some(len) = out.get_mut(len_at..len_at + 4) {
            len.copy_from_slice(&n.to_be_bytes());
        }
    }
    Ok(())
}

/// Decompresses `input`, failing with [`BatchError::DecompressedTooLarge`] rather than
/// producing more than `max_len` bytes.
pub fn decompress(codec: Compression, input: &[u8], max_len: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    decompress_into(codec, input, max_len, &mut out)?;
    Ok(out)
}

/// [`decompress`] into `out`, which is cleared first: a caller that keeps `out` between
/// batches reuses its allocation. On error `out` holds an unspecified prefix.
pub fn decompress_into(
    codec: Compression,
    input: &[u8],
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    out.clear();
    match codec {
        Compression::None => {
            if input.len() > max_len {
                return Err(too_large(codec, max_len));
            }
            out.extend_from_slice(input);
            Ok(())
        }
        Compression::Gzip => read_capped(
            codec,
            input.len(),
            flate2::bufread::MultiGzDecoder::new(input),
            max_len,
            out,
        ),
        Compression::Snappy => {
            if input.len() >= XERIAL_HEADER_LEN && input.starts_with(&XERIAL_MAGIC) {
                decompress_xerial(input, max_len, out)
            } else {
                decompress_snappy_block(input, max_len, out)
            }
        }
        Compression::Lz4 => read_capped(
            codec,
            input.len(),
            lz4_flex::frame::FrameDecoder::new(input),
            max_len,
            out,
        ),
        Compression::Zstd => decompress_zstd(input, max_len, out),
    }
}

thread_local! {
    // A zstd context costs more to create (about a megabyte of tables at level 3) than
    // coding a 16 KiB batch does, so each thread keeps one of each. Both are reset at the
    // start of every use, so an error midway cannot leak into the next batch.
    static ZSTD_CCTX: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

fn compress_zstd(input: &[u8], level: i32, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let codec = Compression::Zstd;
    ZSTD_CCTX.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|e| codec_err(codec, e))?;
        match slot.as_mut() {
            Some((current, c)) if *current != level => {
                c.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))
                    .map_err(|e| codec_err(codec, e))?;
                *current = level;
            }
            Some(_) => {}
            None => {
                let c = zstd::bulk::Compressor::new(level).map_err(|e| codec_err(codec, e))?;
                *slot = Some((level, c));
            }
        }
        match slot.as_mut() {
            Some((_, c)) => {
                // Straight into `out` after what it holds: no frame-sized temporary and
                // no second copy of the compressed bytes.
                let start = out.len();
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                let mut dst = std::io::Cursor::new(&mut *out);
                dst.set_position(start as u64);
                c.compress_to_buffer(input, &mut dst)
                    .map_err(|e| codec_err(codec, e))?;
            }
            None => {
                let frame = zstd::bulk::compress(input, level).map_err(|e| codec_err(codec, e))?;
                out.extend_from_slice(&frame);
            }
        }
        Ok(())
    })
}

fn decompress_zstd(input: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let codec = Compression::Zstd;
    ZSTD_DCTX.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|e| codec_err(codec, e))?;
        if slot.is_none() {
            *slot = zstd::zstd_safe::DCtx::try_create();
        }
        match slot.as_mut() {
            Some(ctx) => {
                if let Some(size) = single_frame_size(input, max_len) {
                    // One call into the declared size: the streaming reader would copy
                    // every byte once more through its window buffer.
                    out.reserve(size);
                    ctx.reset(zstd::zstd_safe::ResetDirective::SessionOnly)
                        .map_err(|code| codec_err(codec, zstd::zstd_safe::get_error_name(code)))?;
                    let n = ctx
                        .decompress(&mut *out, input)
                        .map_err(|code| codec_err(codec, zstd::zstd_safe::get_error_name(code)))?;
                    if n != size {
                        return Err(codec_err(codec, "frame shorter than its declared size"));
                    }
                    return Ok(());
                }
                let dec = zstd::stream::read::Decoder::with_context(input, ctx);
                read_capped(codec, input.len(), dec, max_len, out)
            }
            None => {
                let dec = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| codec_err(codec, e))?;
                read_capped(codec, input.len(), dec, max_len, out)
            }
        }
    })
}

/// The content size of `input` when it is exactly one zstd frame that declares a size
/// within `max_len` (what zstd's one-shot compression, ours and Java's, writes). Anything
/// else (several frames, skippable frames, no declared size, garbage) goes through the
/// streaming reader, which enforces the cap as it reads.
pub(crate) fn single_frame_size(input: &[u8], max_len: usize) -> Option<usize> {
    let size = zstd::zstd_safe::get_frame_content_size(input).ok()??;
    let size = usize::try_from(size).ok()?;
    if size > max_len {
        return None;
    }
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(input).ok()?;
    (frame_len == input.len()).then_some(size)
}

fn too_large(codec: Compression, limit: usize) -> BatchError {
    BatchError::DecompressedTooLarge {
        codec: codec.name(),
        limit,
    }
}

/// Reads at most `max_len + 1` bytes: one byte past the cap proves the stream is too big
/// without ever holding more than the cap.
fn read_capped(
    codec: Compression,
    input_len: usize,
    reader: impl Read,
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    // A guess at the ratio saves most regrowth; the cap bounds it either way.
    out.reserve(input_len.saturating_mul(4).min(max_len));
    reader
        .take(limit)
        .read_to_end(out)
        .map_err(|e| codec_err(codec, e))?;
    if out.len() > max_len {
        return Err(too_large(codec, max_len));
    }
    Ok(())
}

/// One raw snappy block appended to `out`; the block's declared length is checked against
/// the cap before anything is allocated.
fn decompress_snappy_block(
    block: &[u8],
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    let codec = Compression::Snappy;
    let n = snap::raw::decompress_len(block).map_err(|e| codec_err(codec, e))?;
    let total = out.len().saturating_add(n);
    if total > max_len {
        return Err(too_large(codec, max_len));
    }
    let start = out.len();
    out.resize(total, 0);
    let written = match out.get_mut(start..) {
        Some(dst) => snap::raw::Decoder::new()
            .decompress(block, dst)
            .map_err(|e| codec_err(codec, e))?,
        None => 0,
    };
    out.truncate(start + written);
    Ok(())
}

fn decompress_xerial(input: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let malformed = |m: &str| codec_err(Compression::Snappy, format!("xerial framing: {m}"));
    let mut rest = input.get(XERIAL_HEADER_LEN..).unwrap_or(&[]);
    while !rest.is_empty() {
        // Newer snappy-java writers may repeat the stream header between chunks.
        if rest.len() >= XERIAL_HEADER_LEN && rest.starts_with(&XERIAL_MAGIC) {
            rest = rest.get(XERIAL_HEADER_LEN..).unwrap_or(&[]);
            continue;
        }
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed("truncated chunk length"))?;
        let len = usize::try_from(i32::from_be_bytes(len_bytes))
            .map_err(|_| malformed("negative chunk length"))?;
        let chunk = rest
            .get(4..4 + len)
            .ok_or_else(|| malformed("chunk past end of input"))?;
        decompress_snappy_block(chunk, max_len, out)?;
        rest = rest.get(4 + len..).unwrap_or(&[]);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn round_trip(codec: Compression, data: &[u8]) -> Vec<u8> {
        let mut c = Vec::new();
        compress(codec, data, &mut c).unwrap();
        decompress(codec, &c, data.len()).unwrap()
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_multi_block() {
        let big: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect();
        for codec in ALL {
            for data in [&[][..], b"hello kafka", &big[..]] {
                assert_eq!(round_trip(codec, data), data, "{codec:?}");
            }
        }
    }

    #[test]
    fn java_style_formats_on_the_wire() {
        let mut c = Vec::new();
        compress(Compression::Snappy, b"abc", &mut c).unwrap();
        assert_eq!(&c[..16], b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01");
        let mut c = Vec::new();
        compress(Compression::Lz4, b"abc", &mut c).unwrap();
        // Magic, then FLG 0x60 (v01, independent blocks), BD 0x40 (64 KiB), as Kafka writes.
        assert_eq!(&c[..6], &[0x04, 0x22, 0x4D, 0x18, 0x60, 0x40]);
        let mut c = Vec::new();
        compress(Compression::Gzip, b"abc", &mut c).unwrap();
        assert_eq!(&c[..2], &[0x1F, 0x8B]);
    }

    #[test]
    fn raw_snappy_and_repeated_xerial_header_accepted() {
        let data = b"raw snappy block as librdkafka writes it";
        let raw = snap::raw::Encoder::new().compress_vec(data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 1024).unwrap(), data);

        let mut framed = Vec::new();
        compress(Compression::Snappy, b"first ", &mut framed).unwrap();
        let mut second = Vec::new();
        compress(Compression::Snappy, b"second", &mut second).unwrap();
        framed.extend_from_slice(&second);
        assert_eq!(
            decompress(Compression::Snappy, &framed, 1024).unwrap(),
            b"first second"
        );
    }

    #[test]
    fn bombs_hit_the_cap() {
        let zeros = vec![0u8; 4 << 20];
        for codec in ALL {
            let mut c = Vec::new();
            compress(codec, &zeros, &mut c).unwrap();
            let err = decompress(codec, &c, 1 << 20).unwrap_err();
            assert!(
                matches!(err, BatchError::DecompressedTooLarge { limit, .. } if limit == 1 << 20),
                "{codec:?}: {err:?}"
            );
            // Exactly at the cap is fine.
            assert_eq!(
                decompress(codec, &c, zeros.len()).unwrap().len(),
                zeros.len()
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let inputs: [&[u8]; 5] = [
            b"",
            b"\x1f\x8b\x08\0garbage",
            b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01\x7f\xff\xff\xff",
            b"\x04\x22\x4d\x18\x60\x40\x82\xff\xff\xff\xff",
            b"\x28\xb5\x2f\xfd\xff\xff",
        ];
        for codec in ALL {
            for input in inputs {
                let _ = decompress(codec, input, 1 << 16);
            }
        }
        assert!(decompress(Compression::Gzip, b"not gzip", 100).is_err());
        assert!(decompress(Compression::Zstd, b"not zstd", 100).is_err());
        assert!(decompress(Compression::Lz4, b"not lz4!", 100).is_err());
    }

    #[test]
    fn zstd_context_survives_errors_and_bombs() {
        let mut good = Vec::new();
        compress(Compression::Zstd, b"after the failure", &mut good).unwrap();
        let mut bomb = Vec::new();
        compress(Compression::Zstd, &vec![0u8; 1 << 20], &mut bomb).unwrap();
        for _ in 0..3 {
            assert!(decompress(Compression::Zstd, &good[..good.len() / 2], 1024).is_err());
            assert!(decompress(Compression::Zstd, &bomb, 1024).is_err());
            assert_eq!(
                decompress(Compression::Zstd, &good, 1024).unwrap(),
                b"after the failure"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn codecs_round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096), idx in 0usize..5) {
            let codec = ALL[idx];
            prop_assert_eq!(round_trip(codec, &data), data);
        }
    }
}
