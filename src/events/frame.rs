//! A WebSocket frame encoded once, header and payload together: an event's frame is made when
//! it is published and the same bytes go to every subscriber's socket (see `ws::wire`).

use bytes::Bytes;
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

    /// The whole frame, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
