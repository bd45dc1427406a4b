//! Writes a connection's responses. Frames gather in a buffer that is written when no
//! further response is queued (or the buffer grows large); records a Fetch left in segment
//! files go from the page cache to the socket with `sendfile`, right after the frame bytes
//! that precede them, so they are never copied into the broker's memory.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;
use weir_protocol::native::frame::{write_frame, FrameError};
use weir_protocol::native::spliced::{fetch_frame, Piece};
use weir_storage::FileSlice;

use crate::handlers::Reply;

/// Buffered bytes that are written at once rather than after the next response.
const WRITE_AT: usize = 64 * 1024;
/// A buffer grown past this by one large response is given back after writing.
const KEEP_CAPACITY: usize = 1 << 20;
/// Responses (fetches) may legitimately exceed the request limit.
const MAX_RESPONSE: usize = u32::MAX as usize;

/// Why a response could not be written; the connection closes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The response cannot be framed (larger than a frame can be).
    #[error("unframeable response: {0}")]
    Frame(#[from] FrameError),
    /// The socket failed, or a segment file ended before its slice did.
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
}

/// The write half of a connection, with its buffer (native and Kafka listeners).
pub(crate) struct ResponseWriter {
    sock: OwnedWriteHalf,
    buf: BytesMut,
}

impl ResponseWriter {
    pub(crate) fn new(sock: OwnedWriteHalf) -> Self {
        ResponseWriter {
            sock,
            buf: BytesMut::new(),
        }
    }

    /// Queues a native response; writes what is buffered when it is large, or when a
    /// slice of a file must follow it.
    pub(crate) async fn feed(&mut self, reply: Reply) -> Result<(), WriteError> {
        if reply.in_file.iter().all(Option::is_none) {
            write_frame(&reply.envelope, &mut self.buf, MAX_RESPONSE)?;
            self.maybe_flush().await?;
            return Ok(());
        }
        let pieces = fetch_frame(&reply.envelope, reply.in_file, FileSlice::len, MAX_RESPONSE)?;
        self.feed_pieces(pieces).await
    }

    /// Queues a frame body behind its 4-byte length (the Kafka framing).
    pub(crate) async fn feed_body(&mut self, body: &[u8]) -> Result<(), WriteError> {
        let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge {
            len: body.len(),
            max: MAX_RESPONSE,
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(body);
        self.maybe_flush().await?;
        Ok(())
    }

    /// Queues a whole frame given as pieces, sending the file slices among them.
    pub(crate) async fn feed_pieces(
        &mut self,
        pieces: Vec<Piece<FileSlice>>,
    ) -> Result<(), WriteError> {
        for piece in pieces {
            match piece {
                Piece::Inline(bytes) => self.buf.extend_from_slice(&bytes),
                Piece::External(slice) => {
                    self.flush().await?;
                    self.send_file(&slice).await?;
                }
            }
        }
        self.maybe_flush().await?;
        Ok(())
    }

    async fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= WRITE_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything buffered.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.sock.write_all(&self.buf).await?;
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = BytesMut::new();
            }
        }
        Ok(())
    }

    /// Sends a slice with `sendfile`, waiting for the socket whenever its buffer is full.
    async fn send_file(&mut self, slice: &FileSlice) -> io::Result<()> {
        use std::os::fd::AsFd;
        let stream: &tokio::net::TcpStream = self.sock.as_ref();
        let mut sent = 0;
        while sent < slice.len() {
            stream.writable().await?;
            match stream.try_io(Interest::WRITABLE, || slice.send_to(stream.as_fd(), sent)) {
                Ok(n) => sent += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
