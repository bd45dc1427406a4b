//! A minimal RESP2 client codec for the Redis driver: command encoding, a scan that finds
//! where one reply ends without allocating (pipelined XADD replies are only counted), and
//! a zero-copy decoder for the replies whose contents matter (XREAD).

use bytes::{BufMut, Bytes, BytesMut};

/// Largest bulk string or array accepted; a larger length is treated as a broken reply.
const MAX_LEN: i64 = 512 << 20;
/// Nesting limit; XREAD replies nest four deep.
const MAX_DEPTH: usize = 8;

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+OK`.
    Simple(Bytes),
    /// `-ERR ...`.
    Error(Bytes),
    /// `:42`.
    Integer(i64),
    /// `$n` (None = null bulk).
    Bulk(Option<Bytes>),
    /// `*n` (None = null array).
    Array(Option<Vec<Frame>>),
}

impl Frame {
    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Frame::Bulk(Some(b)) | Frame::Simple(b) => Some(b),
            _ => None,
        }
    }

    /// The items of an array (empty for a null array).
    pub fn items(&self) -> Option<&[Frame]> {
        match self {
            Frame::Array(Some(v)) => Some(v),
            Frame::Array(None) => Some(&[]),
            _ => None,
        }
    }
}

/// Appends one command as an array of bulk strings.
pub fn encode(buf: &mut BytesMut, args: &[&[u8]]) {
    put_header(buf, b'*', args.len());
    for a in args {
        put_header(buf, b'$', a.len());
        buf.put_slice(a);
        buf.put_slice(b"\r\n");
    }
}

fn put_header(buf: &mut BytesMut, kind: u8, n: usize) {
    let tmp = itoa_buf(n);
    buf.put_u8(kind);
    buf.put_slice(tmp.digits());
    buf.put_slice(b"\r\n");
}

struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn digits(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }
}

fn itoa_buf(mut n: usize) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        if let Some(slot) = d.buf.get_mut(d.start) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || d.start == 0 {
            return d;
        }
    }
}

/// End of the line starting at `from` (index of its `\r`).
fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    Some(from + i)
}

fn parse_int(digits: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(digits)))
}

/// The end (exclusive) of the reply starting at `at`, `None` if more bytes are needed.
pub fn frame_end(buf: &[u8], at: usize) -> Result<Option<usize>, String> {
    frame_end_depth(buf, at, 0)
}

fn frame_end_depth(buf: &[u8], at: usize, depth: usize) -> Result<Option<usize>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deep".into());
    }
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, at + 1) else {
        return Ok(None);
    };
    let after = eol + 2;
    match kind {
        b'+' | b'-' | b':' => Ok(Some(after)),
        b'$' => {
            let n = parse_int(buf.get(at + 1..eol).unwrap_or(&[]))?;
            if n < 0 {
                return Ok(Some(after));
            }
            if n > MAX_LEN {
                return Err(format!("bulk of {n} bytes"));
            }
            let end = after + n as usize + 2;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' => {
            let n = parse_int(buf.get(at + 1..eol).unwrap_or(&[]))?;
            if n > MAX_LEN {
                return Err(format!("array of {n} items"));
            }
            let mut pos = after;
            for _ in 0..n.max(0) {
                match frame_end_depth(buf, pos, depth + 1)? {
                    Some(p) => pos = p,
                    None => return Ok(None),
                }
            }
            Ok(Some(pos))
        }
        other => Err(format!("unexpected reply type byte {other:#04x}")),
    }
}

/// Whether the complete reply at the start of `buf` is an error.
pub fn is_error(buf: &[u8]) -> bool {
    buf.first() == Some(&b'-')
}

/// Decodes one complete reply (as delimited by [`frame_end`]) without copying strings.
pub fn decode(reply: &Bytes) -> Result<Frame, String> {
    let (frame, _) = decode_at(reply, 0, 0)?;
    Ok(frame)
}

fn decode_at(b: &Bytes, at: usize, depth: usize) -> Result<(Frame, usize), String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deep".into());
    }
    let kind = *b.get(at).ok_or("truncated reply")?;
    let eol = line_end(b, at + 1).ok_or("truncated reply")?;
    let line = || b.slice(at + 1..eol);
    let after = eol + 2;
    match kind {
        b'+' => Ok((Frame::Simple(line()), after)),
        b'-' => Ok((Frame::Error(line()), after)),
        b':' => Ok((Frame::Integer(parse_int(&line())?), after)),
        b'$' => {
            let n = parse_int(&line())?;
            if n < 0 {
                return Ok((Frame::Bulk(None), after));
            }
            let end = after + n as usize;
            if end + 2 > b.len() || n > MAX_LEN {
                return Err("truncated bulk string".into());
            }
            Ok((Frame::Bulk(Some(b.slice(after..end))), end + 2))
        }
        b'*' => {
            let n = parse_int(&line())?;
            if n < 0 {
                return Ok((Frame::Array(None), after));
            }
            let mut items = Vec::with_capacity((n as usize).min(4096));
            let mut pos = after;
            for _ in 0..n {
                let (f, p) = decode_at(b, pos, depth + 1)?;
                items.push(f);
                pos = p;
            }
            Ok((Frame::Array(Some(items)), pos))
        }
        other => Err(format!("unexpected reply type byte {other:#04x}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands() {
        let mut b = BytesMut::new();
        encode(&mut b, &[b"XADD", b"s", b"*", b"v", b""]);
        assert_eq!(
            &b[..],
            b"*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nv\r\n$0\r\n\r\n"
        );
        let mut b = BytesMut::new();
        encode(&mut b, &[&[b'x'; 1234][..]]);
        assert!(b.starts_with(b"*1\r\n$1234\r\nxxx"));
    }

    #[test]
    fn finds_reply_ends_and_waits_for_more() {
        let two = b"$15\r\n1700000000000-0\r\n-ERR nope\r\n";
        assert_eq!(frame_end(two, 0), Ok(Some(22)));
        assert_eq!(frame_end(two, 22), Ok(Some(two.len())));
        assert!(is_error(&two[22..]));
        assert_eq!(frame_end(b"$15\r\n1700", 0), Ok(None));
        assert_eq!(frame_end(b"*2\r\n:1\r\n", 0), Ok(None));
        assert_eq!(frame_end(b"*-1\r\n", 0), Ok(Some(5)));
        assert_eq!(frame_end(b"", 0), Ok(None));
        assert!(frame_end(b"?x\r\n", 0).is_err());
        assert!(frame_end(b"$abc\r\n", 0).is_err());
        assert!(frame_end(b"$99999999999\r\n", 0).is_err());
    }

    #[test]
    fn decodes_an_xread_reply() {
        let raw = Bytes::from_static(
            b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nv\r\n$5\r\nhello\r\n",
        );
        assert_eq!(frame_end(&raw, 0), Ok(Some(raw.len())));
        let f = decode(&raw).unwrap_or(Frame::Integer(-1));
        let streams = f.items().unwrap_or_default();
        let s = streams.first().and_then(Frame::items).unwrap_or_default();
        assert_eq!(
            s.first().and_then(Frame::as_bytes).map(|b| &b[..]),
            Some(&b"s"[..])
        );
        let entries = s.get(1).and_then(Frame::items).unwrap_or_default();
        let e = entries.first().and_then(Frame::items).unwrap_or_default();
        assert_eq!(
            e.first().and_then(Frame::as_bytes).map(|b| &b[..]),
            Some(&b"1-0"[..])
        );
        let fields = e.get(1).and_then(Frame::items).unwrap_or_default();
        assert_eq!(
            fields.get(1).and_then(Frame::as_bytes).map(|b| &b[..]),
            Some(&b"hello"[..])
        );
        assert_eq!(
            decode(&Bytes::from_static(b"*-1\r\n")),
            Ok(Frame::Array(None))
        );
        assert_eq!(
            decode(&Bytes::from_static(b":-7\r\n")),
            Ok(Frame::Integer(-7))
        );
        assert!(decode(&Bytes::from_static(b"$5\r\nab\r\n")).is_err());
    }
}
