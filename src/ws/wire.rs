//! Frames as they go on the wire, and the writer that sends them. A frame is encoded once, header
//! and payload together: an event's frame is made when it is published and the same bytes are
//! written to every subscriber's socket by vectored writes. tungstenite's sink would copy each
//! message into every connection's write buffer first; at 1,000 subscribers that copy is most of
//! the cost of a delivery.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::events::WireFrame;

/// Frames handed to the socket by one write: enough to fill a loopback socket's buffer with
/// ~200-byte frames, small enough for the slices to live on the stack of one poll.
const SLICES_PER_WRITE: usize = 64;

/// Writes frames to a socket without copying them.
pub(super) struct FrameWriter<W> {
    io: W,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(super) fn new(io: W) -> Self {
        FrameWriter { io }
    }

    /// Writes every frame, in order, then flushes. Each write hands the socket up to
    /// [`SLICES_PER_WRITE`] frames; a partial write resumes inside the frame it stopped in.
    pub(super) async fn write_all(&mut self, frames: &[WireFrame]) -> io::Result<()> {
        let (mut index, mut offset) = (0, 0);
        let io = &mut self.io;
        // A poll function, not an async loop: the slices are built per poll on the stack and are
        // not kept in the connection's future between polls.
        poll_fn(|cx| {
            while index < frames.len() {
                let batch = &frames[index..frames.len().min(index + SLICES_PER_WRITE)];
                let first = &batch[0].bytes()[offset..];
                let mut written = if batch.len() == 1 {
                    // One frame (an event at a time): a plain write, which on a TCP socket is
                    // `send`, a shorter path through the kernel than `writev`.
                    ready!(Pin::new(&mut *io).poll_write(cx, first))?
                } else {
                    let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
                    slices[0] = IoSlice::new(first);
                    for (slice, frame) in slices[1..].iter_mut().zip(&batch[1..]) {
                        *slice = IoSlice::new(frame.bytes());
                    }
                    ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..batch.len()]))?
                };
                if written == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                while written > 0 {
                    let left = frames[index].bytes().len() - offset;
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
    pub(super) async fn shutdown(&mut self) -> io::Result<()> {
        poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await
    }
}

/// The read side of a connection, for tungstenite, which reads and checks the client's frames.
/// What tungstenite writes by itself (a pong, the echo of a close) is discarded: the connection
/// answers those through its [`FrameWriter`], so two writers never interleave bytes on the socket.
pub(super) struct ReadOnly<R>(pub R);

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

    /// Writes `frames` through a pipe with a 7-byte buffer, which stops every write part-way
    /// through a frame; returns what the reader got and what was sent.
    async fn through_a_narrow_pipe(frames: Vec<WireFrame>) -> (Vec<u8>, Vec<u8>) {
        let (client, mut server) = tokio::io::duplex(7);
        let expected: Vec<u8> = frames.iter().flat_map(|f| f.bytes().to_vec()).collect();
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
