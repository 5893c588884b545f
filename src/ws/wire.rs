//! Frames as they go on the wire, and the writer that sends them. A frame is encoded once, header
//! and payload together: an event's frame is made when it is published and the same bytes are
//! written to every subscriber's socket by vectored writes. tungstenite's sink would copy each
//! message into every connection's write buffer first; at 1,000 subscribers that copy is most of
//! the cost of a delivery.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Poll, ready};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::Utf8Bytes};

/// A complete server-to-client frame (unmasked, final). Cloning shares the bytes.
#[derive(Clone, Debug)]
pub struct WireFrame {
    bytes: Bytes,
    /// Where the payload starts.
    header: u8,
}

/// Frames handed to the socket by one write: enough to fill a loopback socket's buffer with
/// ~200-byte frames, small enough for the slices to live on the stack of one poll.
const SLICES_PER_WRITE: usize = 64;

impl WireFrame {
    /// A text frame (the caller's payload is valid UTF-8: it is a `String`).
    pub fn text(payload: &str) -> WireFrame {
        let header = FrameHeader {
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        };
        let length = payload.len() as u64;
        let mut bytes = Vec::with_capacity(header.len(length) + payload.len());
        // Writing to a Vec cannot fail.
        let _ = header.format(length, &mut bytes);
        let start = bytes.len();
        bytes.extend_from_slice(payload.as_bytes());
        WireFrame {
            bytes: Bytes::from(bytes),
            header: start as u8,
        }
    }

    /// A ping without payload (the heartbeat): the same two static bytes every time.
    pub fn ping() -> WireFrame {
        WireFrame {
            bytes: Bytes::from_static(&[0x89, 0x00]),
            header: 2,
        }
    }

    /// The answer to a client's ping: its payload back.
    pub fn pong(payload: Bytes) -> WireFrame {
        Self::control(Frame::pong(payload))
    }

    /// A close frame; the reason is cut to the 123 bytes a control frame has room for.
    pub fn close(code: u16, reason: &str) -> WireFrame {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Self::control(Frame::close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: Utf8Bytes::from(&reason[..end]),
        })))
    }

    fn control(frame: Frame) -> WireFrame {
        let header = frame.header().len(frame.payload().len() as u64);
        let mut bytes = Vec::with_capacity(frame.len());
        let _ = frame.format(&mut bytes);
        WireFrame {
            bytes: Bytes::from(bytes),
            header: header as u8,
        }
    }

    /// The payload: for a text frame, its JSON.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[usize::from(self.header)..]
    }

    /// The payload of a text frame as text.
    pub fn text_payload(&self) -> &str {
        std::str::from_utf8(self.payload()).unwrap_or_default()
    }
}

/// Writes frames to a socket without copying them.
pub struct FrameWriter<W> {
    io: W,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(io: W) -> Self {
        FrameWriter { io }
    }

    /// Writes every frame, in order, then flushes. Each write hands the socket up to
    /// [`SLICES_PER_WRITE`] frames; a partial write resumes inside the frame it stopped in.
    pub async fn write_all(&mut self, frames: &[WireFrame]) -> io::Result<()> {
        let (mut index, mut offset) = (0, 0);
        let io = &mut self.io;
        // A poll function, not an async loop: the slices are built per poll on the stack and are
        // not kept in the connection's future between polls.
        poll_fn(|cx| {
            while index < frames.len() {
                let batch = &frames[index..frames.len().min(index + SLICES_PER_WRITE)];
                let first = &batch[0].bytes[offset..];
                let mut written = if batch.len() == 1 {
                    // One frame (an event at a time): a plain write, which on a TCP socket is
                    // `send`, a shorter path through the kernel than `writev`.
                    ready!(Pin::new(&mut *io).poll_write(cx, first))?
                } else {
                    let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
                    slices[0] = IoSlice::new(first);
                    for (slice, frame) in slices[1..].iter_mut().zip(&batch[1..]) {
                        *slice = IoSlice::new(&frame.bytes);
                    }
                    ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..batch.len()]))?
                };
                if written == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                while written > 0 {
                    let left = frames[index].bytes.len() - offset;
                    if written >= left {
                        written -= left;
                        index += 1;
                        offset = 0;
                    } else {
                        offset += written;
                        written = 0;
                    }
                }
            }
            Pin::new(&mut *io).poll_flush(cx)
        })
        .await
    }

    /// Ends the write side (TCP FIN; a TLS close_notify).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await
    }
}

/// The read side of a connection, for tungstenite, which reads and checks the client's frames.
/// What tungstenite writes by itself (a pong, the echo of a close) is discarded: the connection
/// answers those through its [`FrameWriter`], so two writers never interleave bytes on the socket.
pub struct ReadOnly<R>(pub R);

impl<R: AsyncRead + Unpin> AsyncRead for ReadOnly<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for ReadOnly<R> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn text_frames_carry_the_length_form_their_size_needs() {
        let short = WireFrame::text("hi");
        assert_eq!(&short.bytes[..], b"\x81\x02hi");
        assert_eq!(short.payload(), b"hi");
        let medium = "x".repeat(300);
        let frame = WireFrame::text(&medium);
        assert_eq!(&frame.bytes[..4], &[0x81, 126, 0x01, 0x2c]);
        assert_eq!(frame.text_payload(), medium);
        let long = "y".repeat(70_000);
        let frame = WireFrame::text(&long);
        assert_eq!(frame.bytes[1], 127);
        assert_eq!(frame.payload().len(), 70_000);
    }

    #[test]
    fn control_frames() {
        assert_eq!(&WireFrame::ping().bytes[..], &[0x89, 0]);
        assert_eq!(
            &WireFrame::pong(Bytes::from_static(b"ab")).bytes[..],
            b"\x8a\x02ab"
        );
        let close = WireFrame::close(4008, "slow");
        assert_eq!(&close.bytes[..], b"\x88\x06\x0f\xa8slow");
        // A reason too long for a control frame is cut at a character boundary.
        let close = WireFrame::close(1000, &"é".repeat(100));
        assert!(close.payload().len() <= 125);
        assert!(std::str::from_utf8(&close.payload()[2..]).is_ok());
    }

    /// Writes `frames` through a pipe with a 7-byte buffer, which stops every write part-way
    /// through a frame; returns what the reader got and what was sent.
    async fn through_a_narrow_pipe(frames: Vec<WireFrame>) -> (Vec<u8>, Vec<u8>) {
        let (client, mut server) = tokio::io::duplex(7);
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.bytes.to_vec()).collect();
        let writer = tokio::spawn(async move {
            FrameWriter::new(client)
                .write_all(&frames)
                .await
                .expect("write");
        });
        let mut got = vec![0; expected.len()];
        server.read_exact(&mut got).await.expect("read");
        writer.await.expect("writer");
        (got, expected)
    }

    #[tokio::test]
    async fn partial_writes_resume_inside_a_frame() {
        // Many frames (vectored writes), then one larger than the pipe (plain writes).
        let many = (0..200).map(|i| WireFrame::text(&format!("event {i}")));
        let (got, expected) = through_a_narrow_pipe(many.collect()).await;
        assert_eq!(got, expected);
        let (got, expected) = through_a_narrow_pipe(vec![WireFrame::text(&"z".repeat(300))]).await;
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_closed_peer_is_an_error_not_a_hang() {
        let (client, server) = tokio::io::duplex(16);
        drop(server);
        let mut writer = FrameWriter::new(client);
        assert!(writer.write_all(&[WireFrame::text("x")]).await.is_err());
    }
}
