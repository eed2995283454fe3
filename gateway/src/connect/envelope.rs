//! Length-prefixed framing, shared by gRPC and Connect streams: one flags byte, a big-endian
//! u32 length, the payload. In gRPC the flag 0x01 means compressed; Connect adds 0x02 for
//! its end-of-stream message.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Length of the prefix.
pub(crate) const PREFIX_LEN: usize = 5;
/// The payload is compressed.
pub(crate) const COMPRESSED: u8 = 0x01;
/// Connect's end-of-stream message (always JSON).
pub(crate) const END_STREAM: u8 = 0x02;

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub flags: u8,
    pub payload: Bytes,
}

/// Appends one frame to `out`.
pub(crate) fn put(out: &mut BytesMut, flags: u8, payload: &[u8]) {
    out.reserve(PREFIX_LEN + payload.len());
    out.put_u8(flags);
    // Messages are bounded far below 4 GiB by the body limits.
    out.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    out.put_slice(payload);
}

/// Frames arriving in arbitrary chunks, taken out whole.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    buffered: BytesMut,
}

impl Frames {
    /// Adds a chunk of the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buffered.extend_from_slice(chunk);
    }

    /// The next whole frame, if it has arrived.
    pub(crate) fn next_frame(&mut self) -> Option<Envelope> {
        if self.buffered.len() < PREFIX_LEN {
            return None;
        }
        let length = u32::from_be_bytes([
            self.buffered[1],
            self.buffered[2],
            self.buffered[3],
            self.buffered[4],
        ]) as usize;
        if self.buffered.len() < PREFIX_LEN + length {
            return None;
        }
        let flags = self.buffered.get_u8();
        self.buffered.advance(PREFIX_LEN - 1);
        let payload = self.buffered.split_to(length).freeze();
        Some(Envelope { flags, payload })
    }

    /// The length of the frame under way, once its prefix has arrived.
    pub(crate) fn pending_length(&self) -> Option<usize> {
        (self.buffered.len() >= PREFIX_LEN).then(|| {
            u32::from_be_bytes([
                self.buffered[1],
                self.buffered[2],
                self.buffered[3],
                self.buffered[4],
            ]) as usize
        })
    }

    /// Whether bytes of an incomplete frame are left.
    pub(crate) fn has_partial(&self) -> bool {
        !self.buffered.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_whole_whatever_the_chunking() {
        let mut stream = BytesMut::new();
        put(&mut stream, 0, b"first");
        put(&mut stream, END_STREAM, b"{}");
        let mut frames = Frames::default();
        let mut seen = Vec::new();
        for byte in stream.iter() {
            frames.push(std::slice::from_ref(byte));
            while let Some(frame) = frames.next_frame() {
                seen.push(frame);
            }
        }
        assert_eq!(
            seen,
            [
                Envelope {
                    flags: 0,
                    payload: Bytes::from_static(b"first")
                },
                Envelope {
                    flags: END_STREAM,
                    payload: Bytes::from_static(b"{}")
                },
            ]
        );
        assert!(!frames.has_partial());
    }
}
