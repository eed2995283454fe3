//! A replica's TCP connection, watched for the moment it stops being usable.
//!
//! hyper's HTTP/2 client does not tell its owner that the server sent GOAWAY (a draining
//! replica's first word) or that the connection died; tonic's channel only reconnects on the
//! next call, which then fails. So the stream under the connection is watched instead:
//! [`Watched`] follows the HTTP/2 frame headers of what the server sends (9 bytes each, the
//! payloads are skipped) and reports GOAWAY at once, as it reports end of stream and I/O
//! errors. A server sends no preface string, its first frame is SETTINGS, so the framing is
//! followed from the first byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a connection stopped being usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The connection could not be opened (refused, unreachable, timed out).
    Refused,
    /// The server sent GOAWAY: it is draining or closing the connection.
    GoAway,
    /// The connection ended or failed (the process died, the network broke).
    Closed,
}

/// Length of an HTTP/2 frame header.
const FRAME_HEADER_LEN: usize = 9;
/// The GOAWAY frame type.
const GOAWAY: u8 = 0x7;

/// Follows HTTP/2 frame boundaries over the bytes a server sends.
#[derive(Debug, Default)]
pub(crate) struct FrameHeaders {
    header: [u8; FRAME_HEADER_LEN],
    filled: usize,
    payload_left: usize,
}

impl FrameHeaders {
    /// Reads `bytes`; whether a GOAWAY frame header was among them.
    pub(crate) fn saw_goaway(&mut self, mut bytes: &[u8]) -> bool {
        let mut goaway = false;
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skipped = self.payload_left.min(bytes.len());
                self.payload_left -= skipped;
                bytes = &bytes[skipped..];
                continue;
            }
            let wanted = (FRAME_HEADER_LEN - self.filled).min(bytes.len());
            self.header[self.filled..self.filled + wanted].copy_from_slice(&bytes[..wanted]);
            self.filled += wanted;
            bytes = &bytes[wanted..];
            if self.filled == FRAME_HEADER_LEN {
                self.filled = 0;
                let [a, b, c, kind, ..] = self.header;
                self.payload_left = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                goaway |= kind == GOAWAY;
            }
        }
        goaway
    }
}

/// A connection that calls `report` once, with the first [`Loss`] it sees.
pub(crate) struct Watched<T> {
    io: T,
    frames: FrameHeaders,
    report: Option<Box<dyn FnOnce(Loss) + Send>>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("reported", &self.report.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> Watched<T> {
    pub(crate) fn new(io: T, report: impl FnOnce(Loss) + Send + 'static) -> Self {
        Self {
            io,
            frames: FrameHeaders::default(),
            report: Some(Box::new(report)),
        }
    }

    fn lost(&mut self, loss: Loss) {
        if let Some(report) = self.report.take() {
            report(loss);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if read.is_empty() && buf.remaining() > 0 {
                    this.lost(Loss::Closed);
                } else if this.report.is_some() && this.frames.saw_goaway(read) {
                    this.lost(Loss::GoAway);
                }
            }
            Poll::Ready(Err(_)) => this.lost(Loss::Closed),
            Poll::Pending => {}
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Err(_)) = &polled {
            this.lost(Loss::Closed);
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Err(_)) = &polled {
            this.lost(Loss::Closed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: usize) -> Vec<u8> {
        let length = u32::try_from(payload).unwrap_or(0).to_be_bytes();
        let mut bytes = vec![length[1], length[2], length[3], kind, 0, 0, 0, 0, 1];
        bytes.resize(FRAME_HEADER_LEN + payload, 0x7);
        bytes
    }

    #[test]
    fn goaway_is_seen_at_its_header_however_the_bytes_arrive() {
        // SETTINGS, DATA whose payload is full of 0x7 bytes, then GOAWAY.
        let mut wire = frame(0x4, 6);
        wire.extend(frame(0x0, 40));
        let quiet = wire.len();
        wire.extend(frame(GOAWAY, 8));

        let mut whole = FrameHeaders::default();
        assert!(!whole.saw_goaway(&wire[..quiet]), "no GOAWAY yet");
        assert!(whole.saw_goaway(&wire[quiet..]));

        let mut bytewise = FrameHeaders::default();
        let seen: Vec<usize> = wire
            .iter()
            .enumerate()
            .filter(|(_, byte)| bytewise.saw_goaway(std::slice::from_ref(*byte)))
            .map(|(at, _)| at)
            .collect();
        assert_eq!(
            seen,
            vec![quiet + FRAME_HEADER_LEN - 1],
            "seen once, with its header"
        );
    }
}
